// SPDX-License-Identifier: GPL-2.0
//
// space.h - nb::Space, one open file's address space (the C API is nbc_space.h).
//
// A Space owns ranges of the file's offset space, a PageTable that records which frame backs
// each offset, and the per-node accounting of its frames. Every field that faults, frees and
// migrations share is guarded by lock_, a spinlock: nothing under it sleeps, allocates from
// the pool or copies frames. That is also why nbc_core is never called with lock_ held: an
// allocation may drain every per-CPU cache, long work for a spinlock, and keeping the core's
// locks (NB_LOCK_PCP, NB_LOCK_NODE; env.h) out from under NB_LOCK_SPACE keeps the order short.
//
// The rule every path follows: decide under lock_, drop it for anything long or anything
// that enters nbc_core (allocate, zero, copy, free), retake it and re-validate before
// publishing. A range is re-found by offset (range_index.h), never by a saved pointer. Faults
// that meet a range that is not live do not wait here; they return -NB_EFAULT or -NB_EAGAIN.
//
// What a space holds, one file (pair) each:
//   range_index.{h,cpp}  the ranges sorted by offset, and the lookup that gives the verdict
//   table_stash.{h,cpp}  spare page-table pages, so the table never calls the core under lock_
//   quota.{h,cpp}        bytes held, quota and pool size per node
//   leaf_orders.h        the leaf sizes (4 KiB, 2 MiB, 1 GiB) every order comes from
// and what it does, by concept:
//   space_lifecycle.cpp  create/destroy; a range published into the index and table, freed
//   space_extents.cpp    frames of a block range: allocated, freed, moved; chunked zero/copy
//   space_fault.cpp      reserved ranges and demand faults: what a first touch gets
//   space_query.cpp      what a space reports: ranges, counters, huge alignment, quotas
//   space_c_api.cpp      the extern "C" functions of nbc_space.h
#ifndef NB_SPACE_H_CXX
#define NB_SPACE_H_CXX

#include "base.h"
#include "nbc_space.h"
#include "paging.h"
#include "quota.h"
#include "range_index.h"
#include "table_stash.h"

namespace nb {

class Compactor;

class Space {
public:
	static int Create(nbc_core *core, int node, nb_ctx ctx, Space **out);
	void Destroy(nb_ctx ctx) TA_EXCL(lock_);

	int Alloc(u64 bytes, const nbc_policy *pol, unsigned flags, nb_ctx ctx, u64 *offset_out)
		TA_EXCL(lock_);
	int Reserve(u64 bytes, const nbc_policy *pol, unsigned flags, unsigned cpu, nb_ctx ctx,
		    u64 *offset_out) TA_EXCL(lock_);
	int Fault(u64 offset, bool write, unsigned cpu, unsigned max_order, nb_ctx ctx,
		  nbc_space_fault_result *out) TA_EXCL(lock_);
	int FaultAround(u64 offset, u64 lo, u64 hi, nbc_space_around *out) TA_EXCL(lock_);
	int FreeBegin(u64 offset, u64 *start, u64 *len) TA_EXCL(lock_);
	int FreeFinish(u64 offset, nb_ctx ctx) TA_EXCL(lock_);
	int MigrateBegin(u64 offset, int node, u64 *start, u64 *len) TA_EXCL(lock_);
	// m: null when the caller zapped the whole range after MigrateBegin (nbc_space.h).
	int MigrateFinish(u64 offset, nb_ctx ctx, const nbc_space_mapper *m, u64 *bytes_moved)
		TA_EXCL(lock_);
	int Query(u64 offset, nbc_space_info *out) TA_EXCL(lock_);
	int QueryFull(u64 offset, nbc_space_info *out) TA_EXCL(lock_);
	u64 HugeAlign(u64 offset, u64 len) TA_EXCL(lock_);
	int SetQuota(int node, u64 bytes) TA_EXCL(lock_);
	u64 Quota(int node) TA_EXCL(lock_);
	u64 NodeBytes(int node) TA_EXCL(lock_);
	u64 TablePages() TA_EXCL(lock_);

	// space_compact.cpp: compaction's view of the space (nbc_compact.h)
	int CompactNote(Compactor *c, int (*pinned)(void *owner, u64 offset), void *owner)
		TA_EXCL(lock_);
	int RelocateBegin(Compactor *c, u64 from, int (*pinned)(void *owner, u64 offset),
			  void *owner, u64 *offset, u64 *len) TA_EXCL(lock_);
	int RelocateFinish(Compactor *c, u64 offset, const nbc_space_mapper *m, nb_ctx ctx,
			   u64 *frames, u64 *blocks) TA_EXCL(lock_);
	int RelocateTables(Compactor *c, nb_ctx ctx, u64 *frames) TA_EXCL(lock_);

	// Placement into nb_env_meta_alloc memory; a class member so it cannot clash with <new>.
	// Everything a Space allocates is NB_META_USER: charged to the caller's memory cgroup.
	static void *operator new(usize, void *where) noexcept { return where; }

private:
	static constexpr u64 kFrame = NBC_FRAME_SIZE;
	static constexpr u64 kChunkFrames = 512; // frames (2 MiB) zeroed or copied per reschedule
	static constexpr u64 kNoSource = ~0ull;  // FillFrames: zero instead of copy
	static constexpr unsigned kBatch = 32;   // demand frames released per lock hold
	static constexpr u32 kQueryBatch = 4096; // extents or leaves handled per lock hold
	static constexpr u64 kMaxExtents = 1u << 24; // frames of one block range (384 MiB of Extent)
	static constexpr u64 AlignUp(u64 x, u64 a) { return (x + a - 1) & ~(a - 1); }

	Space(nbc_core *core, int node) : core_(core), node_(node) {}

	// space_lifecycle.cpp
	int FillStash(unsigned want, nb_ctx ctx) TA_EXCL(lock_);
	void TrimStash(u32 keep) TA_EXCL(lock_);
	int GrowIndex(nb_ctx ctx) TA_EXCL(lock_);
	int Publish(Range *r, u64 align, u64 phase, nb_ctx ctx, u64 *offset_out) TA_EXCL(lock_);
	void UnpublishLocked(Range *r, u64 mapped_end) TA_REQ(lock_);
	int CheckRoom(const nbc_policy &p, u64 bytes) TA_EXCL(lock_);
	int TakePolicy(const nbc_policy *in, nbc_policy *out) TA_EXCL(lock_);
	bool UserMigrating(u64 offset) TA_EXCL(lock_);

	// space_extents.cpp
	static int FillFrames(u64 dst, u64 src, u64 nr, nb_ctx ctx, bool abortable);
	// The core is never entered with lock_ held: TA_EXCL lets clang check the callers.
	int TakeFrames(u32 order, u64 nr_frames, const nbc_policy &p, u32 range_flags, nb_ctx ctx,
		       u64 *pfn, int *node, bool abortable = false) TA_EXCL(lock_);
	void GiveBack(u64 pfn, u32 order, u64 nr_frames) TA_EXCL(lock_);
	int AllocExtent(const Range &r, Extent *e, nb_ctx ctx) TA_EXCL(lock_);
	int GrowExtents(Range **rp, u64 cap, nb_ctx ctx) TA_EXCL(lock_);
	int AllocBlocks(Range **rp, u64 frames, nb_ctx ctx) TA_EXCL(lock_);
	void FreeExtents(Range *r, u32 count) TA_EXCL(lock_);
	u64 ReleaseFrames(Range *r, nb_ctx ctx) TA_EXCL(lock_);
	int MoveFrames(u64 virt, u64 *pfn, i32 *node, u32 order, u64 nr_frames, u32 flags, int to,
		       nb_ctx ctx) TA_EXCL(lock_);
	// Which frames of a kMigrating range move, and moving one whose mappings are unmapped:
	// migration (to the target node) and compaction (out of the run) share the batching.
	struct FrameMove {
		bool (*wants)(void *arg, u64 pfn, u64 nr_frames, i32 node);
		int (*move)(void *arg, u64 virt, u64 *pfn, i32 *node, u32 order, u64 nr_frames);
		void *arg;
	};
	int MoveBlockFrames(Range *r, const nbc_space_mapper *m, nb_ctx ctx, const FrameMove &fm)
		TA_EXCL(lock_);
	int MoveReservedFrames(Range *r, const nbc_space_mapper *m, nb_ctx ctx, const FrameMove &fm)
		TA_EXCL(lock_);

	// space_fault.cpp
	unsigned DemandOrderLocked(const Range &r, u64 offset, unsigned empty_level)
		TA_REQ(lock_);
	int PickFrame(const Range &r, u64 chunk, unsigned order, unsigned cpu, nb_ctx ctx,
		      u64 *pfn, int *node) TA_EXCL(lock_);
	int Populate(u64 offset, const Range &snap, RangeSeen seen, unsigned order, unsigned cpu,
		     unsigned max_order, nb_ctx ctx, nbc_space_fault_result *out) TA_EXCL(lock_);
	[[gnu::always_inline]] static inline void FillResult(const PageTable::Leaf &leaf,
							     u64 offset, unsigned max_order,
							     bool block,
							     nbc_space_fault_result *out);

	// space_compact.cpp
	bool InRunLocked(const Range &r, const Compactor &c) TA_REQ(lock_);
	int RelocateFrame(Compactor *c, u64 virt, u64 *pfn, u32 order, u64 nr_frames, u32 flags,
			  nb_ctx ctx) TA_EXCL(lock_);

	// space_query.cpp
	void FillBriefLocked(const Range &r, nbc_space_info *out) TA_REQ(lock_);
	int QueryBriefLocked(u64 offset, nbc_space_info *out, Range **r) TA_REQ(lock_);

	nbc_core *const core_;
	const int node_;                          // where its metadata and table pages live
	u32 max_order_ = NBC_DEFAULT_MAX_ORDER;   // the pool's largest buddy order; set by Create
	// INTERLEAVE's turn for the file's next frame, so that round robin continues across
	// allocations as numactl's does across a task's (a per-call cursor restarted at the
	// first node for every ALLOC). Atomic: concurrent ALLOCs take turns, not the same one.
	u32 il_next_ = 0;
	Lock lock_;
	RangeIndex ranges_ TA_GUARDED(lock_);
	PageTable table_ TA_GUARDED(lock_);
	TableStash stash_ TA_GUARDED(lock_);
	Quotas quotas_ TA_GUARDED(lock_);
};

} // namespace nb

#endif // NB_SPACE_H_CXX
