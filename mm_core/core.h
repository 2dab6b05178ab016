/* SPDX-License-Identifier: GPL-2.0 */
/*
 * core.h - one set of pools: the node table, the nodes, the per-CPU caches, the heaps.
 *
 * nbc_core.h's C functions are one-line calls into this class (core_c_api.cpp). Built in place on
 * zeroed metadata by Create(); nothing here has a constructor, so there are no global
 * constructors and no hidden allocation.
 */
#ifndef NB_CORE_IMPL_H
#define NB_CORE_IMPL_H

#include "base.h"
#include "kheap.h"
#include "nbc_core.h"
#include "node.h"
#include "numa.h"
#include "pcp.h"
#include "seg_table.h"
#include "segment.h"

namespace nb {

/* The zeroer's unit (2 MiB) and the memset between reschedules (64 KiB). */
constexpr unsigned kPrezeroMaxOrder = 9;
constexpr u64 kPrezeroChunkFrames = 16;

class Core {
public:
	static int Create(const nbc_bootinfo *bi, Core **out);
	int Destroy();

	/* alloc.cpp */
	/* With `zeroed`: a zeroed block preferred, *zeroed says whether it is one. */
	int Alloc(unsigned order, const nbc_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
		  int *node, bool *zeroed = nullptr);
	int Free(u64 pfn, unsigned order);
	int AllocContig(u64 nr, const nbc_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
			int *node, bool *zeroed = nullptr);
	/* One step of a node's zeroer (nbc_core_prezero). */
	i64 Prezero(int node, u64 max_frames, nb_ctx ctx);
	int FreeRange(u64 pfn, u64 nr);
	/* Every CPU's cache of `node` (DrainNode), of every node (DrainAll): may sleep
	 * (nb_env_cpu_run_on). */
	void DrainNode(int node);
	void DrainAll();
	/* The calling CPU's caches only: atomic-safe. */
	void DrainAfterFree(u64 frames, u64 blocks);

	/* migrate.cpp */
	int Migrate(u64 pfn, unsigned order, int old_node, int new_node, nb_ctx ctx, u64 *new_pfn);

	/* kheap.cpp */
	void *KAlloc(usize size, int node, nb_ctx ctx);
	void KFree(void *p);

	/* resize.cpp: regions added and removed at run time (NB_CTX_SLEEP) */
	int AddRegion(const nbc_region *r);
	int RemoveRegion(u64 start_pfn, u64 nr_frames);

	/* core.cpp */
	int CurrentNode() const { return numa_.LocalNode(nb_env_cpu_current()); }
	int PfnNode(u64 pfn) const;
	u64 PoolFrames(int node) const;
	const Numa &numa() const { return numa_; }
	unsigned max_order() const { return max_order_; }
	int Stats(int node, struct nbc_node_stats *out);
	int Check();
	void DebugPrint(void (*emit)(void *arg, const char *line), void *arg);
	Segment *FindSeg(u64 pfn) const { return index()->Find(pfn); }
	/* Metadata bytes this core took from the env (descriptors, tables, caches). */
	u64 meta_bytes() const { return meta_bytes_; }

private:
	friend class Compactor; /* compact.cpp: walks and isolates one node's runs */
	int InitNodes(const nbc_bootinfo *bi);
	int InitNode(int n, const nbc_bootinfo *bi);
	/* Segment tables (resize.cpp). */
	SegTable *NewTable(u32 n);
	void FreeTable(SegTable *t, bool with_segments);
	/* Cut r into segments, every frame free; out has room for CountSegments(r). */
	int MakeSegments(const nbc_region &r, Segment **out, u32 *made);
	void FreeSegment(Segment *s);
	/* Index of every segment, sorted by base, read without a lock. */
	SegTable *index() const { return AtomicLoadAcquire(&index_); }
	void Retire(SegTable *t);
	/* Give a filled, unpublished index its O(1) map (seg_table.h); without one (no
	 * metadata) lookups stay correct, by binary search. */
	void MapTable(SegTable *t);
	int InitPcp(unsigned batch);
	void Teardown();
	PcpCache *Pcp(unsigned cpu, int node) const {
		return cpu < cpu_ids_ ? pcp_[cpu * node_ids_ + static_cast<unsigned>(node)] : nullptr;
	}
	__attribute__((always_inline)) int AllocCached(unsigned slot, const nbc_policy *pol,
						       bool want_zeroed, u64 *pfn);
	int AllocSlow(unsigned order, const nbc_policy *pol, unsigned flags, nb_ctx ctx,
		      u64 *pfn, int *node_out, bool *zeroed);
	bool AllocFromNode(int n, unsigned order, unsigned flags, const AllocIntent &in,
			   u64 *pfn, bool *zeroed);
	/* A caller that wants zeroed 2 MiB or more skips the per-CPU caches (whose blocks are
	 * dirty) while node n may have a zeroed block of `order`: counted in zeroed blocks of
	 * 2 MiB or more, as zeroed pieces smaller than the request cannot serve it. Smaller
	 * orders keep their cache and memset: a 4 KiB fault is about the cache's speed. */
	bool PreferNode(int n, unsigned order) const
	{
		return order >= kZeroedSplitFloor &&
		       nodes_[n]->ZeroedHugeFrames() >= (1ull << order);
	}
	/* After a failed SLEEP allocation: wait while the zeroer holds blocks of these nodes;
	 * true if it held any (worth one more try). */
	bool WaitPrezero(const NodeList &nl);
	/* Drain `cpu`'s caches of the nodes in `nodes` (a mask), as that CPU's owner. */
	void DrainCpuOwned(unsigned cpu, u64 nodes) TA_REQ(g_this_cpu);
	/* Every CPU's, from any CPU: may sleep. */
	void DrainCpus(u64 nodes);
	void DrainLocal(u64 nodes);
	template <typename T> T *Meta(usize count, int node);
	template <typename T> void Unmeta(T *p, usize count);

	Numa numa_;
	unsigned max_order_;
	unsigned node_ids_;
	unsigned cpu_ids_;
	Node *nodes_[NBC_MAX_NODES];
	KHeap *heaps_[NBC_MAX_NODES];
	u64 foreign_[NBC_MAX_NODES]; /* atomic: intended here, served elsewhere */
	SegTable *index_;           /* every segment of every node; replaced, never edited */
	SegTable *retired_;         /* tables and removed segments kept until destroy */
	u32 resizing_;              /* 1 while a resize runs: resizes are one at a time */
	PcpCache **pcp_;            /* [cpu][node]; null for absent CPUs and memoryless nodes */
	u64 meta_bytes_;
};

/* Metadata, counted in meta_bytes_ (core.cpp and resize.cpp). */
template <typename T> inline T *Core::Meta(usize count, int node)
{
	T *p = MetaAlloc<T>(count, node, NB_CTX_SLEEP);
	if (p != nullptr)
		meta_bytes_ += sizeof(T) * count;
	return p;
}

template <typename T> inline void Core::Unmeta(T *p, usize count)
{
	if (p == nullptr)
		return;
	MetaFree(p, count);
	meta_bytes_ -= sizeof(T) * count;
}

} /* namespace nb */

#endif /* NB_CORE_IMPL_H */
