// SPDX-License-Identifier: GPL-2.0
//
// range_index.cpp - sorted ranges: one binary search, one verdict table, placement.
#include "range_index.h"

#include "paging.h"

namespace nb {

// Index of the first range starting above `offset` (nr_ if none): the range containing
// offset, if any, is the one before it.
u32 RangeIndex::FirstAbove(u64 offset) const
{
	u32 lo = 0, hi = nr_;
	while (lo < hi) {
		u32 mid = (lo + hi) / 2;
		if (ranges_[mid]->offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

Range *RangeIndex::FirstFrom(u64 offset) const
{
	u32 i = FirstAbove(offset);
	if (i && ranges_[i - 1]->offset == offset)
		i--;
	return i < nr_ ? ranges_[i] : nullptr;
}

// A range moved by compaction (target -1, space_compact.cpp) is busy only for the moment
// of the copy: -EAGAIN, so the caller waits for it and retries, where a user's migration is
// -EBUSY, as it always was.
static int Busy(const Range &r) { return r.target < 0 ? -NB_EAGAIN : -NB_EBUSY; }

int RangeIndex::Lookup(u64 offset, RangeUse use, Range **out) const
{
	RangeSeen seen;
	return Lookup(offset, use, out, &seen);
}

Range *RangeIndex::Revalidate(const RangeSeen &seen) const
{
	if (seen.slot >= nr_ || ranges_[seen.slot] != seen.range)
		return nullptr;
	Range *r = ranges_[seen.slot];
	return r->offset == seen.start && r->state == kLive ? r : nullptr;
}

int RangeIndex::Lookup(u64 offset, RangeUse use, Range **out, RangeSeen *seen) const
{
	u32 i = FirstAbove(offset);
	Range *r = i ? ranges_[i - 1] : nullptr;
	if (r && offset - r->offset >= r->size)
		r = nullptr;
	bool by_start = use != RangeUse::kRead && use != RangeUse::kFault;
	if (r && by_start && r->offset != offset)
		r = nullptr;
	// No fault may use a range that is freed, being freed, or still being mapped.
	bool unusable = !r || r->state == kDying || r->state == kFreeing ||
			r->state == kPublishing;
	int rc = 0;
	switch (use) {
	case RangeUse::kRead:
		rc = r ? 0 : -NB_ENOENT;
		break;
	case RangeUse::kFault:
		rc = unusable ? -NB_EFAULT : r->state == kMigrating ? -NB_EAGAIN : 0;
		break;
	case RangeUse::kFree: // a block still being published does not exist yet
		rc = unusable ? -NB_ENOENT : r->state == kMigrating ? Busy(*r) : 0;
		break;
	case RangeUse::kFreeFinish:
		rc = r && r->state == kDying ? 0 : -NB_EINVAL;
		break;
	case RangeUse::kMigrate:
		rc = !r ? -NB_ENOENT : r->state == kMigrating ? Busy(*r) : r->state != kLive ? -NB_EBUSY : 0;
		break;
	case RangeUse::kMigrateFinish:
		rc = r && r->state == kMigrating ? 0 : -NB_EINVAL;
		break;
	}
	*out = rc ? nullptr : r;
	*seen = RangeSeen{*out, i ? i - 1 : 0, *out ? r->offset : 0};
	return rc;
}

u32 RangeIndex::GrowTo() const
{
	if (nr_ < cap_)
		return 0;
	if (nr_ >= NBC_SPACE_MAX_RANGES)
		return ~0u;
	return cap_ ? Min(cap_ * 2, u32{NBC_SPACE_MAX_RANGES}) : 16;
}

// Whoever loses a race to grow frees its own copy: *to_free is then `fresh`.
void RangeIndex::Adopt(Range **fresh, u32 cap, Range ***to_free, u32 *to_free_cap)
{
	*to_free = fresh;
	*to_free_cap = cap;
	if (cap_ >= cap)
		return;
	for (u32 i = 0; i < nr_; i++)
		fresh[i] = ranges_[i];
	*to_free = ranges_;
	*to_free_cap = cap_;
	ranges_ = fresh;
	cap_ = cap;
}

// `phase` lets a contiguous range whose first frame is not `align`-aligned still map huge:
// frame address and offset must agree modulo the leaf size.
int RangeIndex::Place(Range *r, u64 align, u64 phase)
{
	if (nr_ == cap_)
		return -NB_ENOMEM;
	u64 off = ((cursor_ + align - 1) & ~(align - 1)) + phase;
	if (off < cursor_ || off >= PageTable::kVirtLimit || r->size > PageTable::kVirtLimit - off)
		return -NB_ENOSPC;
	r->offset = off;
	ranges_[nr_++] = r;
	cursor_ = off + r->size;
	return 0;
}

// Found by binary search on its offset, not by a scan from 0: closing a file removes its
// ranges last first, which is then O(log n) each, not O(n) (O(n^2) for the close). A range
// in the middle still shifts the ones after it (one memmove).
void RangeIndex::Remove(Range *r)
{
	u32 i = FirstAbove(r->offset);
	NB_ASSERT(i > 0 && ranges_[i - 1] == r);
	if (i == 0 || ranges_[i - 1] != r)
		return;
	__builtin_memmove(&ranges_[i - 1], &ranges_[i], (nr_ - i) * sizeof(Range *));
	nr_--;
}

void RangeIndex::Release(Range ***array, u32 *cap)
{
	*array = ranges_;
	*cap = cap_;
	ranges_ = nullptr;
	nr_ = 0;
	cap_ = 0;
}

} // namespace nb
