// SPDX-License-Identifier: GPL-2.0
/*
 * node.cpp - per-node pool over its segments.
 */
#include "node.h"

namespace nb {

void Node::Init(int id, SegTable *t, unsigned max_order)
{
	lock_.Init(NB_LOCK_NODE);
	id_ = id;
	max_order_ = max_order;
	Guard g(&lock_);
	PublishLocked(t);
}

void Node::Destroy() { lock_.Destroy(); }

SegTable *Node::PublishLocked(SegTable *t)
{
	u64 total = 0, low = 0;
	for (u32 i = 0; i < t->n; i++) {
		total += t->seg[i]->frames();
		if (t->seg[i]->low())
			low += t->seg[i]->frames();
	}
	t->SetFirstHigh();
	SegTable *old = table_;
	AtomicStoreRelease(&table_, t);
	AtomicStore(&total_, total);
	AtomicStore(&low_total_, low);
	return old;
}

bool Node::AllocLocked(unsigned order, unsigned flags, FrameState as, u64 *pfn, bool *zeroed)
{
	if (AllocOnceLocked(order, flags, as, pfn, zeroed))
		return true;
	/* Before failing: merge the zeroed/dirty buddy pairs pre-zeroing left apart. */
	bool merged = false;
	for (u32 i = 0; i < table_->n; i++)
		merged = table_->seg[i]->MergeMixed() || merged;
	return merged && AllocOnceLocked(order, flags, as, pfn, zeroed);
}

bool Node::AllocOnceLocked(unsigned order, unsigned flags, FrameState as, u64 *pfn,
			   bool *zeroed)
{
	const SegTable *t = table_;
	if (zeroed != nullptr) {
		/* The same segments in the same order as below, zeroed blocks only. */
		if (!(flags & NBC_AF_LOW4G)) {
			for (u32 i = t->first_high; i < t->n; i++)
				if (t->seg[i]->AllocZeroed(order, as, pfn))
					return *zeroed = true;
		}
		for (u32 i = 0; i < t->first_high; i++)
			if (t->seg[i]->AllocZeroed(order, as, pfn))
				return *zeroed = true;
	}
	if (!(flags & NBC_AF_LOW4G)) {
		for (u32 i = t->first_high; i < t->n; i++)
			if (t->seg[i]->Alloc(order, as, pfn, zeroed))
				return true;
	}
	for (u32 i = 0; i < t->first_high; i++)
		if (t->seg[i]->Alloc(order, as, pfn, zeroed))
			return true;
	return false;
}

unsigned Node::AllocBulkLocked(unsigned order, u64 *out, unsigned n)
{
	unsigned got = 0;
	while (got < n && AllocLocked(order, 0, FrameState::kCached, &out[got]))
		got++;
	return got;
}

int Node::FreeLocked(Segment *seg, u64 pfn, unsigned order, FrameState expect)
{
	return seg->Free(pfn, order, expect);
}

int Node::TakeDirtyLocked(unsigned cap, u64 *pfn)
{
	for (u32 i = 0; i < table_->n; i++) {
		int order = table_->seg[i]->TakeDirty(cap, pfn);
		if (order >= 0) {
			AtomicStore(&in_flight_, in_flight_ + 1);
			in_flight_frames_ += 1ull << order;
			return order;
		}
	}
	return -1;
}

void Node::PrezeroDoneLocked(u64 pfn, unsigned order)
{
	Segment *seg = FindSeg(pfn);
	/* The block was ours (kAlloc, no owner but us): it cannot be anything else now. */
	int rc = seg != nullptr ? seg->Free(pfn, order, FrameState::kAlloc, true) : -NB_EINVAL;
	NB_ASSERT(rc == 0);
	AtomicStore(&in_flight_, in_flight_ - 1);
	in_flight_frames_ -= 1ull << order;
}

u64 Node::SumSegments(u64 (Segment::*count)() const) const
{
	const SegTable *t = table();
	u64 z = 0;
	for (u32 i = 0; i < t->n; i++)
		z += (t->seg[i]->*count)();
	return z;
}

u64 Node::FreeFramesLocked() const
{
	u64 f = 0;
	for (u32 i = 0; i < table_->n; i++)
		f += table_->seg[i]->free_frames();
	return f;
}

void Node::FillStatsLocked(struct nbc_node_stats *out) const
{
	out->node = id_;
	out->max_order = max_order_;
	out->total_frames = total_;
	out->low_total_frames = low_total_;
	out->largest_free_order = -1;
	for (u32 i = 0; i < table_->n; i++) {
		const Segment &s = *table_->seg[i];
		out->free_frames += s.free_frames();
		out->zeroed_frames += s.zeroed_frames();
		out->zeroed_huge_frames += s.zeroed_huge_frames();
		if (s.low())
			out->low_free_frames += s.free_frames();
		for (unsigned k = 0; k <= max_order_; k++)
			out->free_blocks[k] += s.free_blocks(k);
		out->largest_free_order = Max(out->largest_free_order, s.LargestFree());
	}
	AddCountersLocked(out);
	out->alloc_fail += AtomicLoad(&alloc_fail_);
	out->migrate_in += AtomicLoad(&migrate_in_);
	out->migrate_out += AtomicLoad(&migrate_out_);
	out->prezero_in_flight += in_flight_;
	/* Being zeroed is being free: the pool did not shrink for a moment. */
	out->free_frames += in_flight_frames_;
}

bool Node::CheckLocked() const
{
	for (u32 i = 0; i < table_->n; i++) {
		const Segment *s = table_->seg[i];
		if (s->node() != id_ || (i > 0 && table_->seg[i - 1]->end() > s->base())) {
			nb_env_log(NB_LOG_ERR, "nb: node %d: segment %u (node %d) out of place\n", id_,
				   i, s->node());
			return false;
		}
		if (!s->Check())
			return false;
	}
	return true;
}

} /* namespace nb */
