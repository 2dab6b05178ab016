/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * numabuddy.h - ioctl ABI of /dev/numabuddy, shared by the module and user space.
 *
 * Model: a process opens /dev/numabuddy; each open file description owns the blocks it
 * allocates. NB_IOC_ALLOC returns a block's `offset`: pass it to mmap(2) on the same fd
 * (MAP_SHARED only) to map the block. Blocks die with NB_IOC_FREE or when the last reference
 * to the file description goes away (close, exit); mappings keep the file alive. A file
 * opened without write access may only watch: VERSION, STATS, QUERY and WALK work; ALLOC,
 * ALLOC_BATCH, RESERVE, FREE, MIGRATE and BENCH return -EBADF.
 *
 * Conventions (dma-heap, device-dax): only __u64/__u32/__s32 fields, explicit padding and
 * reserved fields (must be zero on input, zeroed on output), `_IOWR(NB_IOC_MAGIC, nr, struct)`.
 * The kernel tolerates struct sizes from older and newer callers: it copies the common prefix,
 * zero-extends a shorter one, and rejects a longer one whose extra bytes are not zero
 * (-E2BIG). Unknown commands return -ENOTTY.
 */
#ifndef _UAPI_LINUX_NUMABUDDY_H
#define _UAPI_LINUX_NUMABUDDY_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define NB_ABI_MAJOR 1
#define NB_ABI_MINOR 1 /* 1: nb_walk.cache */
#define NB_DEVICE_PATH "/dev/numabuddy"
#define NB_IOC_MAGIC 0xB9

/* Feature bits reported by NB_IOC_VERSION. */
#define NB_FEAT_HUGE_PMD (1ULL << 0)   /* 2 MiB mappings */
#define NB_FEAT_HUGE_PUD (1ULL << 1)   /* 1 GiB mappings */
#define NB_FEAT_RESERVE (1ULL << 2)    /* demand-paged ranges */
#define NB_FEAT_MIGRATE (1ULL << 3)
#define NB_FEAT_BATCH (1ULL << 4)
#define NB_FEAT_BENCH (1ULL << 5)

/**
 * struct nb_version - NB_IOC_VERSION: what this module speaks.
 * @abi_major: NB_ABI_MAJOR of the module; a different major is incompatible.
 * @abi_minor: NB_ABI_MINOR of the module.
 * @features: NB_FEAT_* bits.
 * @nr_node_ids: node ids run 0..nr_node_ids-1 (numactl numbering).
 * @max_order: largest block order (2^max_order pages).
 * @page_size: bytes per frame (4096).
 * @pad: zero.
 * @nodes_with_pool: bit n set when node n has a pool.
 * @reserved: zero.
 */
struct nb_version {
	__u32 abi_major;
	__u32 abi_minor;
	__u64 features;
	__u32 nr_node_ids;
	__u32 max_order;
	__u32 page_size;
	__u32 pad;
	__u64 nodes_with_pool;
	__u64 reserved[4];
};

/* NUMA policies, spelled as numactl does. */
#define NB_POLICY_LOCAL 0      /* node of the calling CPU, falling back by distance */
#define NB_POLICY_PREFERRED 1  /* @node first, falling back by distance */
#define NB_POLICY_BIND 2       /* only nodes in @nodemask (or @node if nodemask is 0) */
#define NB_POLICY_INTERLEAVE 3 /* blocks round robin over @nodemask */

/* nb_alloc.flags */
#define NB_ALLOC_CONTIG (1U << 0)   /* one physically contiguous range */
#define NB_ALLOC_LOW4G (1U << 1)    /* only memory below 4 GiB */
#define NB_ALLOC_HUGE_2M (1U << 2)  /* prefer 2 MiB frames and mappings */
#define NB_ALLOC_HUGE_1G (1U << 3)  /* prefer 1 GiB frames and mappings */
#define NB_ALLOC_POPULATE (1U << 4) /* RESERVE: allocate all frames now, not at first touch
                                    * (a MIGRATE or FREE of the range racing it: RESERVE
                                    * still succeeds, populating stops there) */
#define NB_ALLOC_NOZERO (1U << 5)   /* reserved for CAP_SYS_ADMIN; others get -EPERM */
#define NB_ALLOC_FLAGS_ALL 0x3fU

/**
 * struct nb_alloc - NB_IOC_ALLOC and NB_IOC_RESERVE.
 * @size: in: bytes, rounded up to whole pages; 0 = use @order.
 * @order: in: block of 2^order pages when @size is 0.
 * @policy: in: NB_POLICY_*.
 * @node: in: node for PREFERRED and BIND (when @nodemask is 0); -1 = calling CPU's node.
 * @flags: in: NB_ALLOC_*.
 * @nodemask: in: node set for BIND and INTERLEAVE (bit n = node n).
 * @offset: out: mmap(2) offset of the block; also its handle for FREE, QUERY and MIGRATE.
 * @alloc_size: out: bytes reserved (>= size).
 * @node_out: out: node of the first frame (-1 for a RESERVE range not yet touched).
 * @pad: zero.
 * @reserved: zero.
 */
struct nb_alloc {
	__u64 size;
	__u32 order;
	__u32 policy;
	__s32 node;
	__u32 flags;
	__u64 nodemask;
	__u64 offset;
	__u64 alloc_size;
	__s32 node_out;
	__u32 pad;
	__u64 reserved[4];
};

/**
 * struct nb_free - NB_IOC_FREE.
 * @offset: in: the block's offset from NB_IOC_ALLOC/RESERVE. Every mapping of it is zapped
 *          first: a later access through an old mapping gets SIGBUS.
 * @reserved: zero.
 */
struct nb_free {
	__u64 offset;
	__u64 reserved[3];
};

/**
 * struct nb_alloc_batch - NB_IOC_ALLOC_BATCH: @count allocations in one call.
 * @reqs: in: user pointer to an array of @count struct nb_alloc (each of @entry_size bytes).
 * @count: in: number of entries, at most 4096.
 * @entry_size: in: sizeof(struct nb_alloc) as the caller knows it.
 * @done: out: entries completed. The call succeeds when at least one entry was allocated:
 *        done < count then says where it stopped (entries [0, done) are allocated; retry
 *        entry done alone to learn its errno). It fails with the first entry's errno when
 *        none was allocated.
 * @pad: zero.
 * @reserved: zero.
 */
struct nb_alloc_batch {
	__u64 reqs;
	__u32 count;
	__u32 entry_size;
	__u32 done;
	__u32 pad;
	__u64 reserved[2];
};

/**
 * struct nb_query - NB_IOC_QUERY: what one block is.
 * @offset: in: the block's offset.
 * @size: out: bytes.
 * @node: out: node of the first frame, -1 if none is populated yet.
 * @order: out: order of the largest frame backing it.
 * @flags: out: NB_ALLOC_* it was made with.
 * @nr_frames_4k: out: frames populated.
 * @mapped_4k: out: bytes currently mapped by 4 KiB entries.
 * @mapped_2m: out: bytes currently mapped by 2 MiB entries.
 * @mapped_1g: out: bytes currently mapped by 1 GiB entries.
 * @phys_addr: out: physical address of the first frame, CAP_SYS_ADMIN only (else 0).
 * @node_bytes: out: bytes populated per node, nodes 0..15.
 * @reserved: zero.
 */
struct nb_query {
	__u64 offset;
	__u64 size;
	__s32 node;
	__u32 order;
	__u32 flags;
	__u32 pad;
	__u64 nr_frames_4k;
	__u64 mapped_4k;
	__u64 mapped_2m;
	__u64 mapped_1g;
	__u64 phys_addr;
	__u64 node_bytes[16];
	__u64 reserved[4];
};

/**
 * struct nb_migrate - NB_IOC_MIGRATE: move a block's frames to another node, contents kept.
 * @offset: in: the block.
 * @node: in: target node.
 * @pad: zero.
 * @bytes_moved: out: bytes now on @node; also written when the call fails part-way
 *	(EINTR, ENOMEM, EDQUOT), the block then live and partly moved.
 * @reserved: zero.
 */
struct nb_migrate {
	__u64 offset;
	__s32 node;
	__u32 pad;
	__u64 bytes_moved;
	__u64 reserved[3];
};

#define NB_STATS_ORDERS 21

/**
 * struct nb_stats - NB_IOC_STATS: one node's pool, and this file's use of it.
 * @node: in: the node.
 * @nr_orders: out: entries used in @free_blocks (max_order + 1).
 * @total_bytes: out: pool size on the node.
 * @free_bytes: out: free, including per-CPU caches.
 * @low_total_bytes: out: pool below 4 GiB.
 * @low_free_bytes: out.
 * @free_blocks: out: free blocks per order (buddyinfo).
 * @numa_hit: out: numastat counters (blocks).
 * @numa_miss: out.
 * @numa_foreign: out.
 * @interleave_hit: out.
 * @local_node: out.
 * @other_node: out.
 * @migrate_in: out.
 * @migrate_out: out.
 * @fd_bytes: out: bytes this file description holds on the node.
 * @fd_quota_bytes: out: this file's limit on the node.
 * @reserved: zero.
 */
struct nb_stats {
	__s32 node;
	__u32 nr_orders;
	__u64 total_bytes;
	__u64 free_bytes;
	__u64 low_total_bytes;
	__u64 low_free_bytes;
	__u64 free_blocks[NB_STATS_ORDERS];
	__u64 numa_hit;
	__u64 numa_miss;
	__u64 numa_foreign;
	__u64 interleave_hit;
	__u64 local_node;
	__u64 other_node;
	__u64 migrate_in;
	__u64 migrate_out;
	__u64 fd_bytes;
	__u64 fd_quota_bytes;
	__u64 reserved[4];
};

#define NB_BENCH_NUMABUDDY 0
#define NB_BENCH_KERNEL 1

/**
 * struct nb_bench - NB_IOC_BENCH (CAP_SYS_ADMIN): time @iterations alloc+free pairs in kernel.
 * @allocator: in: NB_BENCH_NUMABUDDY or NB_BENCH_KERNEL (alloc_pages_node/__free_pages).
 * @order: in.
 * @node: in.
 * @pad: zero.
 * @iterations: in: at most 1<<24.
 * @elapsed_ns: out: ktime for the whole loop.
 * @failures: out: allocations that failed.
 * @reserved: zero.
 */
struct nb_bench {
	__u32 allocator;
	__u32 order;
	__s32 node;
	__u32 pad;
	__u64 iterations;
	__u64 elapsed_ns;
	__u64 failures;
	__u64 reserved[4];
};

/* nb_walk.level */
#define NB_WALK_NONE 0 /* nothing mapped at the address */
#define NB_WALK_PTE 1  /* 4 KiB entry */
#define NB_WALK_PMD 2  /* 2 MiB entry */
#define NB_WALK_PUD 3  /* 1 GiB entry */

/* nb_walk.cache: the memory type of the entry, as x86's PAT resolves its PWT/PCD/PAT bits
 * (the values of the kernel's enum page_cache_mode). numabuddy maps its frames write-back,
 * like any RAM; a device BAR mapped through sysfs reads UC_MINUS, its _wc file WC. */
#define NB_CACHE_WB 0
#define NB_CACHE_WC 1
#define NB_CACHE_UC_MINUS 2
#define NB_CACHE_UC 3
#define NB_CACHE_WT 4
#define NB_CACHE_WP 5
#define NB_CACHE_UNKNOWN 0xff /* bits no memory type of this CPU's PAT encodes */

/**
 * struct nb_walk - NB_IOC_WALK (CAP_SYS_ADMIN): a diagnostic walk of the caller's own page
 * tables by the kernel, so tests can check the mapping size and frame without trusting
 * numabuddy's bookkeeping.
 * @addr: in: user virtual address in the calling process.
 * @level: out: NB_WALK_*.
 * @cache: in: zero; out: NB_CACHE_* of the entry (ABI 1.1; 0 when nothing is mapped).
 * @pfn: out: frame mapped at @addr (0 when not mapped).
 * @node: out: node of that frame per the kernel (page_to_nid), -1 when not mapped.
 * @pad2: zero.
 * @reserved: zero.
 */
struct nb_walk {
	__u64 addr;
	__u32 level;
	__u32 cache;
	__u64 pfn;
	__s32 node;
	__u32 pad2;
	__u64 reserved[2];
};

#define NB_IOC_VERSION _IOWR(NB_IOC_MAGIC, 0x00, struct nb_version)
#define NB_IOC_ALLOC _IOWR(NB_IOC_MAGIC, 0x01, struct nb_alloc)
#define NB_IOC_FREE _IOWR(NB_IOC_MAGIC, 0x02, struct nb_free)
#define NB_IOC_ALLOC_BATCH _IOWR(NB_IOC_MAGIC, 0x03, struct nb_alloc_batch)
#define NB_IOC_QUERY _IOWR(NB_IOC_MAGIC, 0x04, struct nb_query)
#define NB_IOC_RESERVE _IOWR(NB_IOC_MAGIC, 0x05, struct nb_alloc)
#define NB_IOC_MIGRATE _IOWR(NB_IOC_MAGIC, 0x06, struct nb_migrate)
#define NB_IOC_STATS _IOWR(NB_IOC_MAGIC, 0x07, struct nb_stats)
#define NB_IOC_BENCH _IOWR(NB_IOC_MAGIC, 0x08, struct nb_bench)
#define NB_IOC_WALK _IOWR(NB_IOC_MAGIC, 0x09, struct nb_walk)

#endif /* _UAPI_LINUX_NUMABUDDY_H */
