// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * malloc.c - the preload's malloc family: requests of at least --min-size become pool
 * regions (nbp_pool_get), everything else, and every pointer the table does not know, goes
 * to glibc's own allocator under its internal names.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nbp.h"

/* glibc's own allocator under the public names we take over. */
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

static size_t (*libc_usable_size)(void *);

/* dlsym may call calloc: by then ours answers from glibc (nbp_cfg.ready is still 0). */
void nbp_malloc_init(void)
{
	libc_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
}

/* The malloc region starting exactly at @p, or NULL; takes nbp_lock when non-NULL. */
static struct nbp_region *malloc_region_lock(const void *p)
{
	struct nbp_region *r;

	if (((uintptr_t)p & (NBP_PAGE - 1)) || !nbp_maybe_ours(p))
		return NULL;
	pthread_mutex_lock(&nbp_lock);
	r = nbp_regions_find((uintptr_t)p);
	if (r && r->addr == (uintptr_t)p && r->kind == NBP_MALLOC)
		return r;
	pthread_mutex_unlock(&nbp_lock);
	return NULL;
}

static int serve_malloc(size_t n)
{
	return nbp_cfg.ready && nbp_cfg.serve_malloc && n >= nbp_cfg.min_size;
}

NBP_EXPORT void *malloc(size_t n)
{
	if (serve_malloc(n)) {
		void *p = nbp_pool_get(n, NBP_PAGE, PROT_READ | PROT_WRITE, NBP_MALLOC);

		if (p || nbp_cfg.strict)
			return p;
	}
	return __libc_malloc(n);
}

NBP_EXPORT void free(void *p)
{
	struct nbp_region *r;

	if (!p)
		return;
	r = malloc_region_lock(p);
	if (!r) {
		__libc_free(p);
		return;
	}
	nbp_region_release_locked(r);
	pthread_mutex_unlock(&nbp_lock);
}

NBP_EXPORT void *calloc(size_t n, size_t m)
{
	size_t total;

	if (__builtin_mul_overflow(n, m, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (serve_malloc(total)) {
		/* Pool blocks are zeroed by the kernel before anyone sees them. */
		void *p = nbp_pool_get(total, NBP_PAGE, PROT_READ | PROT_WRITE, NBP_MALLOC);

		if (p || nbp_cfg.strict)
			return p;
	}
	return __libc_calloc(n, m);
}

NBP_EXPORT void *realloc(void *p, size_t n)
{
	struct nbp_region *r;
	void *q;

	if (!p)
		return malloc(n);
	r = malloc_region_lock(p);
	if (r) {
		size_t old = r->user;

		if (n == 0) {
			nbp_region_release_locked(r);
			pthread_mutex_unlock(&nbp_lock);
			return NULL;
		}
		if (n <= r->len && serve_malloc(n)) {
			r->user = n;
			pthread_mutex_unlock(&nbp_lock);
			return p;
		}
		pthread_mutex_unlock(&nbp_lock);
		q = malloc(n);
		if (!q)
			return NULL;
		memcpy(q, p, old < n ? old : n);
		free(p);
		return q;
	}
	if (serve_malloc(n) && libc_usable_size) {
		q = nbp_pool_get(n, NBP_PAGE, PROT_READ | PROT_WRITE, NBP_MALLOC);
		if (q) {
			size_t old = libc_usable_size(p);

			memcpy(q, p, old < n ? old : n);
			__libc_free(p);
			return q;
		}
		if (nbp_cfg.strict)
			return NULL;
	}
	return __libc_realloc(p, n);
}

NBP_EXPORT void *reallocarray(void *p, size_t n, size_t m)
{
	size_t total;

	if (__builtin_mul_overflow(n, m, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

static void *aligned_get(size_t align, size_t n)
{
	if (serve_malloc(n) && align <= NBP_1G) {
		void *p = nbp_pool_get(n, align > NBP_PAGE ? align : NBP_PAGE, PROT_READ | PROT_WRITE,
				   NBP_MALLOC);

		if (p || nbp_cfg.strict)
			return p;
	}
	return __libc_memalign(align, n);
}

NBP_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	p = aligned_get(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

NBP_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (!align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return aligned_get(align, n);
}

NBP_EXPORT void *memalign(size_t align, size_t n)
{
	return aligned_alloc(align, n);
}

NBP_EXPORT void *valloc(size_t n)
{
	return aligned_get(NBP_PAGE, n);
}

NBP_EXPORT void *pvalloc(size_t n)
{
	return aligned_get(NBP_PAGE, nbp_round_up(n ? n : 1, NBP_PAGE));
}

NBP_EXPORT size_t malloc_usable_size(void *p)
{
	struct nbp_region *r;
	size_t len;

	if (!p)
		return 0;
	r = malloc_region_lock(p);
	if (!r)
		return libc_usable_size ? libc_usable_size(p) : 0;
	len = r->len;
	pthread_mutex_unlock(&nbp_lock);
	return len;
}
