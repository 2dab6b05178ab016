// SPDX-License-Identifier: GPL-2.0
/*
 * nb_pool.c - take the pools from the page allocator and give them back.
 *
 * A pool is made of pieces of two kinds:
 *  - aligned runs of the core's largest block (2^max_order pages: 1 GiB at the default
 *    max_order 18, 256 MiB at 16) taken on purpose with alloc_contig_range when the
 *    aligned_runs parameter asks for them: the kernel migrates movable pages out of the run,
 *    so a largest block exists even when the page allocator would never hand out that many
 *    adjacent 4 MiB chunks, and compaction has a whole run to make one in. alloc_contig_pages, which does the search itself,
 *    is not exported to modules on any kernel we build for (6.1, 6.12, 6.12-rt:
 *    Module.symvers), alloc_contig_range and free_contig_range are, so the search is here;
 *  - chunks in the largest order the page allocator hands out (4 MiB on x86-64), strictly on
 *    that node (__GFP_THISNODE), without reclaim storms (__GFP_NORETRY); the page allocator's
 *    watermarks apply to them.
 * alloc_contig_range ignores watermarks, so every piece is taken only while the node keeps a
 * safety margin of free memory (nb_node_can_spare): a pool can never drain a node.
 * Pieces that lie physically adjacent on one node are merged into regions, so the buddy
 * allocator above can build blocks larger than the kernel's own maximum order.
 */
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/page-flags.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>

#include "nb_compat.h"
#include "nb_internal.h"
#include "nb_pin.h"

/* A node keeps at least this share of its memory (1/8) free after its pool is taken. */
#define NB_NODE_MARGIN_SHIFT 3

/* An aligned run is one block of the core's largest order; runs only when that is above the
 * chunk size (a chunk is already aligned to its own size). */
static unsigned long nb_run_pages(const struct nb_pools *p)
{
	return p->max_order > p->chunk_order ? 1UL << p->max_order : 0;
}

static unsigned long nb_node_free_pages(int nid)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	unsigned long free = 0;
	int z;

	for (z = 0; z < MAX_NR_ZONES; z++)
		free += zone_page_state(&pgdat->node_zones[z], NR_FREE_PAGES);
	return free;
}

/* Pages node nid can give and still keep its margin. */
static unsigned long nb_node_spare_pages(int nid)
{
	unsigned long free = nb_node_free_pages(nid);
	unsigned long keep = node_present_pages(nid) >> NB_NODE_MARGIN_SHIFT;

	return free > keep ? free - keep : 0;
}

/* Can node nid give want_pages and still keep its margin? Says why not in the log. */
static bool nb_node_can_spare(int nid, unsigned long want_pages)
{
	if (nb_node_spare_pages(nid) >= want_pages)
		return true;
	pr_err("numabuddy: node %d cannot spare %lu MiB: %lu MiB free, %lu MiB must stay free\n",
	       nid, want_pages >> (20 - PAGE_SHIFT), nb_node_free_pages(nid) >> (20 - PAGE_SHIFT),
	       (node_present_pages(nid) >> NB_NODE_MARGIN_SHIFT) >> (20 - PAGE_SHIFT));
	return false;
}

static int nb_cmp_piece(const void *a, const void *b)
{
	unsigned long pa = ((const struct nb_piece *)a)->pfn;
	unsigned long pb = ((const struct nb_piece *)b)->pfn;

	return pa < pb ? -1 : pa > pb;
}

static int nb_pieces_reserve(struct nb_pools *p, unsigned long more)
{
	struct nb_piece *np;

	if (p->nr_pieces + more <= p->cap_pieces)
		return 0;
	np = kvcalloc(p->nr_pieces + more, sizeof(*np), GFP_KERNEL);
	if (!np)
		return -ENOMEM;
	if (p->nr_pieces)
		memcpy(np, p->pieces, p->nr_pieces * sizeof(*np));
	kvfree(p->pieces);
	p->pieces = np;
	p->cap_pieces = p->nr_pieces + more;
	return 0;
}

/*
 * Each kind goes back the way it came: an aligned run's pages came from alloc_contig_range with a
 * reference each; a chunk was split_page()d when taken (nb_pin_prepare_chunk).
 */
static void nb_piece_free(const struct nb_piece *pc)
{
	if (pc->contig)
		free_contig_range(pc->pfn, pc->nr_pages);
	else
		nb_pin_release_chunk(pfn_to_page(pc->pfn), ilog2(pc->nr_pages));
}

/*
 * Could [pfn, pfn + nr) be taken with alloc_contig_range? The kernel's own test
 * (pfn_range_valid_contig, static in mm/page_alloc.c): online, one zone, nothing reserved,
 * no hugetlb page. Without the zone lock it is only a hint; alloc_contig_range decides.
 */
static bool nb_range_may_contig(struct zone *zone, unsigned long pfn, unsigned long nr)
{
	unsigned long i;

	for (i = pfn; i < pfn + nr; i++) {
		struct page *page = pfn_to_online_page(i);

		if (!page || page_zone(page) != zone || PageReserved(page) || PageHuge(page))
			return false;
		if (!(i & 4095))
			cond_resched();
	}
	return true;
}

/*
 * alloc_contig_range on one aligned run of nr pages. -EBUSY is often transient (a page in flight between
 * LRU lists, a migration that raced with a reference): try a few times, waiting a little
 * longer each time (0.6 s in all), as CMA retries.
 */
static int nb_contig_run(unsigned long pfn, unsigned long nr)
{
	int tries, err = -EBUSY;

	for (tries = 0; tries < 5 && err == -EBUSY; tries++) {
		if (tries)
			msleep(20 << tries);
		err = alloc_contig_range(pfn, pfn + nr, MIGRATE_MOVABLE,
					 GFP_KERNEL | __GFP_NOWARN);
		if (err == -EBUSY && fatal_signal_pending(current))
			break;
	}
	return err;
}

static bool nb_pool_holds(const struct nb_pools *p, unsigned long pfn, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < p->nr_pieces; i++)
		if (pfn < p->pieces[i].pfn + p->pieces[i].nr_pages && p->pieces[i].pfn < pfn + nr)
			return true;
	return false;
}

/*
 * Take up to `want` aligned runs on node nid, each only while the node can spare it.
 * Zones up to ZONE_NORMAL only: pinning a run in ZONE_MOVABLE would defeat memory hot-remove.
 * Returns the runs taken; they are appended to p->pieces (room reserved by the caller).
 */
static unsigned long nb_take_aligned_runs(struct nb_pools *p, int nid, unsigned long want)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	unsigned long got = 0, nr = nb_run_pages(p);
	int z, err;

	for (z = 0; z <= ZONE_NORMAL && got < want; z++) {
		struct zone *zone = &pgdat->node_zones[z];
		unsigned long pfn;

		if (!populated_zone(zone))
			continue;
		for (pfn = ALIGN(zone->zone_start_pfn, nr);
		     got < want && zone_spans_pfn(zone, pfn + nr - 1); pfn += nr) {
			if (fatal_signal_pending(current))
				return got;
			if (nb_pool_holds(p, pfn, nr) || !nb_range_may_contig(zone, pfn, nr))
				continue;
			/* Migration moves what is in the run elsewhere on this node: the node
			 * loses a run of free memory either way, so the margin is checked first. */
			if (nb_node_spare_pages(nid) < nr)
				return got;
			err = nb_contig_run(pfn, nr);
			if (err) {
				pr_info("numabuddy: node %d: no aligned run at %#lx: alloc_contig_range %d\n",
					nid, pfn << PAGE_SHIFT, err);
				continue;
			}
			p->pieces[p->nr_pieces++] = (struct nb_piece){
				.pfn = pfn, .nr_pages = nr, .node = nid, .contig = true,
			};
			got++;
		}
	}
	return got;
}

/*
 * Add want_pages to node nid's pool: first up to aligned_runs aligned runs (when the core can
 * use them), the rest in chunks. all_or_nothing: fail with -ENOMEM and give back what this call
 * took when the node cannot give it all (load); otherwise keep what it got (grow at run time).
 * Pieces taken are appended to p->pieces from index p->nr_pieces on entry.
 */
int nb_pool_take(struct nb_pools *p, int nid, unsigned long want_pages, unsigned long aligned_runs,
		 bool all_or_nothing)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN | __GFP_NORETRY;
	unsigned long chunk_pages = 1UL << p->chunk_order;
	unsigned long first = p->nr_pieces, got = 0, runs = 0, i;
	unsigned long run_pages = nb_run_pages(p);
	int err;

	want_pages = round_up(want_pages, chunk_pages);
	if (all_or_nothing && !nb_node_can_spare(nid, want_pages))
		return -ENOMEM;
	if (run_pages)
		runs = min(aligned_runs, want_pages / run_pages);
	err = nb_pieces_reserve(p, runs + want_pages / chunk_pages);
	if (err)
		return err;
	if (runs) {
		unsigned long taken = nb_take_aligned_runs(p, nid, runs);

		if (taken < runs)
			pr_info("numabuddy: node %d: %lu of %lu aligned runs of %lu MiB taken, the rest in chunks\n",
				nid, taken, runs, run_pages >> (20 - PAGE_SHIFT));
		got = taken * run_pages;
		p->aligned_runs[nid] += taken;
	}
	while (got < want_pages) {
		struct page *page = NULL;

		if (nb_node_spare_pages(nid) >= chunk_pages)
			page = alloc_pages_node(nid, gfp, p->chunk_order);
		if (!page || page_to_nid(page) != nid) {
			if (page)
				__free_pages(page, p->chunk_order);
			pr_err("numabuddy: node %d: got %lu of %lu MiB (page allocator refused or the node's margin reached)\n",
			       nid, got >> (20 - PAGE_SHIFT), want_pages >> (20 - PAGE_SHIFT));
			err = -ENOMEM;
			break;
		}
		/* A reference per frame, as an aligned run's frames have: pinnable blocks need it. */
		nb_pin_prepare_chunk(page, p->chunk_order);
		p->pieces[p->nr_pieces++] = (struct nb_piece){
			.pfn = page_to_pfn(page), .nr_pages = chunk_pages, .node = nid,
		};
		got += chunk_pages;
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		cond_resched();
	}
	if (err && (all_or_nothing || !got)) {
		for (i = first; i < p->nr_pieces; i++) {
			if (p->pieces[i].contig)
				p->aligned_runs[nid]--;
			nb_piece_free(&p->pieces[i]);
		}
		p->nr_pieces = first;
		return err;
	}
	p->frames_per_node[nid] += got;
	return 0;
}

static int nb_regions_reserve(struct nb_pools *p, unsigned long more)
{
	struct nbc_region *nr;

	if (p->nr_regions + more <= p->cap_regions)
		return 0;
	nr = kvcalloc(p->nr_regions + more, sizeof(*nr), GFP_KERNEL);
	if (!nr)
		return -ENOMEM;
	if (p->nr_regions)
		memcpy(nr, p->regions, p->nr_regions * sizeof(*nr));
	kvfree(p->regions);
	p->regions = nr;
	p->cap_regions = p->nr_regions + more;
	return 0;
}

/*
 * Merge sorted, physically adjacent pieces [first, nr_pieces) of one node into regions,
 * appended to p->regions. A region also ends at every multiple of p->cut_pages: no buddy
 * block crosses such a line (it is at least the largest block), so nothing is lost, and a
 * shrink can give back one cut_pages run instead of a whole merged pool. Pieces never cross
 * a cut line either (chunks and aligned runs are aligned to their size, at most cut_pages).
 */
static int nb_pool_build_regions(struct nb_pools *p, unsigned long first)
{
	unsigned long i;
	int err;

	sort(p->pieces + first, p->nr_pieces - first, sizeof(*p->pieces), nb_cmp_piece, NULL);
	err = nb_regions_reserve(p, p->nr_pieces - first);
	if (err)
		return err;
	for (i = first; i < p->nr_pieces; i++) {
		const struct nb_piece *pc = &p->pieces[i];
		struct nbc_region *last = p->nr_regions > p->first_new_region ?
						 &p->regions[p->nr_regions - 1] : NULL;

		if (last && last->node == pc->node && last->start_pfn + last->nr_frames == pc->pfn &&
		    pc->pfn % p->cut_pages) {
			last->nr_frames += pc->nr_pages;
			continue;
		}
		p->regions[p->nr_regions++] = (struct nbc_region){
			.start_pfn = pc->pfn, .nr_frames = pc->nr_pages, .node = pc->node,
		};
	}
	return 0;
}

/* Give back every piece inside [pfn, pfn + nr) (whole pieces: regions are made of them). */
static unsigned long nb_pool_release_range(struct nb_pools *p, unsigned long pfn,
					   unsigned long nr)
{
	unsigned long i, kept = 0, freed = 0;

	for (i = 0; i < p->nr_pieces; i++) {
		struct nb_piece pc = p->pieces[i];

		if (pc.pfn >= pfn && pc.pfn + pc.nr_pages <= pfn + nr) {
			if (pc.contig)
				p->aligned_runs[pc.node]--;
			p->frames_per_node[pc.node] -= pc.nr_pages;
			freed += pc.nr_pages;
			nb_piece_free(&pc);
			cond_resched();
			continue;
		}
		p->pieces[kept++] = pc;
	}
	p->nr_pieces = kept;
	return freed;
}

static void nb_pool_drop_region(struct nb_pools *p, unsigned int i)
{
	nb_pool_release_range(p, p->regions[i].start_pfn, p->regions[i].nr_frames);
	memmove(&p->regions[i], &p->regions[i + 1],
		(p->nr_regions - i - 1) * sizeof(*p->regions));
	p->nr_regions--;
}

/*
 * Grow node nid's pool by up to add_pages while the core is live: take them under the node's
 * margin, hand each new region to the core. Returns the pages added (maybe fewer than asked)
 * or -errno when nothing could be added.
 */
long nb_pool_grow(struct nb_pools *p, struct nbc_core *core, int nid, unsigned long add_pages,
		  unsigned long aligned_runs)
{
	unsigned long first = p->nr_pieces, before = p->frames_per_node[nid];
	unsigned long want_runs = aligned_runs > p->aligned_runs[nid] ? aligned_runs - p->aligned_runs[nid] : 0;
	unsigned long spare = round_down(nb_node_spare_pages(nid), 1UL << p->chunk_order);
	unsigned int r;
	int err;

	/* No more than the node has to spare now, which also bounds the bookkeeping. */
	if (!spare) {
		nb_node_can_spare(nid, add_pages); /* says why in the log */
		return -ENOMEM;
	}
	err = nb_pool_take(p, nid, min(add_pages, spare), want_runs, false);
	if (err)
		return err;
	p->first_new_region = p->nr_regions;
	err = nb_pool_build_regions(p, first);
	if (err) {
		while (p->nr_pieces > first) {
			struct nb_piece *pc = &p->pieces[--p->nr_pieces];

			if (pc->contig)
				p->aligned_runs[nid]--;
			p->frames_per_node[nid] -= pc->nr_pages;
			nb_piece_free(pc);
		}
		return err;
	}
	for (r = p->first_new_region; r < p->nr_regions;) {
		err = nbc_core_add_region(core, &p->regions[r]);
		if (err) {
			pr_err("numabuddy: node %d: mm_core refused region %#llx+%llu: %d\n", nid,
			       (unsigned long long)p->regions[r].start_pfn,
			       (unsigned long long)p->regions[r].nr_frames, err);
			nb_pool_drop_region(p, r);
			continue;
		}
		r++;
	}
	p->first_new_region = 0;
	if (p->frames_per_node[nid] == before)
		return err ? err : -ENOMEM;
	return p->frames_per_node[nid] - before;
}

/*
 * Take region r out of the core if every frame in it is free there and referenced by the pool
 * alone. Free in the core is not enough by itself: a pinnable block's frames stay allocated
 * while the kernel references them (nb_pin.c), so a free frame holds only the pool's
 * reference; the check after the removal (nothing can map the frames any more) keeps a
 * frame that breaks that rule, or is held for a moment by a pfn walker, out of the page
 * allocator. -EBUSY: the region stays in the core.
 */
static int nb_pool_take_back_region(struct nbc_core *core, const struct nbc_region *r)
{
	int err = nbc_core_remove_region(core, r->start_pfn, r->nr_frames);

	if (err)
		return err;
	if (nb_pin_frames_unreferenced(r->start_pfn, r->nr_frames))
		return 0;
	pr_info("numabuddy: node %d: region %#llx+%llu is free but referenced: kept\n", r->node,
		(unsigned long long)r->start_pfn, (unsigned long long)r->nr_frames);
	err = nbc_core_add_region(core, r);
	/* The core had these exact frames a moment ago; only metadata memory can fail it. */
	WARN_ON_ONCE(err);
	return -EBUSY;
}

/*
 * Shrink node nid's pool by at most remove_pages: give back whole regions (newest first) that
 * are entirely free, never going below the size asked for. Returns the pages given back, or
 * -EBUSY when none could be (every region that would fit holds a block in use).
 */
long nb_pool_shrink(struct nb_pools *p, struct nbc_core *core, int nid, unsigned long remove_pages)
{
	unsigned long freed = 0;
	bool busy = false, fits = false;
	unsigned int i;

	for (i = p->nr_regions; i-- > 0;) {
		struct nbc_region r = p->regions[i];
		int err;

		if (r.node != nid || r.nr_frames > remove_pages - freed)
			continue;
		fits = true;
		err = nb_pool_take_back_region(core, &r);
		if (err) {
			busy = true;
			continue;
		}
		nb_pool_drop_region(p, i);
		freed += r.nr_frames;
		if (freed == remove_pages)
			break;
	}
	if (!freed && (busy || fits))
		return -EBUSY;
	if (!freed) {
		pr_info("numabuddy: node %d: no region of at most %lu MiB to give back\n", nid,
			remove_pages >> (20 - PAGE_SHIFT));
		return -EBUSY;
	}
	return freed;
}

int nb_pools_reserve(struct nb_pools *p, unsigned long mb_per_node, u64 node_mask,
		     unsigned long aligned_runs, unsigned int max_order)
{
	unsigned long want_pages = mb_per_node << (20 - PAGE_SHIFT);
	int nid, nodes = 0, err;

	memset(p, 0, sizeof(*p));
	p->chunk_order = min_t(unsigned int, NB_KERNEL_MAX_ORDER, 10);
	p->max_order = max_order ? max_order : NBC_DEFAULT_MAX_ORDER;
	p->cut_pages = 1UL << max(p->max_order, p->chunk_order);
	if (!want_pages) {
		pr_err("numabuddy: pool_mb=0: every node needs a pool of at least 1 MiB\n");
		return -EINVAL;
	}

	/* Refuse an impossible request before allocating anything for it. */
	for_each_node_state(nid, N_MEMORY) {
		if (nid >= NBC_MAX_NODES || !(node_mask & BIT_ULL(nid)))
			continue;
		if (!nb_node_can_spare(nid, round_up(want_pages, 1UL << p->chunk_order)))
			return -ENOMEM;
		nodes++;
	}
	if (!nodes) {
		pr_err("numabuddy: no node with memory is selected (nodes=0x%llx)\n", node_mask);
		return -ENODEV;
	}
	for_each_node_state(nid, N_MEMORY) {
		if (nid >= NBC_MAX_NODES || !(node_mask & BIT_ULL(nid)))
			continue;
		err = nb_pool_take(p, nid, want_pages, aligned_runs, true);
		if (err)
			goto fail;
	}
	err = nb_pool_build_regions(p, 0);
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

	for (i = 0; i < p->nr_pieces; i++) {
		nb_piece_free(&p->pieces[i]);
		cond_resched();
	}
	kvfree(p->pieces);
	kvfree(p->regions);
	memset(p, 0, sizeof(*p));
}
