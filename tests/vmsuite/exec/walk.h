/* SPDX-License-Identifier: GPL-2.0 */
/*
 * walk.h - where a range of this process's memory really is: the hardware page-table entry
 * at each address (NB_IOC_WALK, CAP_SYS_ADMIN) and the node of its frame from the sysfs
 * memory blocks. Nothing here asks the preload library, and nothing trusts mm_core's
 * books: the same method as nb_mapper.c. Shared by nb_exec_walk.so and nb_exec_cxx.
 */
#ifndef NB_EXEC_WALK_H
#define NB_EXEC_WALK_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../nb_test.h"

#define WALK_NODES 8

struct walk_sum {
	uint64_t none, pte, pmd, pud;    /* bytes per entry size; none = not mapped yet */
	uint64_t node[WALK_NODES];       /* bytes per node of the frames */
	uint64_t other;                  /* frames no sysfs node claims */
};

/* Adds [lo, hi) of this process to @s, one page-table entry at a time. -1: no WALK. */
static int walk_range(uintptr_t lo, uintptr_t hi, struct walk_sum *s)
{
	static int fd = -1;

	if (fd < 0)
		fd = open("/dev/numabuddy", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (uintptr_t a = lo; a < hi;) {
		struct nb_walk w;
		uint64_t size, step;
		int node;

		memset(&w, 0, sizeof(w));
		w.addr = a;
		if (ioctl(fd, NB_IOC_WALK, &w))
			return -1;
		size = w.level == NB_WALK_PUD ? 1ULL << 30 : w.level == NB_WALK_PMD ? 2ULL << 20 : 4096;
		step = ((a & ~(size - 1)) + size < hi ? (a & ~(size - 1)) + size : hi) - a;
		switch (w.level) {
		case NB_WALK_NONE: s->none += step; break;
		case NB_WALK_PTE: s->pte += step; break;
		case NB_WALK_PMD: s->pmd += step; break;
		default: s->pud += step; break;
		}
		if (w.level != NB_WALK_NONE) {
			node = nb_test_node_of_phys(w.pfn * 4096);
			if (node >= 0 && node < WALK_NODES)
				s->node[node] += step;
			else
				s->other += step;
		}
		a += step;
	}
	return 0;
}

/* "none=.. pte=.. pmd=.. pud=.. node0=.. ... other=.." into @buf. */
static void walk_format(const struct walk_sum *s, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "none=%llu pte=%llu pmd=%llu pud=%llu",
				    (unsigned long long)s->none, (unsigned long long)s->pte,
				    (unsigned long long)s->pmd, (unsigned long long)s->pud);
	for (int i = 0; i < WALK_NODES && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " node%d=%llu", i,
				      (unsigned long long)s->node[i]);
	if (n < len)
		snprintf(buf + n, len - n, " other=%llu", (unsigned long long)s->other);
}

#endif /* NB_EXEC_WALK_H */
