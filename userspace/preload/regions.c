// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * regions.c - the preload's table of pool-served regions: an array sorted by address.
 *
 * Only allocations above --min-size (1 MiB by default) land here, so a process holds tens
 * to thousands of regions, not millions: a binary search to find, a memmove to insert or
 * remove is cheaper than any tree at that size, and needs no allocation per entry. The array
 * lives in anonymous memory of its own, grown by mremap, because it is used from inside
 * malloc and must never call it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nbp.h"

static struct nbp_region *table;
static size_t count, capacity;

/* Index of the first region whose end lies above @addr (count if none). */
static size_t lower_bound(uintptr_t addr)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (table[mid].addr + table[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int grow(void)
{
	size_t ncap = capacity ? capacity * 2 : 4096 / sizeof(*table);
	void *p;

	if (table)
		p = (void *)syscall(SYS_mremap, table, capacity * sizeof(*table),
				    ncap * sizeof(*table), MREMAP_MAYMOVE);
	else
		p = (void *)syscall(SYS_mmap, NULL, ncap * sizeof(*table), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	table = p;
	capacity = ncap;
	return 0;
}

int nbp_regions_add(const struct nbp_region *r)
{
	size_t i;

	if (count == capacity && grow())
		return -ENOMEM;
	i = lower_bound(r->addr);
	memmove(&table[i + 1], &table[i], (count - i) * sizeof(*table));
	table[i] = *r;
	count++;
	return 0;
}

struct nbp_region *nbp_regions_find(uintptr_t addr)
{
	size_t i = lower_bound(addr);

	return (i < count && table[i].addr <= addr) ? &table[i] : NULL;
}

size_t nbp_regions_index(uintptr_t addr)
{
	return lower_bound(addr);
}

void nbp_regions_remove(struct nbp_region *r)
{
	size_t i = (size_t)(r - table);

	memmove(&table[i], &table[i + 1], (count - i - 1) * sizeof(*table));
	count--;
}

size_t nbp_regions_count(void)
{
	return count;
}

struct nbp_region *nbp_regions_at(size_t i)
{
	return i < count ? &table[i] : NULL;
}
