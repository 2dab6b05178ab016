/* SPDX-License-Identifier: GPL-2.0 */
/*
 * node.h - one NUMA node's pool: its segments, its lock, its numastat counters.
 *
 * The lock covers every segment's free lists. High segments are tried first, so ordinary
 * requests take high memory and leave frames below 4 GiB to NBC_AF_LOW4G callers. The set of
 * segments is a SegTable that a resize replaces under the lock (seg_table.h).
 */
#ifndef NB_NODE_H
#define NB_NODE_H

#include "base.h"
#include "seg_table.h"
#include "segment.h"

namespace nb {

/* numastat counters; one set per node under its lock, one per per-CPU cache written by its
 * CPU's owner (the fast path must not take the node lock); stats add them up from any CPU,
 * hence relaxed atomics (plain moves on x86). */
inline void Bump(u64 *c) { AtomicStore(c, AtomicLoad(c) + 1); }

struct NumaCounters {
	u64 hit;
	u64 miss;
	u64 interleave_hit;
	u64 local_node;
	u64 other_node;

	void AddTo(struct nbc_node_stats *out) const
	{
		out->numa_hit += AtomicLoad(&hit);
		out->numa_miss += AtomicLoad(&miss);
		out->interleave_hit += AtomicLoad(&interleave_hit);
		out->local_node += AtomicLoad(&local_node);
		out->other_node += AtomicLoad(&other_node);
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
		Bump(&c->hit);
		if (in.interleave)
			Bump(&c->interleave_hit);
	} else {
		Bump(&c->miss);
	}
	Bump(served == in.cpu_node ? &c->local_node : &c->other_node);
}

class Node {
public:
	/* On zeroed memory; t sorted by base pfn. */
	void Init(int id, SegTable *t, unsigned max_order);
	void Destroy();

	int id() const { return id_; }
	Lock *lock() TA_RET_CAP(lock_) { return &lock_; }
	/* The current segments. Without the lock: a snapshot whose segments stay valid until
	 * the core is destroyed. */
	SegTable *table() const { return AtomicLoadAcquire(&table_); }
	u32 nr_segs() const { return table()->n; }
	Segment *seg(u32 i) const { return table()->seg[i]; }
	/* Segment holding pfn, or nullptr; no lock needed (seg_table.h). */
	Segment *FindSeg(u64 pfn) const { return table()->Find(pfn); }
	/* Install a new set of segments (a resize); returns the old table. */
	SegTable *PublishLocked(SegTable *t) TA_REQ(lock_);
	u64 total_frames() const { return AtomicLoad(&total_); }
	u64 low_total_frames() const { return AtomicLoad(&low_total_); }

	/* One block; high segments first unless NBC_AF_LOW4G. With `zeroed`, a zeroed block
	 * of any segment first, and *zeroed says which kind it got; without, a dirty one. */
	bool AllocLocked(unsigned order, unsigned flags, FrameState as, u64 *pfn,
			 bool *zeroed = nullptr) TA_REQ(lock_);
	/* Up to n blocks of `order` as kCached heads for a per-CPU cache refill (high first). */
	unsigned AllocBulkLocked(unsigned order, u64 *out, unsigned n) TA_REQ(lock_);
	int FreeLocked(Segment *seg, u64 pfn, unsigned order, FrameState expect) TA_REQ(lock_);

	u64 FreeFramesLocked() const TA_REQ(lock_);

	/* Pre-zeroing (core.cpp's Prezero). A dirty free block of at most order `cap`, taken as
	 * kAlloc and counted in flight until PrezeroDoneLocked frees it back as zeroed. */
	int TakeDirtyLocked(unsigned cap, u64 *pfn) TA_REQ(lock_);
	void PrezeroDoneLocked(u64 pfn, unsigned order) TA_REQ(lock_);
	/* Blocks the zeroer holds now (relaxed): an allocation that failed waits for them. */
	u32 prezero_in_flight() const { return AtomicLoad(&in_flight_); }
	/* Frames of zeroed free blocks, without the lock (relaxed; for the per-CPU cache bypass
	 * and stats; exact under the lock). */
	u64 ZeroedFrames() const { return SumSegments(&Segment::zeroed_frames); }
	/* Of those, the frames in zeroed blocks of 2 MiB or more (Segment::zeroed_huge_frames). */
	u64 ZeroedHugeFrames() const { return SumSegments(&Segment::zeroed_huge_frames); }
	void CountLocked(const AllocIntent &in) TA_REQ(lock_) { CountAlloc(&counters_, id_, in); }
	void AddCountersLocked(struct nbc_node_stats *out) const TA_REQ(lock_) { counters_.AddTo(out); }
	void FillStatsLocked(struct nbc_node_stats *out) const TA_REQ(lock_);
	bool CheckLocked() const TA_REQ(lock_);

	/* Counters written without the node lock, from wherever the event is seen. */
	void CountFail() { AtomicAdd(&alloc_fail_, u64{1}); }
	void CountMigrateIn() { AtomicAdd(&migrate_in_, u64{1}); }
	void CountMigrateOut() { AtomicAdd(&migrate_out_, u64{1}); }

private:
	/* A per-segment count summed over the node (relaxed reads, no lock). */
	u64 SumSegments(u64 (Segment::*count)() const) const;
	bool AllocOnceLocked(unsigned order, unsigned flags, FrameState as, u64 *pfn, bool *zeroed)
		TA_REQ(lock_);

	Lock lock_;
	int id_;
	unsigned max_order_;
	SegTable *table_; /* replaced under lock_, read without it */
	u64 total_;       /* written under lock_, read with relaxed loads */
	u64 low_total_;
	NumaCounters counters_ TA_GUARDED(lock_);
	u64 alloc_fail_;
	u64 migrate_in_;
	u64 migrate_out_;
	u32 in_flight_; /* changed under lock_, read without it */
	u64 in_flight_frames_ TA_GUARDED(lock_);
};

} /* namespace nb */

#endif /* NB_NODE_H */
