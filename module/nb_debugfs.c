// SPDX-License-Identifier: GPL-2.0
/*
 * nb_debugfs.c - /sys/kernel/debug/numabuddy/: the guide's buddy_debug_print on demand, and
 * mm_core's consistency check.
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

void nb_debugfs_init(void)
{
	nb_debugfs_dir = debugfs_create_dir("numabuddy", NULL);
	debugfs_create_file("buddyinfo", 0400, nb_debugfs_dir, NULL, &nb_buddyinfo_fops);
	debugfs_create_file("check", 0400, nb_debugfs_dir, NULL, &nb_check_fops);
}

void nb_debugfs_exit(void)
{
	debugfs_remove_recursive(nb_debugfs_dir);
}
