/* SPDX-License-Identifier: GPL-2.0 */
/*
 * numa.h - the node table: which nodes exist and have memory, each CPU's node, and per node
 * the fallback order (nodes with memory by distance), built once at init, never per request.
 * Turns an nb_policy into the ordered list of nodes to try.
 */
#ifndef NB_NUMA_H
#define NB_NUMA_H

#include "base.h"
#include "nb_core.h"

namespace nb {

/* What a policy asks for: nodes to try in order, and which node counts as "intended" for
 * numastat (hit/miss/foreign). */
struct NodeList {
	u8 node[NB_MAX_NODES];
	unsigned count;
	int intended;
	bool interleave;
};

class Numa {
public:
	/* On zeroed memory. `mem_mask`: nodes that have pool regions. SLEEP context. */
	int Init(u64 mem_mask);
	void Destroy();

	unsigned node_ids() const { return node_ids_; }
	u64 mem_mask() const { return mem_mask_; }
	bool HasMemory(int node) const {
		return node >= 0 && node < NB_MAX_NODES && ((mem_mask_ >> node) & 1);
	}
	/* Node of `cpu`; -1 for an impossible or unknown CPU. */
	int CpuNode(unsigned cpu) const {
		return cpu < cpu_ids_ ? cpu_node_[cpu] : -1;
	}
	/* The guide's current_cpu_node: the CPU's node, else the first node with memory. */
	int LocalNode(unsigned cpu) const;
	/* Fallback order of `node`: nodes with memory, itself first, then by distance, ties by
	 * id. */
	const u8 *Fallback(int node, unsigned *count) const;
	/* Resolve a policy for a request from `cpu`; -EINVAL for a malformed policy, -ENOMEM
	 * when it names no node with memory. Advances the interleave cursor. */
	int Resolve(const nb_policy *pol, unsigned cpu, NodeList *out) const;

private:
	void BuildFallback(int node);

	unsigned node_ids_;
	unsigned cpu_ids_;
	u64 mem_mask_;
	i32 *cpu_node_; /* cpu_ids_ entries, metadata */
	u8 fallback_[NB_MAX_NODES][NB_MAX_NODES];
	u8 nr_fallback_[NB_MAX_NODES];
};

} /* namespace nb */

#endif /* NB_NUMA_H */
