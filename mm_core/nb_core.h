/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_core.h - the C API of mm_core: physical allocator, NUMA policy, kernel heap, migration.
 *
 * Callers: module/ (the Linux shim) and tests/ (hosted). Everything returns 0 or -NB_E*
 * (Linux errno values). One struct nb_core is one set of pools; the module has exactly one.
 *
 * Frames are 4 KiB and named by physical frame number (pfn). A block of order k is 2^k frames,
 * naturally aligned (pfn % 2^k == 0).
 */
#ifndef NB_CORE_H
#define NB_CORE_H

#include "env.h"

#define NB_FRAME_SHIFT 12
#define NB_FRAME_SIZE (1ull << NB_FRAME_SHIFT)
#define NB_MAX_NODES 64          /* node ids 0..63; a nodemask is one nb_u64 */
#define NB_ORDER_LIMIT 20        /* orders 0..20 (4 GiB) at most; default max order 18 (1 GiB) */
#define NB_DEFAULT_MAX_ORDER 18
#define NB_LOW_LIMIT_PFN (1ull << (32 - NB_FRAME_SHIFT)) /* first frame at/above 4 GiB */

/* One physically contiguous range of frames that the core manages, on one node. */
struct nb_region {
	nb_u64 start_pfn;
	nb_u64 nr_frames;
	nb_i32 node;
	nb_u32 reserved;
};

/* What the environment reserved: the module's "boot info". */
struct nb_bootinfo {
	const struct nb_region *regions;
	nb_u32 nr_regions;
	nb_u32 max_order;        /* 0 = NB_DEFAULT_MAX_ORDER; at most NB_ORDER_LIMIT */
	nb_u32 pcp_batch;        /* order-0 per-CPU refill batch; 0 = default */
	nb_u32 reserved;
};

/* Allocation flags (combine with |). */
#define NB_AF_LOW4G (1u << 0)    /* only frames below 4 GiB (32-bit DMA devices) */
#define NB_AF_NOCACHE (1u << 1)  /* skip the per-CPU caches */

/* NUMA policy, spelled as numactl does. */
enum nb_policy_mode {
	NB_POLICY_LOCAL = 0,      /* node of the calling CPU (the guide's current_cpu_node), fallback */
	NB_POLICY_PREFERRED = 1,  /* `node` first, then by distance */
	NB_POLICY_BIND = 2,       /* only nodes in `nodemask`, nearest first; none free -> -ENOMEM */
	NB_POLICY_INTERLEAVE = 3, /* round robin over `nodemask`, one block per call */
};

struct nb_policy {
	nb_u32 mode;      /* enum nb_policy_mode */
	nb_i32 node;      /* PREFERRED: the node; -1 = calling CPU's node */
	nb_u64 nodemask;  /* BIND, INTERLEAVE: bit n = node n */
	nb_u32 il_next;   /* INTERLEAVE cursor, advanced by the core (atomically) */
	nb_u32 reserved;
};

struct nb_core;

/* Per-node counters, numastat-style. Counted in blocks (allocations), not frames. */
struct nb_node_stats {
	nb_i32 node;
	nb_u32 max_order;
	nb_u64 total_frames;
	nb_u64 free_frames;          /* in the buddy free lists */
	nb_u64 pcp_frames;           /* parked in per-CPU caches (allocatable) */
	nb_u64 low_total_frames;     /* below 4 GiB */
	nb_u64 low_free_frames;
	nb_u64 free_blocks[NB_ORDER_LIMIT + 1];
	nb_i32 largest_free_order;   /* -1 when nothing is free */
	nb_u32 reserved;
	nb_u64 numa_hit;             /* allocated here, as intended */
	nb_u64 numa_miss;            /* allocated here, intended elsewhere */
	nb_u64 numa_foreign;         /* intended here, allocated elsewhere */
	nb_u64 interleave_hit;       /* interleave wanted this node and got it */
	nb_u64 local_node;           /* allocated here by a CPU of this node */
	nb_u64 other_node;           /* allocated here by a CPU of another node */
	nb_u64 migrate_in;           /* blocks migrated onto this node */
	nb_u64 migrate_out;
	nb_u64 alloc_fail;           /* requests this node could not serve */
};

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bring the core up in the guide's order: numa_init (node table, fallback lists from the
 * distance matrix), buddy_init (regions -> free lists), kheap_init. NB_CTX_SLEEP context.
 * Regions must be 4 KiB-frame ranges that do not overlap; a node may have many.
 */
int nb_core_create(const struct nb_bootinfo *bi, struct nb_core **out);
/* Tear down. Every block must have been freed; returns -EBUSY (and does nothing) otherwise. */
int nb_core_destroy(struct nb_core *c);

/* Allocate one block of 2^order frames under `pol` (NULL = local). *node_out may be NULL. */
int nb_alloc(struct nb_core *c, unsigned order, const struct nb_policy *pol, unsigned flags,
	     enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out);
/* The guide's buddy_alloc(order, node, flags): preferred `node` (-1 = local) with fallback. */
int nb_buddy_alloc(struct nb_core *c, unsigned order, int node, unsigned flags, enum nb_ctx ctx,
		   nb_u64 *pfn_out);
/* Free a block exactly as allocated. A wrong pfn/order or a double free returns -EINVAL and
 * changes nothing. */
int nb_buddy_free(struct nb_core *c, nb_u64 pfn, unsigned order);

/* nr_frames physically contiguous frames (any count, not only powers of two). The tail of the
 * covering block goes back to the free lists at once. Free with nb_free_range. */
int nb_alloc_contig(struct nb_core *c, nb_u64 nr_frames, const struct nb_policy *pol,
		    unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out);
int nb_free_range(struct nb_core *c, nb_u64 pfn, nb_u64 nr_frames);

/*
 * The guide's buddy_migrate(page, old_node, new_node): allocate 2^order frames on new_node
 * (bind: no fallback), copy the contents through nb_env_frame_addr, free the source, return
 * the new pfn. The caller remaps. -EINVAL if pfn/order is not an allocated block on old_node.
 */
int nb_buddy_migrate(struct nb_core *c, nb_u64 pfn, unsigned order, int old_node, int new_node,
		     enum nb_ctx ctx, nb_u64 *new_pfn);

/* The guide's current_cpu_node(): node of the calling CPU, or the first node with memory. */
int nb_current_cpu_node(struct nb_core *c);
/* Node that holds pfn, or -1 if the pool does not contain it. */
int nb_pfn_node(const struct nb_core *c, nb_u64 pfn);
/* Bitmask of nodes that have pool memory. */
nb_u64 nb_nodes_with_memory(const struct nb_core *c);
/* Nodes ordered by distance from `node` (itself first); returns the count written. */
unsigned nb_fallback_order(const struct nb_core *c, int node, int *out, unsigned max);

/* Kernel heap (the guide's kheap_init/kalloc/kfree), carved from pool frames on `node`
 * (-1 = local). Sizes up to 2 KiB come from size classes; larger go straight to the buddy
 * allocator. Zeroed memory. */
void *nb_kalloc(struct nb_core *c, nb_size_t size, int node, enum nb_ctx ctx);
void nb_kfree(struct nb_core *c, void *p);

/* Per-CPU caches: give every cached block back to the buddy free lists. */
void nb_pcp_drain(struct nb_core *c);

int nb_node_stats(struct nb_core *c, int node, struct nb_node_stats *out);

/* Walk every descriptor and list; 0 if consistent, else -NB_EIO with the reason logged. */
int nb_check(struct nb_core *c);

/* The guide's buddy_debug_print: a buddyinfo-like dump per node and order, largest free block,
 * counters. Each line goes to emit(arg, line) (no newline), or to nb_env_log when emit is NULL. */
void nb_buddy_debug_print(struct nb_core *c, void (*emit)(void *arg, const char *line), void *arg);

#ifdef __cplusplus
}
#endif

#endif /* NB_CORE_H */
