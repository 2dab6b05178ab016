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
#define NB_ABI_MINOR 5 /* 1: nb_walk.cache; 2: NB_ALLOC_PINNABLE, NB_IOC_EXPORT_DMABUF,
			  * nb_query.mapping, nb_stats.inflight_bytes/fd_inflight_bytes;
			  * 3: NB_IOC_COMPACT, nb_stats.compact_*; 4: nb_stats.zeroed_bytes;
			  * 5: nb_stats.zeroed_huge_bytes (was reserved) */
#define NB_DEVICE_PATH "/dev/numabuddy"
#define NB_IOC_MAGIC 0xB9

/* Feature bits reported by NB_IOC_VERSION. */
#define NB_FEAT_HUGE_PMD (1ULL << 0)   /* 2 MiB mappings */
#define NB_FEAT_HUGE_PUD (1ULL << 1)   /* 1 GiB mappings */
#define NB_FEAT_RESERVE (1ULL << 2)    /* demand-paged ranges */
#define NB_FEAT_MIGRATE (1ULL << 3)
#define NB_FEAT_BATCH (1ULL << 4)
#define NB_FEAT_BENCH (1ULL << 5)
#define NB_FEAT_PINNABLE (1ULL << 6) /* NB_ALLOC_PINNABLE (ABI 1.2) */
#define NB_FEAT_DMABUF (1ULL << 7)   /* NB_IOC_EXPORT_DMABUF (ABI 1.2) */
#define NB_FEAT_COMPACT (1ULL << 8)  /* NB_IOC_COMPACT, compaction on CONTIG failure (ABI 1.3) */
#define NB_FEAT_PREZERO (1ULL << 9)  /* background zeroing of free blocks, nb_stats.zeroed_bytes (ABI 1.4) */

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
#define NB_POLICY_INTERLEAVE 3 /* frames round robin over @nodemask (every node with a pool
				* if it is 0), on across the file's allocations (numactl:
				* across a task's) */

/* nb_alloc.flags */
#define NB_ALLOC_CONTIG (1U << 0)   /* one physically contiguous range */
#define NB_ALLOC_LOW4G (1U << 1)    /* only memory below 4 GiB */
#define NB_ALLOC_HUGE_2M (1U << 2)  /* prefer 2 MiB frames and mappings */
#define NB_ALLOC_HUGE_1G (1U << 3)  /* prefer 1 GiB frames and mappings */
#define NB_ALLOC_POPULATE (1U << 4) /* RESERVE: allocate all frames now, not at first touch
                                    * (a MIGRATE or FREE of the range racing it: RESERVE
                                    * still succeeds, populating stops there) */
#define NB_ALLOC_NOZERO (1U << 5)   /* reserved for CAP_SYS_ADMIN; others get -EPERM */
#define NB_ALLOC_PINNABLE (1U << 6) /* ALLOC only (RESERVE: -EINVAL), ABI 1.2: I/O-capable */
#define NB_ALLOC_FLAGS_ALL 0x7fU

/*
 * Pinnable blocks (NB_ALLOC_PINNABLE, when NB_IOC_VERSION reports NB_FEAT_PINNABLE).
 *
 * An ordinary block is mapped without page references (VM_PFNMAP, special entries): the
 * kernel's page-reference paths refuse it with EFAULT (O_DIRECT, io_uring fixed buffers,
 * vmsplice, process_vm_readv, RDMA/VFIO registration), so FREE and MIGRATE can always hand
 * its frames to someone else at once. A pinnable block is mapped with real references
 * (VM_MIXEDMAP, one refcounted 4 KiB entry per page, whatever its frames' size: huge
 * entries cannot carry references safely on 6.1/6.12), so those paths work on it and
 * move_pages' query reports its node. The price:
 *   - NB_IOC_FREE zaps every mapping, then looks at the frames' references. None left: the
 *     frames go back at once, as for any block. Some left (an O_DIRECT read in flight, an
 *     io_uring registered buffer, a pipe holding vmspliced pages): FREE still returns 0,
 *     the block's offset is dead at once, but its frames stay "in flight": nobody gets them,
 *     they count in this file's quota and fd_bytes, and in nb_stats.inflight_bytes and
 *     fd_inflight_bytes and debugfs' counters, until the last reference drops; they go back
 *     to the pool within about 10 ms of that. Closing the file defers the same way (the
 *     module then stays loaded until they are back).
 *   - NB_IOC_MIGRATE returns -EBUSY while any frame of the block is referenced beyond its
 *     mappings (which MIGRATE zaps first, as always); otherwise it moves the block.
 *   - Mappings are 4 KiB entries (nb_query.mapping = NB_MAPPING_PAGES). On 6.1, io_uring
 *     refuses every file-backed buffer (EOPNOTSUPP), pool memory included: 6.4+ only.
 */

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
 *          first: a later access through an old mapping gets SIGBUS. A pinnable block's
 *          frames may stay in flight after that (see "Pinnable blocks").
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
 * @mapping: out: NB_MAPPING_* of the block's mappings (ABI 1.2; older modules leave 0).
 * @pad2: zero.
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
	__u32 mapping;
	__u32 pad2;
	__u64 reserved[3];
};

/* nb_query.mapping */
#define NB_MAPPING_PFN 0   /* no page references (VM_PFNMAP): page-reference paths get EFAULT */
#define NB_MAPPING_PAGES 1 /* refcounted 4 KiB pages (VM_MIXEDMAP): NB_ALLOC_PINNABLE */

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
 * @inflight_bytes: out: bytes of freed pinnable blocks on the node, every file's (closed
 *	ones too), still referenced by the kernel and so not yet back in the pool (ABI 1.2).
 * @fd_inflight_bytes: out: the part of @inflight_bytes this file freed (also in @fd_bytes).
 * @compactions: out: compactions of the node that found no free block of their order
 *	already (NB_IOC_COMPACT, debugfs, and those a failed NB_ALLOC_CONTIG ran), every file's
 *	(ABI 1.3).
 * @compact_failures: out: of those, the ones that made no free block (nb_compact).
 * @compact_moved_bytes: out: bytes they copied.
 * @compact_ns: out: time they took.
 * @zeroed_bytes: out: of @free_bytes, the bytes the background zeroer has cleared since they
 *	were last freed (module parameter prezero_mb_s): an ALLOC or first touch served from
 *	them skips its memset (ABI 1.4).
 * @zeroed_huge_bytes: out: of @zeroed_bytes, the bytes in zeroed free blocks of 2 MiB or
 *	more: what a 2 MiB (or larger) ALLOC or first touch can take without its memset.
 *	Smaller zeroed pieces serve only smaller requests (ABI 1.5; older modules leave 0 in
 *	what was a reserved field).
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
	__u64 inflight_bytes;
	__u64 fd_inflight_bytes;
	__u64 compactions;
	__u64 compact_failures;
	__u64 compact_moved_bytes;
	__u64 compact_ns;
	__u64 zeroed_bytes;
	__u64 zeroed_huge_bytes;
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
/**
 * struct nb_compact - NB_IOC_COMPACT (CAP_SYS_ADMIN, ABI 1.3): make a free physically
 * contiguous block of 2^@order pages on @node by moving the frames of every file's blocks
 * and reserved ranges out of one aligned run of that size.
 * @node: in: a node with a pool; else -EINVAL.
 * @order: in: 1..max_order (NB_IOC_VERSION); 0 means max_order.
 * @run_phys: out: physical address of the run made free; ~0 when a free block of @order
 *	existed already and nothing moved.
 * @moved_bytes: out: bytes copied (also after an error: what moved stays moved).
 * @moved_blocks: out: blocks (or contiguous ranges, or demand-paged frames) relocated.
 * @elapsed_ns: out.
 * @runs: out: aligned runs of 2^@order pages on the node.
 * @runs_movable: out: of those, runs whose every allocated frame can move.
 * @reserved: zero.
 *
 * Moving a range works as NB_IOC_MIGRATE to the same node: its mappings are zapped, faults on
 * it wait until it is copied, FREE or MIGRATE of it meanwhile get -EBUSY. Unmovable: pinnable
 * blocks (NB_ALLOC_PINNABLE, dma-buf exports), page-table pages, the module's own memory; a
 * run holding one is never chosen. Errors: -EPERM without CAP_SYS_ADMIN; -EBUSY every run
 * holds an unmovable frame; -EAGAIN the run's frames changed while it was emptied (retry);
 * -ENOMEM no room on the node outside the run; -EINTR a fatal signal.
 */
struct nb_compact {
	__s32 node;
	__u32 order;
	__u64 run_phys;
	__u64 moved_bytes;
	__u64 moved_blocks;
	__u64 elapsed_ns;
	__u32 runs;
	__u32 runs_movable;
	__u64 reserved[2];
};

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

/**
 * struct nb_export_dmabuf - NB_IOC_EXPORT_DMABUF: a dma-buf of a pinnable block, for drivers
 * that import dma-bufs (DRM PRIME, V4L2 V4L2_MEMORY_DMABUF, RDMA).
 * @offset: in: a live NB_ALLOC_PINNABLE block of this file; any other offset: -EINVAL
 *	(-ENOENT or -EBUSY if a FREE or MIGRATE of it is under way).
 * @flags: in: O_CLOEXEC and O_RDWR or O_RDONLY, as open(2) spells them; else -EINVAL.
 * @fd: out: the dma-buf's file descriptor. It is installed only after the reply was written:
 *	a struct the kernel cannot write back gets -EFAULT and no new descriptor.
 * @reserved: zero.
 *
 * The dma-buf holds a reference on every page of the block until its last user releases it:
 * FREE of the block, or close of this file, meanwhile succeeds and leaves the frames in
 * flight (see "Pinnable blocks"); MIGRATE gets -EBUSY. Its importers get one sg table entry
 * per physically contiguous run (at most 1 GiB, or the device's segment limit); mmap of the
 * dma-buf maps the same pages; vmap, begin/end_cpu_access are supported. Its name (fdinfo,
 * /sys/kernel/debug/dma_buf/bufinfo) is "numabuddy-node<N>", N the node of the first frame.
 */
struct nb_export_dmabuf {
	__u64 offset;
	__u32 flags;
	__s32 fd;
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
#define NB_IOC_EXPORT_DMABUF _IOWR(NB_IOC_MAGIC, 0x0a, struct nb_export_dmabuf)
#define NB_IOC_COMPACT _IOWR(NB_IOC_MAGIC, 0x0b, struct nb_compact)

#endif /* _UAPI_LINUX_NUMABUDDY_H */
