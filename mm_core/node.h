/* SPDX-License-Identifier: GPL-2.0 */
/*
 * node.h - one NUMA node's pool: its segments, its lock, its numastat counters.
 *
 * The lock covers every segment's free lists. High segments come first in segs_, so ordinary
 * requests take high memory and leave frames below 4 GiB to NB_AF_LOW4G callers.
 */
#ifndef NB_NODE_H
#define NB_NODE_H

#include "base.h"
#include "segment.h"

namespace nb {

/* numastat counters; one set per node under its lock, one per per-CPU cache under the cache
 * lock (the fast path must not take the node lock); stats add them up. */
struct NumaCounters {
	u64 hit;
	u64 miss;
	u64 interleave_hit;
	u64 local_node;
	u64 other_node;

	void AddTo(struct nb_node_stats *out) const
	{
		out->numa_hit += hit;
		out->numa_miss += miss;
		out->interleave_hit += interleave_hit;
		out->local_node += local_node;
		out->other_node += other_node;
	}
};

/* Who asked, for the counters. */
struct AllocIntent {
	int intended;
	int cpu_node;
	bool interleave;
};

inline void CountAlloc(NumaCounters *c, int served, const AllocIntent &in)
{
	if (served == in.intended) {
		c->hit++;
		if (in.interleave)
			c->interleave_hit++;
	} else {
		c->miss++;
	}
	if (served == in.cpu_node)
		c->local_node++;
	else
		c->other_node++;
}

class Node {
public:
	/* On zeroed memory; segs sorted by base pfn. */
	void Init(int id, Segment *segs, u32 nr_segs, u32 seg_cap, unsigned max_order);
	void Destroy();

	int id() const { return id_; }
	Lock *lock() TA_RET_CAP(lock_) { return &lock_; }
	u32 nr_segs() const { return nr_segs_; }
	u32 seg_cap() const { return seg_cap_; } /* entries allocated for segs_ */
	Segment *seg(u32 i) const { return &segs_[i]; }
	/* Segment holding pfn, or nullptr. Segments never move, so no lock is needed. */
	Segment *FindSeg(u64 pfn) const;
	u64 total_frames() const { return total_; }
	u64 low_total_frames() const { return low_total_; }

	/* One block; high segments first unless NB_AF_LOW4G. */
	bool AllocLocked(unsigned order, unsigned flags, FrameState as, u64 *pfn) TA_REQ(lock_);
	/* Up to n blocks of `order` as kCached heads for a per-CPU cache refill (high first). */
	unsigned AllocBulkLocked(unsigned order, u64 *out, unsigned n) TA_REQ(lock_);
	int FreeLocked(Segment *seg, u64 pfn, unsigned order, FrameState expect) TA_REQ(lock_);

	u64 FreeFramesLocked() const TA_REQ(lock_);
	void CountLocked(const AllocIntent &in) TA_REQ(lock_) { CountAlloc(&counters_, id_, in); }
	void AddCountersLocked(struct nb_node_stats *out) const TA_REQ(lock_) { counters_.AddTo(out); }
	void FillStatsLocked(struct nb_node_stats *out) const TA_REQ(lock_);
	bool CheckLocked() const TA_REQ(lock_);

	/* Counters written without the node lock, from wherever the event is seen. */
	void CountFail() { AtomicAdd(&alloc_fail_, u64{1}); }
	void CountMigrateIn() { AtomicAdd(&migrate_in_, u64{1}); }
	void CountMigrateOut() { AtomicAdd(&migrate_out_, u64{1}); }

private:
	Lock lock_;
	int id_;
	unsigned max_order_;
	Segment *segs_;
	u32 nr_segs_;
	u32 seg_cap_;
	u32 first_high_; /* segs_[first_high_..] are above 4 GiB */
	u64 total_;
	u64 low_total_;
	NumaCounters counters_ TA_GUARDED(lock_);
	u64 alloc_fail_;
	u64 migrate_in_;
	u64 migrate_out_;
};

} /* namespace nb */

#endif /* NB_NODE_H */
