/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_file.h - one open /dev/numabuddy, shared by nb_dev.c (open, release, fdinfo),
 * nb_ioctl.c (the ioctls) and nb_vma.c (mmap and the fault handlers).
 *
 * Each open file description has an nbc_space (mm_core/nbc_space.h): its blocks and reserved
 * ranges, the software page table over its offset space, its quotas. mm_core decides what a
 * fault gets; the shim only translates between Linux and mm_core:
 *   - every open file gets its own S_DAX anonymous inode as f_mapping (nb_fs.c), so PMD/PUD
 *     faults reach us and unmap_mapping_range() zaps exactly this file's mappings;
 *   - zap_lock orders faults against frees and migrations: a fault holds it for read from
 *     nbc_space_fault() until its entry is inserted; FREE/MIGRATE hold it for write around
 *     the phase-1 call (FREE and a pinnable MIGRATE: until the zap is done), so no fault can
 *     insert a frame the phase-1 call took away. MIGRATE then unmaps, copies and maps back
 *     one batch at a time (nb_remap.c);
 *   - a fault on a migrating range sleeps on migrate_wq until the migration is over;
 *   - pinnable blocks (nb_pin.c) are the offsets in pin_blocks; pin_mutex serialises their
 *     FREE and MIGRATE. A freed pinnable block whose frames the kernel still references
 *     holds a reference on the nb_file (kref) until they are back, so the space outlives
 *     the file's release then.
 */
#ifndef NB_FILE_H
#define NB_FILE_H

#include <linux/fs.h>
#include <linux/list.h>
#include <linux/kref.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "nbc_core.h"

struct nbc_space;

struct nb_file {
	struct nbc_space *space;
	struct rw_semaphore zap_lock;
	wait_queue_head_t migrate_wq;
	atomic_t migrate_gen;        /* bumped after every migration, wakes waiting faults */
	struct inode *inode;         /* this file's S_DAX mapping host */
	struct list_head files;      /* on nb_dev.c's list: quotas follow pool resizes */
	unsigned int quota_pct;      /* fd_quota_pct when opened: its share of every pool */
	struct kref kref;            /* the open file, plus one per deferred free (nb_pin.c) */
	struct xarray pin_blocks;    /* offset >> PAGE_SHIFT of every live pinnable block */
	struct mutex pin_mutex;
	atomic64_t inflight_bytes[NBC_MAX_NODES]; /* this file's deferred frees, per node */
	struct list_head compact_link; /* nb_compact.c: the files whose frames may move */
};

/* nb_dev.c: drop a reference; the last one destroys the space and frees the file. */
void nb_file_put(struct nb_file *nf);

/* nb_ioctl.c */
long nb_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
void nb_count_error(int err); /* counts quota refusals for debugfs */

/* nb_ioctl.c: unmap_mapping_range of a range of the file's offsets. */
void nb_zap_range(struct nb_file *nf, u64 start, u64 len);

/* nb_remap.c: MIGRATE's phase 2 for a range of PFN mappings, which stay mapped. */
int nb_remap_migrate(struct nb_file *nf, u64 offset, nb_u64 *bytes_moved);
/* nb_remap.c: the file's mapper, as MIGRATE and compaction call it (arg: the nb_file). */
void nb_remap_unmap(void *arg, nb_u64 offset, nb_u64 len);
void nb_remap_map(void *arg, nb_u64 offset, nb_u64 pfn, nb_u64 nr_frames);

/* nb_vma.c */
int nb_mmap(struct file *file, struct vm_area_struct *vma);
unsigned long nb_get_unmapped_area(struct file *file, unsigned long addr, unsigned long len,
				   unsigned long pgoff, unsigned long flags);

#endif /* NB_FILE_H */
