// SPDX-License-Identifier: GPL-2.0
/*
 * contig_bench.cpp - large physically contiguous allocations after a fragmenting workload.
 *
 * Before any case runs, the same workload fragments both allocators on the bench node:
 * blocks of 4..64 KiB (seeded random sizes) until NB_FRAG_PCT percent (default 50) of the
 * node's free pool is in use, then every other block is freed. The kernel gets the same byte
 * count of small anonymous mappings bound to the node, every other one unmapped.
 *
 * Then, per size (8, 64, 256 MiB), a fixed number of attempts; each one is timed and freed
 * again at once. Counters: success_pct; the time is the mean over all attempts.
 *   numabuddy:   NB_IOC_ALLOC with NB_ALLOC_CONTIG, BIND to the node (zeroed at the ioctl).
 *                When the pool has the bytes but not in one piece, the module compacts the
 *                node (moves the workload's blocks out of one aligned run) and retries once:
 *                counters compactions, compact_ms (their total time, from STATS'
 *                compact_ns), compact_ms_per_success and moved_mib. The first attempt pays
 *                for the compaction; the block it freed again serves the later ones.
 *   hugetlb_1G:  what the kernel can offer user space above its buddy's 4 MiB limit
 *                (alloc_pages order <= 10): a 1 GiB hugetlb page allocated at run time on
 *                the node (nr_hugepages, alloc_contig_pages), mapped and the requested size
 *                touched, then released. It needs a whole free, aligned GiB on the node.
 *   4MiB/alloc_pages: the kernel buddy's largest order (10), through NB_IOC_BENCH, for scale.
 */
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>

#include <random>
#include <vector>

#include "bench_common.h"

#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB (30 << 26)
#endif

using namespace nbb;

namespace {

int g_node = -1;
int g_pct = 50;
std::string g_frag_note;

uint64_t pool_free(int node)
{
	struct nb_stats s;
	if (nbl_stats(dev(), node, &s))
		return 0;
	return s.free_bytes;
}

/* Fragment numabuddy's pool on g_node and the kernel's memory on it; kept until exit. */
void fragment()
{
	std::mt19937_64 rng(42);
	static const uint64_t sizes[] = { 4 * KiB, 8 * KiB, 16 * KiB, 32 * KiB, 64 * KiB };
	uint64_t target = pool_free(g_node) * (uint64_t)g_pct / 100, used = 0;
	std::vector<nbl_alloc_opts> req;
	while (used < target) {
		uint64_t s = sizes[rng() % 5];
		/* NOZERO (root only): the workload's own zeroing would only slow the setup. */
		nbl_alloc_opts o = opts_on(g_node, s, NB_ALLOC_NOZERO);
		o.lib_flags = NBL_NOMAP;
		req.push_back(o);
		used += s;
	}
	std::vector<nbl_block> blocks(req.size());
	size_t done = 0;
	while (done < req.size()) {
		size_t n = std::min<size_t>(4096, req.size() - done), bad = 0;
		int err = nbl_alloc_batch(dev(), &req[done], n, &blocks[done], &bad);
		if (err) {
			fprintf(stderr, "fragment: batch at %zu: %s\n", done + bad, nbl_strerror(err));
			break;
		}
		done += n;
	}
	for (size_t i = 0; i < done; i += 2)
		nbl_free(dev(), &blocks[i]);
	uint64_t kept = 0;
	for (size_t i = 1; i < done; i += 2)
		kept += blocks[i].size;

	/* The kernel's side: the same sizes as anonymous memory on the node. */
	unsigned long mask = 1ul << g_node;
	std::vector<std::pair<void *, size_t>> maps;
	long long node_free = 0;
	numa_node_size64(g_node, &node_free);
	/* Never push the node into the OOM killer: keep 64 MiB of it free. */
	uint64_t kbudget = node_free > (long long)(64 * MiB) ? (uint64_t)node_free - 64 * MiB : 0;
	uint64_t kused = 0;
	for (size_t i = 0; i < req.size() && kused + req[i].size <= kbudget; i++) {
		kused += req[i].size;
		void *p = mmap(nullptr, req[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		mbind(p, req[i].size, MPOL_BIND, &mask, 64, 0);
		touch(p, req[i].size);
		maps.emplace_back(p, req[i].size);
	}
	for (size_t i = 0; i < maps.size(); i += 2)
		munmap(maps[i].first, maps[i].second);

	char buf[256];
	snprintf(buf, sizeof(buf),
		 "node %d: %zu blocks of 4-64 KiB (%llu MiB, %d%% of the free pool), every other "
		 "freed: %llu MiB held; pool free now %llu MiB; kernel: %llu MiB of anon, same pattern",
		 g_node, done, (unsigned long long)(used / MiB), g_pct,
		 (unsigned long long)(kept / MiB), (unsigned long long)(pool_free(g_node) / MiB),
		 (unsigned long long)(kused / MiB));
	g_frag_note = buf;
	fprintf(stderr, "%s\n", buf);
	/* What the workload left: the pool's free blocks per order (debugfs, root). */
	if (FILE *f = fopen("/sys/kernel/debug/numabuddy/buddyinfo", "r")) {
		char line[512];
		while (fgets(line, sizeof(line), f))
			fprintf(stderr, "after fragmenting: %s", line);
		fclose(f);
	}
}

struct nb_stats node_stats(int node)
{
	struct nb_stats s;
	memset(&s, 0, sizeof(s));
	nbl_stats(dev(), node, &s);
	return s;
}

void contig_numabuddy(benchmark::State &st, uint64_t size)
{
	nbl_alloc_opts o = opts_on(g_node, size, NB_ALLOC_CONTIG);
	o.lib_flags = NBL_NOMAP;
	uint64_t ok = 0, tries = 0;
	struct nb_stats before = node_stats(g_node);
	for (auto _ : st) {
		nbl_block b;
		uint64_t t0 = now_ns();
		int err = nbl_alloc(dev(), &o, &b);
		if (!err)
			nbl_free(dev(), &b);
		st.SetIterationTime(secs(now_ns() - t0));
		tries++;
		ok += !err;
	}
	st.counters["success_pct"] = tries ? 100.0 * (double)ok / (double)tries : 0;
	struct nb_stats after = node_stats(g_node);
	double ms = (double)(after.compact_ns - before.compact_ns) / 1e6;
	st.counters["compactions"] = (double)(after.compactions - before.compactions);
	st.counters["compact_failures"] = (double)(after.compact_failures - before.compact_failures);
	st.counters["compact_ms"] = ms;
	st.counters["compact_ms_per_success"] = ok ? ms / (double)ok : 0;
	st.counters["moved_mib"] =
		(double)(after.compact_moved_bytes - before.compact_moved_bytes) / (double)MiB;
}

bool write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return false;
	bool ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

void contig_hugetlb_1g(benchmark::State &st, uint64_t size)
{
	char path[128];
	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-1048576kB/nr_hugepages",
		 g_node);
	if (read_number(path) < 0) {
		st.SkipWithError("no 1 GiB hugetlb pages in this kernel/CPU");
		return;
	}
	uint64_t ok = 0, tries = 0;
	for (auto _ : st) {
		uint64_t t0 = now_ns();
		bool got = write_file(path, "1") && read_number(path) == 1;
		if (got) {
			void *p = mmap(nullptr, GiB, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB, -1, 0);
			got = p != MAP_FAILED;
			if (got) {
				touch(p, size);
				munmap(p, GiB);
			}
		}
		write_file(path, "0");
		st.SetIterationTime(secs(now_ns() - t0));
		tries++;
		ok += got;
	}
	st.counters["success_pct"] = tries ? 100.0 * (double)ok / (double)tries : 0;
}

/* The kernel buddy's largest block against ours, same node, after the same workload. */
void order10(benchmark::State &st, uint32_t allocator)
{
	uint64_t fails = 0, tries = 0;
	for (auto _ : st) {
		struct nb_bench b;
		memset(&b, 0, sizeof(b));
		b.allocator = allocator;
		b.order = 10;
		b.node = g_node;
		b.iterations = 1;
		int err = nbl_bench(dev(), &b);
		if (err) {
			fail(st, "NB_IOC_BENCH", err);
			return;
		}
		st.SetIterationTime(secs(b.elapsed_ns));
		fails += b.failures;
		tries++;
	}
	st.counters["success_pct"] = tries ? 100.0 * (double)(tries - fails) / (double)tries : 0;
}

void register_all()
{
	int attempts = smoke() ? 1 : 5;
	std::string g = "contig_frag" + std::to_string(g_pct) + "/";
	auto *b = benchmark::RegisterBenchmark((g + "4MiB/numabuddy").c_str(),
					       [](benchmark::State &st) { order10(st, NB_BENCH_NUMABUDDY); });
	b->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(attempts * 4);
	b = benchmark::RegisterBenchmark((g + "4MiB/alloc_pages").c_str(),
					 [](benchmark::State &st) { order10(st, NB_BENCH_KERNEL); });
	b->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(attempts * 4);
	for (uint64_t s : { 8 * MiB, 64 * MiB, 256 * MiB }) {
		std::string n = g + size_name(s) + "/";
		b = benchmark::RegisterBenchmark((n + "numabuddy").c_str(),
						 [s](benchmark::State &st) { contig_numabuddy(st, s); });
		b->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(attempts);
		b = benchmark::RegisterBenchmark((n + "hugetlb_1G").c_str(),
						 [s](benchmark::State &st) { contig_hugetlb_1g(st, s); });
		b->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(attempts);
	}
}

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (!dev())
		return 1;
	if (getenv("NB_FRAG_PCT"))
		g_pct = atoi(getenv("NB_FRAG_PCT"));
	g_node = pin_cpu(bench_cpu());
	if (g_node < 0)
		return 1;
	fragment();
	benchmark::AddCustomContext("fragmentation", g_frag_note);
	register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
