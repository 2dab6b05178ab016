// SPDX-License-Identifier: GPL-2.0
/*
 * nb_fs.c - one anonymous inode per open file, on a private pseudo filesystem.
 *
 * Why: unmap_mapping_range() zaps by (mapping, offset), and before 6.15 the kernel calls
 * vm_ops->huge_fault only for DAX VMAs (vma_is_dax: the mapping's host inode has S_DAX;
 * nb_compat.h says why 6.15+ must not have it). Giving every open file its own inode, used
 * as the file's f_mapping (as DRM does with its anon inode), gets both: PMD/PUD faults, and
 * zaps that reach exactly this file's mappings in every process that shares it (fork,
 * SCM_RIGHTS), and nobody else's.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>

#include "nb_internal.h"
#include "nb_compat.h"

#define NB_FS_MAGIC 0x6e627566 /* "nbuf" */

static struct vfsmount *nb_fs_mnt;
static int nb_fs_mnt_count;

static int nb_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, NB_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type nb_fs_type = {
	.name = "numabuddy",
	/* No .owner: our own pin would then hold a reference on ourselves and rmmod could
	 * never succeed. Every inode lives inside an open file, which pins the module. */
	.init_fs_context = nb_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

int nb_fs_init(void)
{
	return simple_pin_fs(&nb_fs_type, &nb_fs_mnt, &nb_fs_mnt_count);
}

void nb_fs_exit(void)
{
	simple_release_fs(&nb_fs_mnt, &nb_fs_mnt_count);
}

struct inode *nb_fs_inode_new(void)
{
	struct inode *inode = alloc_anon_inode(nb_fs_mnt->mnt_sb);

	if (IS_ERR(inode))
		return inode;
	if (NB_INODE_S_DAX)
		inode->i_flags |= S_DAX;
	return inode;
}
