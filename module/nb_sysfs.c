// SPDX-License-Identifier: GPL-2.0
/*
 * nb_sysfs.c - /sys/module/numabuddy/pools/nodeN/: each pool's size, which an admin can change
 * while the device is in use, as hugetlbfs's per-node nr_hugepages.
 *
 *   pool_mb     read: the node's pool in MiB. Write a larger number: the pool grows by what
 *               the node can spare under the same margin as at load (maybe less than asked;
 *               -ENOMEM if nothing). Write a smaller one: whole regions that are entirely free
 *               go back to the kernel, newest first, never below the size written (maybe
 *               less than asked; -EBUSY if nothing could go). Read it back for the result.
 *   aligned_runs  aligned runs (2^max_order pages) the pool holds from alloc_contig_range
 *   gib_blocks  free 1 GiB blocks the node can serve now (larger free blocks count for
 *               the GiB blocks they hold)
 */
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nodemask.h>
#include <linux/sysfs.h>

#include "nb_internal.h"
#include "nb_compact.h"
#include "nb_prezero.h"

#define NB_GIB_ORDER (30 - PAGE_SHIFT)

static struct kobject *nb_pools_kobj;
static struct kobject *nb_node_kobj[NBC_MAX_NODES];
/* Resizes one at a time (the core refuses a concurrent one with -EBUSY; this waits instead). */
static DEFINE_MUTEX(nb_resize_lock);

static int nb_kobj_node(struct kobject *kobj)
{
	int nid;

	for (nid = 0; nid < NBC_MAX_NODES; nid++)
		if (nb_node_kobj[nid] == kobj)
			return nid;
	return -1;
}

static ssize_t pool_mb_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct nbc_node_stats ns;
	int nid = nb_kobj_node(kobj);

	if (nid < 0 || nbc_node_stats(nb_core, nid, &ns))
		return -ENODEV;
	return sysfs_emit(buf, "%llu\n", (unsigned long long)(ns.total_frames >> (20 - PAGE_SHIFT)));
}

static ssize_t pool_mb_store(struct kobject *kobj, struct kobj_attribute *attr, const char *buf,
			     size_t count)
{
	unsigned long want_mb, have;
	int nid = nb_kobj_node(kobj);
	long got;
	int err;

	if (nid < 0)
		return -ENODEV;
	err = kstrtoul(buf, 0, &want_mb);
	if (err)
		return err;
	if (want_mb > (ULONG_MAX >> 20))
		return -ERANGE;
	if (mutex_lock_interruptible(&nb_resize_lock))
		return -EINTR;
	nb_compact_pause();
	nb_prezero_pause(); /* a block being zeroed would make a shrink -EBUSY */
	have = nb_pools.frames_per_node[nid];
	if (want_mb << (20 - PAGE_SHIFT) > have) {
		got = nb_pool_grow(&nb_pools, nb_core, nid, (want_mb << (20 - PAGE_SHIFT)) - have,
				   nb_param_aligned_runs);
		if (got > 0)
			pr_info("numabuddy: node %d: pool grown by %ld MiB to %lu MiB (asked %lu MiB)\n",
				nid, got >> (20 - PAGE_SHIFT),
				nb_pools.frames_per_node[nid] >> (20 - PAGE_SHIFT), want_mb);
	} else if (want_mb << (20 - PAGE_SHIFT) < have) {
		got = nb_pool_shrink(&nb_pools, nb_core, nid, have - (want_mb << (20 - PAGE_SHIFT)));
		if (got > 0)
			pr_info("numabuddy: node %d: pool shrunk by %ld MiB to %lu MiB (asked %lu MiB)\n",
				nid, got >> (20 - PAGE_SHIFT),
				nb_pools.frames_per_node[nid] >> (20 - PAGE_SHIFT), want_mb);
	} else {
		got = 0;
	}
	if (got > 0)
		nb_dev_pool_resized(nid);
	nb_prezero_resume();
	nb_compact_resume();
	mutex_unlock(&nb_resize_lock);
	return got < 0 ? got : count;
}

static ssize_t aligned_runs_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	unsigned long runs;
	int nid = nb_kobj_node(kobj);

	if (nid < 0)
		return -ENODEV;
	mutex_lock(&nb_resize_lock);
	runs = nb_pools.aligned_runs[nid];
	mutex_unlock(&nb_resize_lock);
	return sysfs_emit(buf, "%lu\n", runs);
}

static ssize_t gib_blocks_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct nbc_node_stats ns;
	unsigned long long blocks = 0;
	int nid = nb_kobj_node(kobj), k;

	if (nid < 0 || nbc_node_stats(nb_core, nid, &ns))
		return -ENODEV;
	for (k = NB_GIB_ORDER; k <= NBC_ORDER_LIMIT && k <= (int)ns.max_order; k++)
		blocks += ns.free_blocks[k] << (k - NB_GIB_ORDER);
	return sysfs_emit(buf, "%llu\n", blocks);
}

static struct kobj_attribute nb_attr_pool_mb = __ATTR(pool_mb, 0644, pool_mb_show, pool_mb_store);
static struct kobj_attribute nb_attr_aligned_runs = __ATTR_RO(aligned_runs);
static struct kobj_attribute nb_attr_gib_blocks = __ATTR_RO(gib_blocks);

static struct attribute *nb_node_attrs[] = {
	&nb_attr_pool_mb.attr,
	&nb_attr_aligned_runs.attr,
	&nb_attr_gib_blocks.attr,
	NULL,
};
static const struct attribute_group nb_node_group = { .attrs = nb_node_attrs };

/* A directory per node that got a pool at load: only those can grow (the core's per-node
 * tables are built at load). */
int nb_sysfs_init(void)
{
	u64 with_pool = nbc_nodes_with_memory(nb_core);
	char name[16];
	int nid, err;

	nb_pools_kobj = kobject_create_and_add("pools", &THIS_MODULE->mkobj.kobj);
	if (!nb_pools_kobj)
		return -ENOMEM;
	for (nid = 0; nid < NBC_MAX_NODES; nid++) {
		if (!(with_pool & BIT_ULL(nid)))
			continue;
		snprintf(name, sizeof(name), "node%d", nid);
		nb_node_kobj[nid] = kobject_create_and_add(name, nb_pools_kobj);
		if (!nb_node_kobj[nid]) {
			err = -ENOMEM;
			goto fail;
		}
		err = sysfs_create_group(nb_node_kobj[nid], &nb_node_group);
		if (err)
			goto fail;
	}
	return 0;
fail:
	nb_sysfs_exit();
	return err;
}

void nb_sysfs_exit(void)
{
	int nid;

	for (nid = 0; nid < NBC_MAX_NODES; nid++) {
		kobject_put(nb_node_kobj[nid]); /* removes the files, waiting for active writers */
		nb_node_kobj[nid] = NULL;
	}
	kobject_put(nb_pools_kobj);
	nb_pools_kobj = NULL;
}
