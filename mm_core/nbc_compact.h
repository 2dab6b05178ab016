/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbc_compact.h - compaction: make one free block of a given order on a node by moving the
 * frames of user spaces out of the way.
 *
 * A buddy allocator alone cannot undo fragmentation, but every frame a space holds is known
 * to numabuddy with every mapping of it, so it can be moved. One compaction:
 *   1. drains the node's per-CPU caches;
 *   2. asks every space for its movable frames on the node (nbc_compact_ops.for_each; a
 *      range the owner says is pinned, e.g. a pinnable block the kernel may hold page
 *      references on, is not movable). A space's table pages are movable too: they are
 *      its software page table, which nothing but the space addresses (paging_relocate.cpp);
 *      its spare table pages go back to the pool first;
 *   3. cuts the node into aligned runs of 2^order frames and picks the run with the fewest
 *      allocated frames among those whose every allocated frame is movable: a frame that no
 *      space reported (the kernel heap, pinned blocks, in-kernel users of nbc_alloc, a
 *      space's spare table pages taken meanwhile) or that belongs to a frame larger than the run makes its run unusable;
 *   4. isolates the run: its free blocks are taken off the free lists, so nothing allocates
 *      into it while frames move out;
 *   5. moves each space's table pages out of the run (under its lock, no zap: the kernel's
 *      page tables never point at them), then relocates every range with a frame in the
 *      run, one range at a time, with the same
 *      protocol and batches as a migration in place (nbc_space.h): the range is marked
 *      migrating under the owner's lock (faults get -NB_EAGAIN); its frames in the run go a
 *      batch at a time (at most 32 frames within 2 MiB): the owner unmaps the batch's
 *      window, each frame is copied to a frame of the same order on the same node outside
 *      the run (below 4 GiB if the range says LOW4G) and the table repointed, and the owner
 *      maps every frame of the window again; then the range is live again;
 *   6. frees the run as one block.
 * Nothing moves to another node, nothing changes size (a 2 MiB frame stays one), quotas do
 * not change.
 *
 * Cost: step 2 and the range checks of step 5 hold a space's lock while they walk one
 * range's frames (extents or table leaves); steps 3, 4 and 6 hold the node lock for one run's
 * descriptors at a time. Metadata: 16 bytes per run of the node and one byte per frame of a
 * run (256 KiB for a 1 GiB run).
 */
#ifndef NBC_COMPACT_H
#define NBC_COMPACT_H

#include "nbc_core.h"

struct nbc_space;

/* What compaction needs from the owner of the spaces (the shim: its open files). */
struct nbc_compact_ops {
	/* Call fn(farg, space, owner) once for every space that may hold frames, keeping each
	 * alive for the call. The owner is passed back to the callbacks below. */
	void (*for_each)(void *arg, void (*fn)(void *farg, struct nbc_space *s, void *owner),
			 void *farg);
	/* Nonzero: the range starting at offset must not move. Called with the space's lock
	 * held: atomic-safe, may not call into the space. */
	int (*pinned)(void *owner, nb_u64 offset);
	/* The owner's fault-exclusion lock (the shim's zap_lock for write) around marking a
	 * range migrating: a fault that read a frame before has inserted it once lock()
	 * returns, and every later one waits (-NB_EAGAIN) until done(), called after the range
	 * is live again to wake them. */
	void (*lock)(void *owner);
	void (*unlock)(void *owner);
	void (*done)(void *owner);
	/* Migration in place, as nbc_space_migrate_finish_mapped's mapper: unmap the mappings of
	 * [start, start + len) before a frame there is copied, then map the frames now behind
	 * it (the new one, or the old one if the move failed), so nothing re-faults. */
	void (*unmap)(void *owner, nb_u64 start, nb_u64 len);
	void (*map)(void *owner, nb_u64 offset, nb_u64 pfn, nb_u64 nr_frames);
};

struct nbc_compact_result {
	nb_u64 run_pfn;      /* first frame of the run emptied; ~0 when none was needed */
	nb_u64 frames_moved; /* frames copied out of the run */
	nb_u64 blocks_moved; /* frames (buddy blocks or contiguous ranges) relocated */
	nb_u32 runs;         /* aligned runs of 2^order frames on the node */
	nb_u32 runs_movable; /* of those, runs with no unmovable frame */
};

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Make a free block of 2^order frames on `node` (NB_CTX_SLEEP only). 0: one exists now
 * (out->run_pfn is ~0 when one existed already and nothing moved). -NB_EBUSY: every run holds
 * a frame that cannot move. -NB_EAGAIN: the chosen run could not be emptied because its
 * frames changed meanwhile (a concurrent allocation, free or migration). -NB_ENOMEM: no
 * metadata, or the node has no room outside the run for what must move (what moved stays
 * moved). -NB_EINTR: a fatal signal. -NB_EINVAL: bad node, order 0 or above the max order,
 * or NB_CTX_ATOMIC. *out is filled in every case.
 */
int nbc_compact_node(struct nbc_core *c, int node, unsigned order,
		     const struct nbc_compact_ops *ops, void *arg, enum nb_ctx ctx,
		     struct nbc_compact_result *out);


#ifdef __cplusplus
}
#endif

#endif /* NBC_COMPACT_H */
