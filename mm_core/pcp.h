/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcp.h - per-CPU, per-node caches of small blocks (orders 0..3 and 9, as Linux caches).
 *
 * One cache per (CPU, node): a cache holds blocks of one node only, so a request for node n
 * on CPU c pops from cache (c, n) without touching node n's lock. The CPU id from
 * nb_env_cpu_current() is only a hint (the caller may migrate at once), so each cache has its
 * own lock: correctness never depends on being pinned, and the lock is uncontended in the
 * common case. Lock order: cache -> node.
 *
 * Blocks in a cache are kCached in their descriptor, so a double free of a cached block is
 * caught like any other.
 */
#ifndef NB_PCP_H
#define NB_PCP_H

#include "base.h"
#include "node.h"

namespace nb {

constexpr unsigned kPcpSlots = 5;
constexpr unsigned kPcpHugeOrder = 9; /* 2 MiB */
constexpr int PcpSlot(unsigned order) { return order <= 3 ? static_cast<int>(order) : (order == kPcpHugeOrder ? 4 : -1); }
constexpr unsigned PcpOrder(unsigned slot) { return slot < 4 ? slot : kPcpHugeOrder; }
constexpr unsigned kPcpCap[kPcpSlots] = {256, 32, 16, 8, 4};
constexpr unsigned kPcpOffset[kPcpSlots] = {0, 256, 288, 304, 312};
constexpr unsigned kPcpTotal = 316;
constexpr unsigned kPcpDefaultBatch = 31;
constexpr unsigned kPcpMaxBatch = 63;

class PcpCache {
public:
	/* On zeroed memory; batch0 = order-0 refill batch. */
	void Init(Node *node, unsigned batch0);
	void Destroy() { lock_.Destroy(); }
	Lock *lock() TA_RET_CAP(lock_) { return &lock_; }

	/* Pop a block of PcpOrder(slot), refilling from the node if empty. False if the node
	 * has nothing of that order either. */
	bool AllocLocked(unsigned slot, const AllocIntent &in, u64 *pfn) TA_REQ(lock_);
	/* Park a freed block (already claimed kCached by the caller); drains a batch to the
	 * node when the cache passes its high mark. */
	void PushLocked(unsigned slot, u64 pfn) TA_REQ(lock_);
	/* Give every block back to the node. */
	void DrainAllLocked() TA_REQ(lock_);
	u64 frames() TA_REQ(lock_) { return frames_; }
	void AddCountersLocked(struct nb_node_stats *out) const TA_REQ(lock_) { counters_.AddTo(out); }
	/* Every parked block is a kCached head of the slot's order on this cache's node. */
	bool CheckLocked() TA_REQ(lock_);

private:
	void DrainLocked(unsigned slot, unsigned n) TA_REQ(lock_);
	u64 *stack(unsigned slot) { return &pfn_[kPcpOffset[slot]]; }

	Lock lock_;
	Node *node_;
	u32 batch_[kPcpSlots];
	u32 high_[kPcpSlots];
	u32 count_[kPcpSlots] TA_GUARDED(lock_);
	u64 frames_ TA_GUARDED(lock_);
	NumaCounters counters_ TA_GUARDED(lock_);
	u64 pfn_[kPcpTotal] TA_GUARDED(lock_);
};

} /* namespace nb */

#endif /* NB_PCP_H */
