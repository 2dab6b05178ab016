/* SPDX-License-Identifier: GPL-2.0 */
/*
 * numa.h - the node table: which nodes exist and have memory, each CPU's node, and per node
 * the fallback order (nodes with memory by distance), built once at init, never per request.
 * Turns an nbc_policy into the ordered list of nodes to try.
 */
#ifndef NB_NUMA_H
#define NB_NUMA_H

#include "base.h"
#include "nbc_core.h"

namespace nb {

/* What a policy asks for: nodes to try in order, and which node counts as "intended" for
 * numastat (hit/miss/foreign). */
struct NodeList {
	u8 node[NBC_MAX_NODES];
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
		return node >= 0 && node < NBC_MAX_NODES && ((mem_mask_ >> node) & 1);
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
	/* The allocation fast path's question, asked before any list is built: is the policy's
	 * first choice one node with memory (LOCAL, PREFERRED, a one-node BIND)? Then that node
	 * is also the "intended" one of Resolve. Else -1: INTERLEAVE, a wider BIND, a first
	 * choice without memory, a malformed policy; Resolve decides those. cpu_node: the
	 * requesting CPU's (CpuNode), what LOCAL names. */
	int FirstChoice(const nbc_policy *pol, int cpu_node) const
	{
		int n = cpu_node;
		if (pol != nullptr && pol->mode != NBC_POLICY_LOCAL) {
			u64 m = pol->nodemask;
			if (pol->mode == NBC_POLICY_PREFERRED && pol->node >= 0)
				n = pol->node;
			else if (pol->mode == NBC_POLICY_BIND && m != 0 && (m & (m - 1)) == 0)
				n = static_cast<int>(Ctz64(m));
			else if (pol->mode != NBC_POLICY_PREFERRED)
				return -1;
		}
		return HasMemory(n) ? n : -1;
	}
	/* Resolve a policy for a request from `cpu`; -EINVAL for a malformed policy, -ENOMEM
	 * when it names no node with memory. Advances the interleave cursor. */
	int Resolve(const nbc_policy *pol, unsigned cpu, NodeList *out) const;
	/* nbc_policy_normalize for a request from `cpu`: fills an empty BIND/INTERLEAVE mask. */
	int Normalize(const nbc_policy *in, unsigned cpu, nbc_policy *out) const;

private:
	void BuildFallback(int node);

	unsigned node_ids_;
	unsigned cpu_ids_;
	u64 mem_mask_;
	i32 *cpu_node_; /* cpu_ids_ entries, metadata */
	u8 fallback_[NBC_MAX_NODES][NBC_MAX_NODES];
	u8 nr_fallback_[NBC_MAX_NODES];
};

} /* namespace nb */

#endif /* NB_NUMA_H */
