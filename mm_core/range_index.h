// SPDX-License-Identifier: GPL-2.0
//
// range_index.h - a space's ranges sorted by offset, and the one lookup every path uses.
//
// Offsets come from a cursor that only moves up (Place), so an offset is never reused while
// the space lives: the range that contains X is the range that did, or none. That is why a
// path that dropped the space's lock finds its range again by offset, never by a saved
// pointer, and why Lookup may answer for "the range starting at X" by containment of X.
//
// A range's `state` is its sleeping-safe lock: free and migrate move it out of kLive under
// the space's lock, then do their long work with the lock dropped. Lookup turns the state into
// the verdict for what the caller is about to do: one table, not one check per path.
//
// Not thread-safe: the owner (nb::Space) serialises every call with its lock, as PageTable.
#ifndef NB_RANGE_INDEX_H
#define NB_RANGE_INDEX_H

#include "base.h"
#include "nbc_space.h"

namespace nb {

enum RangeState : u8 {
	kLive = NBC_SPACE_STATE_LIVE,
	kDying = NBC_SPACE_STATE_DYING,     // free begun: faults fail, frames still there
	kFreeing = NBC_SPACE_STATE_FREEING, // free finishing (or close): its frames are the freer's
	kMigrating = NBC_SPACE_STATE_MIGRATING,
	kPublishing = NBC_SPACE_STATE_PUBLISHING, // a block being mapped: not yet returned
};

// Frames of a block: a buddy block (order) or one contiguous range (kContig).
struct Extent {
	u64 pfn;
	u64 nr_frames;
	u32 order;
	i32 node;
};
constexpr u32 kContig = ~0u; // Extent::order of an nbc_alloc_contig range

// One range of the offset space. Plain data in zeroed metadata; a block's extents follow it
// in the same allocation, largest first, so each one is aligned at its offset.
struct Range {
	u64 offset;
	u64 size;
	u32 flags;
	u32 kind;         // NBC_SPACE_KIND_*
	RangeState state; // guarded by the space's lock once the range is in the index
	i32 target;       // migration target node
	nbc_policy policy;
	u32 nr_extents;   // blocks only
	u32 cap_extents;  // room for extents after the Range (fallback may need more)
	usize meta_bytes;
	Extent *extents;
};

// What a caller is about to do with the range it looks up.
enum class RangeUse : u8 {
	kRead,           // query: any state. Missing: -ENOENT
	kFault,          // map a frame. Missing, freed or publishing: -EFAULT; migrating: -EAGAIN
	kFree,           // free phase 1, by start. Missing or dying: -ENOENT; migrating: -EBUSY
	kFreeFinish,     // free phase 2, by start. Not dying: -EINVAL
	kMigrate,        // migrate phase 1, by start. Missing: -ENOENT; not live: -EBUSY
	kMigrateFinish,  // migrate phase 2, by start. Not migrating: -EINVAL
};

// Where a lookup found its range, so that a caller who dropped the lock can re-validate it
// in O(1) (RangeIndex::Revalidate) instead of searching again.
struct RangeSeen {
	const Range *range;
	u32 slot;
	u64 start;
};

class RangeIndex {
public:
	constexpr RangeIndex() = default;
	RangeIndex(const RangeIndex &) = delete;
	RangeIndex &operator=(const RangeIndex &) = delete;

	// The range at `offset` for `use` (containing it; by start for the two-phase uses): 0
	// with *out set, or the errno the caller returns, with *out null.
	int Lookup(u64 offset, RangeUse use, Range **out) const;
	int Lookup(u64 offset, RangeUse use, Range **out, RangeSeen *seen) const;
	// The range a kFault lookup saw, if it is still in the index and still live after the
	// lock was dropped: its slot still holds it (a removal before it shifts the slot: then
	// null, and the caller looks it up again) at the same start (offsets are never reused,
	// so a new range at a recycled address is told apart). Null otherwise.
	Range *Revalidate(const RangeSeen &seen) const;

	// Growing the array takes memory, so the owner allocates with its lock dropped:
	// GrowTo() says how large (0: no growth needed; -1u: NBC_SPACE_MAX_RANGES reached),
	// Adopt() takes a fresh array if it is still larger and hands back the one to free.
	u32 GrowTo() const;
	void Adopt(Range **fresh, u32 cap, Range ***to_free, u32 *to_free_cap);
	// Gives r an offset >= the cursor with offset % align == phase and inserts it.
	// -ENOMEM without room (grow first), -ENOSPC past the offset space.
	int Place(Range *r, u64 align, u64 phase);
	void Remove(Range *r);
	// The first range starting at or above `offset`, or null (compaction walks them all).
	Range *FirstFrom(u64 offset) const;
	// The last range (close removes them last first: O(log n) each); null when empty.
	Range *Last() const { return nr_ ? ranges_[nr_ - 1] : nullptr; }
	// Empties the index; the array and its capacity are the caller's to free.
	void Release(Range ***array, u32 *cap);

private:
	u32 FirstAbove(u64 offset) const;

	Range **ranges_ = nullptr; // sorted by offset: the cursor only grows
	u32 nr_ = 0;
	u32 cap_ = 0;
	u64 cursor_ = 0;
};

} // namespace nb

#endif // NB_RANGE_INDEX_H
