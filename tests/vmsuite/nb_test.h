/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_test.h - what the in-VM test programs share: the result lines the VM harness reads
 * (tests/vm/run.sh), a monotonic clock, the module's version, one file's pool use, and the
 * node of a physical address as the kernel's sysfs says (never as numabuddy says).
 * Header-only: each program is one static binary. A program defines `int failures`.
 */
#ifndef NB_TEST_H
#define NB_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../uapi/numabuddy.h"

#define PASS(name) printf("NB-TEST-PASS %s\n", name)
#define FAIL(name, ...) do { printf("NB-TEST-FAIL %s ", name); printf(__VA_ARGS__); \
	printf("\n"); failures++; } while (0)
#define CHECK(name, cond, ...) do { if (cond) PASS(name); else FAIL(name, __VA_ARGS__); } while (0)
/* The same, with the whole line (name and detail) as one printf format. */
#define PASSF(...) do { printf("NB-TEST-PASS "); printf(__VA_ARGS__); printf("\n"); } while (0)
#define FAILF(...) do { printf("NB-TEST-FAIL "); printf(__VA_ARGS__); printf("\n"); \
	failures++; } while (0)

/* One block of a numabuddy file: where it is in the file and in memory, and its mapping. */
struct nb_block {
	int fd;
	uint64_t off, size, phys;
	unsigned char *p;
};

/* The device, opened read-write; exits when it cannot be (no test can run without it). */
static inline int nb_test_open(void)
{
	int fd = open(NB_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		perror("open " NB_DEVICE_PATH);
		_exit(1);
	}
	return fd;
}

/* ALLOC of a BIND block of size on node in fd: 0 or -errno; *a holds the reply. */
static inline int nb_test_alloc(int fd, uint64_t size, uint32_t flags, int node,
				struct nb_alloc *a)
{
	memset(a, 0, sizeof(*a));
	a->size = size;
	a->policy = NB_POLICY_BIND;
	a->node = node;
	a->flags = flags;
	return ioctl(fd, NB_IOC_ALLOC, a) ? -errno : 0;
}

/* A BIND block of size on node in fd, not mapped: 0 or -errno. b->phys is its first frame's
 * (0 when QUERY fails); b is all zero but fd when the allocation fails. */
static inline int nb_block_alloc(int fd, uint64_t size, uint32_t flags, int node,
				 struct nb_block *b)
{
	struct nb_alloc a;
	struct nb_query q;
	int err;

	memset(b, 0, sizeof(*b));
	b->fd = fd;
	err = nb_test_alloc(fd, size, flags, node, &a);
	if (err)
		return err;
	memset(&q, 0, sizeof(q));
	q.offset = a.offset;
	b->off = a.offset;
	b->size = a.alloc_size;
	if (ioctl(fd, NB_IOC_QUERY, &q) == 0)
		b->phys = q.phys_addr;
	return 0;
}

/* Map the whole block shared, read-write: 0 or -errno. */
static inline int nb_block_map(struct nb_block *b)
{
	b->p = (unsigned char *)mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd,
				     (off_t)b->off);
	if (b->p == (unsigned char *)MAP_FAILED) {
		b->p = NULL;
		return -errno;
	}
	return 0;
}

/* Unmap (if mapped) and free the block: 0 or -errno of NB_IOC_FREE. */
static inline int nb_block_free(struct nb_block *b)
{
	struct nb_free f;

	memset(&f, 0, sizeof(f));
	f.offset = b->off;
	if (b->p)
		munmap(b->p, b->size);
	b->p = NULL;
	return ioctl(b->fd, NB_IOC_FREE, &f) ? -errno : 0;
}

/* The number in a sysfs (or proc) file, or -1. */
static inline long nb_test_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* One of the module's debugfs counters ("faults": fault handler calls so far; "remap_entries",
 * "remap_busy_mms": nb_remap.c's), or -1. */
static inline long long nb_test_module_counter(const char *name)
{
	char line[128];
	long long v = -1;
	size_t len = strlen(name);
	FILE *f = fopen("/sys/kernel/debug/numabuddy/counters", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ' ' &&
		    sscanf(line + len, "%lld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static inline long long nb_test_module_faults(void)
{
	return nb_test_module_counter("faults");
}

/* Seconds on the monotonic clock. */
static inline double nb_test_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* NB_IOC_VERSION of a fresh file: 0 or errno. */
static inline int nb_test_version(struct nb_version *v)
{
	int fd = open(NB_DEVICE_PATH, O_RDWR | O_CLOEXEC), err = 0;

	memset(v, 0, sizeof(*v));
	if (fd < 0)
		return errno;
	if (ioctl(fd, NB_IOC_VERSION, v))
		err = errno;
	close(fd);
	return err;
}

/* Bytes file fd holds in the pools, summed over nodes 0..nr_nodes-1 (NB_IOC_STATS). */
static inline uint64_t nb_test_fd_bytes(int fd, int nr_nodes)
{
	uint64_t sum = 0;

	for (int n = 0; n < nr_nodes; n++) {
		struct nb_stats s;

		memset(&s, 0, sizeof(s));
		s.node = n;
		if (ioctl(fd, NB_IOC_STATS, &s) == 0)
			sum += s.fd_bytes;
	}
	return sum;
}

/* Node of a physical address from /sys/devices/system/node/nodeN/memoryM: -1 when no node
 * claims it, -2 when sysfs has no memory blocks. Remembers the last block looked up. */
static inline int nb_test_node_of_phys(uint64_t phys)
{
	static uint64_t bs, last_block = UINT64_MAX;
	static int last_node = -1;
	char path[128];

	if (!bs) {
		FILE *f = fopen("/sys/devices/system/memory/block_size_bytes", "r");

		if (!f || fscanf(f, "%lx", &bs) != 1) {
			if (f)
				fclose(f);
			return -2;
		}
		fclose(f);
	}
	if (phys / bs == last_block)
		return last_node;
	last_block = phys / bs;
	last_node = -1;
	for (int n = 0; n < 64; n++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/memory%lu", n,
			 (unsigned long)(phys / bs));
		if (access(path, F_OK) == 0) {
			last_node = n;
			break;
		}
	}
	return last_node;
}

#endif /* NB_TEST_H */
