// SPDX-License-Identifier: GPL-2.0
/*
 * nb_compact.c - compaction's owner side (mm_core/nbc_compact.h): mm_core picks the run and
 * copies; the shim knows the spaces (every open file), which ranges are pinnable (nb_pin.c,
 * they never move: the kernel may hold page references on them), and how a range's mappings
 * are moved in place (nb_remap.c's mapper: each frame unmapped, copied and mapped again) and
 * its faults woken, exactly as NB_IOC_MIGRATE does it.
 *
 * nb_compact_mutex serialises compactions and guards the file list: a file leaves the list at
 * the start of its release, so a compaction never sees a space being destroyed (release
 * waits for a running compaction). Order: nb_compact_mutex, then a file's zap_lock.
 */
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/log2.h>
#include <linux/mutex.h>
#include <linux/numa.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/topology.h>
#include <linux/wait.h>

#include "nb_compact.h"
#include "nb_file.h"
#include "nb_internal.h"
#include "nb_pin.h"
#include "nb_prezero.h"
#include "nbc_space.h"

static LIST_HEAD(nb_compact_files);
static DEFINE_MUTEX(nb_compact_mutex);
static atomic64_t nb_compact_count[NBC_MAX_NODES], nb_compact_failed[NBC_MAX_NODES];
static atomic64_t nb_compact_moved[NBC_MAX_NODES], nb_compact_time[NBC_MAX_NODES];

void nb_compact_add_file(struct nb_file *nf)
{
	mutex_lock(&nb_compact_mutex);
	list_add_tail(&nf->compact_link, &nb_compact_files);
	mutex_unlock(&nb_compact_mutex);
}

void nb_compact_del_file(struct nb_file *nf)
{
	mutex_lock(&nb_compact_mutex);
	list_del_init(&nf->compact_link);
	mutex_unlock(&nb_compact_mutex);
}

static void nb_compact_for_each(void *arg, void (*fn)(void *farg, struct nbc_space *s, void *owner),
				void *farg)
{
	struct nb_file *nf;

	lockdep_assert_held(&nb_compact_mutex);
	list_for_each_entry(nf, &nb_compact_files, compact_link)
		fn(farg, nf->space, nf);
}

/* Under the space's spinlock: xa_load is RCU, atomic-safe. */
static int nb_compact_pinned(void *owner, nb_u64 offset)
{
	return nb_pin_is_tracked(owner, offset);
}

static void nb_compact_lock(void *owner)
{
	down_write(&((struct nb_file *)owner)->zap_lock);
}

static void nb_compact_unlock(void *owner)
{
	up_write(&((struct nb_file *)owner)->zap_lock);
}

static void nb_compact_done(void *owner)
{
	struct nb_file *nf = owner;

	atomic_inc(&nf->migrate_gen);
	wake_up_all(&nf->migrate_wq);
}

static const struct nbc_compact_ops nb_compact_ops = {
	.for_each = nb_compact_for_each,
	.pinned = nb_compact_pinned,
	.lock = nb_compact_lock,
	.unlock = nb_compact_unlock,
	.done = nb_compact_done,
	.unmap = nb_remap_unmap,
	.map = nb_remap_map,
};

void nb_compact_pause(void)
{
	mutex_lock(&nb_compact_mutex);
}

void nb_compact_resume(void)
{
	mutex_unlock(&nb_compact_mutex);
}

/* The last compaction's answer, for debugfs' compact file (under nb_compact_mutex). */
static char nb_compact_last_line[192];

void nb_compact_last(char *buf, size_t len)
{
	mutex_lock(&nb_compact_mutex);
	strscpy(buf, nb_compact_last_line, len);
	mutex_unlock(&nb_compact_mutex);
}

int nb_compact_node(int node, unsigned int order, struct nbc_compact_result *res, u64 *ns)
{
	u64 t0;
	int err;

	if (mutex_lock_killable(&nb_compact_mutex))
		return -EINTR;
	t0 = ktime_get_ns();
	nb_prezero_pause(); /* a block being zeroed would make its run look unmovable */
	err = nbc_compact_node(nb_core, node, order, &nb_compact_ops, NULL, NB_CTX_SLEEP, res);
	nb_prezero_resume();
	*ns = ktime_get_ns() - t0;
	snprintf(nb_compact_last_line, sizeof(nb_compact_last_line),
		 "node %d order %u err %d run_pfn 0x%llx moved_bytes %llu blocks %llu ns %llu "
		 "runs %u movable %u\n", node, order, err, (unsigned long long)res->run_pfn,
		 (unsigned long long)res->frames_moved << PAGE_SHIFT,
		 (unsigned long long)res->blocks_moved, *ns, res->runs, res->runs_movable);
	mutex_unlock(&nb_compact_mutex);
	/* Count the ones that had work to do (not "a free block existed", not bad input). */
	if (err != -EINVAL && node >= 0 && node < NBC_MAX_NODES &&
	    (err || res->run_pfn != ~0ULL)) {
		atomic64_inc(&nb_compact_count[node]);
		if (err)
			atomic64_inc(&nb_compact_failed[node]);
		atomic64_add(res->frames_moved << PAGE_SHIFT, &nb_compact_moved[node]);
		atomic64_add(*ns, &nb_compact_time[node]);
	}
	return err;
}

int nb_compact_for_contig(const struct nbc_policy *pol, u64 bytes)
{
	u64 frames = bytes >> PAGE_SHIFT, mask;
	struct nbc_policy norm;
	unsigned int order;
	int node, err = -ENOMEM;

	if (!frames || nbc_policy_normalize(nb_core, pol, &norm))
		return -ENOMEM;
	order = order_base_2(frames);
	if (order == 0 || order > nbc_max_order(nb_core))
		return -ENOMEM;
	if (norm.mode == NBC_POLICY_BIND || norm.mode == NBC_POLICY_INTERLEAVE)
		mask = norm.nodemask;
	else if (norm.mode == NBC_POLICY_PREFERRED && norm.node >= 0)
		mask = 1ULL << norm.node;
	else
		mask = 1ULL << numa_node_id();
	mask &= nbc_nodes_with_memory(nb_core);
	for (node = 0; node < NBC_MAX_NODES && mask; node++) {
		struct nbc_node_stats ns;
		struct nbc_compact_result res;
		u64 t;

		if (!(mask & (1ULL << node)))
			continue;
		mask &= ~(1ULL << node);
		/* Compaction moves frames, it makes none: a node without the room is skipped. */
		if (nbc_node_stats(nb_core, node, &ns) || ns.free_frames + ns.pcp_frames < frames)
			continue;
		err = nb_compact_node(node, order, &res, &t);
		if (!err || err == -EINTR)
			return err;
	}
	return err;
}

void nb_compact_counters(int node, struct nb_compact_counters *out)
{
	out->compactions = atomic64_read(&nb_compact_count[node]);
	out->failures = atomic64_read(&nb_compact_failed[node]);
	out->moved_bytes = atomic64_read(&nb_compact_moved[node]);
	out->ns = atomic64_read(&nb_compact_time[node]);
}
