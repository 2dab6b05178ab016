/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nbp.h - libnumabuddy-preload internals: the table of pool-served regions and the
 * backend that makes and frees them. The preload has its own prefix (nbp_) and talks to
 * the device with raw ioctls: it must not pull libnuma or libnumabuddy's allocations into
 * every program it is preloaded into.
 */
#ifndef NUMABUDDY_PRELOAD_H
#define NUMABUDDY_PRELOAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NBP_EXPORT __attribute__((visibility("default")))
#define NBP_PAGE 4096UL
#define NBP_2M (2UL << 20)
#define NBP_1G (1UL << 30)
#define NBP_MAX_NODES 64

static inline size_t nbp_round_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Settings from the environment `numabuddy exec` writes, read once by the constructor. */
struct nbp_config {
	int ready;        /* constructor done: before that every call goes to glibc */
	uint32_t policy;
	int32_t node;
	uint64_t nodemask;
	size_t huge;      /* 0, NBP_2M or NBP_1G */
	size_t min_size;
	int strict, stats, serve_malloc, serve_mmap;
	int fake;         /* test backend: a memfd stands in for the device */
	uint64_t fake_limit;
	char device[256];
};
extern struct nbp_config nbp_cfg;

/* Guards the region table, the device file and the counters (pool.c). */
extern pthread_mutex_t nbp_lock;

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

/* pool.c: raw system calls (never our own mmap/munmap), messages, blocks, counters. */
void *nbp_sys_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off);
int nbp_sys_munmap(void *a, size_t len);
void nbp_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int nbp_maybe_ours(const void *p);                      /* within the served bounds */
int nbp_overlaps_served(uintptr_t addr, size_t len);
/* A pool region of at least @user bytes, aligned to @align; NULL + ENOMEM when refused. */
void *nbp_pool_get(size_t user, size_t align, int prot, enum nbp_kind kind);
void nbp_region_release_locked(struct nbp_region *r);   /* unmap all, free the block */
void nbp_forget_range_locked(uintptr_t addr, size_t len); /* after the kernel unmapped it */
void nbp_pool_drop_file_locked(void);                   /* forked child: not our file */
void nbp_stats_print(void);

void nbp_malloc_init(void); /* malloc.c */
void nbp_fork_init(void);   /* fork.c */

#endif /* NUMABUDDY_PRELOAD_H */
