/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_pin.h - pinnable blocks (NB_ALLOC_PINNABLE): mapped with page references, so the
 * kernel's page-reference paths work on them, and freed only once those references are gone.
 * Design and uapi contract: uapi/numabuddy.h, "Pinnable blocks"; why: nb_pin.c.
 */
#ifndef NB_PIN_H
#define NB_PIN_H

#include <linux/types.h>

struct nb_file;

/* Pool frames carry one page reference each (the pool's own), from load to unload. */
void nb_pin_prepare_chunk(struct page *chunk, unsigned int order);
void nb_pin_release_chunk(struct page *chunk, unsigned int order);
/* Does every frame of [pfn, pfn + nr) hold the pool's reference alone? A shrink gives back
 * only such frames. */
bool nb_pin_frames_unreferenced(unsigned long pfn, unsigned long nr);

/* Remember that the live block at offset is pinnable (after nbc_space_alloc). */
int nb_pin_track(struct nb_file *nf, u64 offset);
bool nb_pin_is_tracked(struct nb_file *nf, u64 offset);
/* FREE of a tracked block (the caller checks nb_pin_is_tracked first): 0 also when the
 * frames are still referenced and the free completes later. */
int nb_pin_free(struct nb_file *nf, u64 offset);
/* Before nbc_space_migrate_begin of a tracked block, zap_lock held for write: zaps its
 * mappings, then -EBUSY if any page is still referenced. */
int nb_pin_migrate_check(struct nb_file *nf, u64 offset);
/* A dma-buf's hold on the live pinnable block at offset: a page reference on each of its
 * pages (FREE then defers, MIGRATE gets -EBUSY, until nb_pin_unhold). -EINVAL if the block is
 * not pinnable. */
int nb_pin_hold(struct nb_file *nf, u64 offset, struct page ***pages, unsigned long *nr_pages,
		int *node);
void nb_pin_unhold(struct page **pages, unsigned long nr_pages);
/* The file's last reference went away: defer what the kernel still references. */
void nb_pin_file_release(struct nb_file *nf);

/* Bytes of deferred frees on node (all files). */
u64 nb_pin_inflight_bytes(int node);
u64 nb_pin_inflight_blocks(void);
/* Module exit: nothing can be deferred any more (every deferral pins the module). */
void nb_pin_exit(void);

#endif /* NB_PIN_H */
