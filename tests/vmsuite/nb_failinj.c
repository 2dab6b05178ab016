// SPDX-License-Identifier: GPL-2.0
/*
 * nb_failinj.c - numabuddy under the kernel's fault injection (debug kernel only).
 *
 *   nb_failinj ROUNDS SEED
 *
 * Marks itself with /proc/self/make-it-fail, so with fail_page_alloc and failslab set to
 * task-filter (failinject.sh does that) only the allocations made on its behalf fail:
 * opening the device, ALLOC, mmap and the faults that build page tables, RESERVE and its
 * first touch, MIGRATE, FREE. Each round checks that every failure is clean:
 *   - an ioctl fails with ENOMEM, ENOSPC, EDQUOT, EBUSY or EINTR, never anything else;
 *   - a touch of a mapped block either works or raises SIGBUS; never another signal;
 *   - whatever was written and read back is the same after a MIGRATE, failed or not;
 *   - a FREE that failed is retried with injection off (the block must not stay held).
 * At the end, injection off, this file must hold no bytes on any node (NB_IOC_STATS), and
 * counts of each outcome are printed so a run that injected nothing cannot look like a pass.
 * Exit 0 when every round was clean.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../uapi/numabuddy.h"

static int bad;
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching;
/* Outcome counters: [0] ok, [1] clean failure. */
static unsigned long n_open[2], n_alloc[2], n_mmap[2], n_touch[2], n_reserve[2], n_first[2],
	n_migrate[2], n_free[2];

#define BAD(...) do { printf("nb_failinj: BAD: " __VA_ARGS__); printf("\n"); bad++; } while (0)

/* Opened once, before any failure is injected: with make-it-fail set, opening the file to
 * clear it is itself an allocation that may fail. */
static int mif_fd = -1;

static void inject(int on)
{
	if (mif_fd < 0)
		mif_fd = open("/proc/self/make-it-fail", O_WRONLY);
	if (mif_fd < 0 || pwrite(mif_fd, on ? "1" : "0", 1, 0) != 1) {
		printf("nb_failinj: /proc/self/make-it-fail: %s\n", strerror(errno));
		exit(2);
	}
}

static void on_sigbus(int sig)
{
	(void)sig;
	if (touching)
		siglongjmp(touch_env, 1);
	_exit(3);
}

static int clean_errno(int e)
{
	return e == ENOMEM || e == ENOSPC || e == EDQUOT || e == EBUSY || e == EINTR;
}

/* touch: write then read one word per page of [p, p+len) with tag; SIGBUS stops it.
 * Returns the number of pages done; *sigbus says whether a SIGBUS ended it. */
static size_t touch(volatile uint64_t *p, size_t len, uint64_t tag, int write, int *sigbus)
{
	volatile size_t i = 0;
	size_t pages = len / 4096;

	*sigbus = 0;
	touching = 1;
	if (sigsetjmp(touch_env, 1)) {
		touching = 0;
		*sigbus = 1;
		return i;
	}
	for (; i < pages; i++) {
		volatile uint64_t *w = p + i * 512;

		if (write)
			*w = tag ^ i;
		else if (*w != (tag ^ i)) {
			touching = 0;
			BAD("page %zu reads %#llx, wrote %#llx", (size_t)i,
			    (unsigned long long)*w, (unsigned long long)(tag ^ i));
			return i;
		}
	}
	touching = 0;
	return i;
}

static void do_free(int fd, uint64_t off)
{
	struct nb_free f = { .offset = off };

	if (ioctl(fd, NB_IOC_FREE, &f) == 0) {
		n_free[0]++;
		return;
	}
	if (!clean_errno(errno))
		BAD("FREE: %s", strerror(errno));
	n_free[1]++;
	inject(0);
	if (ioctl(fd, NB_IOC_FREE, &f))
		BAD("FREE without injection: %s", strerror(errno));
	inject(1);
}

static void round_alloc(int fd, int nodes, unsigned int r)
{
	static const uint64_t sizes[] = { 4096, 65536, 2 << 20, 4 << 20 };
	struct nb_alloc a = { .size = sizes[r % 4], .policy = NB_POLICY_BIND,
			      .node = (int)(r % nodes),
			      .flags = (r % 4) >= 2 ? NB_ALLOC_HUGE_2M : 0 };
	struct nb_migrate m;
	size_t done, again;
	int sb;
	void *p;

	if (ioctl(fd, NB_IOC_ALLOC, &a)) {
		if (!clean_errno(errno))
			BAD("ALLOC %llu: %s", (unsigned long long)a.size, strerror(errno));
		n_alloc[1]++;
		return;
	}
	n_alloc[0]++;
	p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)a.offset);
	if (p == MAP_FAILED) {
		if (errno != ENOMEM && errno != EAGAIN)
			BAD("mmap: %s", strerror(errno));
		n_mmap[1]++;
		do_free(fd, a.offset);
		return;
	}
	n_mmap[0]++;
	done = touch(p, a.alloc_size, r * 0x9e3779b97f4a7c15ULL, 1, &sb);
	n_touch[sb]++;
	m = (struct nb_migrate){ .offset = a.offset, .node = (int)((r + 1) % nodes) };
	if (nodes > 1) {
		if (ioctl(fd, NB_IOC_MIGRATE, &m) == 0) {
			n_migrate[0]++;
		} else {
			if (!clean_errno(errno))
				BAD("MIGRATE: %s", strerror(errno));
			n_migrate[1]++;
		}
	}
	/* What was written before the MIGRATE reads back the same after it. */
	again = touch(p, done * 4096, r * 0x9e3779b97f4a7c15ULL, 0, &sb);
	n_touch[sb]++;
	if (!sb && again != done)
		BAD("round %u: contents differ after MIGRATE", r);
	munmap(p, a.alloc_size);
	do_free(fd, a.offset);
}

static void round_reserve(int fd, int nodes, unsigned int r)
{
	struct nb_alloc a = { .size = 4 << 20, .policy = NB_POLICY_PREFERRED,
			      .node = (int)(r % nodes) };
	int sb;
	void *p;

	if (ioctl(fd, NB_IOC_RESERVE, &a)) {
		if (!clean_errno(errno))
			BAD("RESERVE: %s", strerror(errno));
		n_reserve[1]++;
		return;
	}
	n_reserve[0]++;
	p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)a.offset);
	if (p == MAP_FAILED) {
		if (errno != ENOMEM && errno != EAGAIN)
			BAD("mmap RESERVE: %s", strerror(errno));
		n_mmap[1]++;
		do_free(fd, a.offset);
		return;
	}
	n_mmap[0]++;
	/* First touch allocates each frame: it works or it is SIGBUS. */
	touch(p, a.alloc_size, ~(uint64_t)r, 1, &sb);
	n_first[sb]++;
	munmap(p, a.alloc_size);
	do_free(fd, a.offset);
}

int main(int argc, char **argv)
{
	unsigned int rounds = argc > 1 ? (unsigned int)atoi(argv[1]) : 200;
	unsigned int seed = argc > 2 ? (unsigned int)atoi(argv[2]) : 1;
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct nb_version v = { 0 };
	int fd = -1, nodes = 0, n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGBUS, &sa, NULL);
	srand(seed);
	inject(1);
	for (n = 0; n < 100 && fd < 0; n++) {
		fd = open("/dev/numabuddy", O_RDWR);
		if (fd < 0 && errno != ENOMEM)
			BAD("open: %s", strerror(errno));
		n_open[fd < 0]++;
	}
	inject(0);
	if (fd < 0 || ioctl(fd, NB_IOC_VERSION, &v)) {
		printf("nb_failinj: no device: %s\n", strerror(errno));
		return 2;
	}
	for (n = 0; n < 64; n++)
		if ((v.nodes_with_pool >> n) & 1)
			nodes = n + 1;
	inject(1);
	for (unsigned int r = 0; r < rounds; r++) {
		unsigned int k = (unsigned int)rand();

		if (k % 3)
			round_alloc(fd, nodes, k);
		else
			round_reserve(fd, nodes, k);
	}
	inject(0);
	printf("nb_failinj: ok/failed: open %lu/%lu alloc %lu/%lu mmap %lu/%lu touch %lu/%lu(sigbus) "
	       "reserve %lu/%lu first-touch %lu/%lu(sigbus) migrate %lu/%lu free %lu/%lu\n",
	       n_open[0], n_open[1], n_alloc[0], n_alloc[1], n_mmap[0], n_mmap[1], n_touch[0],
	       n_touch[1], n_reserve[0], n_reserve[1], n_first[0], n_first[1], n_migrate[0],
	       n_migrate[1], n_free[0], n_free[1]);
	for (n = 0; n < nodes; n++) {
		struct nb_stats st = { .node = n };

		if (!((v.nodes_with_pool >> n) & 1))
			continue;
		if (ioctl(fd, NB_IOC_STATS, &st))
			BAD("STATS node %d: %s", n, strerror(errno));
		else if (st.fd_bytes)
			BAD("node %d: this file still holds %llu bytes", n,
			    (unsigned long long)st.fd_bytes);
	}
	if (!n_alloc[1] && !n_mmap[1] && !n_touch[1] && !n_reserve[1] && !n_first[1] &&
	    !n_migrate[1])
		BAD("no failure was injected: is fault injection on?");
	close(fd);
	return bad ? 1 : 0;
}
