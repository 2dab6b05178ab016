/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcp.h - per-CPU, per-node caches of small blocks (orders 0..3 and 9, as Linux caches).
 *
 * One cache per (CPU, node): a cache holds blocks of one node only, so a request for node n
 * on CPU c pops from cache (c, n) without touching node n's lock. A cache is used only by
 * the task that owns its CPU (env.h's nb_env_cpu_own: local_lock in the kernel), so the fast
 * path takes no lock and makes no atomic read-modify-write beyond the free's claim below.
 * Another CPU reaches a cache only through nb_env_cpu_run_on (drains, checks), which runs on
 * the cache's CPU as its owner. Order: CPU ownership -> node lock.
 *
 * Blocks in a cache are kCached in their descriptor, so a double free of a cached block is
 * caught like any other: the free claims kAlloc -> kCached with one compare-and-swap.
 */
#ifndef NB_PCP_H
#define NB_PCP_H

#include "base.h"
#include "node.h"

namespace nb {

/*
 * Owning the calling CPU, as a capability the thread-safety analysis follows: one for "this
 * CPU", as Linux's preemption-off state is one. Empty; never read or written.
 */
struct TA_CAP("cpu") ThisCpu {};
extern ThisCpu g_this_cpu;

/* Scoped nb_env_cpu_own / nb_env_cpu_disown. */
class TA_SCOPED CpuOwner {
public:
	CpuOwner() TA_ACQ(g_this_cpu) : cpu_(nb_env_cpu_own()) {}
	~CpuOwner() TA_REL() { nb_env_cpu_disown(cpu_); }
	CpuOwner(const CpuOwner &) = delete;
	CpuOwner &operator=(const CpuOwner &) = delete;
	unsigned cpu() const { return cpu_; }

private:
	unsigned cpu_;
};

/* In a function nb_env_cpu_run_on calls: the env made the caller the CPU's owner. */
inline void OwnedByRunOn() TA_ATTR(assert_capability(g_this_cpu)) {}

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
	/* On zeroed memory; batch0 = order-0 refill batch; *index: the core's segment index,
	 * where a parked frame's segment is found in O(1) (seg_table.h). */
	void Init(Node *node, SegTable *const *index, unsigned batch0);

	/* Pop a block of PcpOrder(slot), refilling from the node if empty. False if the node
	 * has nothing of that order either. */
	__attribute__((always_inline)) bool AllocOwned(unsigned slot, const AllocIntent &in, u64 *pfn)
		TA_REQ(g_this_cpu)
	{
		if (count_[slot] == 0 && !RefillOwned(slot))
			return false;
		unsigned order = PcpOrder(slot);
		u64 p = stack(slot)[--count_[slot]];
		AddFrames(-(i64{1} << order));
		Segment *seg = FindSeg(p);
		NB_ASSERT(seg != nullptr);
		seg->MarkAlloc(p, order);
		CountAlloc(&counters_, node_id_, in);
		*pfn = p;
		return true;
	}
	/* Park a freed block (already claimed kCached by the caller); drains a batch to the
	 * node when the cache passes its high mark. */
	__attribute__((always_inline)) void PushOwned(unsigned slot, u64 pfn) TA_REQ(g_this_cpu)
	{
		stack(slot)[count_[slot]++] = pfn;
		AddFrames(i64{1} << PcpOrder(slot));
		if (count_[slot] >= high_[slot])
			DrainOwned(slot, batch_[slot]);
	}
	/* Give every block back to the node. */
	void DrainAllOwned() TA_REQ(g_this_cpu);
	/* Every parked block is a kCached head of the slot's order on this cache's node. */
	bool CheckOwned() TA_REQ(g_this_cpu);

	/* From any CPU, without owning (stats): relaxed snapshots of owner-written counts. */
	u64 frames() const { return AtomicLoad(&frames_); }
	void AddCounters(struct nbc_node_stats *out) const { counters_.AddTo(out); }

private:
	bool RefillOwned(unsigned slot) TA_REQ(g_this_cpu);
	void DrainOwned(unsigned slot, unsigned n) TA_REQ(g_this_cpu);
	u64 *stack(unsigned slot) { return &pfn_[kPcpOffset[slot]]; }
	void AddFrames(i64 d) { AtomicStore(&frames_, frames_ + static_cast<u64>(d)); }
	Segment *FindSeg(u64 pfn) const { return AtomicLoadAcquire(index_)->Find(pfn); }

	Node *node_;
	int node_id_;
	SegTable *const *index_;
	u32 batch_[kPcpSlots];
	u32 high_[kPcpSlots];
	u32 count_[kPcpSlots] TA_GUARDED(g_this_cpu);
	u64 frames_;             /* written by the owner only, read by anyone (relaxed) */
	NumaCounters counters_;  /* likewise */
	u64 pfn_[kPcpTotal] TA_GUARDED(g_this_cpu);
};

} /* namespace nb */

#endif /* NB_PCP_H */
