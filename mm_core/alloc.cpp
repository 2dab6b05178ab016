// SPDX-License-Identifier: GPL-2.0
/*
 * alloc.cpp - the allocation and free paths: policy -> node list -> per-CPU cache or node.
 *
 * The fast path (AllocCached) asks the policy for its first node before building any list:
 * LOCAL, PREFERRED and a one-node BIND name one node, and a hit in this CPU's cache of it is
 * the whole allocation, with no lock taken. Everything else is the slow path, two passes over
 * the policy's nodes, as Linux's fast and slow paths: the first takes what is free; the
 * second drains the per-CPU caches of each node before trying it again (parked blocks may
 * coalesce into the order we need). Only then -ENOMEM.
 */
#include "core.h"

namespace nb {

inline int Core::AllocCached(unsigned slot, const nbc_policy *pol, bool want_zeroed, u64 *pfn)
{
	CpuOwner own;
	int cpu_node = numa_.CpuNode(own.cpu());
	int n = numa_.FirstChoice(pol, cpu_node);
	PcpCache *pc = n >= 0 ? Pcp(own.cpu(), n) : nullptr;
	if (pc == nullptr || (want_zeroed && PreferNode(n, PcpOrder(slot))))
		return -1;
	AllocIntent in = {n, cpu_node, false};
	return pc->AllocOwned(slot, in, pfn) ? n : -1;
}

bool Core::AllocFromNode(int n, unsigned order, unsigned flags, const AllocIntent &in, u64 *pfn,
			 bool *zeroed)
{
	if (zeroed != nullptr)
		*zeroed = false; /* whatever an earlier node's attempt left there */
	int slot = PcpSlot(order);
	if (slot >= 0 && !(flags & (NBC_AF_NOCACHE | NBC_AF_LOW4G)) &&
	    !(zeroed != nullptr && PreferNode(n, order))) {
		CpuOwner own;
		PcpCache *pc = Pcp(own.cpu(), n);
		if (pc != nullptr)
			return pc->AllocOwned(static_cast<unsigned>(slot), in, pfn);
	}
	Node *node = nodes_[n];
	Guard g(node->lock());
	if (!node->AllocLocked(order, flags, FrameState::kAlloc, pfn, zeroed))
		return false;
	node->CountLocked(in);
	return true;
}

/* The per-CPU cache first; AllocSlow validates whatever the cache does not serve. */
int Core::Alloc(unsigned order, const nbc_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
		int *node_out, bool *zeroed)
{
	int slot = PcpSlot(order);
	if (slot >= 0 && flags == 0 && pfn != nullptr && order <= max_order_) {
		int n = AllocCached(static_cast<unsigned>(slot), pol, zeroed != nullptr, pfn);
		if (n >= 0) {
			if (node_out != nullptr)
				*node_out = n;
			if (zeroed != nullptr)
				*zeroed = false; /* a per-CPU cache's blocks are dirty */
			return 0;
		}
	}
	return AllocSlow(order, pol, flags, ctx, pfn, node_out, zeroed);
}

bool Core::WaitPrezero(const NodeList &nl)
{
	bool held = false;
	for (unsigned i = 0; i < nl.count; i++) {
		/* The zeroer holds a block for one memset of at most 2 MiB. */
		while (nodes_[nl.node[i]]->prezero_in_flight() != 0) {
			held = true;
			nb_env_resched();
		}
	}
	return held;
}

/* Out of line: the fast path above stays small. */
__attribute__((noinline)) int Core::AllocSlow(unsigned order, const nbc_policy *pol,
					       unsigned flags, nb_ctx ctx, u64 *pfn, int *node_out,
					       bool *zeroed)
{
	if (order > max_order_ || (flags & ~(NBC_AF_LOW4G | NBC_AF_NOCACHE)) != 0 || pfn == nullptr)
		return -NB_EINVAL;
	if (zeroed != nullptr)
		*zeroed = false;
	unsigned cpu = nb_env_cpu_current();
	NodeList nl;
	int rc = numa_.Resolve(pol, cpu, &nl);
	if (rc != 0)
		return rc;
	AllocIntent in = {nl.intended, numa_.CpuNode(cpu), nl.interleave};
	/* Pass 2 only when pass 1 failed while the zeroer held blocks we waited for: a block
	 * being zeroed is free memory that must not make an allocation fail. */
	for (int pass = 0; pass < 2 || (pass == 2 && ctx == NB_CTX_SLEEP && WaitPrezero(nl));
	     pass++) {
		for (unsigned i = 0; i < nl.count; i++) {
			int n = nl.node[i];
			/* No shared "frames parked" counter to skip this: it would cost an atomic
			 * on every cached alloc and free, and this is the slow path. Other CPUs'
			 * caches only where we may sleep (as Linux drains them only in direct
			 * reclaim); an atomic caller gets its own CPU's. */
			if (pass >= 1) {
				if (ctx == NB_CTX_SLEEP)
					DrainNode(n);
				else
					DrainLocal(1ull << n);
			}
			if (AllocFromNode(n, order, flags, in, pfn, zeroed)) {
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
	int slot = PcpSlot(order);
	if (slot >= 0) {
		CpuOwner own;
		PcpCache *pc = Pcp(own.cpu(), seg->node());
		if (pc != nullptr) {
			/* The claim (one CAS) is what refuses a double free, racing or not. */
			if (!seg->ClaimCached(pfn, order))
				return -NB_EINVAL;
			pc->PushOwned(static_cast<unsigned>(slot), pfn);
			return 0;
		}
	}
	Node *node = nodes_[seg->node()];
	Guard g(node->lock());
	return node->FreeLocked(seg, pfn, order, FrameState::kAlloc);
}

int Core::AllocContig(u64 nr, const nbc_policy *pol, unsigned flags, nb_ctx ctx, u64 *pfn,
		      int *node_out, bool *zeroed)
{
	if (nr == 0 || nr > (1ull << max_order_) || pfn == nullptr)
		return -NB_EINVAL;
	unsigned order = Log2Ceil(nr);
	u64 p;
	int n;
	bool z = false;
	int rc = Alloc(order, pol, flags | NBC_AF_NOCACHE, ctx, &p, &n, zeroed != nullptr ? &z : nullptr);
	if (rc != 0)
		return rc;
	if (nr != (1ull << order)) {
		Segment *seg = FindSeg(p);
		Guard g(nodes_[n]->lock());
		seg->TrimAlloc(p, order, nr, z);
	}
	if (zeroed != nullptr)
		*zeroed = z;
	*pfn = p;
	if (node_out != nullptr)
		*node_out = n;
	return 0;
}

/* The pieces of [pfn, pfn+nr): at each step the largest aligned block that fits. For a range
 * from nbc_alloc_contig these are exactly the pieces TrimAlloc kept. */
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

void Core::DrainCpuOwned(unsigned cpu, u64 nodes)
{
	for (u64 m = nodes; m != 0; m &= m - 1) {
		PcpCache *pc = Pcp(cpu, static_cast<int>(Ctz64(m)));
		if (pc != nullptr)
			pc->DrainAllOwned();
	}
}

void Core::DrainLocal(u64 nodes)
{
	CpuOwner own;
	DrainCpuOwned(own.cpu(), nodes);
}

void Core::DrainCpus(u64 nodes)
{
	struct Job {
		Core *core;
		unsigned cpu;
		u64 nodes;
	};
	for (unsigned cpu = 0; cpu < cpu_ids_; cpu++) {
		/* An empty cache needs no visit (a relaxed count: a block parked before our call
		 * is seen, one parked after it may stay, as with any drain). */
		bool parked = false;
		for (u64 m = nodes; m != 0 && !parked; m &= m - 1) {
			PcpCache *pc = Pcp(cpu, static_cast<int>(Ctz64(m)));
			parked = pc != nullptr && pc->frames() != 0;
		}
		if (!parked)
			continue;
		Job job = {this, cpu, nodes};
		nb_env_cpu_run_on(cpu, [](void *arg) {
			OwnedByRunOn();
			Job *j = static_cast<Job *>(arg);
			j->core->DrainCpuOwned(j->cpu, j->nodes);
		}, &job);
	}
}

void Core::DrainNode(int n)
{
	DrainCpus(1ull << n);
}

void Core::DrainAll()
{
	DrainCpus(numa_.mem_mask());
}

/*
 * A freed block parks in the freeing CPU's cache, where it cannot merge with its buddies. A
 * free that returned at least a 2 MiB block's worth of frames in at least as many blocks as
 * this CPU has caches drains this CPU's caches: the blocks it parked are there (a free that
 * moved CPU halfway leaves the rest for a later drain), and the drain costs at most about
 * one more node-lock round per block. Atomic-safe: no other CPU is visited.
 */
void Core::DrainAfterFree(u64 frames, u64 blocks)
{
	if (frames >= (1ull << kPcpHugeOrder) && blocks >= PopCount64(numa_.mem_mask()))
		DrainLocal(numa_.mem_mask());
}

} /* namespace nb */
