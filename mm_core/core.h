/* SPDX-License-Identifier: GPL-2.0 */
/*
 * core.h - one set of pools: the node table, the nodes, the per-CPU caches, the heaps.
 *
 * nb_core.h's C functions are one-line calls into this class (nb_api.cpp). Built in place on
 * zeroed metadata by Create(); nothing here has a constructor, so there are no global
 * constructors and no hidden allocation.
 */
#ifndef NB_CORE_IMPL_H
#define NB_CORE_IMPL_H

#include "base.h"
#include "kheap.h"
#include "nb_core.h"
#include "node.h"
#include "numa.h"
#include "pcp.h"
#include "segment.h"

namespace nb {

class Core {
public:
	static int Create(const nb_bootinfo *bi, Core **out);
	int Destroy();

	/* alloc.cpp */
	int Alloc(unsigned order, const nb_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
		  int *node);
	int Free(u64 pfn, unsigned order);
	int AllocContig(u64 nr, const nb_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
			int *node);
	int FreeRange(u64 pfn, u64 nr);
	void DrainNode(int node);
	void DrainAll();

	/* migrate.cpp */
	int Migrate(u64 pfn, unsigned order, int old_node, int new_node, nb_ctx ctx, u64 *new_pfn);

	/* kheap.cpp */
	void *KAlloc(usize size, int node, nb_ctx ctx);
	void KFree(void *p);

	/* core.cpp */
	int CurrentNode() const { return numa_.LocalNode(nb_env_cpu_current()); }
	int PfnNode(u64 pfn) const;
	const Numa &numa() const { return numa_; }
	unsigned max_order() const { return max_order_; }
	int Stats(int node, struct nb_node_stats *out);
	int Check();
	void DebugPrint(void (*emit)(void *arg, const char *line), void *arg);
	Segment *FindSeg(u64 pfn) const;
	/* Metadata bytes this core took from the env (descriptors, tables, caches). */
	u64 meta_bytes() const { return meta_bytes_; }

private:
	int InitNodes(const nb_bootinfo *bi);
	int InitNode(int n, const nb_bootinfo *bi);
	int InitPcp(unsigned batch);
	void Teardown();
	PcpCache *Pcp(unsigned cpu, int node) const {
		return cpu < cpu_ids_ ? pcp_[cpu * node_ids_ + static_cast<unsigned>(node)] : nullptr;
	}
	bool AllocFromNode(int n, unsigned order, unsigned flags, unsigned cpu,
			   const AllocIntent &in, u64 *pfn);
	template <typename T> T *Meta(usize count, int node);
	template <typename T> void Unmeta(T *p, usize count);

	Numa numa_;
	unsigned max_order_;
	unsigned node_ids_;
	unsigned cpu_ids_;
	Node *nodes_[NB_MAX_NODES];
	KHeap *heaps_[NB_MAX_NODES];
	u64 foreign_[NB_MAX_NODES]; /* atomic: intended here, served elsewhere */
	Segment **index_;           /* every segment, sorted by base pfn */
	u32 nr_index_;
	PcpCache **pcp_;            /* [cpu][node]; null for absent CPUs and memoryless nodes */
	u64 meta_bytes_;
};

} /* namespace nb */

#endif /* NB_CORE_IMPL_H */
