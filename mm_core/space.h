// SPDX-License-Identifier: GPL-2.0
//
// space.h - nb::Space, one open file's address space (the C API is nb_space.h).
//
// A Space owns ranges of the file's offset space, a PageTable that records which frame backs
// each offset, and the per-node accounting of its frames. Every field that faults, frees and
// migrations share is guarded by lock_, a spinlock: nothing under it sleeps, allocates from
// the pool or copies frames. That is also why nb_core is never called with lock_ held: an
// allocation may drain every per-CPU cache, long work for a spinlock, and keeping the core's
// locks (NB_LOCK_PCP, NB_LOCK_NODE; env.h) out from under NB_LOCK_SPACE keeps the order short.
//
// A range's `state` is its sleeping-safe lock: free and migrate move it out of kLive under
// lock_, then do their long work (zeroing, copying, freeing) with lock_ dropped. Faults that
// meet a non-live range do not wait here; they return -NB_EFAULT or -NB_EAGAIN to the shim.
//
// The class is one concept spread over four files, by what a caller asks of it:
//   space.cpp           the object: table-page stash, range index, accounting, create/destroy
//   space_alloc.cpp     frames coming in: blocks, reserved ranges, demand faults
//   space_twophase.cpp  frames going out or moving: two-phase free and migration
//   space_api.cpp       what it reports (query, alignment, quotas) and the extern "C" layer
#ifndef NB_SPACE_H_CXX
#define NB_SPACE_H_CXX

#include "base.h"
#include "nb_space.h"
#include "paging.h"

namespace nb {

class Space {
public:
	static int Create(nb_core *core, int node, nb_ctx ctx, Space **out);
	void Destroy(nb_ctx ctx);

	int Alloc(u64 bytes, const nb_policy *pol, unsigned flags, nb_ctx ctx, u64 *offset_out);
	int Reserve(u64 bytes, const nb_policy *pol, unsigned flags, unsigned cpu, nb_ctx ctx,
		    u64 *offset_out);
	int Fault(u64 offset, bool write, unsigned cpu, unsigned max_order, nb_ctx ctx,
		  nb_space_fault_result *out);
	int FreeBegin(u64 offset, u64 *start, u64 *len);
	int FreeFinish(u64 offset, nb_ctx ctx);
	int MigrateBegin(u64 offset, int node, u64 *start, u64 *len);
	int MigrateFinish(u64 offset, nb_ctx ctx, u64 *bytes_moved);
	int Query(u64 offset, nb_space_info *out);
	u64 HugeAlign(u64 offset, u64 len);
	int SetQuota(int node, u64 bytes);
	u64 Quota(int node);
	u64 NodeBytes(int node);
	u64 TablePages();

	// Placement into nb_env_meta_alloc memory; a class member so it cannot clash with <new>.
	static void *operator new(usize, void *where) noexcept { return where; }

private:
	enum State : u8 { kLive = NB_SPACE_STATE_LIVE, kDying = NB_SPACE_STATE_DYING,
			  kFreeing = NB_SPACE_STATE_FREEING, kMigrating = NB_SPACE_STATE_MIGRATING };
	static constexpr u32 kContig = ~0u; // Extent::order of an nb_alloc_contig range

	// Units every part of Space works in. Leaves are 4 KiB, 2 MiB or 1 GiB: orders 0, 9, 18.
	static constexpr u64 kFrame = NB_FRAME_SIZE;
	static constexpr u64 k2M = 2ull << 20;
	static constexpr u64 k1G = 1ull << 30;
	static constexpr u64 kZeroChunk = 512; // frames (2 MiB) zeroed or copied per reschedule
	static constexpr u32 kStashMax = 8;    // spare table pages a space keeps between calls
	static constexpr u32 kStashLeaf = 3;   // one leaf needs at most a level-3, -2 and -1 table
	static constexpr unsigned kBatch = 32; // demand frames released per lock hold
	static constexpr u64 kMaxExtents = 1u << 24; // frames of one block range (384 MiB of Extent)
	static constexpr u64 AlignUp(u64 x, u64 a) { return (x + a - 1) & ~(a - 1); }
	static constexpr u64 LeafBytes(unsigned order) { return kFrame << order; }

	// Frames of a block: a buddy block (order) or one contiguous range (kContig).
	struct Extent {
		u64 pfn;
		u64 nr_frames;
		u32 order;
		i32 node;
	};
	// One range of the offset space. Plain data in zeroed metadata; a block's extents follow
	// it in the same allocation, largest first, so each one is aligned at its offset.
	struct Range {
		u64 offset;
		u64 size;
		u32 flags;
		u32 kind;       // NB_SPACE_KIND_*
		State state;    // guarded by lock_ once the range is published
		i32 target;     // migration target node
		nb_policy policy;
		u32 nr_extents; // blocks only
		u32 cap_extents; // room for extents after the Range (fallback may need more)
		usize meta_bytes;
		Extent *extents;
	};
	Space(nb_core *core, int node) : core_(core), node_(node) {}

	// space.cpp. Table pages: a free list threaded through the pages themselves, so PageTable can
	// allocate and free under lock_ without calling nb_core.
	static int TableAlloc(void *arg, u64 *pfn) TA_NO_ANALYSIS;
	static void TableFree(void *arg, u64 pfn) TA_NO_ANALYSIS;
	void StashPushLocked(u64 pfn) TA_REQ(lock_);
	int FillStash(unsigned want, nb_ctx ctx) TA_EXCL(lock_);
	void TrimStash() TA_EXCL(lock_);

	Range *FindLocked(u64 offset) TA_REQ(lock_);
	Range *FindStartLocked(u64 offset) TA_REQ(lock_);
	int InsertLocked(Range *r) TA_REQ(lock_);
	void RemoveLocked(Range *r) TA_REQ(lock_);
	int GrowRanges(nb_ctx ctx) TA_EXCL(lock_);
	int ChargeLocked(int node, u64 bytes) TA_REQ(lock_);
	void UnchargeLocked(int node, u64 bytes) TA_REQ(lock_);
	int Publish(Range *r, u64 align, u64 phase, nb_ctx ctx, u64 *offset_out) TA_EXCL(lock_);

	// space_alloc.cpp
	int AllocExtent(const Range &r, Extent *e, nb_ctx ctx) TA_EXCL(lock_);
	int GrowExtents(Range **rp, u64 cap, nb_ctx ctx);
	int AllocBlocks(Range **rp, u64 frames, nb_ctx ctx) TA_EXCL(lock_);
	void FreeExtents(Range *r, u32 count);
	int PickFrame(const Range &r, u64 offset, unsigned order, unsigned cpu, nb_ctx ctx,
		      u64 *pfn, int *node);
	unsigned DemandOrderLocked(const Range &r, u64 offset) TA_REQ(lock_);
	int Populate(u64 range_start, u64 offset, unsigned cpu, nb_ctx ctx) TA_EXCL(lock_);
	static int ZeroFrames(u64 pfn, u64 nr, nb_ctx ctx, bool abortable);
	static void FillResult(const PageTable::Leaf &leaf, u64 offset, unsigned max_order,
			       nb_space_fault_result *out);

	// space_twophase.cpp
	u64 ReleaseFrames(Range *r, nb_ctx ctx) TA_EXCL(lock_);
	int MoveFrames(u64 virt, u64 *pfn, i32 *node, u32 order, u64 nr_frames, u32 flags, int to,
		       nb_ctx ctx) TA_EXCL(lock_);
	int MigrateBlock(Range *r, nb_ctx ctx, u64 *moved) TA_EXCL(lock_);
	int MigrateReserved(Range *r, nb_ctx ctx, u64 *moved) TA_EXCL(lock_);
	static void CopyFrames(u64 dst, u64 src, u64 nr, nb_ctx ctx);

	nb_core *const core_;
	const int node_;
	u32 max_order_ = NB_DEFAULT_MAX_ORDER; // the pool's largest buddy order; set by Create
	u64 drain_blocks_ = 0; // per-CPU caches (CPU ids x nodes): a free this big drains them
	Lock lock_;
	PageTable table_ TA_GUARDED(lock_);
	u64 stash_head_ TA_GUARDED(lock_) = 0; // pfn + 1 of the first spare table page; 0: none
	u32 stash_count_ TA_GUARDED(lock_) = 0;
	Range **ranges_ TA_GUARDED(lock_) = nullptr; // sorted by offset: the cursor only grows
	u32 nr_ranges_ TA_GUARDED(lock_) = 0;
	u32 cap_ranges_ TA_GUARDED(lock_) = 0;
	u64 cursor_ TA_GUARDED(lock_) = 0;
	// INTERLEAVE's turn for the file's next frame, so that round robin continues across
	// allocations as numactl's does across a task's (a per-call cursor restarted at the
	// first node for every ALLOC). Atomic: concurrent ALLOCs take turns, not the same one.
	u32 il_next_ = 0;
	u64 node_bytes_[NB_MAX_NODES] TA_GUARDED(lock_) = {};
	u64 quota_[NB_MAX_NODES] TA_GUARDED(lock_) = {};
};

} // namespace nb

#endif // NB_SPACE_H_CXX
