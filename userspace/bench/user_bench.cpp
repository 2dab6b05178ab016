// SPDX-License-Identifier: GPL-2.0
/*
 * user_bench.cpp - what a process sees: numabuddy next to the kernel's ways of getting memory.
 *
 *   alloc_map_touch_free/<size>/<alloc>  one allocation, mapped, every 4 KiB page written once, freed
 *   first_touch/<4KiB|2MiB>/<alloc>      cost of the first write to each page (or 2 MiB page)
 *   migrate/<size>/<alloc>               NB_IOC_MIGRATE vs move_pages(2), node A <-> node B
 *   tlb_random_read/<size>/<alloc>       random 8-byte reads over a buffer mapped by 4 KiB or 2 MiB
 *
 * All cases run pinned to bench_cpu() and allocate on its node (BIND, or libnuma's
 * numa_alloc_onnode, or hugetlb's local-first placement). Zeroing, as each case pays it:
 *   numabuddy ALLOC: at NB_IOC_ALLOC, before mmap; RESERVE: at first touch, per frame;
 *   anonymous memory and hugetlb: at fault (MAP_POPULATE faults at mmap time); alloc_pages
 *   zeroes once (init_on_alloc and __GFP_ZERO are not both paid).
 * Anonymous mappings get the system THP setting (Debian: always) unless the allocator name
 * says 4K (MADV_NOHUGEPAGE) or thp (MADV_HUGEPAGE).
 */
#include <numa.h>
#include <numaif.h>
#include <sys/resource.h>

#include <vector>

#include "bench_common.h"

using namespace nbb;

namespace {

int g_node = -1; /* node of bench_cpu() */

enum class Anon { Default, NoHuge, Thp, Hugetlb };

/* Anonymous private memory aligned to 2 MiB (so THP and hugetlb can map it whole). */
void *anon_map(size_t len, Anon kind, bool populate)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (kind == Anon::Hugetlb) {
		len = (len + 2 * MiB - 1) & ~(2 * MiB - 1);
		flags |= MAP_HUGETLB | (populate ? MAP_POPULATE : 0);
		void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, flags, -1, 0);
		return p == MAP_FAILED ? nullptr : p;
	}
	size_t span = len + 2 * MiB;
	char *raw = (char *)mmap(nullptr, span, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (raw == MAP_FAILED)
		return nullptr;
	char *p = (char *)(((uintptr_t)raw + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (raw + span > p + len)
		munmap(p + len, (size_t)(raw + span - (p + len)));
	if (kind == Anon::NoHuge)
		madvise(p, len, MADV_NOHUGEPAGE);
	else if (kind == Anon::Thp)
		madvise(p, len, MADV_HUGEPAGE);
	if (populate)
		madvise(p, len, MADV_POPULATE_WRITE);
	return p;
}

/* Counter NAME = measured ns per unit (Google Benchmark's rates divide by CPU time). */
void per_unit(benchmark::State &st, const char *name, uint64_t total_ns, uint64_t units)
{
	if (st.iterations() && units)
		st.counters[name] = (double)total_ns / (double)st.iterations() / (double)units;
}

size_t huge_round(size_t len) { return (len + 2 * MiB - 1) & ~(2 * MiB - 1); }

/* ---- alloc + map + touch + free ---- */

void amtf_numabuddy(benchmark::State &st, uint64_t size)
{
	nb_alloc_opts o = opts_on(g_node, size, 0);
	int level = -1;
	for (auto _ : st) {
		uint64_t t0 = now_ns();
		nb_block b;
		int err = nb_alloc(dev(), &o, &b);
		if (err) {
			fail(st, "nb_alloc", err);
			break;
		}
		touch(b.addr, size);
		if (level < 0)
			level = walk_level(b.addr);
		nb_free(dev(), &b);
		st.SetIterationTime(secs(now_ns() - t0));
	}
	st.SetLabel(std::string("mapped ") + level_name(level));
}

void amtf_mmap_populate(benchmark::State &st, uint64_t size)
{
	for (auto _ : st) {
		uint64_t t0 = now_ns();
		void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED) {
			fail(st, "mmap", errno);
			break;
		}
		touch(p, size);
		munmap(p, size);
		st.SetIterationTime(secs(now_ns() - t0));
	}
}

void amtf_numa_alloc_onnode(benchmark::State &st, uint64_t size)
{
	/* numa_alloc_onnode binds strictly: past the node's free memory the OOM killer comes. */
	long long node_free = 0;
	numa_node_size64(g_node, &node_free);
	if ((long long)size + (long long)(64 * MiB) > node_free) {
		std::string m = "node " + std::to_string(g_node) + " has only " +
				std::to_string(node_free / (long long)MiB) +
				" MiB free for the kernel (pool and hugetlb pages reserved)";
		st.SkipWithError(m.c_str());
		return;
	}
	for (auto _ : st) {
		uint64_t t0 = now_ns();
		void *p = numa_alloc_onnode(size, g_node);
		if (!p) {
			fail(st, "numa_alloc_onnode", ENOMEM);
			break;
		}
		touch(p, size);
		numa_free(p, size);
		st.SetIterationTime(secs(now_ns() - t0));
	}
}

void amtf_hugetlb(benchmark::State &st, uint64_t size)
{
	size_t len = huge_round(size);
	for (auto _ : st) {
		uint64_t t0 = now_ns();
		void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p == MAP_FAILED) {
			fail(st, "mmap(MAP_HUGETLB)", errno);
			break;
		}
		touch(p, size);
		munmap(p, len);
		st.SetIterationTime(secs(now_ns() - t0));
	}
	if (len != size)
		st.SetLabel("rounded up to " + size_name(len));
}

/* The largest free block on our node, from the pool's buddyinfo. */
uint64_t largest_block()
{
	struct nb_stats s;
	if (!dev() || nb_stats(dev(), g_node, &s))
		return 0;
	for (int o = (int)s.nr_orders - 1; o >= 0; o--)
		if (s.free_blocks[o])
			return (uint64_t)kPage << o;
	return 0;
}

/* ---- first touch ---- */

void ft_numabuddy(benchmark::State &st, uint64_t size, uint64_t unit, uint32_t flags)
{
	nb_alloc_opts o = opts_on(g_node, size, flags);
	int level = -1;
	uint64_t total = 0;
	for (auto _ : st) {
		nb_block b;
		int err = nb_reserve(dev(), &o, &b);
		if (err) {
			fail(st, "nb_reserve", err);
			break;
		}
		uint64_t t0 = now_ns();
		touch(b.addr, size);
		uint64_t dt = now_ns() - t0;
		total += dt;
		st.SetIterationTime(secs(dt));
		if (level < 0)
			level = walk_level(b.addr);
		nb_free(dev(), &b);
	}
	per_unit(st, "per_page_ns", total, size / unit);
	st.SetLabel(std::string("mapped ") + level_name(level));
}

void ft_anon(benchmark::State &st, uint64_t size, uint64_t unit, Anon kind)
{
	uint64_t total = 0;
	for (auto _ : st) {
		void *p = anon_map(size, kind, false);
		if (!p) {
			fail(st, "mmap", errno);
			break;
		}
		uint64_t t0 = now_ns();
		touch(p, size);
		uint64_t dt = now_ns() - t0;
		total += dt;
		st.SetIterationTime(secs(dt));
		munmap(p, kind == Anon::Hugetlb ? huge_round(size) : size);
	}
	per_unit(st, "per_page_ns", total, size / unit);
}

/* ---- migration ---- */

int other_node()
{
	/* The nearest other node with a pool: a realistic "move it next door". */
	int best = -1, best_d = 1 << 30;
	for (int n = 0; n <= numa_max_node(); n++) {
		if (n == g_node || numa_node_size64(n, nullptr) <= 0)
			continue;
		if (dev() && !(nb_version_info(dev())->nodes_with_pool & (1ull << n)))
			continue;
		int d = numa_distance(g_node, n);
		if (d < best_d) {
			best = n;
			best_d = d;
		}
	}
	return best;
}

void mig_numabuddy(benchmark::State &st, uint64_t size, bool touch_after)
{
	int nodes[2] = { g_node, other_node() };
	nb_alloc_opts o = opts_on(g_node, size, 0);
	nb_block b;
	int err = nb_alloc(dev(), &o, &b);
	if (err) {
		fail(st, "nb_alloc", err);
		return;
	}
	touch(b.addr, size);
	int i = 0;
	for (auto _ : st) {
		uint64_t moved = 0, t0 = now_ns();
		err = nb_migrate(dev(), &b, nodes[++i & 1], &moved);
		if (touch_after)
			touch(b.addr, size);
		st.SetIterationTime(secs(now_ns() - t0));
		if (err || moved != size) {
			fail(st, "nb_migrate", err ? err : EIO);
			break;
		}
	}
	st.SetBytesProcessed((int64_t)st.iterations() * (int64_t)size);
	/* Mapping size after the last migration and a touch: do huge entries come back? */
	touch(b.addr, size);
	st.SetLabel(std::string("mapped after migration ") + level_name(walk_level(b.addr)));
	nb_free(dev(), &b);
}

void mig_move_pages(benchmark::State &st, uint64_t size, bool touch_after)
{
	int nodes[2] = { g_node, other_node() };
	char *p = (char *)anon_map(size, Anon::Default, false);
	if (!p) {
		fail(st, "mmap", errno);
		return;
	}
	unsigned long mask = 1ul << g_node;
	if (mbind(p, size, MPOL_BIND, &mask, 64, 0))
		fprintf(stderr, "mbind: %s\n", strerror(errno));
	touch(p, size);
	size_t n = size / kPage;
	std::vector<void *> pages(n);
	std::vector<int> target(n), status(n);
	for (size_t k = 0; k < n; k++)
		pages[k] = p + k * kPage;
	int i = 0;
	for (auto _ : st) {
		int to = nodes[++i & 1];
		for (size_t k = 0; k < n; k++)
			target[k] = to;
		uint64_t t0 = now_ns();
		long r = move_pages(0, n, pages.data(), target.data(), status.data(), MPOL_MF_MOVE);
		if (touch_after)
			touch(p, size);
		st.SetIterationTime(secs(now_ns() - t0));
		if (r < 0) {
			fail(st, "move_pages", errno);
			break;
		}
		if (status[0] != to || status[n - 1] != to) {
			st.SkipWithError("move_pages left pages behind");
			break;
		}
	}
	st.SetBytesProcessed((int64_t)st.iterations() * (int64_t)size);
	munmap(p, size);
}

/* ---- TLB: random reads ---- */

uint64_t tlb_bytes()
{
	const char *e = getenv("NB_BENCH_TLB_MB");
	uint64_t b = e ? strtoull(e, nullptr, 0) * MiB : smoke() ? 32 * MiB : 512 * MiB;
	while (b & (b - 1))
		b &= b - 1; /* random_reads masks: a power of two */
	return b < MiB ? MiB : b;
}

uint64_t random_reads(const char *p, uint64_t size, uint64_t n)
{
	uint64_t x = 88172645463325252ull, sum = 0, mask = size / 8 - 1; /* size: power of two */
	for (uint64_t k = 0; k < n; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sum += ((const volatile uint64_t *)p)[x & mask];
	}
	return sum;
}

enum class TlbKind { Nb4K, Nb2M, Anon4K, Hugetlb2M };

void tlb_case(benchmark::State &st, TlbKind kind)
{
	uint64_t size = tlb_bytes(), reads = smoke() ? (1u << 14) : (1u << 20);
	nb_block b{};
	char *p = nullptr;
	int err = 0;
	if (kind == TlbKind::Nb4K || kind == TlbKind::Nb2M) {
		/* PREFERRED: one node's pool may be smaller than the buffer; spill to the next. */
		nb_alloc_opts o = opts_on(g_node, size, 0);
		o.policy = NB_POLICY_PREFERRED;
		if (kind == TlbKind::Nb4K) {
			o.flags = NB_ALLOC_POPULATE; /* 4 KiB frames, so 4 KiB entries */
			err = nb_reserve(dev(), &o, &b);
		} else {
			o.flags = NB_ALLOC_HUGE_2M;
			err = nb_alloc(dev(), &o, &b);
		}
		p = (char *)b.addr;
	} else {
		p = (char *)anon_map(size, kind == TlbKind::Anon4K ? Anon::NoHuge : Anon::Hugetlb,
				     false);
		if (!p)
			err = -errno;
	}
	if (err) {
		fail(st, "allocating the buffer", err);
		return;
	}
	touch(p, size);
	int level = walk_level(p + size / 2);
	uint64_t total = 0;
	/* Page faults while reading a buffer touched in full beforehand: 0 unless entries were
	 * taken away behind our back (a slow side with faults here is not a TLB effect). */
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	for (auto _ : st) {
		uint64_t t0 = now_ns();
		benchmark::DoNotOptimize(random_reads(p, size, reads));
		uint64_t dt = now_ns() - t0;
		total += dt;
		st.SetIterationTime(secs(dt));
	}
	getrusage(RUSAGE_SELF, &ru1);
	per_unit(st, "per_read_ns", total, reads);
	st.counters["faults"] = (double)(ru1.ru_minflt - ru0.ru_minflt + ru1.ru_majflt - ru0.ru_majflt);
	st.SetLabel(std::string("mapped ") + level_name(level));
	if (kind == TlbKind::Nb4K || kind == TlbKind::Nb2M)
		nb_free(dev(), &b);
	else
		munmap(p, size);
}

template <class F> void reg(const std::string &name, F f, int iterations = 0)
{
	auto *b = benchmark::RegisterBenchmark(name.c_str(), f);
	b->UseManualTime()->Unit(benchmark::kMicrosecond);
	if (iterations)
		b->Iterations(iterations);
}

void register_all()
{
	bool have_dev = dev() != nullptr;
	std::vector<uint64_t> sizes = { 4 * KiB, 64 * KiB, 2 * MiB, 64 * MiB };
	uint64_t big = largest_block();
	if (big > 64 * MiB)
		sizes.push_back(big);
	for (uint64_t s : sizes) {
		std::string g = "alloc_map_touch_free/" + size_name(s) + "/";
		if (have_dev)
			reg(g + "numabuddy", [s](benchmark::State &st) { amtf_numabuddy(st, s); });
		reg(g + "mmap_populate", [s](benchmark::State &st) { amtf_mmap_populate(st, s); });
		reg(g + "numa_alloc_onnode",
		    [s](benchmark::State &st) { amtf_numa_alloc_onnode(st, s); });
		reg(g + "hugetlb", [s](benchmark::State &st) { amtf_hugetlb(st, s); });
	}

	uint64_t ft = smoke() ? 2 * MiB : 16 * MiB, ft2 = smoke() ? 8 * MiB : 64 * MiB;
	if (have_dev)
		reg("first_touch/4KiB/numabuddy",
		    [ft](benchmark::State &st) { ft_numabuddy(st, ft, 4 * KiB, 0); });
	reg("first_touch/4KiB/anon",
	    [ft](benchmark::State &st) { ft_anon(st, ft, 4 * KiB, Anon::NoHuge); });
	if (have_dev)
		reg("first_touch/2MiB/numabuddy", [ft2](benchmark::State &st) {
			ft_numabuddy(st, ft2, 2 * MiB, NB_ALLOC_HUGE_2M);
		});
	reg("first_touch/2MiB/anon_thp",
	    [ft2](benchmark::State &st) { ft_anon(st, ft2, 2 * MiB, Anon::Thp); });
	reg("first_touch/2MiB/hugetlb",
	    [ft2](benchmark::State &st) { ft_anon(st, ft2, 2 * MiB, Anon::Hugetlb); });

	if (numa_max_node() > 0) {
		for (uint64_t s : { 2 * MiB, 64 * MiB }) {
			for (bool t : { false, true }) {
				std::string g = std::string(t ? "migrate_touch/" : "migrate/") +
						size_name(s) + "/";
				if (have_dev)
					reg(g + "numabuddy", [s, t](benchmark::State &st) {
						mig_numabuddy(st, s, t);
					});
				reg(g + "move_pages",
				    [s, t](benchmark::State &st) { mig_move_pages(st, s, t); });
			}
		}
	}

	std::string g = "tlb_random_read/" + size_name(tlb_bytes()) + "/";
	int it = smoke() ? 1 : 5;
	if (have_dev) {
		reg(g + "numabuddy-4K", [](benchmark::State &st) { tlb_case(st, TlbKind::Nb4K); }, it);
		reg(g + "numabuddy-2M", [](benchmark::State &st) { tlb_case(st, TlbKind::Nb2M); }, it);
	}
	reg(g + "anon-4K", [](benchmark::State &st) { tlb_case(st, TlbKind::Anon4K); }, it);
	reg(g + "hugetlb-2M", [](benchmark::State &st) { tlb_case(st, TlbKind::Hugetlb2M); }, it);
}

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	g_node = pin_cpu(bench_cpu());
	if (g_node < 0) {
		fprintf(stderr, "cannot pin to CPU %d\n", bench_cpu());
		return 1;
	}
	benchmark::AddCustomContext("bench_cpu", std::to_string(bench_cpu()));
	benchmark::AddCustomContext("bench_node", std::to_string(g_node));
	benchmark::AddCustomContext(
		"zeroing", "numabuddy ALLOC: at the ioctl; RESERVE: at first touch; anon/hugetlb: at fault");
	register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
