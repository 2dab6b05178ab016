// SPDX-License-Identifier: GPL-2.0
/*
 * pcp.cpp - per-CPU cache refill and drain.
 *
 * Each slot is a stack: pops and pushes at the top keep recently freed (cache-hot) blocks in
 * use; drains take from the bottom, the coldest blocks. Refill and drain move a batch under
 * one acquisition of the node lock, so the node lock is taken once per `batch` operations.
 */
#include "pcp.h"

namespace nb {

ThisCpu g_this_cpu;

void PcpCache::Init(Node *node, SegTable *const *index, unsigned batch0)
{
	node_ = node;
	node_id_ = node->id();
	index_ = index;
	/* High mark = 4 batches (Linux's ratio), capped by the slot's storage. */
	batch_[0] = batch0;
	high_[0] = Min(4 * batch0, kPcpCap[0]);
	for (unsigned s = 1; s < kPcpSlots; s++) {
		high_[s] = kPcpCap[s];
		batch_[s] = Max(1u, kPcpCap[s] / 4);
	}
}

bool PcpCache::RefillOwned(unsigned slot)
{
	unsigned order = PcpOrder(slot);
	unsigned got;
	{
		Guard g(node_->lock());
		got = node_->AllocBulkLocked(order, stack(slot), batch_[slot]);
	}
	if (got == 0)
		return false;
	count_[slot] = got;
	AddFrames(static_cast<i64>(got) << order);
	return true;
}

void PcpCache::DrainOwned(unsigned slot, unsigned n)
{
	unsigned order = PcpOrder(slot);
	n = Min(n, count_[slot]);
	if (n == 0)
		return;
	u64 *st = stack(slot);
	{
		Guard g(node_->lock());
		for (unsigned i = 0; i < n; i++) {
			Segment *seg = FindSeg(st[i]);
			NB_ASSERT(seg != nullptr);
			int rc = node_->FreeLocked(seg, st[i], order, FrameState::kCached);
			NB_ASSERT(rc == 0);
		}
	}
	count_[slot] -= n;
	__builtin_memmove(st, st + n, count_[slot] * sizeof(u64));
	AddFrames(-(static_cast<i64>(n) << order));
}

void PcpCache::DrainAllOwned()
{
	for (unsigned s = 0; s < kPcpSlots; s++)
		DrainOwned(s, count_[s]);
}

bool PcpCache::CheckOwned()
{
	u64 frames = 0;
	for (unsigned s = 0; s < kPcpSlots; s++) {
		unsigned order = PcpOrder(s);
		for (unsigned i = 0; i < count_[s]; i++) {
			u64 p = stack(s)[i];
			Segment *seg = FindSeg(p);
			if (seg == nullptr || !seg->IsHead(p, order, FrameState::kCached)) {
				nb_env_log(NB_LOG_ERR, "nb: pcp node %d: %llx is not a cached order-%u block\n",
					   node_->id(), (unsigned long long)p, order);
				return false;
			}
		}
		frames += static_cast<u64>(count_[s]) << order;
	}
	if (frames != frames_) {
		nb_env_log(NB_LOG_ERR, "nb: pcp node %d: %llu frames counted, %llu parked\n",
			   node_->id(), (unsigned long long)frames_, (unsigned long long)frames);
		return false;
	}
	return true;
}

} /* namespace nb */
