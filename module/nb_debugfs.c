// SPDX-License-Identifier: GPL-2.0
/*
 * nb_debugfs.c - /sys/kernel/debug/numabuddy/: the guide's buddy_debug_print on demand
 * (buddyinfo: per node and order, largest free block, per-CPU caches, numastat counters),
 * mm_core's consistency check, and the device's own counters.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "nb_internal.h"

static struct dentry *nb_debugfs_dir;

static void nb_emit_seq(void *arg, const char *line)
{
	seq_printf(arg, "%s\n", line);
}

static int nb_buddyinfo_show(struct seq_file *m, void *v)
{
	nb_buddy_debug_print(nb_core, nb_emit_seq, m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nb_buddyinfo);

static int nb_check_show(struct seq_file *m, void *v)
{
	int err = nb_check(nb_core);

	seq_printf(m, "%s %d\n", err ? "inconsistent" : "ok", err);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nb_check);

static int nb_counters_show(struct seq_file *m, void *v)
{
	seq_printf(m, "migrations %lld\nmigrated_bytes %lld\nquota_refusals %lld\n",
		   atomic64_read(&nb_stat_migrations), atomic64_read(&nb_stat_migrated_bytes),
		   atomic64_read(&nb_stat_quota_refusals));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nb_counters);

void nb_debugfs_init(void)
{
	nb_debugfs_dir = debugfs_create_dir("numabuddy", NULL);
	debugfs_create_file("buddyinfo", 0400, nb_debugfs_dir, NULL, &nb_buddyinfo_fops);
	debugfs_create_file("check", 0400, nb_debugfs_dir, NULL, &nb_check_fops);
	debugfs_create_file("counters", 0400, nb_debugfs_dir, NULL, &nb_counters_fops);
}

void nb_debugfs_exit(void)
{
	debugfs_remove_recursive(nb_debugfs_dir);
}
