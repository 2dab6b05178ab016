// SPDX-License-Identifier: GPL-2.0
/*
 * nb_debugfs.c - /sys/kernel/debug/numabuddy/: the guide's buddy_debug_print on demand
 * (buddyinfo: per node and order, largest free block, per-CPU caches, numastat counters),
 * mm_core's consistency check, and the device's own counters.
 */
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#include "nb_compact.h"
#include "nb_internal.h"
#include "nb_pin.h"
#include "nb_prezero.h"

static struct dentry *nb_debugfs_dir;

static void nb_emit_seq(void *arg, const char *line)
{
	seq_printf(arg, "%s\n", line);
}

static int nb_buddyinfo_show(struct seq_file *m, void *v)
{
	nbc_buddy_debug_print(nb_core, nb_emit_seq, m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nb_buddyinfo);

static int nb_check_show(struct seq_file *m, void *v)
{
	int err = nbc_check(nb_core);

	seq_printf(m, "%s %d\n", err ? "inconsistent" : "ok", err);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nb_check);

static int nb_counters_show(struct seq_file *m, void *v)
{
	u64 inflight = 0;
	int node, e;

	for (node = 0; node < NBC_MAX_NODES; node++)
		inflight += nb_pin_inflight_bytes(node);
	seq_printf(m, "migrations %lld\nmigrated_bytes %lld\nquota_refusals %lld\n",
		   atomic64_read(&nb_stat_migrations), atomic64_read(&nb_stat_migrated_bytes),
		   atomic64_read(&nb_stat_quota_refusals));
	seq_printf(m, "remap_entries %lld\nremap_busy_mms %lld\nfaults %llu\n",
		   atomic64_read(&nb_stat_remap_entries), atomic64_read(&nb_stat_remap_busy_mms),
		   nb_stat_faults());
	for (e = 1; e < NB_SIGBUS_ERRNOS; e++)
		if (nb_stat_sigbus(e))
			seq_printf(m, "sigbus_errno_%d %llu\n", e, nb_stat_sigbus(e));
	/* Freed pinnable blocks whose frames the kernel still references (nb_pin.c). */
	seq_printf(m, "inflight_blocks %llu\ninflight_bytes %llu\n", nb_pin_inflight_blocks(),
		   inflight);
	for (node = 0; node < NBC_MAX_NODES && node < nr_node_ids; node++) {
		struct nb_compact_counters cc;

		nb_compact_counters(node, &cc);
		if (cc.compactions)
			seq_printf(m, "node%d_compactions %llu\nnode%d_compact_failures %llu\n"
				   "node%d_compact_moved_bytes %llu\nnode%d_compact_ns %llu\n",
				   node, cc.compactions, node, cc.failures, node, cc.moved_bytes,
				   node, cc.ns);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nb_counters);

static int nb_prezero_dbg_show(struct seq_file *m, void *v)
{
	nb_prezero_show(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nb_prezero_dbg);

/* Write "NODE [ORDER]": one compaction (ORDER 0 or absent: the max order). Read: the last
 * compaction's result, whoever ran it (this file, NB_IOC_COMPACT or a CONTIG allocation). */
static ssize_t nb_compact_write(struct file *file, const char __user *ubuf, size_t len,
				loff_t *ppos)
{
	struct nbc_compact_result res;
	char buf[32];
	int node, n;
	unsigned int order = 0;
	u64 ns = 0;
	int err;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	n = sscanf(buf, "%d %u", &node, &order);
	if (n < 1 || node < 0 || node >= NBC_MAX_NODES || node >= nr_node_ids)
		return -EINVAL;
	if (!order)
		order = nbc_max_order(nb_core);
	if (order > nbc_max_order(nb_core))
		return -EINVAL;
	err = nb_compact_node(node, order, &res, &ns);
	return err ? err : len;
}

static ssize_t nb_compact_read(struct file *file, char __user *ubuf, size_t len, loff_t *ppos)
{
	char line[192];

	nb_compact_last(line, sizeof(line));
	return simple_read_from_buffer(ubuf, len, ppos, line, strlen(line));
}

static const struct file_operations nb_compact_fops = {
	.owner = THIS_MODULE,
	.write = nb_compact_write,
	.read = nb_compact_read,
	.llseek = default_llseek,
};

void nb_debugfs_init(void)
{
	nb_debugfs_dir = debugfs_create_dir("numabuddy", NULL);
	debugfs_create_file("buddyinfo", 0400, nb_debugfs_dir, NULL, &nb_buddyinfo_fops);
	debugfs_create_file("check", 0400, nb_debugfs_dir, NULL, &nb_check_fops);
	debugfs_create_file("counters", 0400, nb_debugfs_dir, NULL, &nb_counters_fops);
	debugfs_create_file("compact", 0600, nb_debugfs_dir, NULL, &nb_compact_fops);
	debugfs_create_file("prezero", 0400, nb_debugfs_dir, NULL, &nb_prezero_dbg_fops);
}

void nb_debugfs_exit(void)
{
	debugfs_remove_recursive(nb_debugfs_dir);
}
