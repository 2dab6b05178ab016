/* SPDX-License-Identifier: GPL-2.0 */
/* nb_internal.h - what the shim's files share. */
#ifndef NB_INTERNAL_H
#define NB_INTERNAL_H

#include <linux/atomic.h>
#include <linux/types.h>

#include "nbc_core.h"

/* One piece of a pool as the page allocator gave it: a chunk (alloc_pages, order
 * ilog2(nr_pages)) or an aligned run from alloc_contig_range (contig). */
struct nb_piece {
	unsigned long pfn;
	unsigned long nr_pages;
	int node;
	bool contig;
};

/* The pools: every piece taken, and the regions the last reservation merged them into. */
struct nb_pools {
	struct nb_piece *pieces;
	unsigned long nr_pieces, cap_pieces;
	unsigned int chunk_order;
	unsigned int max_order;    /* the core's: aligned runs are 2^max_order pages */
	struct nbc_region *regions; /* what the core has: runs of adjacent pieces, cut at cut_pages */
	unsigned int nr_regions, cap_regions, first_new_region;
	unsigned long cut_pages;
	unsigned long frames_per_node[NBC_MAX_NODES];
	unsigned long aligned_runs[NBC_MAX_NODES]; /* aligned runs among each node's pieces */
};

int nb_pools_reserve(struct nb_pools *p, unsigned long mb_per_node, u64 node_mask,
		     unsigned long aligned_runs, unsigned int max_order);
void nb_pools_release(struct nb_pools *p);
int nb_pool_take(struct nb_pools *p, int nid, unsigned long want_pages, unsigned long aligned_runs,
		 bool all_or_nothing);
long nb_pool_grow(struct nb_pools *p, struct nbc_core *core, int nid, unsigned long add_pages,
		  unsigned long aligned_runs);
long nb_pool_shrink(struct nb_pools *p, struct nbc_core *core, int nid, unsigned long remove_pages);
extern struct nb_pools nb_pools;
extern unsigned long nb_param_aligned_runs;

/* nb_sysfs.c: /sys/module/numabuddy/pools/nodeN/{pool_mb,aligned_runs,gib_blocks} */
int nb_sysfs_init(void);
void nb_sysfs_exit(void);
/* nb_dev.c: a node's pool changed size: open files' quotas follow it. */
void nb_dev_pool_resized(int node);

/* The device. */
extern struct nbc_core *nb_core;
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
/* nb_remap.c: entries MIGRATE put back itself; mms it found busy and left to fault. */
extern atomic64_t nb_stat_remap_entries, nb_stat_remap_busy_mms;
/* nb_vma.c: fault handler calls (all files), so a test can see MIGRATE left none to do. */
u64 nb_stat_faults(void);
/* nb_vma.c: SIGBUS answers of the fault handlers by errno (the last slot: any larger). */
#define NB_SIGBUS_ERRNOS 136
u64 nb_stat_sigbus(int errno_value);

void nb_debugfs_init(void);
void nb_debugfs_exit(void);

#endif /* NB_INTERNAL_H */
