// SPDX-License-Identifier: GPL-2.0
/*
 * nb_poolpin.c - pinnable blocks (NB_ALLOC_PINNABLE) on memory a pool took after load, and
 * a shrink that must never give back a frame the kernel references. Run by pool.sh.
 *
 *   nb_poolpin grown NODE OTHER  NODE's pool is filled with contiguous blocks (their physical
 *       ranges cover the whole pool), then grown by 16 MiB through sysfs: a 2 MiB pinnable block
 *       must come from the new memory (checked against the fillers' ranges); it belongs to a
 *       file opened on a CPU of OTHER (another node with a pool), whose page-table pages come
 *       from OTHER's pool, so the block is all that file has on NODE. An O_DIRECT read
 *       from a RAM disk (brd, /dev/ram0) into it delivers the disk's data. A shrink back to
 *       the old size gives back the new regions that are free, never the block's: EBUSY
 *       while the block is mapped, and again after its FREE while a pipe still holds
 *       vmspliced pages of it (frames in flight, STATS inflight_bytes); once the pipe is read
 *       (its data intact) and the frames come back, the same shrink reaches the old size.
 *   nb_poolpin gib NODE    a 1 GiB pinnable block (only an aligned GiB run taken with
 *       alloc_contig_range can hold one on pool.sh's `big` load): O_DIRECT into its middle,
 *       vmsplice + FREE in flight, then back. Its frames carry alloc_contig_range's own
 *       references, not split_page()'s: after pool.sh's rmmod, free_contig_range would warn
 *       (a failed run) if the pin code had taken or dropped one too many.
 *
 * Needs root (sysfs, physical addresses), no other user of the device. Prints
 * NB-TEST-PASS/NB-TEST-FAIL lines; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nb_test.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)
#define PAGE 4096
#define GROW_MB 16
#define IO_BYTES (2 * MiB) /* brd's default disk is 4 MiB */

static int failures;

static uint64_t inflight(int fd, int node)
{
	struct nb_stats s = { .node = node };

	return ioctl(fd, NB_IOC_STATS, &s) ? ~0ULL : s.inflight_bytes;
}

/* Wait up to 5 s for the node's in-flight bytes to reach 0; returns the last value. */
static uint64_t wait_inflight_zero(int fd, int node)
{
	uint64_t v = 0;

	for (int i = 0; i < 500 && (v = inflight(fd, node)); i++)
		usleep(10000);
	return v;
}

static char sysfs[96];

static long pool_mb(void)
{
	return nb_test_read_long(sysfs);
}

/* Write mb to the node's pool_mb: 0 or -errno. */
static int set_pool_mb(long mb)
{
	char buf[32];
	int fd = open(sysfs, O_WRONLY), n, err = 0;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld\n", mb);
	if (write(fd, buf, n) != n)
		err = -errno;
	close(fd);
	return err;
}

static unsigned char pattern(uint64_t i)
{
	return (unsigned char)(i * 11 + i / PAGE + 3);
}

/* Write IO_BYTES of pattern to /dev/ram0, O_DIRECT-read them into dst: 0 if the data match. */
static int odirect_read_into(unsigned char *dst, const char *name)
{
	int disk = open("/dev/ram0", O_RDWR | O_DIRECT);
	unsigned char *src;
	ssize_t w, r;
	int ok;

	if (disk < 0) {
		FAIL(name, "/dev/ram0: %s (pool.sh's VM loads brd)", strerror(errno));
		return -1;
	}
	if (posix_memalign((void **)&src, PAGE, IO_BYTES))
		exit(1);
	for (uint64_t i = 0; i < IO_BYTES; i++)
		src[i] = pattern(i);
	w = pwrite(disk, src, IO_BYTES, 0);
	memset(dst, 0xee, IO_BYTES);
	r = pread(disk, dst, IO_BYTES, 0);
	ok = w == (ssize_t)IO_BYTES && r == (ssize_t)IO_BYTES && !memcmp(src, dst, IO_BYTES);
	CHECK(name, ok, "pwrite %zd pread %zd errno %d, data %s", w, r, errno,
	      r > 0 && !memcmp(src, dst, IO_BYTES) ? "same" : "differs");
	free(src);
	close(disk);
	return ok ? 0 : -1;
}

/* vmsplice 4 pages at p into a new pipe (pfd); 0 on success. */
static int splice_pages(unsigned char *p, int pfd[2])
{
	struct iovec iov = { p, 4 * PAGE };

	if (pipe(pfd))
		return -1;
	return vmsplice(pfd[1], &iov, 1, 0) == 4 * PAGE ? 0 : -1;
}

/* Read the pipe's 4 pages: do they still hold what p held at 0..4 pages (pattern)? */
static int pipe_data_ok(int pfd[2])
{
	unsigned char buf[4 * PAGE];
	ssize_t n = read(pfd[0], buf, sizeof(buf));

	close(pfd[0]);
	close(pfd[1]);
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] != pattern(i))
			return 0;
	return n == (ssize_t)sizeof(buf);
}

/* A file opened on a CPU of node: its space's page-table pages come from node's pool. */
static int open_on_node(int node)
{
	char path[64];
	cpu_set_t old, one;
	int cpu = -1, fd;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &cpu) != 1 || cpu < 0) {
		FAIL("poolpin-open-on-node", "no CPU on node %d", node);
		exit(1);
	}
	fclose(f);
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_getaffinity(0, sizeof(old), &old) || sched_setaffinity(0, sizeof(one), &one)) {
		FAIL("poolpin-open-on-node", "affinity: %s", strerror(errno));
		exit(1);
	}
	fd = nb_test_open();
	sched_setaffinity(0, sizeof(old), &old);
	return fd;
}

static void test_grown(int fd, int node, int other)
{
	struct nb_block *fill = NULL, pin;
	size_t nfill = 0, cap = 0;
	int pfd[2], err;

	/* Fill the pool with contiguous blocks, largest first: their ranges cover it. */
	for (int order = 14; order >= 0; order--) {
		struct nb_block b;

		while (nb_block_alloc(fd, (uint64_t)PAGE << order, NB_ALLOC_CONTIG, node, &b) == 0) {
			if (nfill == cap) {
				cap = cap ? cap * 2 : 64;
				fill = realloc(fill, cap * sizeof(*fill));
				if (!fill)
					exit(1);
			}
			fill[nfill++] = b;
		}
	}
	long old_mb = pool_mb();

	err = set_pool_mb(old_mb + GROW_MB);
	CHECK("poolpin-grow", !err && pool_mb() == old_mb + GROW_MB, "write %d, pool %ld MiB, want %ld",
	      err, pool_mb(), old_mb + GROW_MB);
	int pfile = open_on_node(other);

	err = nb_block_alloc(pfile, IO_BYTES, NB_ALLOC_PINNABLE | NB_ALLOC_CONTIG, node, &pin);
	if (err) {
		FAIL("poolpin-alloc-from-grown", "pinnable alloc: %s", strerror(-err));
		exit(1);
	}
	size_t overlaps = 0;

	for (size_t i = 0; i < nfill; i++)
		overlaps += pin.phys < fill[i].phys + fill[i].size && fill[i].phys < pin.phys + pin.size;
	CHECK("poolpin-alloc-from-grown", overlaps == 0 && nfill > 0,
	      "block at %#llx overlaps %zu of the %zu blocks filling the old pool",
	      (unsigned long long)pin.phys, overlaps, nfill);
	err = nb_block_map(&pin);
	if (err) {
		FAIL("poolpin-grown-odirect-read", "mmap: %s", strerror(-err));
		exit(1);
	}
	unsigned char *p = pin.p;

	odirect_read_into(p, "poolpin-grown-odirect-read");

	/* The free new regions go back (or none, when the new memory is one region). */
	set_pool_mb(old_mb);
	long left_mb = pool_mb();

	CHECK("poolpin-shrink-keeps-used-region", left_mb > old_mb && left_mb <= old_mb + GROW_MB,
	      "pool %ld MiB, old %ld", left_mb, old_mb);
	err = set_pool_mb(old_mb);
	CHECK("poolpin-shrink-refused-used", err == -EBUSY && pool_mb() == left_mb,
	      "write %d, pool %ld MiB, was %ld", err, pool_mb(), left_mb);

	/* In flight: freed, but a pipe holds pages of it. */
	if (splice_pages(p, pfd)) {
		FAIL("poolpin-vmsplice", "%s", strerror(errno));
		exit(1);
	}
	err = nb_block_free(&pin); /* unmaps it first */
	uint64_t held = inflight(fd, node);

	CHECK("poolpin-free-inflight", !err && held == pin.size, "free %d, in flight %llu", err,
	      (unsigned long long)held);
	err = set_pool_mb(old_mb);
	CHECK("poolpin-shrink-refused-inflight",
	      err == -EBUSY && pool_mb() == left_mb && inflight(fd, node) == pin.size,
	      "write %d, pool %ld MiB (was %ld), in flight %llu", err, pool_mb(), left_mb,
	      (unsigned long long)inflight(fd, node));
	CHECK("poolpin-pipe-data", pipe_data_ok(pfd), "the pipe's pages changed");
	uint64_t left = wait_inflight_zero(fd, node);

	err = set_pool_mb(old_mb);
	CHECK("poolpin-shrink-after-release", left == 0 && !err && pool_mb() == old_mb,
	      "in flight %llu, write %d, pool %ld MiB, want %ld", (unsigned long long)left, err,
	      pool_mb(), old_mb);
	close(pfile);
	for (size_t i = 0; i < nfill; i++)
		nb_block_free(&fill[i]);
	free(fill);
}

static void test_gib(int fd, int node)
{
	struct nb_block b;
	int pfd[2], err;

	err = nb_block_alloc(fd, GiB, NB_ALLOC_PINNABLE | NB_ALLOC_CONTIG, node, &b);
	CHECK("poolpin-gib-alloc", !err && !(b.phys & (GiB - 1)), "alloc %s, phys %#llx",
	      strerror(-err), (unsigned long long)b.phys);
	if (err)
		return;
	err = nb_block_map(&b);
	if (err) {
		FAIL("poolpin-gib-odirect-read", "mmap: %s", strerror(-err));
		return;
	}
	unsigned char *mid = b.p + GiB / 2;

	odirect_read_into(mid, "poolpin-gib-odirect-read");
	if (splice_pages(mid, pfd)) {
		FAIL("poolpin-gib-vmsplice", "%s", strerror(errno));
		return;
	}
	err = nb_block_free(&b); /* unmaps it first */
	uint64_t held = inflight(fd, node);

	CHECK("poolpin-gib-free-inflight", !err && held == GiB, "free %d, in flight %llu", err,
	      (unsigned long long)held);
	CHECK("poolpin-gib-pipe-data", pipe_data_ok(pfd), "the pipe's pages changed");
	uint64_t left = wait_inflight_zero(fd, node);

	CHECK("poolpin-gib-returned", left == 0, "in flight %llu", (unsigned long long)left);
}

int main(int argc, char **argv)
{
	int fd, node;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!(argc == 4 && !strcmp(argv[1], "grown")) && !(argc == 3 && !strcmp(argv[1], "gib"))) {
		fprintf(stderr, "usage: nb_poolpin grown NODE OTHER | gib NODE\n");
		return 2;
	}
	node = atoi(argv[2]);
	snprintf(sysfs, sizeof(sysfs), "/sys/module/numabuddy/pools/node%d/pool_mb", node);
	fd = nb_test_open();
	if (!strcmp(argv[1], "grown"))
		test_grown(fd, node, atoi(argv[3]));
	else
		test_gib(fd, node);
	close(fd);
	return failures ? 1 : 0;
}
