// SPDX-License-Identifier: GPL-2.0
/*
 * node.cpp - per-node pool over its segments.
 */
#include "node.h"

namespace nb {

void Node::Init(int id, Segment *segs, u32 nr_segs, u32 seg_cap, unsigned max_order)
{
	seg_cap_ = seg_cap;
	lock_.Init(NB_LOCK_NODE);
	id_ = id;
	max_order_ = max_order;
	segs_ = segs;
	nr_segs_ = nr_segs;
	first_high_ = nr_segs;
	total_ = 0;
	low_total_ = 0;
	for (u32 i = 0; i < nr_segs; i++) {
		total_ += segs[i].frames();
		if (segs[i].low())
			low_total_ += segs[i].frames();
		else if (first_high_ == nr_segs)
			first_high_ = i;
	}
}

void Node::Destroy() { lock_.Destroy(); }

Segment *Node::FindSeg(u64 pfn) const
{
	return FindSegment(nr_segs_, pfn, [this](u32 i) { return &segs_[i]; });
}

bool Node::AllocLocked(unsigned order, unsigned flags, FrameState as, u64 *pfn)
{
	if (!(flags & NB_AF_LOW4G)) {
		for (u32 i = first_high_; i < nr_segs_; i++)
			if (segs_[i].Alloc(order, as, pfn))
				return true;
	}
	for (u32 i = 0; i < first_high_; i++)
		if (segs_[i].Alloc(order, as, pfn))
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

u64 Node::FreeFramesLocked() const
{
	u64 f = 0;
	for (u32 i = 0; i < nr_segs_; i++)
		f += segs_[i].free_frames();
	return f;
}

void Node::FillStatsLocked(struct nb_node_stats *out) const
{
	out->node = id_;
	out->max_order = max_order_;
	out->total_frames = total_;
	out->low_total_frames = low_total_;
	out->largest_free_order = -1;
	for (u32 i = 0; i < nr_segs_; i++) {
		const Segment &s = segs_[i];
		out->free_frames += s.free_frames();
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
}

bool Node::CheckLocked() const
{
	for (u32 i = 0; i < nr_segs_; i++) {
		if (segs_[i].node() != id_) {
			nb_env_log(NB_LOG_ERR, "nb: node %d: segment %u claims node %d\n", id_, i,
				   segs_[i].node());
			return false;
		}
		if (!segs_[i].Check())
			return false;
	}
	return true;
}

} /* namespace nb */
