// SPDX-License-Identifier: GPL-2.0
/*
 * nb_ioctl.c - the ioctls of /dev/numabuddy (uapi/numabuddy.h): requests checked and
 * turned into mm_core calls, one table-driven dispatcher.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>

/* The core's policies (enum nbc_policy_mode) go to it as the ABI's NB_POLICY_* values. */
#include "nb_compact.h"
#include "nb_internal.h"
#include "nbc_space.h"
#include "nb_compat.h"
#include "nb_file.h"
#include "nb_pin.h"
#include "nb_dmabuf.h"
#include "numabuddy.h"

static_assert(NBC_POLICY_LOCAL == NB_POLICY_LOCAL && NBC_POLICY_PREFERRED == NB_POLICY_PREFERRED &&
	      NBC_POLICY_BIND == NB_POLICY_BIND && NBC_POLICY_INTERLEAVE == NB_POLICY_INTERLEAVE);
static_assert(NB_ALLOC_CONTIG == NBC_SPACE_CONTIG && NB_ALLOC_LOW4G == NBC_SPACE_LOW4G &&
	      NB_ALLOC_HUGE_2M == NBC_SPACE_HUGE_2M && NB_ALLOC_HUGE_1G == NBC_SPACE_HUGE_1G &&
	      NB_ALLOC_POPULATE == NBC_SPACE_POPULATE && NB_ALLOC_NOZERO == NBC_SPACE_NOZERO &&
	      !(NBC_SPACE_FLAGS_ALL & NB_ALLOC_PINNABLE) &&
	      NB_ALLOC_FLAGS_ALL == (NBC_SPACE_FLAGS_ALL | NB_ALLOC_PINNABLE));

#define NB_BATCH_MAX 4096
#define NB_BENCH_MAX_ITERATIONS (1ULL << 24)

atomic64_t nb_stat_migrations, nb_stat_migrated_bytes, nb_stat_quota_refusals;

static bool nb_is_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

void nb_zap_range(struct nb_file *nf, u64 start, u64 len)
{
	unmap_mapping_range(nf->inode->i_mapping, start, len, 1);
}

static void nb_zap(void *arg, nb_u64 start, nb_u64 len)
{
	nb_zap_range(arg, start, len);
}
/*
 * A node id from user space, already checked against both bounds, clamped under speculation
 * too: mm_core indexes its per-node tables (pools, fallback lists, quotas) with it, and
 * STATS is reachable from a read-only file.
 */
static int nb_node_nospec(int node)
{
	return array_index_nospec(node, min_t(int, nr_node_ids, NBC_MAX_NODES));
}

static int nb_policy_from_user(const struct nb_alloc *a, struct nbc_policy *pol)
{
	if (a->policy > NB_POLICY_INTERLEAVE)
		return -EINVAL;
	if (a->node < -1 || a->node >= (int)nr_node_ids || a->node >= NBC_MAX_NODES)
		return -EINVAL;
	if (nr_node_ids < 64 && (a->nodemask >> nr_node_ids))
		return -EINVAL;
	memset(pol, 0, sizeof(*pol));
	pol->mode = a->policy;
	pol->node = a->node >= 0 ? nb_node_nospec(a->node) : -1;
	pol->nodemask = a->nodemask; /* empty: the core decides (nbc_policy_normalize) */
	return 0;
}

/* Validate an ALLOC/RESERVE request; returns its size in bytes through *bytes. */
static int nb_alloc_check(const struct nb_alloc *a, bool reserve, u64 *bytes)
{
	if (a->pad || !nb_is_zero(a->reserved, sizeof(a->reserved)))
		return -EINVAL;
	if (a->offset || a->alloc_size || a->node_out)
		return -EINVAL; /* outputs must come in zeroed: catches reused structs */
	if (a->flags & ~NB_ALLOC_FLAGS_ALL)
		return -EINVAL;
	if ((a->flags & NB_ALLOC_HUGE_2M) && (a->flags & NB_ALLOC_HUGE_1G))
		return -EINVAL;
	if ((a->flags & NB_ALLOC_PINNABLE) && reserve)
		return -EINVAL; /* nb_pin.c needs every frame known when the block is freed */
	if ((a->flags & NB_ALLOC_NOZERO) && !capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (a->size) {
		if (a->size > (1ULL << 46))
			return -EINVAL;
		*bytes = PAGE_ALIGN(a->size);
		if (a->order)
			return -EINVAL; /* one or the other */
	} else {
		if (a->order > nb_param_max_order)
			return -EINVAL;
		*bytes = (u64)PAGE_SIZE << a->order;
	}
	return 0;
}

void nb_count_error(int err)
{
	if (err == -EDQUOT)
		atomic64_inc(&nb_stat_quota_refusals);
}

static void nb_fill_alloc_out(struct nb_file *nf, struct nb_alloc *a, nb_u64 offset)
{
	struct nbc_space_info info;

	a->offset = offset;
	a->node_out = -1;
	if (nbc_space_query(nf->space, offset, &info) == 0) {
		a->alloc_size = info.size;
		/* The node as the kernel sees the frame, not as mm_core says. */
		if (info.first_pfn != ~0ULL && pfn_valid(info.first_pfn))
			a->node_out = page_to_nid(pfn_to_page(info.first_pfn));
	}
}

static int nb_free_offset(struct nb_file *nf, u64 offset);

static int nb_do_alloc(struct nb_file *nf, struct nb_alloc *a, bool reserve)
{
	unsigned int space_flags = a->flags & ~NB_ALLOC_PINNABLE;
	struct nbc_policy pol;
	nb_u64 offset;
	u64 bytes;
	int err;

	err = nb_alloc_check(a, reserve, &bytes);
	if (!err)
		err = nb_policy_from_user(a, &pol);
	if (err)
		return err;
	if (reserve)
		err = nbc_space_reserve(nf->space, bytes, &pol, space_flags, raw_smp_processor_id(),
				       NB_CTX_SLEEP, &offset);
	else
		err = nbc_space_alloc(nf->space, bytes, &pol, space_flags, NB_CTX_SLEEP, &offset);
	/* Free memory in pieces too small: move blocks out of the way once and retry. */
	if (err == -ENOMEM && !reserve && (a->flags & NB_ALLOC_CONTIG) &&
	    nb_compact_for_contig(&pol, bytes) == 0)
		err = nbc_space_alloc(nf->space, bytes, &pol, space_flags, NB_CTX_SLEEP, &offset);
	if (err) {
		nb_count_error(err);
		return err;
	}
	/* Until it is tracked, a mapping of the block is an ordinary one (no references), so a
	 * racing FREE of the guessed offset is an ordinary free. */
	if (a->flags & NB_ALLOC_PINNABLE) {
		err = nb_pin_track(nf, offset);
		if (err) {
			nb_free_offset(nf, offset);
			return err;
		}
	}
	nb_fill_alloc_out(nf, a, offset);
	return 0;
}

static int nb_ioctl_alloc(struct nb_file *nf, void *data)
{
	return nb_do_alloc(nf, data, false);
}

static int nb_ioctl_reserve(struct nb_file *nf, void *data)
{
	return nb_do_alloc(nf, data, true);
}

/* -EAGAIN from a phase 1: compaction is moving the range. Wait until a migration of this
 * file ends after `gen` (compaction bumps migrate_gen when the range is live again) and let
 * the caller retry; any other result is passed on. */
static int nb_wait_compaction(struct nb_file *nf, int err, int gen)
{
	if (err != -EAGAIN)
		return err;
	if (wait_event_killable(nf->migrate_wq, atomic_read(&nf->migrate_gen) != gen))
		return -EINTR;
	return -EAGAIN;
}

static int nb_free_offset(struct nb_file *nf, u64 offset)
{
	nb_u64 start, len;
	int err;

	if (nb_pin_is_tracked(nf, offset))
		return nb_pin_free(nf, offset);
	/* Phase 1 and the zap under zap_lock: a fault that got a frame of this range before
	 * phase 1 has inserted it by the time we hold the lock, so the zap removes it. */
	for (;;) {
		int gen = atomic_read(&nf->migrate_gen);

		down_write(&nf->zap_lock);
		err = nbc_space_free_begin(nf->space, offset, &start, &len);
		if (!err)
			nb_zap(nf, start, len);
		up_write(&nf->zap_lock);
		err = nb_wait_compaction(nf, err, gen);
		if (err != -EAGAIN)
			break;
	}
	if (err)
		return err;
	return nbc_space_free_finish(nf->space, offset, NB_CTX_SLEEP);
}

/* Undo a successful ALLOC/RESERVE whose result could not be copied back to user space. */
static void nb_undo_alloc(struct nb_file *nf, void *data)
{
	nb_free_offset(nf, ((struct nb_alloc *)data)->offset);
}

static int nb_ioctl_free(struct nb_file *nf, void *data)
{
	struct nb_free *f = data;

	if (!nb_is_zero(f->reserved, sizeof(f->reserved)))
		return -EINVAL;
	if (f->offset & ~PAGE_MASK)
		return -EINVAL;
	return nb_free_offset(nf, f->offset);
}

static int nb_ioctl_alloc_batch(struct nb_file *nf, void *data)
{
	struct nb_alloc_batch *b = data;
	struct nb_alloc __user *ureq;
	unsigned int i, esize;
	int err = 0;

	if (b->pad || b->done || !nb_is_zero(b->reserved, sizeof(b->reserved)))
		return -EINVAL;
	if (!b->count || b->count > NB_BATCH_MAX)
		return -EINVAL;
	/* Entries as the caller knows them: at least up to node_out, at most a page. */
	if (b->entry_size < offsetofend(struct nb_alloc, node_out) || b->entry_size > PAGE_SIZE)
		return -EINVAL;
	esize = b->entry_size;
	for (i = 0; i < b->count; i++) {
		struct nb_alloc a = { 0 };
		void __user *uentry = u64_to_user_ptr(b->reqs) + (u64)i * esize;

		ureq = uentry;
		if (esize > sizeof(a)) {
			err = check_zeroed_user(uentry + sizeof(a), esize - sizeof(a));
			if (err <= 0) {
				err = err ? err : -E2BIG;
				break;
			}
		}
		if (copy_from_user(&a, uentry, min_t(size_t, esize, sizeof(a)))) {
			err = -EFAULT;
			break;
		}
		err = nb_do_alloc(nf, &a, false);
		if (err)
			break;
		if (copy_to_user(uentry, &a, min_t(size_t, esize, sizeof(a)))) {
			nb_free_offset(nf, a.offset);
			err = -EFAULT;
			break;
		}
		if (fatal_signal_pending(current)) {
			i++;
			err = -EINTR;
			break;
		}
	}
	b->done = i;
	/* Partial success is reported through done; the caller frees [0, done) or uses them. */
	return i ? 0 : err;
}

static int nb_ioctl_query(struct nb_file *nf, void *data)
{
	struct nb_query *q = data;
	struct nbc_space_info info;
	int err, n;

	if (q->pad || q->pad2 || !nb_is_zero(q->reserved, sizeof(q->reserved)))
		return -EINVAL;
	if (q->offset & ~PAGE_MASK)
		return -EINVAL;
	err = nbc_space_query_full(nf->space, q->offset, &info);
	if (err)
		return err;
	if (info.offset != q->offset)
		return -ENOENT; /* handles are range starts */
	q->size = info.size;
	q->node = -1;
	if (info.first_pfn != ~0ULL && pfn_valid(info.first_pfn))
		q->node = page_to_nid(pfn_to_page(info.first_pfn));
	q->order = info.max_frame_order;
	q->flags = info.flags;
	q->mapping = NB_MAPPING_PFN;
	if (nb_pin_is_tracked(nf, q->offset)) {
		q->flags |= NB_ALLOC_PINNABLE;
		q->mapping = NB_MAPPING_PAGES;
	}
	q->nr_frames_4k = info.populated_bytes >> PAGE_SHIFT;
	q->mapped_4k = info.leaf_bytes[0];
	q->mapped_2m = info.leaf_bytes[1];
	q->mapped_1g = info.leaf_bytes[2];
	/* noaudit: an unprivileged QUERY is not a denied privileged operation, it just gets
	 * no physical address; capable() would log an audit denial for every one of them. */
	q->phys_addr = 0;
	if (info.first_pfn != ~0ULL && ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN))
		q->phys_addr = PFN_PHYS(info.first_pfn);
	for (n = 0; n < ARRAY_SIZE(q->node_bytes); n++)
		q->node_bytes[n] = info.node_bytes[n];
	return 0;
}

static int nb_ioctl_migrate(struct nb_file *nf, void *data)
{
	struct nb_migrate *m = data;
	nb_u64 start, len, moved = 0;
	bool pinnable;
	int err;

	if (m->pad || m->bytes_moved || !nb_is_zero(m->reserved, sizeof(m->reserved)))
		return -EINVAL;
	if (m->offset & ~PAGE_MASK)
		return -EINVAL;
	if (m->node < 0 || m->node >= NBC_MAX_NODES || m->node >= nr_node_ids)
		return -EINVAL;
	for (;;) {
		int gen = atomic_read(&nf->migrate_gen);

		/* Write: a fault that read the old frame has inserted it before the range
		 * migrates. */
		down_write(&nf->zap_lock);
		pinnable = nb_pin_is_tracked(nf, m->offset);
		err = pinnable ? nb_pin_migrate_check(nf, m->offset) : 0; /* zaps the whole block */
		if (!err)
			err = nbc_space_migrate_begin(nf->space, m->offset, nb_node_nospec(m->node),
						     &start, &len);
		up_write(&nf->zap_lock);
		err = nb_wait_compaction(nf, err, gen);
		if (err != -EAGAIN)
			break;
	}
	if (err)
		return err;
	/* The copy runs with no lock of ours held; faults on the range wait for migrate_gen.
	 * PFN mappings stay mapped: each batch is unmapped, copied and mapped again
	 * (nb_remap.c). A pinnable block was zapped whole above and faults back in. */
	if (pinnable)
		err = nbc_space_migrate_finish(nf->space, m->offset, NB_CTX_SLEEP, &moved);
	else
		err = nb_remap_migrate(nf, m->offset, &moved);
	atomic_inc(&nf->migrate_gen);
	wake_up_all(&nf->migrate_wq);
	m->bytes_moved = moved;
	atomic64_inc(&nb_stat_migrations);
	atomic64_add(moved, &nb_stat_migrated_bytes);
	nb_count_error(err);
	return err;
}

static int nb_ioctl_stats(struct nb_file *nf, void *data)
{
	struct nb_stats *s = data;
	struct nb_compact_counters cc;
	struct nbc_node_stats ns;
	int err, o;
	int node;

	if (s->node < 0 || s->node >= NBC_MAX_NODES || s->node >= nr_node_ids)
		return -EINVAL;
	node = nb_node_nospec(s->node);
	err = nbc_node_stats(nb_core, node, &ns);
	if (err)
		return err;
	s->nr_orders = ns.max_order + 1;
	s->total_bytes = ns.total_frames << PAGE_SHIFT;
	s->free_bytes = (ns.free_frames + ns.pcp_frames) << PAGE_SHIFT;
	s->low_total_bytes = ns.low_total_frames << PAGE_SHIFT;
	s->low_free_bytes = ns.low_free_frames << PAGE_SHIFT;
	for (o = 0; o <= ns.max_order && o < NB_STATS_ORDERS; o++)
		s->free_blocks[o] = ns.free_blocks[o];
	s->numa_hit = ns.numa_hit;
	s->numa_miss = ns.numa_miss;
	s->numa_foreign = ns.numa_foreign;
	s->interleave_hit = ns.interleave_hit;
	s->local_node = ns.local_node;
	s->other_node = ns.other_node;
	s->migrate_in = ns.migrate_in;
	s->migrate_out = ns.migrate_out;
	s->fd_bytes = nbc_space_node_bytes(nf->space, node);
	s->fd_quota_bytes = nbc_space_quota(nf->space, node);
	if (s->fd_quota_bytes == NBC_SPACE_NO_QUOTA)
		s->fd_quota_bytes = s->total_bytes;
	s->inflight_bytes = nb_pin_inflight_bytes(node);
	s->fd_inflight_bytes = atomic64_read(&nf->inflight_bytes[node]);
	nb_compact_counters(node, &cc);
	s->compactions = cc.compactions;
	s->compact_failures = cc.failures;
	s->compact_moved_bytes = cc.moved_bytes;
	s->compact_ns = cc.ns;
	s->zeroed_bytes = ns.zeroed_frames << PAGE_SHIFT;
	s->zeroed_huge_bytes = ns.zeroed_huge_frames << PAGE_SHIFT;
	return 0;
}

static int nb_ioctl_version(struct nb_file *nf, void *data)
{
	struct nb_version *v = data;

	v->abi_major = NB_ABI_MAJOR;
	v->abi_minor = NB_ABI_MINOR;
	v->features = NB_FEAT_RESERVE | NB_FEAT_MIGRATE | NB_FEAT_BATCH | NB_FEAT_BENCH |
		      NB_FEAT_PINNABLE | NB_FEAT_DMABUF | NB_FEAT_COMPACT | NB_FEAT_PREZERO;
	if (NB_HAVE_HUGE_PMD)
		v->features |= NB_FEAT_HUGE_PMD;
	if (NB_HAVE_HUGE_PUD)
		v->features |= NB_FEAT_HUGE_PUD;
	v->nr_node_ids = nr_node_ids;
	v->max_order = nb_param_max_order;
	v->page_size = PAGE_SIZE;
	v->nodes_with_pool = nbc_nodes_with_memory(nb_core);
	return 0;
}

/* In-kernel allocator cost, numabuddy against the kernel's page allocator (issue: bench). */
static int nb_ioctl_bench(struct nb_file *nf, void *data)
{
	struct nb_bench *b = data;
	u64 i, t0, fails = 0;
	int node;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (b->pad || b->elapsed_ns || b->failures || !nb_is_zero(b->reserved, sizeof(b->reserved)))
		return -EINVAL;
	if (b->allocator > NB_BENCH_KERNEL || !b->iterations ||
	    b->iterations > NB_BENCH_MAX_ITERATIONS)
		return -EINVAL;
	if (b->node < 0 || b->node >= NBC_MAX_NODES || b->node >= nr_node_ids ||
	    !node_online(b->node))
		return -EINVAL;
	if (b->order > nb_param_max_order ||
	    (b->allocator == NB_BENCH_KERNEL && b->order > NB_KERNEL_MAX_ORDER))
		return -EINVAL;

	node = nb_node_nospec(b->node);
	t0 = ktime_get_ns();
	for (i = 0; i < b->iterations; i++) {
		if (b->allocator == NB_BENCH_NUMABUDDY) {
			nb_u64 pfn;

			if (nbc_buddy_alloc(nb_core, b->order, node, 0, NB_CTX_SLEEP, &pfn))
				fails++;
			else
				nbc_buddy_free(nb_core, pfn, b->order);
		} else {
			struct page *p = alloc_pages_node(node, GFP_KERNEL | __GFP_THISNODE |
							  __GFP_NOWARN | __GFP_NORETRY, b->order);

			if (!p)
				fails++;
			else
				__free_pages(p, b->order);
		}
		if ((i & 1023) == 1023) {
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	b->elapsed_ns = ktime_get_ns() - t0;
	b->failures = fails;
	return 0;
}

static int nb_ioctl_walk(struct nb_file *nf, void *data)
{
	struct nb_walk *w = data;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (w->cache || w->pad2 || !nb_is_zero(w->reserved, sizeof(w->reserved)))
		return -EINVAL;
	return nb_walk_user(w);
}

/* The reply and, kernel-only behind it, the dma-buf whose fd is reserved but not installed. */
struct nb_export_pending {
	struct nb_export_dmabuf e;
	struct dma_buf *dmabuf;
};

static int nb_ioctl_export_dmabuf(struct nb_file *nf, void *data)
{
	struct nb_export_pending *x = data;

	if (x->e.fd || !nb_is_zero(x->e.reserved, sizeof(x->e.reserved)))
		return -EINVAL;
	if (x->e.offset & ~PAGE_MASK)
		return -EINVAL;
	return nb_dmabuf_export(nf, x->e.offset, x->e.flags, &x->e.fd, &x->dmabuf);
}

static void nb_commit_export_dmabuf(struct nb_file *nf, void *data)
{
	struct nb_export_pending *x = data;

	nb_dmabuf_install(x->e.fd, x->dmabuf);
}

static void nb_undo_export_dmabuf(struct nb_file *nf, void *data)
{
	struct nb_export_pending *x = data;

	nb_dmabuf_discard(x->e.fd, x->dmabuf);
}

static int nb_ioctl_compact(struct nb_file *nf, void *data)
{
	struct nb_compact *c = data;
	struct nbc_compact_result res;
	unsigned int order;
	u64 ns = 0;
	int err;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (c->run_phys || c->moved_bytes || c->moved_blocks || c->elapsed_ns || c->runs ||
	    c->runs_movable || !nb_is_zero(c->reserved, sizeof(c->reserved)))
		return -EINVAL;
	if (c->node < 0 || c->node >= NBC_MAX_NODES || c->node >= nr_node_ids)
		return -EINVAL;
	order = c->order ? c->order : nbc_max_order(nb_core);
	if (order > nbc_max_order(nb_core))
		return -EINVAL;
	err = nb_compact_node(nb_node_nospec(c->node), order, &res, &ns);
	c->run_phys = res.run_pfn == ~0ULL ? ~0ULL : PFN_PHYS(res.run_pfn);
	c->moved_bytes = res.frames_moved << PAGE_SHIFT;
	c->moved_blocks = res.blocks_moved;
	c->elapsed_ns = ns;
	c->runs = res.runs;
	c->runs_movable = res.runs_movable;
	return err;
}

struct nb_ioctl_desc {
	unsigned int cmd;
	bool writes; /* takes or changes pool memory: the file must be open for writing */
	int (*fn)(struct nb_file *nf, void *data);
	void (*undo)(struct nb_file *nf, void *data); /* if copying the result out fails */
	void (*commit)(struct nb_file *nf, void *data); /* once it has been copied out */
	bool out_on_error; /* outputs are meaningful after a failure too: copy them back */
};

#define NB_IOCTL(c, w, f, u) [_IOC_NR(c)] = { .cmd = (c), .writes = (w), .fn = (f), .undo = (u) }
#define NB_IOCTL_OUT_ON_ERROR(c, w, f) \
	[_IOC_NR(c)] = { .cmd = (c), .writes = (w), .fn = (f), .out_on_error = true }
static const struct nb_ioctl_desc nb_ioctls[] = {
	NB_IOCTL(NB_IOC_VERSION, false, nb_ioctl_version, NULL),
	NB_IOCTL(NB_IOC_ALLOC, true, nb_ioctl_alloc, nb_undo_alloc),
	NB_IOCTL(NB_IOC_FREE, true, nb_ioctl_free, NULL),
	NB_IOCTL(NB_IOC_ALLOC_BATCH, true, nb_ioctl_alloc_batch, NULL),
	NB_IOCTL(NB_IOC_QUERY, false, nb_ioctl_query, NULL),
	NB_IOCTL(NB_IOC_RESERVE, true, nb_ioctl_reserve, nb_undo_alloc),
	/* A migration stopped part-way (EINTR, ENOMEM, EDQUOT) still says how much moved. */
	NB_IOCTL_OUT_ON_ERROR(NB_IOC_MIGRATE, true, nb_ioctl_migrate),
	NB_IOCTL(NB_IOC_STATS, false, nb_ioctl_stats, NULL),
	NB_IOCTL(NB_IOC_BENCH, true, nb_ioctl_bench, NULL),
	NB_IOCTL(NB_IOC_WALK, false, nb_ioctl_walk, NULL),
	[_IOC_NR(NB_IOC_EXPORT_DMABUF)] = { .cmd = NB_IOC_EXPORT_DMABUF, .writes = true,
		.fn = nb_ioctl_export_dmabuf, .undo = nb_undo_export_dmabuf,
		.commit = nb_commit_export_dmabuf },
	/* What moved before an error stays moved: say how much. */
	NB_IOCTL_OUT_ON_ERROR(NB_IOC_COMPACT, true, nb_ioctl_compact),
};

union nb_ioctl_data {
	struct nb_version version;
	struct nb_alloc alloc;
	struct nb_free free;
	struct nb_alloc_batch batch;
	struct nb_query query;
	struct nb_migrate migrate;
	struct nb_stats stats;
	struct nb_bench bench;
	struct nb_walk walk;
	struct nb_export_pending export_dmabuf; /* ksize covers its uapi part only */
	struct nb_compact compact;
};

/*
 * Table-driven dispatch (drivers/dma-buf/dma-heap.c): the size encoded in the command may be
 * older (shorter: zero-extended) or newer (longer: accepted only if the extra bytes are zero).
 */
long nb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct nb_file *nf = file->private_data;
	void __user *uarg = (void __user *)arg;
	const struct nb_ioctl_desc *d;
	union nb_ioctl_data data;
	unsigned int nr = _IOC_NR(cmd), usize = _IOC_SIZE(cmd), ksize;
	int err;

	if (_IOC_TYPE(cmd) != NB_IOC_MAGIC || nr >= ARRAY_SIZE(nb_ioctls))
		return -ENOTTY;
	d = &nb_ioctls[array_index_nospec(nr, ARRAY_SIZE(nb_ioctls))];
	if (!d->fn || _IOC_DIR(cmd) != _IOC_DIR(d->cmd))
		return -ENOTTY;
	/* Read access is for watching (VERSION, STATS, QUERY): a group given 0640 on the device
	 * must not be able to take pool memory. EBADF, as write(2) on such a file. */
	if (d->writes && !(file->f_mode & FMODE_WRITE))
		return -EBADF;
	ksize = _IOC_SIZE(d->cmd);
	if (usize > ksize) {
		err = check_zeroed_user(uarg + ksize, usize - ksize);
		if (err <= 0)
			return err ? err : -E2BIG;
	}
	memset(&data, 0, sizeof(data));
	if (copy_from_user(&data, uarg, min(usize, ksize)))
		return -EFAULT;
	err = d->fn(nf, &data);
	if (err) {
		/* Best effort: the error is the answer, and an unwritable struct does not
		 * replace it with EFAULT. */
		unsigned long left = d->out_on_error ? copy_to_user(uarg, &data, min(usize, ksize)) : 0;

		(void)left;
		return err;
	}
	if (copy_to_user(uarg, &data, min(usize, ksize))) {
		if (d->undo)
			d->undo(nf, &data);
		return -EFAULT;
	}
	if (d->commit)
		d->commit(nf, &data);
	return 0;
}
