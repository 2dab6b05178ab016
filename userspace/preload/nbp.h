/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nbp.h - libnumabuddy-preload internals: the table of pool-served regions and the
 * backend that makes and frees them. The preload has its own prefix (nbp_) and talks to
 * the device with raw ioctls: it must not pull libnuma or libnumabuddy's allocations into
 * every program it is preloaded into.
 */
#ifndef NUMABUDDY_PRELOAD_H
#define NUMABUDDY_PRELOAD_H

#include <stddef.h>
#include <stdint.h>

/* How a region reached the program, which decides what free()/munmap() must do with it. */
enum nbp_kind {
	NBP_MALLOC, /* returned by malloc & co.: free() unmaps and frees the block */
	NBP_MMAP,   /* returned by mmap(): munmap() of all of it frees the block */
};

/*
 * One pool block mapped into the process. A region forked into a child turns into private
 * anonymous memory there (@offset NBP_PRIVATE): the child unmaps it, never frees a block.
 */
#define NBP_PRIVATE UINT64_MAX
struct nbp_region {
	uintptr_t addr;
	size_t len;      /* bytes mapped at @addr */
	size_t gone;     /* bytes of it munmap()ed so far (partial unmaps) */
	size_t user;     /* bytes the caller asked for (realloc copies this much) */
	uint64_t offset; /* the block's device offset, or NBP_PRIVATE */
	int node;        /* node of the block's first frame, as NB_IOC_ALLOC said */
	int prot;        /* last protection set on the whole region */
	enum nbp_kind kind;
};

/*
 * The table: regions sorted by address, in memory of its own (mmap), never malloc. Every
 * function needs nbp_lock held by the caller.
 */
int nbp_regions_add(const struct nbp_region *r);        /* 0 or -ENOMEM */
struct nbp_region *nbp_regions_find(uintptr_t addr);    /* the region holding addr */
size_t nbp_regions_index(uintptr_t addr);                 /* first region ending above addr */
void nbp_regions_remove(struct nbp_region *r);
size_t nbp_regions_count(void);
struct nbp_region *nbp_regions_at(size_t i);

#endif /* NUMABUDDY_PRELOAD_H */
