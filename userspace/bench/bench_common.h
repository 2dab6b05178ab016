/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bench_common.h - what the VM benchmarks share: the device handle, pinning, touching,
 * clocks, and the naming rule the report relies on.
 *
 * Every case is registered as "<case>/<param>/<allocator>", allocator last. The allocators
 * whose name starts with "numabuddy" are ours; every other one is a kernel alternative, and
 * scripts/bench-report.py puts each kernel row next to the numabuddy row of the same
 * "<case>/<param>" (same suffix after '-' when there are several numabuddy variants).
 *
 * Timing: always wall time of the operation alone (manual timing), never the setup. Under
 * QEMU TCG the absolute numbers mean nothing; only ratios from one run do.
 */
#ifndef NB_BENCH_COMMON_H
#define NB_BENCH_COMMON_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include <benchmark/benchmark.h>

#include "numabuddy.h"

namespace nbb {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr size_t kPage = 4096;

inline uint64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

inline double secs(uint64_t ns) { return (double)ns * 1e-9; }

/* One write per 4 KiB page: the cost of making every page present (and zeroed). */
inline void touch(void *p, size_t len)
{
	volatile char *c = (volatile char *)p;
	for (size_t off = 0; off < len; off += kPage)
		c[off] = 1;
}

inline std::string size_name(uint64_t b)
{
	char buf[32];
	if (b >= GiB && b % GiB == 0)
		snprintf(buf, sizeof(buf), "%lluGiB", (unsigned long long)(b / GiB));
	else if (b >= MiB && b % MiB == 0)
		snprintf(buf, sizeof(buf), "%lluMiB", (unsigned long long)(b / MiB));
	else
		snprintf(buf, sizeof(buf), "%lluKiB", (unsigned long long)(b / KiB));
	return buf;
}

/* The process-wide device handle; nullptr (and a message once) when the module is absent. */
inline nbl_handle *dev()
{
	static nbl_handle *h;
	static bool tried;
	if (!tried) {
		tried = true;
		int err = nbl_open(nullptr, &h);
		if (err) {
			fprintf(stderr, "numabuddy: %s\n", nbl_strerror(err));
			h = nullptr;
		}
	}
	return h;
}

/* Pin the calling thread to @cpu; returns its node. */
inline int pin_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -errno;
	return nbl_node_of_cpu(cpu);
}

/*
 * The CPU the single-threaded cases run on: NB_BENCH_CPU, else CPU 1 when there is one
 * (node 0 also holds the kernel image, the initramfs and the page cache; node 1 is quieter).
 */
inline int bench_cpu()
{
	const char *e = getenv("NB_BENCH_CPU");
	if (e)
		return atoi(e);
	return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
}

inline bool smoke() { return getenv("NB_BENCH_SMOKE") != nullptr; }

/* The number in a sysfs file (a module parameter, a pool attribute), or -1. */
inline long read_number(const char *path)
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

/* NB_IOC_WALK level of @addr in our own page tables (NB_WALK_*), -errno on error. */
inline int walk_level(void *addr)
{
	if (!dev())
		return -ENODEV;
	struct nb_walk w;
	memset(&w, 0, sizeof(w));
	w.addr = (uint64_t)(uintptr_t)addr;
	if (ioctl(nbl_fd(dev()), NB_IOC_WALK, &w))
		return -errno;
	return (int)w.level;
}

inline const char *level_name(int level)
{
	switch (level) {
	case NB_WALK_PTE: return "4K";
	case NB_WALK_PMD: return "2M";
	case NB_WALK_PUD: return "1G";
	case NB_WALK_NONE: return "none";
	default: return "error";
	}
}

/*
 * Whether this boot zeroes every page allocation (init_on_alloc): Debian's kernels default to
 * on (CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y), so only an explicit init_on_alloc=0 turns it off.
 */
inline bool init_on_alloc()
{
	static int cached = -1;
	if (cached < 0) {
		char buf[4096] = { 0 };
		FILE *f = fopen("/proc/cmdline", "r");
		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
		}
		cached = strstr(buf, "init_on_alloc=0") || strstr(buf, "init_on_alloc=off") ? 0 : 1;
	}
	return cached;
}

/* AnonHugePages (KiB) of the mapping holding @addr, from /proc/self/smaps; -1 if not found. */
inline long anon_huge_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	char line[512];
	bool inside = false;
	long kb = -1;
	uintptr_t a = (uintptr_t)addr;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char dash;
		/* A mapping's header: "lo-hi perms ..."; field lines are "Name:   N kB". */
		if (sscanf(line, "%lx%c%lx", &lo, &dash, &hi) == 3 && dash == '-') {
			if (inside)
				break;
			inside = a >= lo && a < hi;
			continue;
		}
		if (inside && !strncmp(line, "AnonHugePages:", 14)) {
			kb = atol(line + 14);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* Abort the case with a reason the JSON keeps ("error_message"). */
inline void fail(benchmark::State &st, const char *what, int err)
{
	std::string m = std::string(what) + ": " + (err < 0 ? strerror(-err) : strerror(err));
	st.SkipWithError(m.c_str());
}

inline nbl_alloc_opts opts_on(int node, uint64_t size, uint32_t flags)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.size = size;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	o.flags = flags;
	return o;
}

} // namespace nbb

#endif /* NB_BENCH_COMMON_H */
