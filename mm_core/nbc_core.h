/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbc_core.h - the C API of mm_core: physical allocator, NUMA policy, kernel heap, migration.
 *
 * Callers: module/ (the Linux shim) and tests/ (hosted). Everything returns 0 or -NB_E*
 * (Linux errno values). One struct nbc_core is one set of pools; the module has exactly one.
 *
 * Frames are 4 KiB and named by physical frame number (pfn). A block of order k is 2^k frames,
 * naturally aligned (pfn % 2^k == 0).
 */
#ifndef NBC_CORE_H
#define NBC_CORE_H

#include "env.h"

#define NBC_FRAME_SHIFT 12
#define NBC_FRAME_SIZE (1ull << NBC_FRAME_SHIFT)
#define NBC_MAX_NODES 64          /* node ids 0..63; a nodemask is one nb_u64 */
#define NBC_ORDER_LIMIT 20        /* orders 0..20 (4 GiB) at most; default max order 18 (1 GiB) */
#define NBC_DEFAULT_MAX_ORDER 18
#define NBC_LOW_LIMIT_PFN (1ull << (32 - NBC_FRAME_SHIFT)) /* first frame at/above 4 GiB */

/* One physically contiguous range of frames that the core manages, on one node. */
struct nbc_region {
	nb_u64 start_pfn;
	nb_u64 nr_frames;
	nb_i32 node;
	nb_u32 reserved;
};

/* What the environment reserved: the module's "boot info". */
struct nbc_bootinfo {
	const struct nbc_region *regions;
	nb_u32 nr_regions;
	nb_u32 max_order;        /* 0 = NBC_DEFAULT_MAX_ORDER; at most NBC_ORDER_LIMIT */
	nb_u32 pcp_batch;        /* order-0 per-CPU refill batch; 0 = default */
	nb_u32 reserved;
};

/* Allocation flags (combine with |). */
#define NBC_AF_LOW4G (1u << 0)    /* only frames below 4 GiB (32-bit DMA devices) */
#define NBC_AF_NOCACHE (1u << 1)  /* skip the per-CPU caches */

/* NUMA policy, spelled as numactl does. */
enum nbc_policy_mode {
	NBC_POLICY_LOCAL = 0,      /* node of the calling CPU (the guide's current_cpu_node), fallback */
	NBC_POLICY_PREFERRED = 1,  /* `node` first, then by distance */
	NBC_POLICY_BIND = 2,       /* only nodes in `nodemask`, nearest first; none free -> -ENOMEM */
	NBC_POLICY_INTERLEAVE = 3, /* round robin over `nodemask`, one block per call */
};

struct nbc_policy {
	nb_u32 mode;      /* enum nbc_policy_mode */
	nb_i32 node;      /* PREFERRED: the node; -1 = calling CPU's node */
	nb_u64 nodemask;  /* BIND, INTERLEAVE: bit n = node n */
	nb_u32 il_next;   /* INTERLEAVE cursor, advanced by the core (atomically) */
	nb_u32 reserved;
};

struct nbc_core;

/* Per-node counters, numastat-style. Counted in blocks (allocations), not frames. */
struct nbc_node_stats {
	nb_i32 node;
	nb_u32 max_order;
	nb_u64 total_frames;
	nb_u64 free_frames;          /* in the buddy free lists, or being zeroed by nbc_core_prezero */
	nb_u64 pcp_frames;           /* parked in per-CPU caches (allocatable) */
	nb_u64 low_total_frames;     /* below 4 GiB */
	nb_u64 low_free_frames;
	nb_u64 free_blocks[NBC_ORDER_LIMIT + 1];
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
	nb_u64 zeroed_frames;        /* of free_frames: in blocks known to be zero (prezeroed) */
	nb_u64 zeroed_huge_frames;   /* of zeroed_frames: in such blocks of 2 MiB (order 9) or more */
	nb_u64 prezero_in_flight;    /* blocks the zeroer holds now (in free_frames, not in free_blocks) */
};

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bring the core up in the guide's order: numa_init (node table, fallback lists from the
 * distance matrix), buddy_init (regions -> free lists), kheap_init. NB_CTX_SLEEP context.
 * Regions must be 4 KiB-frame ranges that do not overlap; a node may have many.
 */
int nbc_core_create(const struct nbc_bootinfo *bi, struct nbc_core **out);
/* Tear down. Every block must have been freed; returns -EBUSY (and does nothing) otherwise. */
int nbc_core_destroy(struct nbc_core *c);

/*
 * Resize a live core (NB_CTX_SLEEP; one resize at a time, a concurrent one gets -EBUSY).
 * Safe against allocations and frees running meanwhile: lookups stay lock-free.
 * add: a new region on a node that had a pool at create (-ENODEV otherwise), overlapping no
 * frame the core has (-EEXIST); every frame of it becomes free.
 * remove: exactly the frames of one or more whole segments of one node, i.e. of earlier
 * regions, each cut at the 4 GiB line and every 2^28 frames (-EINVAL otherwise), given back
 * only when every frame of it is free (-EBUSY otherwise, nothing changes). The
 * core keeps the removed range's metadata (8 bytes per frame) until it is destroyed.
 */
int nbc_core_add_region(struct nbc_core *c, const struct nbc_region *r);
int nbc_core_remove_region(struct nbc_core *c, nb_u64 start_pfn, nb_u64 nr_frames);

/* Allocate one block of 2^order frames under `pol` (NULL = local). *node_out may be NULL.
 * Before -ENOMEM it drains per-CPU caches: every CPU's with NB_CTX_SLEEP (that may sleep),
 * only the calling CPU's with NB_CTX_ATOMIC (as Linux drains other CPUs' lists only in
 * direct reclaim). */
int nbc_alloc(struct nbc_core *c, unsigned order, const struct nbc_policy *pol, unsigned flags,
	      enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out);
/* nbc_alloc, preferring a block known to be zero (pre-zeroed by nbc_core_prezero) and
 * bypassing the per-CPU caches while the node has zeroed frames; *zeroed_out = 1 when every
 * frame of the block is known zero (the caller may skip its memset), else 0. */
int nbc_alloc_zeroed(struct nbc_core *c, unsigned order, const struct nbc_policy *pol,
		     unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out,
		     int *zeroed_out);
/* The guide's buddy_alloc(order, node, flags): preferred `node` (-1 = local) with fallback. */
int nbc_buddy_alloc(struct nbc_core *c, unsigned order, int node, unsigned flags, enum nb_ctx ctx,
		    nb_u64 *pfn_out);
/* Free a block exactly as allocated. A wrong pfn/order or a double free returns -EINVAL and
 * changes nothing. */
int nbc_buddy_free(struct nbc_core *c, nb_u64 pfn, unsigned order);

/* nr_frames physically contiguous frames (any count, not only powers of two). The tail of the
 * covering block goes back to the free lists at once. Free with nbc_free_range. */
int nbc_alloc_contig(struct nbc_core *c, nb_u64 nr_frames, const struct nbc_policy *pol,
		     unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out);
int nbc_free_range(struct nbc_core *c, nb_u64 pfn, nb_u64 nr_frames);
/* nbc_alloc_contig as nbc_alloc_zeroed is nbc_alloc. */
int nbc_alloc_contig_zeroed(struct nbc_core *c, nb_u64 nr_frames, const struct nbc_policy *pol,
			    unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out,
			    int *zeroed_out);

/*
 * Pre-zeroing, one step of a node's background zeroer: take one dirty free block of at most
 * max_frames frames (at most 2 MiB; a larger dirty block is split), zero it with the node lock
 * dropped, free it back as zeroed. Returns the frames zeroed, 0 when nothing on the node is
 * dirty, -EINVAL for a node without a pool or max_frames 0. While a block is being zeroed it
 * counts as allocated; an NB_CTX_SLEEP allocation that fails while the zeroer holds blocks of
 * its nodes waits for them and tries once more, so the zeroer never makes one fail. `ctx`:
 * NB_CTX_SLEEP reschedules between 64 KiB chunks.
 */
nb_i64 nbc_core_prezero(struct nbc_core *c, int node, nb_u64 max_frames, enum nb_ctx ctx);

/*
 * The guide's buddy_migrate(page, old_node, new_node): allocate 2^order frames on new_node
 * (bind: no fallback), copy the contents through nb_env_frame_addr, free the source, return
 * the new pfn. The caller remaps. -EINVAL if pfn/order is not an allocated block on old_node.
 */
int nbc_buddy_migrate(struct nbc_core *c, nb_u64 pfn, unsigned order, int old_node, int new_node,
		      enum nb_ctx ctx, nb_u64 *new_pfn);

/* The guide's current_cpu_node(): node of the calling CPU, or the first node with memory. */
int nbc_current_cpu_node(struct nbc_core *c);
/* Node that holds pfn, or -1 if the pool does not contain it. */
int nbc_pfn_node(const struct nbc_core *c, nb_u64 pfn);
/* Bitmask of nodes that have pool memory. */
nb_u64 nbc_nodes_with_memory(const struct nbc_core *c);
/* Nodes ordered by distance from `node` (itself first); returns the count written. */
unsigned nbc_fallback_order(const struct nbc_core *c, int node, int *out, unsigned max);

/* Kernel heap (the guide's kheap_init/kalloc/kfree), carved from pool frames on `node`
 * (-1 = local). Sizes up to 2 KiB come from size classes; larger go straight to the buddy
 * allocator. Zeroed memory. */
void *nbc_kalloc(struct nbc_core *c, nb_size_t size, int node, enum nb_ctx ctx);
void nbc_kfree(struct nbc_core *c, void *p);

/* Per-CPU caches: give every cached block back to the buddy free lists. May sleep (another
 * CPU's caches are drained on that CPU). */
void nbc_pcp_drain(struct nbc_core *c);
/* After one caller freed `frames` frames as `blocks` buddy blocks: drain the calling CPU's
 * caches, where those blocks went, when that free was large enough to be worth it (the
 * caches' layout decides). Atomic-safe. */
void nbc_pcp_drain_after_free(struct nbc_core *c, nb_u64 frames, nb_u64 blocks);

/*
 * What an empty nodemask means, decided here once for every caller (the uapi's rule):
 * BIND takes `node`, or the calling CPU's node when `node` is -1; INTERLEAVE takes every
 * node with pool memory. NULL is LOCAL. -EINVAL for an unknown mode or a node >= NBC_MAX_NODES.
 * nbc_alloc itself takes a policy as it is: an empty mask there is -EINVAL.
 */
int nbc_policy_normalize(struct nbc_core *c, const struct nbc_policy *in, struct nbc_policy *out);
/* The pools' largest buddy order (nbc_bootinfo.max_order, defaulted). */
unsigned nbc_max_order(const struct nbc_core *c);
/* Frames of pool on `node` (0 for a node without one). */
nb_u64 nbc_pool_frames(const struct nbc_core *c, int node);

int nbc_node_stats(struct nbc_core *c, int node, struct nbc_node_stats *out);

/* Walk every descriptor and list; 0 if consistent, else -NB_EIO with the reason logged. May
 * sleep (each CPU's caches are checked on that CPU). */
int nbc_check(struct nbc_core *c);

/* The guide's buddy_debug_print: a buddyinfo-like dump per node and order, largest free block,
 * counters. Each line goes to emit(arg, line) (no newline), or to nb_env_log when emit is NULL. */
void nbc_buddy_debug_print(struct nbc_core *c, void (*emit)(void *arg, const char *line),
			   void *arg);

#ifdef __cplusplus
}
#endif

#endif /* NBC_CORE_H */
