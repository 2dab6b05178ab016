// SPDX-License-Identifier: GPL-2.0
/*
 * nb_pool.c - reserve the pools at load and give them back at unload.
 *
 * Each node's pool is taken from the page allocator in the largest chunks it hands out (4 MiB
 * on x86-64), strictly on that node (__GFP_THISNODE), without reclaim storms (__GFP_NORETRY)
 * and only while the node keeps a safety margin of free memory: the page allocator's
 * watermarks still apply, unlike alloc_contig_range, so a pool can never drain a node.
 * Chunks that the page allocator returns physically adjacent are merged into regions, so the
 * buddy allocator above can build blocks larger than the kernel's own maximum order.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>

#include "nb_compat.h"
#include "nb_internal.h"

/* A node keeps at least this share of its memory (1/8) free after its pool is taken. */
#define NB_NODE_MARGIN_SHIFT 3

static unsigned long nb_node_free_pages(int nid)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	unsigned long free = 0;
	int z;

	for (z = 0; z < MAX_NR_ZONES; z++)
		free += zone_page_state(&pgdat->node_zones[z], NR_FREE_PAGES);
	return free;
}

static int nb_cmp_chunk(const void *a, const void *b)
{
	unsigned long pa = page_to_pfn(*(struct page *const *)a);
	unsigned long pb = page_to_pfn(*(struct page *const *)b);

	return pa < pb ? -1 : pa > pb;
}

/* Can node nid give want_pages and still keep its margin? Says why not in the log. */
static bool nb_node_can_spare(int nid, unsigned long want_pages)
{
	unsigned long free = nb_node_free_pages(nid);
	unsigned long keep = node_present_pages(nid) >> NB_NODE_MARGIN_SHIFT;

	if (free >= keep && free - keep >= want_pages)
		return true;
	pr_err("numabuddy: node %d cannot spare a %lu MiB pool: %lu MiB free, %lu MiB must stay free\n",
	       nid, want_pages >> (20 - PAGE_SHIFT), free >> (20 - PAGE_SHIFT),
	       keep >> (20 - PAGE_SHIFT));
	return false;
}

static int nb_reserve_node(struct nb_pools *p, int nid, unsigned long want_chunks)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN | __GFP_NORETRY;
	unsigned long chunk_pages = 1UL << p->chunk_order;
	unsigned long i;

	if (!nb_node_can_spare(nid, want_chunks * chunk_pages))
		return -ENOMEM;
	for (i = 0; i < want_chunks; i++) {
		struct page *page = alloc_pages_node(nid, gfp, p->chunk_order);

		if (!page || page_to_nid(page) != nid) {
			if (page)
				__free_pages(page, p->chunk_order);
			pr_err("numabuddy: node %d: page allocator refused chunk %lu of %lu (%lu MiB pool)\n",
			       nid, i + 1, want_chunks,
			       (want_chunks * chunk_pages) >> (20 - PAGE_SHIFT));
			return -ENOMEM;
		}
		p->chunks[p->nr_chunks++] = page;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	p->frames_per_node[nid] = want_chunks * chunk_pages;
	return 0;
}

/* Merge sorted, physically adjacent chunks of one node into regions. */
static int nb_build_regions(struct nb_pools *p)
{
	unsigned long chunk_pages = 1UL << p->chunk_order;
	unsigned long i;

	sort(p->chunks, p->nr_chunks, sizeof(*p->chunks), nb_cmp_chunk, NULL);
	p->regions = kvcalloc(p->nr_chunks, sizeof(*p->regions), GFP_KERNEL);
	if (!p->regions)
		return -ENOMEM;
	p->nr_regions = 0;
	for (i = 0; i < p->nr_chunks; i++) {
		unsigned long pfn = page_to_pfn(p->chunks[i]);
		int nid = page_to_nid(p->chunks[i]);
		struct nb_region *last = p->nr_regions ? &p->regions[p->nr_regions - 1] : NULL;

		if (last && last->node == nid && last->start_pfn + last->nr_frames == pfn) {
			last->nr_frames += chunk_pages;
			continue;
		}
		p->regions[p->nr_regions++] = (struct nb_region){
			.start_pfn = pfn, .nr_frames = chunk_pages, .node = nid,
		};
	}
	return 0;
}

int nb_pools_reserve(struct nb_pools *p, unsigned long mb_per_node, u64 node_mask)
{
	unsigned long chunk_pages, want_chunks, max_chunks;
	int nid, nodes = 0, err;

	memset(p, 0, sizeof(*p));
	p->chunk_order = min_t(unsigned int, NB_KERNEL_MAX_ORDER, 10);
	chunk_pages = 1UL << p->chunk_order;
	want_chunks = DIV_ROUND_UP(mb_per_node << (20 - PAGE_SHIFT), chunk_pages);
	if (!want_chunks) {
		pr_err("numabuddy: pool_mb=0: every node needs a pool of at least 1 MiB\n");
		return -EINVAL;
	}

	/* Refuse an impossible request before allocating anything for it. */
	for_each_node_state(nid, N_MEMORY) {
		if (nid >= NB_MAX_NODES || !(node_mask & BIT_ULL(nid)))
			continue;
		if (!nb_node_can_spare(nid, want_chunks * chunk_pages))
			return -ENOMEM;
		nodes++;
	}
	if (!nodes) {
		pr_err("numabuddy: no node with memory is selected (nodes=0x%llx)\n", node_mask);
		return -ENODEV;
	}
	max_chunks = want_chunks * nodes;
	p->chunks = kvcalloc(max_chunks, sizeof(*p->chunks), GFP_KERNEL);
	if (!p->chunks)
		return -ENOMEM;

	for_each_node_state(nid, N_MEMORY) {
		if (nid >= NB_MAX_NODES || !(node_mask & BIT_ULL(nid)))
			continue;
		err = nb_reserve_node(p, nid, want_chunks);
		if (err)
			goto fail;
	}
	err = nb_build_regions(p);
	if (err)
		goto fail;
	return 0;
fail:
	nb_pools_release(p);
	return err;
}

void nb_pools_release(struct nb_pools *p)
{
	unsigned long i;

	for (i = 0; i < p->nr_chunks; i++) {
		__free_pages(p->chunks[i], p->chunk_order);
		cond_resched();
	}
	kvfree(p->chunks);
	kvfree(p->regions);
	memset(p, 0, sizeof(*p));
}
