// SPDX-License-Identifier: GPL-2.0
/*
 * alloc.cpp - the allocation and free paths: policy -> node list -> per-CPU cache or node.
 *
 * Two passes over the policy's nodes, as Linux's fast and slow paths: the first takes what
 * is free; the second drains the per-CPU caches of each node before trying it again (parked
 * blocks may coalesce into the order we need). Only then -ENOMEM.
 */
#include "core.h"

namespace nb {

bool Core::AllocFromNode(int n, unsigned order, unsigned flags, unsigned cpu,
			 const AllocIntent &in, u64 *pfn)
{
	Node *node = nodes_[n];
	int slot = PcpSlot(order);
	PcpCache *pc = (slot >= 0 && !(flags & (NB_AF_NOCACHE | NB_AF_LOW4G))) ? Pcp(cpu, n)
									       : nullptr;
	if (pc != nullptr) {
		Guard g(pc->lock());
		return pc->AllocLocked(static_cast<unsigned>(slot), in, pfn);
	}
	Guard g(node->lock());
	if (!node->AllocLocked(order, flags, FrameState::kAlloc, pfn))
		return false;
	node->CountLocked(in);
	return true;
}

int Core::Alloc(unsigned order, const nb_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
		int *node_out)
{
	(void)ctx; /* every path below is atomic-safe: spinlocks only, no metadata allocation */
	if (order > max_order_ || (flags & ~(NB_AF_LOW4G | NB_AF_NOCACHE)) != 0 || pfn == nullptr)
		return -NB_EINVAL;
	unsigned cpu = nb_env_cpu_current();
	NodeList nl;
	int rc = numa_.Resolve(pol, cpu, &nl);
	if (rc != 0)
		return rc;
	AllocIntent in = {nl.intended, numa_.CpuNode(cpu), nl.interleave};
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < nl.count; i++) {
			int n = nl.node[i];
			/* No shared "frames parked" counter to skip this: it would cost an atomic
			 * on every cached alloc and free, and this is the slow path. */
			if (pass == 1)
				DrainNode(n);
			if (AllocFromNode(n, order, flags, cpu, in, pfn)) {
				if (n != in.intended && in.intended >= 0)
					AtomicAdd(&foreign_[in.intended], u64{1});
				if (node_out != nullptr)
					*node_out = n;
				return 0;
			}
			if (pass == 0)
				nodes_[n]->CountFail();
		}
	}
	return -NB_ENOMEM;
}

int Core::Free(u64 pfn, unsigned order)
{
	if (order > max_order_)
		return -NB_EINVAL;
	Segment *seg = FindSeg(pfn);
	if (seg == nullptr)
		return -NB_EINVAL;
	Node *node = nodes_[seg->node()];
	int slot = PcpSlot(order);
	PcpCache *pc = slot >= 0 ? Pcp(nb_env_cpu_current(), seg->node()) : nullptr;
	if (pc != nullptr) {
		Guard g(pc->lock());
		if (!seg->ClaimCached(pfn, order))
			return -NB_EINVAL;
		pc->PushLocked(static_cast<unsigned>(slot), pfn);
		return 0;
	}
	Guard g(node->lock());
	return node->FreeLocked(seg, pfn, order, FrameState::kAlloc);
}

int Core::AllocContig(u64 nr, const nb_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
		      int *node_out)
{
	if (nr == 0 || nr > (1ull << max_order_) || pfn == nullptr)
		return -NB_EINVAL;
	unsigned order = Log2Ceil(nr);
	u64 p;
	int n;
	int rc = Alloc(order, pol, flags | NB_AF_NOCACHE, ctx, &p, &n);
	if (rc != 0)
		return rc;
	if (nr != (1ull << order)) {
		Segment *seg = FindSeg(p);
		Guard g(nodes_[n]->lock());
		seg->TrimAlloc(p, order, nr);
	}
	*pfn = p;
	if (node_out != nullptr)
		*node_out = n;
	return 0;
}

/* The pieces of [pfn, pfn+nr): at each step the largest aligned block that fits. For a range
 * from nb_alloc_contig these are exactly the pieces TrimAlloc kept. */
static unsigned PieceOrder(u64 p, u64 end, unsigned max_order)
{
	unsigned k = p == 0 ? max_order : Min(max_order, Ctz64(p));
	while (p + (1ull << k) > end)
		k--;
	return k;
}

int Core::FreeRange(u64 pfn, u64 nr)
{
	Segment *seg = FindSeg(pfn);
	if (nr == 0 || seg == nullptr || nr > seg->end() - pfn)
		return -NB_EINVAL;
	u64 end = pfn + nr;
	Guard g(nodes_[seg->node()]->lock());
	/* All or nothing: check every piece before freeing any. */
	for (u64 p = pfn; p < end;) {
		unsigned k = PieceOrder(p, end, max_order_);
		if (!seg->IsHead(p, k, FrameState::kAlloc))
			return -NB_EINVAL;
		p += 1ull << k;
	}
	int rc = 0;
	for (u64 p = pfn; p < end;) {
		unsigned k = PieceOrder(p, end, max_order_);
		int r = seg->Free(p, k, FrameState::kAlloc);
		if (r != 0 && rc == 0)
			rc = r; /* only a racing double free can get here */
		p += 1ull << k;
	}
	return rc;
}

void Core::DrainNode(int n)
{
	for (unsigned cpu = 0; cpu < cpu_ids_; cpu++) {
		PcpCache *pc = Pcp(cpu, n);
		if (pc == nullptr)
			continue;
		Guard g(pc->lock());
		pc->DrainAllLocked();
	}
}

void Core::DrainAll()
{
	for (unsigned n = 0; n < node_ids_; n++)
		if (nodes_[n] != nullptr)
			DrainNode(static_cast<int>(n));
}

} /* namespace nb */
