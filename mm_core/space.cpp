// SPDX-License-Identifier: GPL-2.0
//
// space.cpp - nb::Space itself: spare table pages, the range index, per-node accounting,
// create/destroy, and publishing a range into the offset space.
//
// The rule every path of Space follows (space_alloc.cpp, space_twophase.cpp, space_api.cpp
// too): decide under lock_, drop it for anything long or anything that enters nb_core
// (allocate, zero, copy, free), retake it and re-validate before publishing. A range is
// re-found by its start offset, never by a saved pointer: offsets are never reused, so "the
// range that starts at X" cannot silently become another range.
#include "space.h"

namespace nb {

// ---- table pages -------------------------------------------------------------------------

int Space::TableAlloc(void *arg, u64 *pfn)
{
	Space *s = static_cast<Space *>(arg);
	if (!s->stash_head_)
		return -NB_ENOMEM; // the caller refills the stash with lock_ dropped and retries
	*pfn = s->stash_head_ - 1;
	s->stash_head_ = *static_cast<u64 *>(nb_env_frame_addr(*pfn));
	s->stash_count_--;
	return 0;
}

void Space::TableFree(void *arg, u64 pfn) { static_cast<Space *>(arg)->StashPushLocked(pfn); }

void Space::StashPushLocked(u64 pfn)
{
	*static_cast<u64 *>(nb_env_frame_addr(pfn)) = stash_head_;
	stash_head_ = pfn + 1;
	stash_count_++;
}

int Space::FillStash(unsigned want, nb_ctx ctx)
{
	for (;;) {
		{
			Guard g(&lock_);
			if (stash_count_ >= want)
				return 0;
		}
		u64 pfn;
		int rc = nb_buddy_alloc(core_, 0, node_, 0, ctx, &pfn);
		if (rc)
			return rc;
		Guard g(&lock_);
		StashPushLocked(pfn);
	}
}

void Space::TrimStash()
{
	for (;;) {
		u64 pfn;
		{
			Guard g(&lock_);
			if (stash_count_ <= kStashMax || TableAlloc(this, &pfn))
				return;
		}
		nb_buddy_free(core_, pfn, 0);
	}
}

// ---- the range index ---------------------------------------------------------------------

Space::Range *Space::FindLocked(u64 offset)
{
	u32 lo = 0, hi = nr_ranges_;
	while (lo < hi) { // first range starting above offset
		u32 mid = (lo + hi) / 2;
		if (ranges_[mid]->offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return nullptr;
	Range *r = ranges_[lo - 1];
	return offset - r->offset < r->size ? r : nullptr;
}

Space::Range *Space::FindStartLocked(u64 offset)
{
	Range *r = FindLocked(offset);
	return r && r->offset == offset ? r : nullptr;
}

int Space::InsertLocked(Range *r)
{
	if (nr_ranges_ == cap_ranges_)
		return -NB_ENOMEM;
	NB_ASSERT(!nr_ranges_ || ranges_[nr_ranges_ - 1]->offset < r->offset);
	ranges_[nr_ranges_++] = r;
	return 0;
}

void Space::RemoveLocked(Range *r)
{
	u32 i = 0;
	while (i < nr_ranges_ && ranges_[i] != r)
		i++;
	NB_ASSERT(i < nr_ranges_);
	for (; i + 1 < nr_ranges_; i++)
		ranges_[i] = ranges_[i + 1];
	nr_ranges_--;
}

// The index array grows with lock_ dropped; whoever loses the race frees its copy.
int Space::GrowRanges(nb_ctx ctx)
{
	u32 cap;
	{
		Guard g(&lock_);
		if (nr_ranges_ < cap_ranges_)
			return 0;
		cap = cap_ranges_ ? cap_ranges_ * 2 : 16;
	}
	Range **fresh = MetaAlloc<Range *>(cap, node_, ctx);
	if (!fresh)
		return -NB_ENOMEM;
	Range **old = fresh;
	u32 old_cap = cap;
	{
		Guard g(&lock_);
		if (cap_ranges_ < cap) {
			for (u32 i = 0; i < nr_ranges_; i++)
				fresh[i] = ranges_[i];
			old = ranges_;
			old_cap = cap_ranges_;
			ranges_ = fresh;
			cap_ranges_ = cap;
		}
	}
	MetaFree(old, old_cap);
	return 0;
}

// ---- accounting --------------------------------------------------------------------------

int Space::ChargeLocked(int node, u64 bytes)
{
	NB_ASSERT(node >= 0 && node < NB_MAX_NODES);
	if (node < 0 || node >= NB_MAX_NODES)
		return -NB_EINVAL;
	if (bytes > quota_[node] || node_bytes_[node] > quota_[node] - bytes)
		return -NB_EDQUOT;
	node_bytes_[node] += bytes;
	return 0;
}

void Space::UnchargeLocked(int node, u64 bytes)
{
	NB_ASSERT(node >= 0 && node < NB_MAX_NODES && node_bytes_[node] >= bytes);
	if (node >= 0 && node < NB_MAX_NODES)
		node_bytes_[node] -= bytes;
}

// ---- create / destroy --------------------------------------------------------------------

int Space::Create(nb_core *core, int node, nb_ctx ctx, Space **out)
{
	if (node >= NB_MAX_NODES)
		return -NB_EINVAL;
	if (node < 0)
		node = nb_current_cpu_node(core);
	void *mem = nb_env_meta_alloc(sizeof(Space), node, ctx);
	if (!mem)
		return -NB_ENOMEM;
	Space *s = new (mem) Space(core, node);
	s->lock_.Init(NB_LOCK_SPACE);
	u64 nodes = nb_nodes_with_memory(core);
	struct nb_node_stats st;
	if (nodes && !nb_node_stats(core, (int)Ctz64(nodes), &st))
		s->max_order_ = st.max_order;
	s->drain_blocks_ = (u64)nb_env_cpu_ids() * PopCount64(nodes);
	int rc = s->FillStash(1, ctx);
	if (!rc) {
		Guard g(&s->lock_);
		for (u64 &q : s->quota_)
			q = NB_SPACE_NO_QUOTA;
		rc = s->table_.Init(PageTableAllocator{TableAlloc, TableFree, s});
	}
	if (rc) {
		s->Destroy(ctx);
		return rc;
	}
	*out = s;
	return 0;
}

void Space::Destroy(nb_ctx ctx)
{
	for (;;) {
		Range *r;
		{
			Guard g(&lock_);
			if (!nr_ranges_)
				break;
			r = ranges_[nr_ranges_ - 1];
			r->state = kFreeing; // close: no fault, free or migration can run any more
		}
		ReleaseFrames(r, ctx);
		{
			Guard g(&lock_);
			RemoveLocked(r);
		}
		nb_env_meta_free(r, r->meta_bytes);
	}
	Range **ranges;
	u32 cap;
	{
		Guard g(&lock_);
		table_.Teardown();
		ranges = ranges_;
		cap = cap_ranges_;
		ranges_ = nullptr;
		cap_ranges_ = 0;
	}
	for (;;) {
		u64 pfn;
		{
			Guard g(&lock_);
			if (TableAlloc(this, &pfn))
				break;
		}
		nb_buddy_free(core_, pfn, 0);
	}
	// Give the per-CPU caches back. What this space freed last may sit parked there (a few
	// 2 MiB blocks and a batch of 4 KiB frames per CPU and node), kept from merging with
	// their buddies. nb_alloc drains only when an allocation fails, which is too late: the
	// next user's small allocations take the split blocks first (smallest free block first)
	// and settle in them, and a large range that was free at close never forms again. A
	// close is rare and already costly; one pass over the caches is small beside it.
	// nb_core.h drains every node; the nodes this space used would be enough.
	nb_pcp_drain(core_);
	MetaFree(ranges, cap);
	lock_.Destroy();
	this->~Space();
	nb_env_meta_free(this, sizeof(Space));
}

// ---- publishing a range ------------------------------------------------------------------

// Gives r an offset >= the cursor with offset % align == phase, maps its extents there and
// inserts it. `phase` lets a contiguous range whose first frame is not `align`-aligned still
// map huge: frame address and offset must agree modulo the leaf size. The offset comes back
// through *offset_out, read under lock_: once lock_ drops, a caller who guessed the offset
// (they start at 0 and only grow) may free r, so the publisher must never read r again.
int Space::Publish(Range *r, u64 align, u64 phase, nb_ctx ctx, u64 *offset_out)
{
	unsigned want = kStashLeaf;
	for (;;) {
		int rc = GrowRanges(ctx);
		if (!rc)
			rc = FillStash(want, ctx);
		if (rc)
			return rc;
		Guard g(&lock_);
		if (nr_ranges_ == cap_ranges_)
			continue; // another publisher took the slot we grew
		u64 off = AlignUp(cursor_, align) + phase;
		if (off < cursor_ || off >= PageTable::kVirtLimit ||
		    r->size > PageTable::kVirtLimit - off)
			return -NB_ENOSPC;
		u64 pos = off;
		for (u32 i = 0; !rc && i < r->nr_extents; i++) {
			const Extent &e = r->extents[i];
			rc = table_.MapRange(pos, e.pfn, e.nr_frames, PAGE_PRESENT | PAGE_WRITABLE);
			if (!rc)
				pos += e.nr_frames * kFrame;
		}
		if (rc) {
			// Whole leaves only, so this unmap needs no split and cannot fail.
			if (pos > off)
				NB_ASSERT(!table_.Unmap(off, pos - off));
			if (rc != -NB_ENOMEM || want >= (1u << 20))
				return rc;
			want *= 2; // out of spare table pages: refill with the lock dropped
			continue;
		}
		r->offset = off;
		NB_ASSERT(!InsertLocked(r));
		cursor_ = off + r->size;
		*offset_out = off;
		return 0;
	}
}

} // namespace nb
