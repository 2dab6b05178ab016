// SPDX-License-Identifier: GPL-2.0
/*
 * nb_pin.c - pinnable blocks (NB_ALLOC_PINNABLE): frames the kernel may hold page
 * references on, and the rule that makes that safe: a frame goes back to the pool only when
 * the pool's own reference is the only one left.
 *
 * Every pool frame carries one page reference from load to unload (each 4 MiB chunk is
 * split_page()d when it is reserved), so refcounts are valid for all of them. Ordinary
 * blocks are mapped by special PFN entries that take none (issue 12's design); a pinnable
 * block's VMA is VM_MIXEDMAP and each 4 KiB page is inserted with vm_insert_page(), which
 * takes a reference and a mapcount as for any file page. get_user_pages then works on it:
 * O_DIRECT, io_uring fixed buffers, vmsplice, process_vm_readv, move_pages.
 *
 * FREE: under the file's zap_lock (no fault can insert an entry meanwhile) the block's frames
 * are read from the space's table, the block dies (nbc_space_free_begin) and every mapping is
 * zapped, which drops the mappings' references. A page left with more than the pool's
 * reference is held by someone the block's owner let in (a bio, a pipe, an io_uring buffer
 * table): the block goes on a deferred list and a delayed work looks again, after
 * NB_PIN_POLL_MS and then twice as long each time nothing completed, up to
 * NB_PIN_POLL_MAX_MS (an io_uring buffer may stay registered for hours: 4 looks a second,
 * not 100), until none is, then finishes the free. A page seen with the pool's reference
 * alone stays that way: nothing maps it, and a page can only gain a reference through a
 * mapping or from a holder, so the scan never looks at it again. Until then the frames are
 * "in flight": still the file's (quota, fd_bytes), counted per node for STATS and debugfs.
 * Closing the file does the same for its live pinnable blocks; a deferred free holds the
 * nb_file (kref) and the module until it completes.
 *
 * MIGRATE: under zap_lock, the block's mappings are zapped and its pages checked before
 * nbc_space_migrate_begin; any page still referenced: -EBUSY, nothing moved. After the check
 * no reference can appear (nothing maps the block and faults wait for zap_lock, then for the
 * migration), so mm_core may free the old frames when it has copied them.
 */
#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "nb_internal.h"
#include "nbc_space.h"
#include "nb_file.h"
#include "nb_pin.h"

#define NB_PIN_POLL_MS 10
#define NB_PIN_POLL_MAX_MS 250

/* Physically contiguous frames of a block on one node. */
struct nb_pin_run {
	unsigned long pfn;
	unsigned long nr;
	int node;
};

struct nb_pin_frames {
	struct nb_pin_run *runs;
	unsigned long nr_runs, cap;
	u64 size;
};

/* A freed pinnable block waiting for the kernel's references to drop. */
struct nb_pin_deferred {
	struct list_head link;
	struct nb_file *nf;
	u64 offset;
	struct nb_pin_frames frames;
	unsigned long run, page; /* scan cursor: every page before it has only the pool's ref */
};

static LIST_HEAD(nb_pin_deferred_list);
static DEFINE_MUTEX(nb_pin_deferred_mutex);
static atomic64_t nb_pin_inflight[NBC_MAX_NODES];
static atomic64_t nb_pin_nr_deferred;
static void nb_pin_poll(struct work_struct *work);
static DECLARE_DELAYED_WORK(nb_pin_work, nb_pin_poll);
static unsigned int nb_pin_poll_ms = NB_PIN_POLL_MS; /* under nb_pin_deferred_mutex */

void nb_pin_prepare_chunk(struct page *chunk, unsigned int order)
{
	split_page(chunk, order);
}

void nb_pin_release_chunk(struct page *chunk, unsigned int order)
{
	unsigned long i;

	for (i = 0; i < (1UL << order); i++)
		put_page(chunk + i);
}

bool nb_pin_frames_unreferenced(unsigned long pfn, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++) {
		if (page_ref_count(pfn_to_page(pfn + i)) != 1)
			return false;
		if ((i & 4095) == 4095)
			cond_resched();
	}
	return true;
}

int nb_pin_track(struct nb_file *nf, u64 offset)
{
	return xa_err(xa_store(&nf->pin_blocks, offset >> PAGE_SHIFT, xa_mk_value(1),
			       GFP_KERNEL_ACCOUNT));
}

bool nb_pin_is_tracked(struct nb_file *nf, u64 offset)
{
	return !(offset & ~PAGE_MASK) && xa_load(&nf->pin_blocks, offset >> PAGE_SHIFT);
}

static int nb_pin_frames_add(struct nb_pin_frames *f, unsigned long pfn, unsigned long nr,
			     gfp_t gfp)
{
	int node = page_to_nid(pfn_to_page(pfn));
	struct nb_pin_run *last = f->nr_runs ? &f->runs[f->nr_runs - 1] : NULL;
	struct nb_pin_run *runs;

	if (last && last->node == node && last->pfn + last->nr == pfn) {
		last->nr += nr;
		return 0;
	}
	if (f->nr_runs == f->cap) {
		unsigned long cap = f->cap ? f->cap * 2 : 16;

		runs = kvmalloc_array(cap, sizeof(*runs), gfp);
		if (!runs)
			return -ENOMEM;
		if (f->nr_runs)
			memcpy(runs, f->runs, f->nr_runs * sizeof(*runs));
		kvfree(f->runs);
		f->runs = runs;
		f->cap = cap;
	}
	f->runs[f->nr_runs++] = (struct nb_pin_run){ .pfn = pfn, .nr = nr, .node = node };
	return 0;
}

/*
 * The frames of the live block starting at offset, read from the space's table with
 * nbc_space_fault: a pure lookup for a block (it populates reserved ranges only, and a
 * pinnable range is never a reserved one). Caller holds zap_lock.
 */
static int nb_pin_collect(struct nb_file *nf, u64 offset, struct nb_pin_frames *f, gfp_t gfp)
{
	struct nbc_space_info info;
	u64 off, end;
	int err;

	memset(f, 0, sizeof(*f));
	if (nbc_space_query(nf->space, offset, &info) || info.offset != offset)
		return -ENOENT;
	if (info.state != NBC_SPACE_STATE_LIVE)
		return info.state == NBC_SPACE_STATE_MIGRATING ? -EBUSY : -ENOENT;
	f->size = info.size;
	end = offset + info.size;
	for (off = offset, err = 0; off < end && !err;) {
		struct nbc_space_fault_result r;
		unsigned long nr;

		err = nbc_space_fault(nf->space, off, 0, raw_smp_processor_id(),
				     PUD_SHIFT - PAGE_SHIFT, NB_CTX_SLEEP, &r);
		if (err)
			break;
		nr = (r.offset + (PAGE_SIZE << r.order) - off) >> PAGE_SHIFT;
		nr = min_t(u64, nr, (end - off) >> PAGE_SHIFT);
		err = nb_pin_frames_add(f, r.pfn + ((off - r.offset) >> PAGE_SHIFT), nr, gfp);
		off += (u64)nr << PAGE_SHIFT;
		cond_resched();
	}
	if (err) {
		kvfree(f->runs);
		f->runs = NULL;
		return err == -EAGAIN ? -EBUSY : err == -EFAULT ? -ENOENT : err;
	}
	return 0;
}

/*
 * Is some page at or after the cursor referenced beyond the pool's own reference? Moves the
 * cursor past the pages that are not (they cannot be again: see the top of the file).
 */
static bool nb_pin_busy(struct nb_pin_frames *f, unsigned long *run, unsigned long *page)
{
	for (; *run < f->nr_runs; (*run)++, *page = 0) {
		const struct nb_pin_run *r = &f->runs[*run];

		for (; *page < r->nr; (*page)++) {
			int refs = page_ref_count(pfn_to_page(r->pfn + *page));

			/* Below 1: someone dropped the pool's reference; never reuse the page. */
			if (WARN_ON_ONCE(refs < 1) || refs != 1)
				return true;
			if ((*page & 1023) == 1023)
				cond_resched();
		}
	}
	return false;
}

static void nb_pin_account(struct nb_pin_deferred *d, int sign)
{
	unsigned long i;

	for (i = 0; i < d->frames.nr_runs; i++) {
		const struct nb_pin_run *r = &d->frames.runs[i];
		s64 bytes = sign * (s64)((u64)r->nr << PAGE_SHIFT);

		atomic64_add(bytes, &nb_pin_inflight[r->node]);
		atomic64_add(bytes, &d->nf->inflight_bytes[r->node]);
	}
}

static void nb_pin_finish(struct nb_pin_deferred *d)
{
	struct nb_file *nf = d->nf;

	WARN_ON_ONCE(nbc_space_free_finish(nf->space, d->offset, NB_CTX_SLEEP));
	/* After the frames are back: inflight 0 means they are. */
	nb_pin_account(d, -1);
	atomic64_dec(&nb_pin_nr_deferred);
	kvfree(d->frames.runs);
	kfree(d);
	nb_file_put(nf);
	module_put(THIS_MODULE); /* nb_pin_exit waits for this work to return */
}

static void nb_pin_poll(struct work_struct *work)
{
	struct nb_pin_deferred *d, *tmp;
	LIST_HEAD(done);
	unsigned long delay;
	bool more;

	mutex_lock(&nb_pin_deferred_mutex);
	list_for_each_entry_safe(d, tmp, &nb_pin_deferred_list, link)
		if (!nb_pin_busy(&d->frames, &d->run, &d->page))
			list_move_tail(&d->link, &done);
	more = !list_empty(&nb_pin_deferred_list);
	if (list_empty(&done))
		nb_pin_poll_ms = min_t(unsigned int, 2 * nb_pin_poll_ms, NB_PIN_POLL_MAX_MS);
	delay = msecs_to_jiffies(nb_pin_poll_ms);
	mutex_unlock(&nb_pin_deferred_mutex);
	list_for_each_entry_safe(d, tmp, &done, link) {
		list_del(&d->link);
		nb_pin_finish(d);
	}
	if (more)
		queue_delayed_work(system_wq, &nb_pin_work, delay);
}

static void nb_pin_defer(struct nb_pin_deferred *d)
{
	kref_get(&d->nf->kref);
	__module_get(THIS_MODULE);
	nb_pin_account(d, 1);
	atomic64_inc(&nb_pin_nr_deferred);
	mutex_lock(&nb_pin_deferred_mutex);
	list_add_tail(&d->link, &nb_pin_deferred_list);
	/* A new holder is likely short (a bio): look soon again, even if a long wait was set. */
	nb_pin_poll_ms = NB_PIN_POLL_MS;
	mod_delayed_work(system_wq, &nb_pin_work, msecs_to_jiffies(NB_PIN_POLL_MS));
	mutex_unlock(&nb_pin_deferred_mutex);
}

static int nb_pin_free_gfp(struct nb_file *nf, u64 offset, gfp_t gfp)
{
	struct nb_pin_deferred *d;
	nb_u64 start, len;
	int err;

	d = kzalloc(sizeof(*d), gfp);
	if (!d)
		return -ENOMEM;
	d->nf = nf;
	d->offset = offset;
	down_write(&nf->zap_lock);
	err = nb_pin_collect(nf, offset, &d->frames, gfp);
	if (!err) {
		err = nbc_space_free_begin(nf->space, offset, &start, &len);
		if (!err)
			nb_zap_range(nf, start, len);
	}
	up_write(&nf->zap_lock);
	if (err == -ENOENT) /* freed or never published: nothing left to track */
		xa_erase(&nf->pin_blocks, offset >> PAGE_SHIFT);
	if (err)
		goto out;
	xa_erase(&nf->pin_blocks, offset >> PAGE_SHIFT);
	if (nb_pin_busy(&d->frames, &d->run, &d->page)) {
		nb_pin_defer(d);
		return 0;
	}
	err = nbc_space_free_finish(nf->space, offset, NB_CTX_SLEEP);
out:
	kvfree(d->frames.runs);
	kfree(d);
	return err;
}

int nb_pin_free(struct nb_file *nf, u64 offset)
{
	return nb_pin_free_gfp(nf, offset, GFP_KERNEL_ACCOUNT);
}

int nb_pin_migrate_check(struct nb_file *nf, u64 offset)
{
	struct nb_pin_frames f;
	unsigned long run = 0, page = 0;
	int err;

	lockdep_assert_held_write(&nf->zap_lock);
	err = nb_pin_collect(nf, offset, &f, GFP_KERNEL_ACCOUNT);
	if (err)
		return err;
	nb_zap_range(nf, offset, f.size);
	if (nb_pin_busy(&f, &run, &page))
		err = -EBUSY;
	kvfree(f.runs);
	return err;
}

int nb_pin_hold(struct nb_file *nf, u64 offset, struct page ***pages_out,
		unsigned long *nr_out, int *node_out)
{
	struct nb_pin_frames f;
	struct page **pages;
	unsigned long i, j, n = 0;
	int err;

	if (!nb_pin_is_tracked(nf, offset))
		return -EINVAL;
	/* Read: excludes FREE's and MIGRATE's first phase, which look at the references. */
	down_read(&nf->zap_lock);
	err = nb_pin_collect(nf, offset, &f, GFP_KERNEL_ACCOUNT);
	if (err)
		goto out;
	pages = kvmalloc_array(f.size >> PAGE_SHIFT, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages) {
		err = -ENOMEM;
		goto out_frames;
	}
	for (i = 0; i < f.nr_runs; i++)
		for (j = 0; j < f.runs[i].nr; j++) {
			pages[n] = pfn_to_page(f.runs[i].pfn + j);
			get_page(pages[n++]);
		}
	*pages_out = pages;
	*nr_out = n;
	*node_out = f.runs[0].node;
out_frames:
	kvfree(f.runs);
out:
	up_read(&nf->zap_lock);
	return err;
}

void nb_pin_unhold(struct page **pages, unsigned long nr_pages)
{
	unsigned long i;

	for (i = 0; i < nr_pages; i++)
		put_page(pages[i]);
	kvfree(pages);
}

void nb_pin_file_release(struct nb_file *nf)
{
	unsigned long idx;
	void *entry;

	/* No mapping is left (each VMA held the file); pins may be. The space must not free
	 * what is still referenced, so this cannot fail: NOFAIL allocations. */
	xa_for_each(&nf->pin_blocks, idx, entry)
		nb_pin_free_gfp(nf, (u64)idx << PAGE_SHIFT, GFP_KERNEL | __GFP_NOFAIL);
	xa_destroy(&nf->pin_blocks);
}

u64 nb_pin_inflight_bytes(int node)
{
	return node >= 0 && node < NBC_MAX_NODES ? atomic64_read(&nb_pin_inflight[node]) : 0;
}

u64 nb_pin_inflight_blocks(void)
{
	return atomic64_read(&nb_pin_nr_deferred);
}

void nb_pin_exit(void)
{
	/* Every deferral held a module reference: the list is empty; the work may still be
	 * returning from the last one. */
	cancel_delayed_work_sync(&nb_pin_work);
	WARN_ON(!list_empty(&nb_pin_deferred_list));
}
