/* SPDX-License-Identifier: GPL-2.0 */
/* nb_internal.h - what the shim's files share. */
#ifndef NB_INTERNAL_H
#define NB_INTERNAL_H

#include <linux/atomic.h>
#include <linux/types.h>

#include "nb_core.h"

/* The pools reserved at load: page-allocator chunks, and the regions they merge into. */
struct nb_pools {
	struct page **chunks;     /* every chunk, sorted by pfn */
	unsigned long nr_chunks;
	unsigned int chunk_order;
	struct nb_region *regions; /* maximal runs of physically adjacent chunks, per node */
	unsigned int nr_regions;
	unsigned long frames_per_node[NB_MAX_NODES];
};

int nb_pools_reserve(struct nb_pools *p, unsigned long mb_per_node, u64 node_mask);
void nb_pools_release(struct nb_pools *p);

/* The device. */
extern struct nb_core *nb_core;
extern unsigned int nb_param_fd_quota_pct, nb_param_max_order;
int nb_dev_register(void);
void nb_dev_unregister(void);

int nb_fs_init(void);
void nb_fs_exit(void);
struct inode *nb_fs_inode_new(void);

struct nb_walk;
int nb_walk_user(struct nb_walk *w);

/* Counters for debugfs, across all files. */
extern atomic64_t nb_stat_migrations, nb_stat_migrated_bytes, nb_stat_quota_refusals;

void nb_debugfs_init(void);
void nb_debugfs_exit(void);

#endif /* NB_INTERNAL_H */
