// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * maps.c - the preload's anonymous mmap and its companions: private read-write anonymous
 * mmap of at least --min-size becomes a pool region; munmap, mremap, madvise and mprotect
 * keep the table right and give pool mappings anonymous memory's semantics where the
 * kernel's differ (MADV_DONTNEED, growing mremap).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nbp.h"

static int serve_mmap(void *addr, size_t len, int prot, int flags, int fd)
{
	return nbp_cfg.ready && nbp_cfg.serve_mmap && !addr && len >= nbp_cfg.min_size && fd == -1 &&
	       (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	       !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_GROWSDOWN | MAP_STACK |
			  MAP_HUGETLB | MAP_NORESERVE)) &&
	       prot == (PROT_READ | PROT_WRITE);
}

NBP_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	if (serve_mmap(addr, len, prot, flags, fd)) {
		p = nbp_pool_get(len, NBP_PAGE, prot, NBP_MMAP);
		if (p)
			return p;
		if (nbp_cfg.strict)
			return MAP_FAILED;
	}
	if (!(flags & MAP_FIXED) || !nbp_overlaps_served((uintptr_t)addr, len))
		return nbp_sys_mmap(addr, len, prot, flags, fd, off);
	pthread_mutex_lock(&nbp_lock);
	p = nbp_sys_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		nbp_forget_range_locked((uintptr_t)p, nbp_round_up(len, NBP_PAGE));
	pthread_mutex_unlock(&nbp_lock);
	return p;
}
NBP_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

NBP_EXPORT int munmap(void *addr, size_t len)
{
	int ret;

	if (!nbp_overlaps_served((uintptr_t)addr, len))
		return nbp_sys_munmap(addr, len);
	pthread_mutex_lock(&nbp_lock);
	ret = nbp_sys_munmap(addr, len);
	if (!ret)
		nbp_forget_range_locked((uintptr_t)addr, nbp_round_up(len, NBP_PAGE));
	pthread_mutex_unlock(&nbp_lock);
	return ret;
}

NBP_EXPORT void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...)
{
	void *new_addr = NULL, *p;
	struct nbp_region *r, moved;
	va_list ap;
	int prot;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (!nbp_maybe_ours(old))
		goto kernel;
	pthread_mutex_lock(&nbp_lock);
	r = nbp_regions_find((uintptr_t)old);
	if (!r || r->kind != NBP_MMAP || r->addr != (uintptr_t)old || r->len != old_size ||
	    r->gone) {
		/* Part of a region: the kernel moves it; the block stays until exit (README). */
		pthread_mutex_unlock(&nbp_lock);
		goto kernel;
	}
	prot = r->prot;
	if (new_size == old_size) {
		p = (void *)syscall(SYS_mremap, old, old_size, new_size, flags, new_addr);
		if (p != MAP_FAILED && p != old) {
			moved = *r;
			moved.addr = (uintptr_t)p;
			nbp_regions_remove(r);
			nbp_regions_add(&moved);
		}
		pthread_mutex_unlock(&nbp_lock);
		return p;
	}
	pthread_mutex_unlock(&nbp_lock);
	if (new_size < old_size && !(flags & MREMAP_FIXED)) {
		munmap((char *)old + nbp_round_up(new_size, NBP_PAGE),
		       old_size - nbp_round_up(new_size, NBP_PAGE));
		return old;
	}
	/* A block cannot grow in place: move to a new one when allowed, as the kernel would. */
	if (!(flags & MREMAP_MAYMOVE) || (flags & MREMAP_FIXED)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = mmap(NULL, new_size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return p;
	memcpy(p, old, old_size);
	munmap(old, old_size);
	return p;
kernel:
	return (void *)syscall(SYS_mremap, old, old_size, new_size, flags, new_addr);
}

/*
 * MADV_DONTNEED on anonymous memory means "reads return zeroes from now on"; the kernel
 * refuses it on pool mappings (EINVAL, VM_PFNMAP), so it is done here, with memset. Other
 * advice the kernel refuses there is harmless to drop.
 */
NBP_EXPORT int madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr;
	int ret, pool = 0;
	size_t i;

	if (nbp_overlaps_served(a, len)) {
		pthread_mutex_lock(&nbp_lock);
		i = nbp_regions_index(a);
		for (struct nbp_region *r; (r = nbp_regions_at(i)) && r->addr < a + len; i++) {
			uintptr_t lo = r->addr > a ? r->addr : a;
			uintptr_t hi = r->addr + r->len < a + len ? r->addr + r->len : a + len;

			pool = 1;
			if ((advice == MADV_DONTNEED || advice == MADV_REMOVE) &&
			    (r->prot & PROT_WRITE) && r->offset != NBP_PRIVATE)
				memset((void *)lo, 0, hi - lo);
		}
		pthread_mutex_unlock(&nbp_lock);
	}
	ret = (int)syscall(SYS_madvise, addr, len, advice);
	if (ret && errno == EINVAL && pool)
		ret = 0;
	return ret;
}

NBP_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	struct nbp_region *r;
	int ret = (int)syscall(SYS_mprotect, addr, len, prot);

	if (ret || !nbp_maybe_ours(addr))
		return ret;
	pthread_mutex_lock(&nbp_lock);
	r = nbp_regions_find((uintptr_t)addr);
	if (r && r->addr == (uintptr_t)addr && len >= r->len)
		r->prot = prot;
	pthread_mutex_unlock(&nbp_lock);
	return ret;
}
