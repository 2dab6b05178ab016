/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_prezero.h - the background zeroer (nb_prezero.c).
 */
#ifndef NB_PREZERO_H
#define NB_PREZERO_H

#include <linux/seq_file.h>

/* Start after the core exists; stop first at exit (the thread uses nb_core). */
int nb_prezero_start(void);
void nb_prezero_stop(void);
/* Around a resize or a compaction: waits for the block being zeroed to be free again. */
void nb_prezero_pause(void);
void nb_prezero_resume(void);
/* debugfs: rate, CPU time, zeroed bytes per node. */
void nb_prezero_show(struct seq_file *m);

#endif /* NB_PREZERO_H */
