/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_compact.h - compaction in the shim: the list of open files mm_core's compactor walks,
 * NB_IOC_COMPACT, the retry of a failed NB_ALLOC_CONTIG, and the counters (nb_compact.c).
 */
#ifndef NB_COMPACT_H
#define NB_COMPACT_H

#include <linux/types.h>

#include "nbc_compact.h"

struct nb_file;

/* Every open file's space is movable until its release starts. */
void nb_compact_add_file(struct nb_file *nf);
void nb_compact_del_file(struct nb_file *nf);

/* A pool resize holds compactions off (a compactor works on the segments it started with)
 * and waits for a running one. Order: the resize lock, then this. */
void nb_compact_pause(void);
void nb_compact_resume(void);

/* One compaction of node for 2^order frames, counted. */
int nb_compact_node(int node, unsigned int order, struct nbc_compact_result *res, u64 *ns);
/* An NB_ALLOC_CONTIG of bytes under pol failed with -ENOMEM: compact a node it may use that
 * has enough free frames. 0 if a retry is worth it. */
int nb_compact_for_contig(const struct nbc_policy *pol, u64 bytes);

/* The last compaction's result as one line (debugfs). */
void nb_compact_last(char *buf, size_t len);

struct nb_compact_counters {
	u64 compactions, failures, moved_bytes, ns;
};
void nb_compact_counters(int node, struct nb_compact_counters *out);

#endif /* NB_COMPACT_H */
