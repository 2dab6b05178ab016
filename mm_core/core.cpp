// SPDX-License-Identifier: GPL-2.0
/*
 * core.cpp - bring-up in the guide's order (numa_init, buddy_init, kheap_init), teardown,
 * pfn lookup, stats, consistency check and the buddyinfo-like dump.
 */
#include "core.h"

namespace nb {

static int ValidateBootinfo(const nbc_bootinfo *bi, unsigned node_ids)
{
	if (bi == nullptr || (bi->nr_regions > 0 && bi->regions == nullptr) ||
	    bi->max_order > NBC_ORDER_LIMIT || bi->pcp_batch > kPcpMaxBatch)
		return -NB_EINVAL;
	for (u32 i = 0; i < bi->nr_regions; i++) {
		const nbc_region &r = bi->regions[i];
		/* 2^52 frames = 2^64 bytes: beyond that start+size overflows a physical address. */
		if (r.nr_frames == 0 || r.start_pfn >= (1ull << 52) ||
		    r.nr_frames > (1ull << 52) - r.start_pfn || r.node < 0 ||
		    static_cast<unsigned>(r.node) >= node_ids)
			return -NB_EINVAL;
		for (u32 j = 0; j < i; j++) {
			const nbc_region &o = bi->regions[j];
			if (r.start_pfn < o.start_pfn + o.nr_frames &&
			    o.start_pfn < r.start_pfn + r.nr_frames)
				return -NB_EINVAL;
		}
	}
	return 0;
}

int Core::Create(const nbc_bootinfo *bi, Core **out)
{
	unsigned node_ids = nb_env_node_ids();
	if (node_ids == 0 || node_ids > NBC_MAX_NODES)
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
	c->max_order_ = bi->max_order != 0 ? bi->max_order : NBC_DEFAULT_MAX_ORDER;
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

int Core::InitNodes(const nbc_bootinfo *bi)
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
	SegTable *ix = NewTable(total);
	if (ix == nullptr)
		return -NB_ENOMEM;
	/* Merge the per-node sorted arrays: insertion into a sorted array, once at init. */
	for (unsigned n = 0; n < node_ids_; n++) {
		if (nodes_[n] == nullptr)
			continue;
		for (u32 i = 0; i < nodes_[n]->nr_segs(); i++) {
			Segment *s = nodes_[n]->seg(i);
			u32 pos = ix->n++;
			while (pos > 0 && ix->seg[pos - 1]->base() > s->base()) {
				ix->seg[pos] = ix->seg[pos - 1];
				pos--;
			}
			ix->seg[pos] = s;
		}
	}
	MapTable(ix);
	AtomicStoreRelease(&index_, ix);
	return 0;
}

int Core::InitNode(int n, const nbc_bootinfo *bi)
{
	/* Regions of this node in address order (selection sort: regions are few). */
	u32 nr = 0, segs = 0;
	for (u32 i = 0; i < bi->nr_regions; i++) {
		if (bi->regions[i].node != n)
			continue;
		nr++;
		segs += CountSegments(bi->regions[i]);
	}
	SegTable *t = NewTable(segs);
	Node *node = Meta<Node>(1, n);
	if (t == nullptr || node == nullptr) {
		FreeTable(t, false);
		Unmeta(node, 1);
		return -NB_ENOMEM;
	}
	int rc = 0;
	u64 last = 0;
	for (u32 k = 0; k < nr && rc == 0; k++) {
		const nbc_region *next = nullptr;
		for (u32 i = 0; i < bi->nr_regions; i++) {
			const nbc_region &r = bi->regions[i];
			if (r.node == n && (k == 0 || r.start_pfn > last) &&
			    (next == nullptr || r.start_pfn < next->start_pfn))
				next = &r;
		}
		last = next->start_pfn;
		u32 made = 0;
		rc = MakeSegments(*next, t->seg + t->n, &made);
		t->n += made;
	}
	/* On failure the segments made so far are in the node's table: Teardown frees them. */
	node->Init(n, t, max_order_);
	nodes_[n] = node;
	return rc;
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
			pc->Init(nodes_[n], &index_, batch);
			pcp_[cpu * node_ids_ + n] = pc;
		}
	}
	return 0;
}

void Core::Teardown()
{
	for (unsigned n = 0; n < NBC_MAX_NODES; n++)
		Unmeta(heaps_[n], 1);
	if (pcp_ != nullptr) {
		for (usize i = 0; i < static_cast<usize>(cpu_ids_) * node_ids_; i++) {
			Unmeta(pcp_[i], 1);
		}
		Unmeta(pcp_, static_cast<usize>(cpu_ids_) * node_ids_);
	}
	FreeTable(index_, false);
	for (unsigned n = 0; n < NBC_MAX_NODES; n++) {
		Node *node = nodes_[n];
		if (node == nullptr)
			continue;
		FreeTable(node->table(), true);
		node->Destroy();
		Unmeta(node, 1);
	}
	while (retired_ != nullptr) {
		SegTable *t = retired_;
		retired_ = t->retired;
		FreeTable(t, t->owns_segs);
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

void Core::MapTable(SegTable *t)
{
	if (t->n == 0)
		return;
	unsigned shift;
	u64 count = t->GranuleCount(&shift);
	u32 *map = Meta<u32>(count, -1);
	if (map != nullptr)
		t->SetGranules(map, count, shift);
}

int Core::PfnNode(u64 pfn) const
{
	Segment *s = FindSeg(pfn);
	return s == nullptr ? -1 : s->node();
}

u64 Core::PoolFrames(int node) const
{
	if (node < 0 || static_cast<unsigned>(node) >= node_ids_ || nodes_[node] == nullptr)
		return 0;
	return nodes_[node]->total_frames();
}

int Core::Stats(int node, struct nbc_node_stats *out)
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
		out->pcp_frames += pc->frames();
		pc->AddCounters(out);
	}
	return 0;
}

i64 Core::Prezero(int node, u64 max_frames, nb_ctx ctx)
{
	if (node < 0 || static_cast<unsigned>(node) >= node_ids_ || nodes_[node] == nullptr ||
	    max_frames == 0)
		return -NB_EINVAL;
	Node *nd = nodes_[node];
	/* 2 MiB at most: an allocation that needs the block waits at most one such memset. */
	unsigned cap = Min(kPrezeroMaxOrder, Log2Floor(max_frames));
	u64 pfn;
	int order;
	{
		Guard g(nd->lock());
		order = nd->TakeDirtyLocked(cap, &pfn);
	}
	if (order < 0)
		return 0;
	u64 nr = 1ull << order;
	for (u64 done = 0; done < nr;) {
		u64 n = Min(nr - done, kPrezeroChunkFrames);
		MemZero(nb_env_frame_addr(pfn + done), n * NBC_FRAME_SIZE);
		done += n;
		if (ctx == NB_CTX_SLEEP && done < nr)
			nb_env_resched();
	}
	Guard g(nd->lock());
	nd->PrezeroDoneLocked(pfn, static_cast<unsigned>(order));
	return static_cast<i64>(nr);
}

int Core::Check()
{
	/* One lock at a time: this runs on a live pool (debugfs), and blocks move between a
	 * cache and its node meanwhile, so only per-structure invariants are exact here. The
	 * tests check global accounting (free + parked + allocated == total) when quiescent.
	 * A CPU's caches are checked on that CPU, as their owner: this may sleep. */
	struct Job {
		Core *core;
		unsigned cpu;
		bool ok;
	};
	for (unsigned cpu = 0; cpu < cpu_ids_; cpu++) {
		if (numa_.CpuNode(cpu) < 0)
			continue; /* no caches */
		Job job = {this, cpu, true};
		nb_env_cpu_run_on(cpu, [](void *arg) {
			OwnedByRunOn();
			Job *j = static_cast<Job *>(arg);
			for (unsigned n = 0; n < j->core->node_ids_ && j->ok; n++) {
				PcpCache *pc = j->core->Pcp(j->cpu, static_cast<int>(n));
				j->ok = pc == nullptr || pc->CheckOwned();
			}
		}, &job);
		if (!job.ok)
			return -NB_EIO;
	}
	for (unsigned n = 0; n < node_ids_; n++) {
		Node *nd = nodes_[n];
		if (nd == nullptr)
			continue;
		Guard g(nd->lock());
		if (!nd->CheckLocked())
			return -NB_EIO;
		if (nd->FreeFramesLocked() > nd->total_frames() ||
		    nd->ZeroedFrames() > nd->FreeFramesLocked()) {
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
		struct nbc_node_stats st;
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
				"mig_in %llu mig_out %llu fail %llu zeroed %llu",
				n, (unsigned long long)st.total_frames,
				(unsigned long long)st.free_frames, (unsigned long long)st.pcp_frames,
				(unsigned long long)st.low_free_frames,
				(unsigned long long)st.low_total_frames, st.largest_free_order,
				(unsigned long long)st.numa_hit, (unsigned long long)st.numa_miss,
				(unsigned long long)st.numa_foreign,
				(unsigned long long)st.interleave_hit,
				(unsigned long long)st.local_node, (unsigned long long)st.other_node,
				(unsigned long long)st.migrate_in, (unsigned long long)st.migrate_out,
				(unsigned long long)st.alloc_fail,
				(unsigned long long)st.zeroed_frames);
		if (emit != nullptr)
			emit(arg, line);
		else
			nb_env_log(NB_LOG_INFO, "%s\n", line);
	}
}

} /* namespace nb */
