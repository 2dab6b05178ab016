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
inline nb_handle *dev()
{
	static nb_handle *h;
	static bool tried;
	if (!tried) {
		tried = true;
		int err = nb_open(nullptr, &h);
		if (err) {
			fprintf(stderr, "numabuddy: %s\n", nb_strerror(err));
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
	return nb_node_of_cpu(cpu);
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

/* NB_IOC_WALK level of @addr in our own page tables (NB_WALK_*), -errno on error. */
inline int walk_level(void *addr)
{
	if (!dev())
		return -ENODEV;
	struct nb_walk w;
	memset(&w, 0, sizeof(w));
	w.addr = (uint64_t)(uintptr_t)addr;
	if (ioctl(nb_fd(dev()), NB_IOC_WALK, &w))
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

/* Abort the case with a reason the JSON keeps ("error_message"). */
inline void fail(benchmark::State &st, const char *what, int err)
{
	std::string m = std::string(what) + ": " + (err < 0 ? strerror(-err) : strerror(err));
	st.SkipWithError(m.c_str());
}

inline nb_alloc_opts opts_on(int node, uint64_t size, uint32_t flags)
{
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	o.size = size;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	o.flags = flags;
	return o;
}

} // namespace nbb

#endif /* NB_BENCH_COMMON_H */
