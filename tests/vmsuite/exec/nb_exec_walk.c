// SPDX-License-Identifier: GPL-2.0
/*
 * nb_exec_walk.c - nb_exec_walk.so, a test-only preload for third-party programs (stress-ng)
 * run under `numabuddy exec`: just before each munmap of 1 MiB or more it records where the
 * range really was, and appends one line to $NB_WALK_LOG:
 *
 *   walk pid=P len=L dev=D anon=A none=.. pte=.. pmd=.. pud=.. node0=.. ... other=..
 *
 * dev: bytes mapped from /dev/numabuddy, anon: bytes of anonymous memory (what a fallback
 * gives), both from the kernel's /proc/self/maps; the rest from walk.h (hardware page tables
 * and sysfs). It must come before libnumabuddy-preload.so in LD_PRELOAD (numabuddy exec
 * appends its library, so LD_PRELOAD=nb_exec_walk.so numabuddy exec ... does that).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "walk.h"

static void inspect(uintptr_t a, size_t len)
{
	const char *log = getenv("NB_WALK_LOG");
	uintptr_t end = a + len, lo, hi;
	struct walk_sum s = { 0 };
	uint64_t dev = 0, anon = 0;
	char line[512], out[768];
	FILE *f;
	int n, fd;

	if (!log || len < (1 << 20) || !(f = fopen("/proc/self/maps", "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long l, h;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &l, &h, &n) < 2)
			continue;
		lo = l > a ? l : a;
		hi = h < end ? h : end;
		if (lo >= hi)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line + n, "/dev/numabuddy")) {
			dev += hi - lo;
			walk_range(lo, hi, &s);
		} else if (!line[n]) {
			anon += hi - lo;
		}
	}
	fclose(f);
	n = snprintf(out, sizeof(out), "walk pid=%d len=%zu dev=%llu anon=%llu ", (int)getpid(), len,
		     (unsigned long long)dev, (unsigned long long)anon);
	walk_format(&s, out + n, sizeof(out) - (size_t)n - 1);
	strcat(out, "\n");
	fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, out, strlen(out)) < 0)
			(void)0;
		close(fd);
	}
}

__attribute__((visibility("default"))) int munmap(void *addr, size_t len)
{
	static int (*next)(void *, size_t);

	if (!next)
		next = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
	inspect((uintptr_t)addr, len);
	return next(addr, len);
}
