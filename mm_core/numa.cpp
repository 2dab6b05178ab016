// SPDX-License-Identifier: GPL-2.0
/*
 * numa.cpp - node table, fallback lists and policy resolution.
 */
#include "numa.h"

namespace nb {

int Numa::Init(u64 mem_mask)
{
	unsigned ids = nb_env_node_ids();
	if (ids == 0 || ids > NBC_MAX_NODES)
		return -NB_EINVAL;
	if (ids < 64 && (mem_mask >> ids) != 0)
		return -NB_EINVAL;
	node_ids_ = ids;
	mem_mask_ = mem_mask;
	cpu_ids_ = nb_env_cpu_ids();
	if (cpu_ids_ == 0)
		return -NB_EINVAL;
	cpu_node_ = MetaAlloc<i32>(cpu_ids_, -1, NB_CTX_SLEEP);
	if (cpu_node_ == nullptr)
		return -NB_ENOMEM;
	for (unsigned c = 0; c < cpu_ids_; c++) {
		int n = nb_env_cpu_node(c);
		cpu_node_[c] = (n >= 0 && static_cast<unsigned>(n) < ids) ? n : -1;
	}
	for (unsigned n = 0; n < ids; n++)
		BuildFallback(static_cast<int>(n));
	return 0;
}

void Numa::Destroy()
{
	MetaFree(cpu_node_, cpu_ids_);
	cpu_node_ = nullptr;
}

void Numa::BuildFallback(int node)
{
	/* Insertion sort by (not-self, distance, id): at most 64 entries, once per node. */
	unsigned n = 0;
	int key[NBC_MAX_NODES];
	for (unsigned m = 0; m < node_ids_; m++) {
		if (!((mem_mask_ >> m) & 1))
			continue;
		int mi = static_cast<int>(m);
		int k = mi == node ? -1 : nb_env_node_distance(node, mi);
		unsigned pos = n;
		/* Strictly greater moves right: equal distances keep id order (stable). */
		while (pos > 0 && key[pos - 1] > k) {
			key[pos] = key[pos - 1];
			fallback_[node][pos] = fallback_[node][pos - 1];
			pos--;
		}
		key[pos] = k;
		fallback_[node][pos] = static_cast<u8>(m);
		n++;
	}
	nr_fallback_[node] = static_cast<u8>(n);
}

int Numa::LocalNode(unsigned cpu) const
{
	int n = CpuNode(cpu);
	if (n >= 0)
		return n;
	return mem_mask_ == 0 ? 0 : static_cast<int>(Ctz64(mem_mask_));
}

const u8 *Numa::Fallback(int node, unsigned *count) const
{
	*count = nr_fallback_[node];
	return fallback_[node];
}

/* The one place that says what an empty mask means (nbc_core.h). The shim passes the uapi's
 * request through unchanged, so this is the rule user space sees (uapi/numabuddy.h). */
int Numa::Normalize(const nbc_policy *in, unsigned cpu, nbc_policy *out) const
{
	*out = in != nullptr ? *in : nbc_policy{NBC_POLICY_LOCAL, -1, 0, 0, 0};
	if (out->mode > NBC_POLICY_INTERLEAVE || out->node >= NBC_MAX_NODES)
		return -NB_EINVAL;
	int bind = out->node >= 0 ? out->node : LocalNode(cpu);
	if (out->nodemask == 0 && out->mode == NBC_POLICY_BIND && bind >= 0)
		out->nodemask = 1ull << bind;
	else if (out->nodemask == 0 && out->mode == NBC_POLICY_INTERLEAVE)
		out->nodemask = mem_mask_;
	return 0;
}

int Numa::Resolve(const nbc_policy *pol, unsigned cpu, NodeList *out) const
{
	int local = LocalNode(cpu);
	u32 mode = pol == nullptr ? static_cast<u32>(NBC_POLICY_LOCAL) : pol->mode;
	int start = local;
	u64 filter = ~0ull;
	out->interleave = false;
	switch (mode) {
	case NBC_POLICY_LOCAL:
		break;
	case NBC_POLICY_PREFERRED:
		if (pol->node >= 0) {
			if (static_cast<unsigned>(pol->node) >= node_ids_)
				return -NB_EINVAL;
			start = pol->node;
		}
		break;
	case NBC_POLICY_BIND:
	case NBC_POLICY_INTERLEAVE: {
		u64 valid = node_ids_ >= 64 ? ~0ull : (1ull << node_ids_) - 1;
		if ((pol->nodemask & valid) == 0 || (pol->nodemask & ~valid) != 0)
			return -NB_EINVAL;
		filter = pol->nodemask & mem_mask_;
		if (filter == 0)
			return -NB_ENOMEM;
		if (mode == NBC_POLICY_INTERLEAVE) {
			/* The cursor lives in the caller's policy and is advanced atomically: two
			 * CPUs sharing one policy still take turns. The API documents the core as
			 * its writer, hence the const_cast. */
			u32 *cursor = const_cast<u32 *>(&pol->il_next);
			u32 turn = __atomic_fetch_add(cursor, 1u, __ATOMIC_RELAXED);
			unsigned skip = turn % PopCount64(filter);
			u64 m = filter;
			for (unsigned i = 0; i < skip; i++)
				m &= m - 1;
			start = static_cast<int>(Ctz64(m));
			out->interleave = true;
			/* Interleave falls back like preferred when its node is full. */
			filter = ~0ull;
		}
		break;
	}
	default:
		return -NB_EINVAL;
	}
	unsigned n;
	const u8 *fb = Fallback(start, &n);
	out->count = 0;
	for (unsigned i = 0; i < n; i++)
		if ((filter >> fb[i]) & 1)
			out->node[out->count++] = fb[i];
	if (out->count == 0)
		return -NB_ENOMEM;
	out->intended = mode == NBC_POLICY_BIND ? out->node[0] : start;
	return 0;
}

} /* namespace nb */
