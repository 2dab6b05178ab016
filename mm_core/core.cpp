// SPDX-License-Identifier: GPL-2.0
/*
 * core.cpp - bring-up in the guide's order (numa_init, buddy_init, kheap_init), teardown,
 * pfn lookup, stats, consistency check and the buddyinfo-like dump.
 */
#include "core.h"

namespace nb {

template <typename T> T *Core::Meta(usize count, int node)
{
	T *p = MetaAlloc<T>(count, node, NB_CTX_SLEEP);
	if (p != nullptr)
		meta_bytes_ += sizeof(T) * count;
	return p;
}

template <typename T> void Core::Unmeta(T *p, usize count)
{
	if (p == nullptr)
		return;
	MetaFree(p, count);
	meta_bytes_ -= sizeof(T) * count;
}

/*
 * Where a region is cut into segments: every multiple of 2^28 frames (so indices fit the
 * descriptor's 28-bit links) and the 4 GiB line (so a segment is all low or all high).
 * Region [0x0ff000, 0x101000) -> [0x0ff000, 0x100000) low + [0x100000, 0x101000) high.
 */
static u64 SegmentEnd(u64 p, u64 end)
{
	u64 next = ((p >> kIndexBits) + 1) << kIndexBits;
	if (p < NB_LOW_LIMIT_PFN && next > NB_LOW_LIMIT_PFN)
		next = NB_LOW_LIMIT_PFN;
	return Min(next, end);
}

static int ValidateBootinfo(const nb_bootinfo *bi, unsigned node_ids)
{
	if (bi == nullptr || (bi->nr_regions > 0 && bi->regions == nullptr) ||
	    bi->max_order > NB_ORDER_LIMIT || bi->pcp_batch > kPcpMaxBatch)
		return -NB_EINVAL;
	for (u32 i = 0; i < bi->nr_regions; i++) {
		const nb_region &r = bi->regions[i];
		/* 2^52 frames = 2^64 bytes: beyond that start+size overflows a physical address. */
		if (r.nr_frames == 0 || r.start_pfn >= (1ull << 52) ||
		    r.nr_frames > (1ull << 52) - r.start_pfn || r.node < 0 ||
		    static_cast<unsigned>(r.node) >= node_ids)
			return -NB_EINVAL;
		for (u32 j = 0; j < i; j++) {
			const nb_region &o = bi->regions[j];
			if (r.start_pfn < o.start_pfn + o.nr_frames &&
			    o.start_pfn < r.start_pfn + r.nr_frames)
				return -NB_EINVAL;
		}
	}
	return 0;
}

int Core::Create(const nb_bootinfo *bi, Core **out)
{
	unsigned node_ids = nb_env_node_ids();
	if (node_ids == 0 || node_ids > NB_MAX_NODES)
		return -NB_EINVAL;
	int rc = ValidateBootinfo(bi, node_ids);
	if (rc != 0)
		return rc;
	u64 mem_mask = 0;
	for (u32 i = 0; i < bi->nr_regions; i++)
		mem_mask |= 1ull << bi->regions[i].node;
	if (mem_mask == 0)
		return -NB_EINVAL;

	Core *c = MetaAlloc<Core>(1, -1, NB_CTX_SLEEP);
	if (c == nullptr)
		return -NB_ENOMEM;
	c->meta_bytes_ = sizeof(Core);
	c->max_order_ = bi->max_order != 0 ? bi->max_order : NB_DEFAULT_MAX_ORDER;
	c->node_ids_ = node_ids;
	c->cpu_ids_ = nb_env_cpu_ids();
	/* numa_init */
	rc = c->numa_.Init(mem_mask);
	if (rc == 0)
		c->meta_bytes_ += sizeof(i32) * c->cpu_ids_;
	/* buddy_init */
	if (rc == 0)
		rc = c->InitNodes(bi);
	if (rc == 0)
		rc = c->InitPcp(bi->pcp_batch != 0 ? bi->pcp_batch : kPcpDefaultBatch);
	/* kheap_init */
	for (unsigned n = 0; rc == 0 && n < node_ids; n++) {
		if (c->nodes_[n] == nullptr)
			continue;
		c->heaps_[n] = c->Meta<KHeap>(1, static_cast<int>(n));
		if (c->heaps_[n] == nullptr)
			rc = -NB_ENOMEM;
		else
			c->heaps_[n]->Init(c, static_cast<int>(n));
	}
	if (rc != 0) {
		c->Teardown();
		return rc;
	}
	*out = c;
	return 0;
}

int Core::InitNodes(const nb_bootinfo *bi)
{
	u32 total = 0;
	for (unsigned n = 0; n < node_ids_; n++) {
		if (!numa_.HasMemory(static_cast<int>(n)))
			continue;
		int rc = InitNode(static_cast<int>(n), bi);
		if (rc != 0)
			return rc;
		total += nodes_[n]->nr_segs();
		/* Long work in SLEEP context: give the CPU away between nodes, lock-free here. */
		nb_env_resched();
	}
	index_ = Meta<Segment *>(total, -1);
	if (index_ == nullptr)
		return -NB_ENOMEM;
	/* Merge the per-node sorted arrays: insertion into a sorted array, once at init. */
	for (unsigned n = 0; n < node_ids_; n++) {
		if (nodes_[n] == nullptr)
			continue;
		for (u32 i = 0; i < nodes_[n]->nr_segs(); i++) {
			Segment *s = nodes_[n]->seg(i);
			u32 pos = nr_index_++;
			while (pos > 0 && index_[pos - 1]->base() > s->base()) {
				index_[pos] = index_[pos - 1];
				pos--;
			}
			index_[pos] = s;
		}
	}
	return 0;
}

int Core::InitNode(int n, const nb_bootinfo *bi)
{
	/* Regions of this node in address order (selection sort: regions are few). */
	u32 nr = 0, segs = 0;
	for (u32 i = 0; i < bi->nr_regions; i++) {
		const nb_region &r = bi->regions[i];
		if (r.node != n)
			continue;
		nr++;
		for (u64 p = r.start_pfn, e = p + r.nr_frames; p < e; p = SegmentEnd(p, e))
			segs++;
	}
	Segment *arr = Meta<Segment>(segs, n);
	Node *node = Meta<Node>(1, n);
	if (arr == nullptr || node == nullptr) {
		Unmeta(arr, segs);
		Unmeta(node, 1);
		return -NB_ENOMEM;
	}
	u32 s = 0;
	u64 last = 0;
	for (u32 k = 0; k < nr; k++) {
		const nb_region *next = nullptr;
		for (u32 i = 0; i < bi->nr_regions; i++) {
			const nb_region &r = bi->regions[i];
			if (r.node == n && (k == 0 || r.start_pfn > last) &&
			    (next == nullptr || r.start_pfn < next->start_pfn))
				next = &r;
		}
		last = next->start_pfn;
		for (u64 p = next->start_pfn, e = p + next->nr_frames; p < e;) {
			u64 pe = SegmentEnd(p, e);
			FrameDesc *desc = Meta<FrameDesc>(pe - p, n);
			if (desc == nullptr) {
				/* Segments so far are initialized; Teardown frees them via the node. */
				node->Init(n, arr, s, segs, max_order_);
				nodes_[n] = node;
				return -NB_ENOMEM;
			}
			arr[s].Init(p, pe - p, n, desc, max_order_);
			arr[s].AddAllFree();
			s++;
			p = pe;
		}
	}
	node->Init(n, arr, s, segs, max_order_);
	nodes_[n] = node;
	return 0;
}

int Core::InitPcp(unsigned batch)
{
	pcp_ = Meta<PcpCache *>(static_cast<usize>(cpu_ids_) * node_ids_, -1);
	if (pcp_ == nullptr)
		return -NB_ENOMEM;
	for (unsigned cpu = 0; cpu < cpu_ids_; cpu++) {
		int home = numa_.CpuNode(cpu);
		if (home < 0)
			continue; /* not a possible CPU: its requests bypass the caches */
		for (unsigned n = 0; n < node_ids_; n++) {
			if (nodes_[n] == nullptr)
				continue;
			PcpCache *pc = Meta<PcpCache>(1, home);
			if (pc == nullptr)
				return -NB_ENOMEM;
			pc->Init(nodes_[n], batch);
			pcp_[cpu * node_ids_ + n] = pc;
		}
	}
	return 0;
}

void Core::Teardown()
{
	for (unsigned n = 0; n < NB_MAX_NODES; n++)
		Unmeta(heaps_[n], 1);
	if (pcp_ != nullptr) {
		for (usize i = 0; i < static_cast<usize>(cpu_ids_) * node_ids_; i++) {
			if (pcp_[i] != nullptr) {
				pcp_[i]->Destroy();
				Unmeta(pcp_[i], 1);
			}
		}
		Unmeta(pcp_, static_cast<usize>(cpu_ids_) * node_ids_);
	}
	Unmeta(index_, nr_index_);
	for (unsigned n = 0; n < NB_MAX_NODES; n++) {
		Node *node = nodes_[n];
		if (node == nullptr)
			continue;
		for (u32 i = 0; i < node->nr_segs(); i++)
			Unmeta(node->seg(i)->desc(), node->seg(i)->frames());
		Unmeta(node->seg(0), node->seg_cap());
		node->Destroy();
		Unmeta(node, 1);
	}
	numa_.Destroy();
	MetaFree(this, 1);
}

int Core::Destroy()
{
	for (unsigned n = 0; n < node_ids_; n++)
		if (heaps_[n] != nullptr)
			heaps_[n]->ReleaseEmpty();
	DrainAll();
	for (unsigned n = 0; n < node_ids_; n++) {
		Node *node = nodes_[n];
		if (node == nullptr)
			continue;
		Guard g(node->lock());
		if (node->FreeFramesLocked() != node->total_frames())
			return -NB_EBUSY;
	}
	Teardown();
	return 0;
}

Segment *Core::FindSeg(u64 pfn) const
{
	return FindSegment(nr_index_, pfn, [this](u32 i) { return index_[i]; });
}

int Core::PfnNode(u64 pfn) const
{
	Segment *s = FindSeg(pfn);
	return s == nullptr ? -1 : s->node();
}

int Core::Stats(int node, struct nb_node_stats *out)
{
	if (out == nullptr || node < 0 || static_cast<unsigned>(node) >= node_ids_)
		return -NB_EINVAL;
	MemZero(out, sizeof(*out));
	out->node = node;
	out->max_order = max_order_;
	out->largest_free_order = -1;
	out->numa_foreign = AtomicLoad(&foreign_[node]);
	Node *nd = nodes_[node];
	if (nd == nullptr)
		return 0;
	{
		Guard g(nd->lock());
		nd->FillStatsLocked(out);
	}
	for (unsigned cpu = 0; cpu < cpu_ids_; cpu++) {
		PcpCache *pc = Pcp(cpu, node);
		if (pc == nullptr)
			continue;
		Guard g(pc->lock());
		out->pcp_frames += pc->frames();
		pc->AddCountersLocked(out);
	}
	return 0;
}

int Core::Check()
{
	/* One lock at a time: this runs on a live pool (debugfs), and blocks move between a
	 * cache and its node meanwhile, so only per-structure invariants are exact here. The
	 * tests check global accounting (free + parked + allocated == total) when quiescent. */
	for (unsigned n = 0; n < node_ids_; n++) {
		Node *nd = nodes_[n];
		if (nd == nullptr)
			continue;
		for (unsigned cpu = 0; cpu < cpu_ids_; cpu++) {
			PcpCache *pc = Pcp(cpu, static_cast<int>(n));
			if (pc == nullptr)
				continue;
			Guard g(pc->lock());
			if (!pc->CheckLocked())
				return -NB_EIO;
		}
		Guard g(nd->lock());
		if (!nd->CheckLocked())
			return -NB_EIO;
		if (nd->FreeFramesLocked() > nd->total_frames()) {
			nb_env_log(NB_LOG_ERR, "nb: node %u: more free frames than frames\n", n);
			return -NB_EIO;
		}
	}
	return 0;
}

void Core::DebugPrint(void (*emit)(void *arg, const char *line), void *arg)
{
	char line[320];
	for (unsigned n = 0; n < node_ids_; n++) {
		struct nb_node_stats st;
		if (nodes_[n] == nullptr || Stats(static_cast<int>(n), &st) != 0)
			continue;
		/* buddyinfo: free block counts per order, orders 0..max_order left to right. */
		int len = nb_env_snprintf(line, sizeof(line), "Node %u, free", n);
		for (unsigned k = 0; k <= max_order_ && len > 0 && len < (int)sizeof(line); k++)
			len += nb_env_snprintf(line + len, sizeof(line) - len, " %llu",
					       (unsigned long long)st.free_blocks[k]);
		if (emit != nullptr)
			emit(arg, line);
		else
			nb_env_log(NB_LOG_INFO, "%s\n", line);
		nb_env_snprintf(line, sizeof(line),
				"Node %u: total %llu free %llu pcp %llu low %llu/%llu largest %d "
				"hit %llu miss %llu foreign %llu il_hit %llu local %llu other %llu "
				"mig_in %llu mig_out %llu fail %llu",
				n, (unsigned long long)st.total_frames,
				(unsigned long long)st.free_frames, (unsigned long long)st.pcp_frames,
				(unsigned long long)st.low_free_frames,
				(unsigned long long)st.low_total_frames, st.largest_free_order,
				(unsigned long long)st.numa_hit, (unsigned long long)st.numa_miss,
				(unsigned long long)st.numa_foreign,
				(unsigned long long)st.interleave_hit,
				(unsigned long long)st.local_node, (unsigned long long)st.other_node,
				(unsigned long long)st.migrate_in, (unsigned long long)st.migrate_out,
				(unsigned long long)st.alloc_fail);
		if (emit != nullptr)
			emit(arg, line);
		else
			nb_env_log(NB_LOG_INFO, "%s\n", line);
	}
}

} /* namespace nb */
