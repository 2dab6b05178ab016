// SPDX-License-Identifier: GPL-2.0
/*
 * nb_compact.c - in-VM check of compaction (NB_IOC_COMPACT, and the compaction a failed
 * NB_ALLOC_CONTIG runs by itself), with raw ioctls.
 *
 * On the last node with a pool: fill it with 16 KiB blocks, free two of every three, map
 * every kept block and fill it with its own pattern. Then, while two threads keep reading
 * the patterns and incrementing a counter word of random blocks through their mappings,
 * compact for a run of a quarter of the pool. Checked without trusting mm_core: every
 * increment and pattern word survives, and every page of every block is on the node per the
 * kernel's own page-table walk (NB_IOC_WALK) and sysfs' memory blocks; the free block is in
 * STATS' buddyinfo; STATS counts the compaction and the bytes it reported.
 * Then: CONTIG allocations of that size succeed until the pool is really out of room
 * (compacting by themselves); a pinnable block in every run makes compaction EBUSY and moves
 * nothing; bad input and a caller without CAP_SYS_ADMIN are refused.
 *
 * Prints NB-TEST-PASS/NB-TEST-FAIL lines (tests/vm/README.md) and exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "numabuddy.h"
#include "nb_test.h"

#define BLK (16u << 10)
#define WORDS (BLK / 8)

static int failures;
#define T_FAIL(...) do { FAILF(__VA_ARGS__); failures++; } while (0)

struct blk {
	uint64_t off;
	uint64_t *map;
	uint64_t incs; /* atomic: increments the threads made */
};

static int fd, node;
static struct blk *blks;
static size_t nr_blks;
static volatile int stop;
static volatile uint64_t pattern_errors, touches;

/* 0 or errno (positive, as the callers print it). */
static int alloc_block(uint64_t size, uint32_t flags, uint64_t *off)
{
	struct nb_alloc a;
	int err = nb_test_alloc(fd, size, flags, node, &a);

	if (!err)
		*off = a.offset;
	return -err;
}

static int free_block(uint64_t off)
{
	struct nb_free f;

	memset(&f, 0, sizeof(f));
	f.offset = off;
	return ioctl(fd, NB_IOC_FREE, &f) ? errno : 0;
}

static struct nb_stats stats(void)
{
	struct nb_stats s;

	memset(&s, 0, sizeof(s));
	s.node = node;
	if (ioctl(fd, NB_IOC_STATS, &s))
		T_FAIL("stats errno %d", errno);
	return s;
}

static int largest_free(const struct nb_stats *s)
{
	int k = -1;

	for (unsigned i = 0; i < s->nr_orders && i < NB_STATS_ORDERS; i++)
		if (s->free_blocks[i])
			k = (int)i;
	return k;
}

static int compact(unsigned order, struct nb_compact *c)
{
	memset(c, 0, sizeof(*c));
	c->node = node;
	c->order = order;
	return ioctl(fd, NB_IOC_COMPACT, c) ? errno : 0;
}

static uint64_t phys_of(uint64_t off)
{
	struct nb_query q;

	memset(&q, 0, sizeof(q));
	q.offset = off;
	return ioctl(fd, NB_IOC_QUERY, &q) ? 0 : q.phys_addr;
}

static void *toucher(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;

	while (!stop) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		struct blk *b = &blks[(seed >> 33) % nr_blks];
		unsigned w = 1 + (unsigned)((seed >> 17) % (WORDS - 1));

		if (b->map[w] != b->off + w)
			__atomic_add_fetch(&pattern_errors, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&b->map[0], 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&b->incs, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&touches, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Every page of every kept block: pattern, counter, node per the kernel. */
static void check_blocks(const char *when, const uint64_t *base0)
{
	size_t bad = 0, off_node = 0;

	for (size_t i = 0; i < nr_blks; i++) {
		struct blk *b = &blks[i];

		if (b->map[0] != base0[i] + b->incs)
			bad++;
		for (unsigned w = 1; w < WORDS; w++)
			if (b->map[w] != b->off + w) {
				bad++;
				break;
			}
		for (unsigned p = 0; p < BLK / 4096; p++) {
			struct nb_walk wk;

			memset(&wk, 0, sizeof(wk));
			wk.addr = (uintptr_t)b->map + p * 4096;
			if (ioctl(fd, NB_IOC_WALK, &wk) || wk.node != node ||
			    nb_test_node_of_phys(wk.pfn << 12) != node)
				off_node++;
		}
	}
	if (bad || off_node)
		T_FAIL("compact-data-%s %zu blocks with wrong data, %zu pages off node %d", when,
		       bad, off_node, node);
	else
		PASSF("compact-data-%s %zu blocks intact, every page on node %d", when, nr_blks,
		      node);
}

static void bad_input(void)
{
	struct nb_compact c;
	struct nb_version v;

	memset(&v, 0, sizeof(v));
	ioctl(fd, NB_IOC_VERSION, &v);
	CHECK("compact-feature", (v.features & NB_FEAT_COMPACT) && v.abi_minor >= 3,
	      "features 0x%llx abi %u.%u", (unsigned long long)v.features, v.abi_major,
	      v.abi_minor);
	memset(&c, 0, sizeof(c));
	c.node = 63;
	c.order = 9;
	CHECK("compact-bad-node", ioctl(fd, NB_IOC_COMPACT, &c) && errno == EINVAL, "errno %d",
	      errno);
	c.node = -1;
	CHECK("compact-negative-node", ioctl(fd, NB_IOC_COMPACT, &c) && errno == EINVAL,
	      "errno %d", errno);
	c.node = node;
	c.order = v.max_order + 1;
	CHECK("compact-bad-order", ioctl(fd, NB_IOC_COMPACT, &c) && errno == EINVAL, "errno %d",
	      errno);
	c.order = 9;
	c.reserved[1] = 1;
	CHECK("compact-reserved", ioctl(fd, NB_IOC_COMPACT, &c) && errno == EINVAL, "errno %d",
	      errno);
	c.reserved[1] = 0;
	c.moved_bytes = 5;
	CHECK("compact-output-in", ioctl(fd, NB_IOC_COMPACT, &c) && errno == EINVAL, "errno %d",
	      errno);
	/* Without CAP_SYS_ADMIN (uid nobody drops every capability): EPERM. */
	pid_t pid = fork();
	if (pid == 0) {
		memset(&c, 0, sizeof(c));
		c.node = node;
		c.order = 9;
		if (setgid(65534) || setuid(65534))
			_exit(3);
		_exit(ioctl(fd, NB_IOC_COMPACT, &c) == 0 ? 1 : errno == EPERM ? 0 : 2);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK("compact-needs-cap-sys-admin", WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d",
	      st);
}

/* A pinnable block in every run: nothing may move; they go, and compaction works again. */
static void pinned_runs(unsigned order)
{
	size_t cap = stats().total_bytes / 4096;
	uint64_t run_bytes = 4096ull << order, *pins = calloc(cap, sizeof(*pins));
	uint64_t *spare = calloc(cap, sizeof(*spare));
	size_t nr_spare = 0, have = 0, since_new = 0;
	char *seen = calloc(1u << 16, 1);
	struct nb_compact c;

	/* Pinnable 4 KiB blocks fill the holes everywhere, then split the free runs: keep one
	 * per run (by physical address) until no free run is left and 512 in a row found no
	 * new run. */
	while (have + nr_spare < cap) {
		if (since_new >= 512) {
			struct nb_stats now = stats();

			if (largest_free(&now) < (int)order)
				break;
		}
		uint64_t off, phys;

		if (alloc_block(4096, NB_ALLOC_PINNABLE, &off))
			break;
		phys = phys_of(off);
		if (!seen[(phys / run_bytes) & 0xffff]) {
			seen[(phys / run_bytes) & 0xffff] = 1;
			pins[have++] = off;
			since_new = 0;
		} else {
			spare[nr_spare++] = off;
			since_new++;
		}
	}
	for (size_t i = 0; i < nr_spare; i++)
		free_block(spare[i]);
	struct nb_stats before = stats();
	if (largest_free(&before) >= (int)order) {
		T_FAIL("compact-pinned-runs a free block of order %d is left", largest_free(&before));
	} else {
		int err = compact(order, &c);

		CHECK("compact-pinned-runs-ebusy", err == EBUSY && c.moved_bytes == 0 &&
			  c.runs_movable == 0 && stats().compactions == before.compactions + 1,
		      "err %d moved %llu movable %u of %u (%zu runs pinned)", err,
		      (unsigned long long)c.moved_bytes, c.runs_movable, c.runs, have);
	}
	for (size_t i = 0; i < have; i++)
		free_block(pins[i]);
	int err = compact(order, &c);
	CHECK("compact-after-unpin", err == 0, "err %d", err);
	free(pins);
	free(spare);
	free(seen);
}

/* The background zeroer splits a dirty free block to clear it piece by piece, so a block that
 * compaction just freed shrinks in the stats for a moment (an allocation still gets it): off
 * while this program reads free-block counts, then back to what it was. */
#define PREZERO_PARAM "/sys/module/numabuddy/parameters/prezero_mb_s"
static long prezero_saved = -1;

static void prezero_set(long mb_s)
{
	FILE *f = fopen(PREZERO_PARAM, "w");

	if (f) {
		fprintf(f, "%ld", mb_s);
		fclose(f);
	}
}

static void prezero_restore(void)
{
	if (prezero_saved >= 0)
		prezero_set(prezero_saved);
}

int main(void)
{
	struct nb_version v;
	struct nb_stats s0, s1;
	struct nb_compact c;
	pthread_t th[2];

	fd = open(NB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, NB_IOC_VERSION, &v)) {
		FAILF("compact-open errno %d", errno);
		return 1;
	}
	node = 63 - __builtin_clzll(v.nodes_with_pool);
	prezero_saved = nb_test_read_long(PREZERO_PARAM);
	prezero_set(0);
	atexit(prezero_restore);
	bad_input();
	s0 = stats();
	uint64_t pool = s0.total_bytes;
	/* A quarter of the pool, at most the max order. */
	unsigned order = 0;
	while ((4096ull << (order + 1)) <= pool / 4 && order + 1 <= v.max_order)
		order++;
	uint64_t run = 4096ull << order;

	/* Fill, keep one block in three. */
	size_t cap = pool / BLK + 16, n = 0;
	uint64_t *all = malloc(cap * sizeof(*all));
	while (n < cap && alloc_block(BLK, NB_ALLOC_NOZERO, &all[n]) == 0)
		n++;
	blks = calloc(n / 3 + 1, sizeof(*blks));
	for (size_t i = 0; i < n; i++) {
		if (i % 3 == 1) {
			blks[nr_blks++].off = all[i];
		} else if (free_block(all[i])) {
			T_FAIL("compact-setup free errno %d", errno);
		}
	}
	free(all);
	uint64_t *base0 = calloc(nr_blks, sizeof(*base0));
	for (size_t i = 0; i < nr_blks; i++) {
		struct blk *b = &blks[i];

		b->map = mmap(NULL, BLK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)b->off);
		if (b->map == MAP_FAILED) {
			FAILF("compact-setup mmap errno %d", errno);
			return 1;
		}
		for (unsigned w = 1; w < WORDS; w++)
			b->map[w] = b->off + w;
		b->map[0] = base0[i] = b->off * 3;
	}
	s0 = stats();
	printf("node %d: pool %llu MiB, %zu blocks of 16 KiB kept, largest free order %d, "
	       "compacting for order %u (%llu MiB)\n", node, (unsigned long long)(pool >> 20),
	       nr_blks, largest_free(&s0), order, (unsigned long long)(run >> 20));
	CHECK("compact-fragmented", largest_free(&s0) < (int)order, "largest free order %d",
	      largest_free(&s0));

	/* NB_IOC_COMPACT while two threads read and write every kept block. */
	for (long t = 0; t < 2; t++)
		pthread_create(&th[t], NULL, toucher, (void *)t);
	usleep(100000);
	uint64_t touches_before = touches;
	double t0 = nb_test_now();
	int err = compact(order, &c);
	double secs = nb_test_now() - t0;
	uint64_t touches_during = touches - touches_before;
	usleep(100000);
	stop = 1;
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	s1 = stats();
	CHECK("compact-ioctl", err == 0 && c.run_phys != ~0ULL && c.moved_bytes > 0 &&
		  c.moved_bytes < run && c.runs >= 1 && c.runs <= pool / run,
	      "err %d run 0x%llx moved %llu runs %u", err, (unsigned long long)c.run_phys,
	      (unsigned long long)c.moved_bytes, c.runs);
	printf("compaction: run 0x%llx, %llu KiB in %llu blocks, %.3f ms (ioctl %.3f s), "
	       "%u of %u runs movable, %llu touches meanwhile\n",
	       (unsigned long long)c.run_phys, (unsigned long long)(c.moved_bytes >> 10),
	       (unsigned long long)c.moved_blocks, c.elapsed_ns / 1e6, secs, c.runs_movable,
	       c.runs, (unsigned long long)touches_during);
	CHECK("compact-run-on-node", nb_test_node_of_phys(c.run_phys) == node &&
		  c.run_phys % run == 0, "run 0x%llx", (unsigned long long)c.run_phys);
	CHECK("compact-free-block", largest_free(&s1) >= (int)order, "largest free order %d",
	      largest_free(&s1));
	CHECK("compact-stats", s1.compactions == s0.compactions + 1 &&
		  s1.compact_moved_bytes == s0.compact_moved_bytes + c.moved_bytes &&
		  s1.compact_ns > s0.compact_ns && s1.compact_failures == s0.compact_failures,
	      "compactions %llu -> %llu, moved %llu -> %llu", (unsigned long long)s0.compactions,
	      (unsigned long long)s1.compactions, (unsigned long long)s0.compact_moved_bytes,
	      (unsigned long long)s1.compact_moved_bytes);
	CHECK("compact-touched-during", pattern_errors == 0 && touches_during > 0,
	      "%llu pattern errors, %llu touches", (unsigned long long)pattern_errors,
	      (unsigned long long)touches_during);
	/* In place: every moved block is mapped again at its new frames, so reading them all
	 * now faults nothing (no mm was busy: nothing here changes mappings meanwhile). */
	long long faults0 = nb_test_module_faults(), busy0 = nb_test_module_counter("remap_busy_mms");
	check_blocks("after-ioctl", base0);
	long long faults1 = nb_test_module_faults(), busy1 = nb_test_module_counter("remap_busy_mms");
	CHECK("compact-in-place", faults0 >= 0 && faults1 == faults0 && busy1 == busy0 &&
		  nb_test_module_counter("remap_entries") > 0,
	      "%lld faults reading the moved blocks, busy mms %lld -> %lld", faults1 - faults0,
	      busy0, busy1);

	/* A second call: the block exists, nothing to do. */
	err = compact(order, &c);
	CHECK("compact-nothing-to-do", err == 0 && c.run_phys == ~0ULL && c.moved_bytes == 0,
	      "err %d run 0x%llx", err, (unsigned long long)c.run_phys);

	/* CONTIG allocations of a run each: the first takes the free run, the next ones compact
	 * by themselves, until what is free no longer fits. */
	uint64_t contig[16];
	int got = 0;
	struct nb_stats sa = stats();
	while (got < 16) {
		struct nb_stats sb = stats();

		if (sb.free_bytes < run)
			break;
		err = alloc_block(run, NB_ALLOC_CONTIG | NB_ALLOC_NOZERO, &contig[got]);
		if (err) {
			/* Room in bytes but not movable into the holes: say so, not a failure
			 * unless it was the first one after a successful compaction. */
			printf("contig %d: errno %d with %llu MiB free\n", got, err,
			       (unsigned long long)(sb.free_bytes >> 20));
			break;
		}
		got++;
	}
	struct nb_stats sc = stats();
	CHECK("compact-on-contig-failure", got >= 2 && sc.compactions >= sa.compactions + 1,
	      "%d CONTIG allocations of %llu MiB, compactions %llu -> %llu", got,
	      (unsigned long long)(run >> 20), (unsigned long long)sa.compactions,
	      (unsigned long long)sc.compactions);
	check_blocks("after-contig", base0);
	for (int i = 0; i < got; i++)
		free_block(contig[i]);

	/* Unmovable frames: compaction for the largest order no run of which is free. */
	for (size_t i = 0; i < nr_blks; i++)
		munmap(blks[i].map, BLK);
	pinned_runs(order);
	for (size_t i = 0; i < nr_blks; i++)
		free_block(blks[i].off);
	close(fd);
	return failures ? 1 : 0;
}
