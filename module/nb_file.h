/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_file.h - one open /dev/numabuddy, shared by nb_dev.c (open, release, fdinfo),
 * nb_ioctl.c (the ioctls) and nb_vma.c (mmap and the fault handlers).
 *
 * Each open file description has an nb_space (mm_core/nb_space.h): its blocks and reserved
 * ranges, the software page table over its offset space, its quotas. mm_core decides what a
 * fault gets; the shim only translates between Linux and mm_core:
 *   - every open file gets its own S_DAX anonymous inode as f_mapping (nb_fs.c), so PMD/PUD
 *     faults reach us and unmap_mapping_range() zaps exactly this file's mappings;
 *   - zap_lock orders faults against frees and migrations: a fault holds it for read from
 *     nb_space_fault() until its entry is inserted; FREE/MIGRATE hold it for write from the
 *     phase-1 call until the zap is done, so no stale entry survives the zap;
 *   - a fault on a migrating range sleeps on migrate_wq until the copy is over.
 */
#ifndef NB_FILE_H
#define NB_FILE_H

#include <linux/fs.h>
#include <linux/mm_types.h>
#include <linux/rwsem.h>
#include <linux/wait.h>

struct nb_space;

struct nb_file {
	struct nb_space *space;
	struct rw_semaphore zap_lock;
	wait_queue_head_t migrate_wq;
	atomic_t migrate_gen;        /* bumped after every migration, wakes waiting faults */
	struct inode *inode;         /* this file's S_DAX mapping host */
};

/* nb_ioctl.c */
long nb_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
void nb_count_error(int err); /* counts quota refusals for debugfs */

/* nb_vma.c */
int nb_mmap(struct file *file, struct vm_area_struct *vma);
unsigned long nb_get_unmapped_area(struct file *file, unsigned long addr, unsigned long len,
				   unsigned long pgoff, unsigned long flags);

#endif /* NB_FILE_H */
