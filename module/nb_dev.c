// SPDX-License-Identifier: GPL-2.0
/*
 * nb_dev.c - /dev/numabuddy: the misc device, open and release of a file (its nbc_space and
 * own inode, per-node quotas), fdinfo. The ioctls are in nb_ioctl.c, mmap and faults in
 * nb_vma.c; what a file is: nb_file.h.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "nb_compact.h"
#include "nb_internal.h"
#include "nbc_space.h"
#include "nb_file.h"
#include "nb_pin.h"

static u64 nb_node_pool_bytes(int node)
{
	struct nbc_node_stats ns;

	if (nbc_node_stats(nb_core, node, &ns))
		return 0;
	return ns.total_frames << PAGE_SHIFT;
}

/* Every open file, so that a resize can move each one's quota with its pool (the file's
 * fd_quota_pct, as it was at open, of the new size). */
static LIST_HEAD(nb_files);
static DEFINE_MUTEX(nb_files_lock);

static void nb_set_quota(struct nb_file *nf, int node)
{
	u64 pool = nb_node_pool_bytes(node);

	if (pool && nf->quota_pct < 100)
		nbc_space_set_quota(nf->space, node, div_u64(pool * nf->quota_pct, 100));
}

void nb_dev_pool_resized(int node)
{
	struct nb_file *nf;

	mutex_lock(&nb_files_lock);
	list_for_each_entry(nf, &nb_files, files)
		nb_set_quota(nf, node);
	mutex_unlock(&nb_files_lock);
}

static int nb_open(struct inode *devinode, struct file *file)
{
	struct nb_file *nf;
	int node, err;

	nf = kzalloc(sizeof(*nf), GFP_KERNEL_ACCOUNT); /* the opener's memory cgroup pays */
	if (!nf)
		return -ENOMEM;
	init_rwsem(&nf->zap_lock);
	kref_init(&nf->kref);
	xa_init(&nf->pin_blocks);
	init_waitqueue_head(&nf->migrate_wq);
	nf->inode = nb_fs_inode_new();
	if (IS_ERR(nf->inode)) {
		err = PTR_ERR(nf->inode);
		goto err_free;
	}
	err = nbc_space_create(nb_core, -1, NB_CTX_SLEEP, &nf->space);
	if (err)
		goto err_inode;
	/* One file cannot drain a pool: each node's share is capped by fd_quota_pct. */
	/* Under the list lock: a resize either finds this file or has already changed the
	 * pool size this reads. */
	nf->quota_pct = READ_ONCE(nb_param_fd_quota_pct);
	mutex_lock(&nb_files_lock);
	for (node = 0; node < NBC_MAX_NODES && node < nr_node_ids; node++)
		nb_set_quota(nf, node);
	list_add(&nf->files, &nb_files);
	mutex_unlock(&nb_files_lock);
	file->f_mapping = nf->inode->i_mapping;
	file->private_data = nf;
	nb_compact_add_file(nf);
	return 0;

err_inode:
	iput(nf->inode);
err_free:
	kfree(nf);
	return err;
}

static void nb_file_free(struct kref *kref)
{
	struct nb_file *nf = container_of(kref, struct nb_file, kref);

	mutex_lock(&nb_files_lock);
	list_del(&nf->files);
	mutex_unlock(&nb_files_lock);
	nbc_space_destroy(nf->space, NB_CTX_SLEEP);
	iput(nf->inode);
	kfree(nf);
}

void nb_file_put(struct nb_file *nf)
{
	kref_put(&nf->kref, nb_file_free);
}

/* Last reference gone: no mapping can exist any more (every VMA holds the file). Frames of
 * pinnable blocks the kernel still references keep the space alive (nb_pin.c). */
static int nb_release(struct inode *devinode, struct file *file)
{
	struct nb_file *nf = file->private_data;

	nb_compact_del_file(nf);
	nb_pin_file_release(nf);
	nb_file_put(nf);
	return 0;
}

static void nb_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct nb_file *nf = file->private_data;
	int node;

	for (node = 0; node < NBC_MAX_NODES && node < nr_node_ids; node++) {
		u64 bytes = nbc_space_node_bytes(nf->space, node);
		u64 quota = nbc_space_quota(nf->space, node);

		if (!bytes && !nb_node_pool_bytes(node))
			continue;
		seq_printf(m, "numabuddy-node%d:\t%llu kB", node, bytes >> 10);
		if (quota != NBC_SPACE_NO_QUOTA)
			seq_printf(m, " (quota %llu kB)", quota >> 10);
		seq_putc(m, '\n');
	}
	seq_printf(m, "numabuddy-table-pages:\t%llu\n",
		   (unsigned long long)nbc_space_table_pages(nf->space));
}

static const struct file_operations nb_fops = {
	.owner = THIS_MODULE,
	.open = nb_open,
	.release = nb_release,
	.unlocked_ioctl = nb_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = nb_mmap,
	.get_unmapped_area = nb_get_unmapped_area,
	.show_fdinfo = nb_show_fdinfo,
};

static struct miscdevice nb_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "numabuddy",
	.fops = &nb_fops,
	.mode = 0600,
};

int nb_dev_register(void)
{
	return misc_register(&nb_misc);
}

void nb_dev_unregister(void)
{
	misc_deregister(&nb_misc);
}
