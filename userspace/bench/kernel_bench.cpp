// SPDX-License-Identifier: GPL-2.0
/*
 * kernel_bench.cpp - in-kernel allocator cost through NB_IOC_BENCH (CAP_SYS_ADMIN).
 *
 * One benchmark iteration is one ioctl that times `batch` alloc+free pairs in the kernel,
 * either through mm_core (nb_buddy_alloc/nb_buddy_free) or through
 * alloc_pages_node(__GFP_THISNODE)/__free_pages, on the node of the CPU we are pinned to.
 * The ioctl's own elapsed_ns is the iteration time (manual timing), so the syscall is not
 * counted; the counter pair_ns is the cost of one alloc+free pair.
 *
 * Zeroing: mm_core's buddy calls do not zero. alloc_pages zeroes when the kernel runs with
 * init_on_alloc=1 (Debian's default), so scripts/bench.sh also boots a VM with
 * init_on_alloc=0 for the like-for-like comparison.
 *
 * The allcpus variant runs one thread per online CPU, each pinned to its CPU and allocating
 * on that CPU's node, all at once.
 */
#include <vector>

#include "bench_common.h"

using namespace nbb;

namespace {

/* Pairs per ioctl: enough for ktime to resolve, few enough to stay well under a second. */
uint64_t batch_for(unsigned order)
{
	uint64_t b = order <= 1 ? 2048 : order <= 3 ? 1024 : 128;
	return smoke() ? (b + 7) / 8 : b;
}

void bm_bench(benchmark::State &st, uint32_t allocator, unsigned order, bool pin_per_thread)
{
	if (!dev()) {
		st.SkipWithError("no /dev/numabuddy");
		return;
	}
	int cpu = pin_per_thread ? st.thread_index() : bench_cpu();
	int node = pin_cpu(cpu);
	if (node < 0) {
		fail(st, "pin", node);
		return;
	}
	uint64_t pairs = 0, ns = 0, failures = 0, batch = batch_for(order);
	for (auto _ : st) {
		struct nb_bench b;
		memset(&b, 0, sizeof(b));
		b.allocator = allocator;
		b.order = order;
		b.node = node;
		b.iterations = batch;
		int err = nb_bench(dev(), &b);
		if (err) {
			fail(st, "NB_IOC_BENCH", err);
			break;
		}
		st.SetIterationTime(secs(b.elapsed_ns));
		pairs += batch;
		ns += b.elapsed_ns;
		failures += b.failures;
	}
	if (!pairs)
		return;
	st.counters["pair_ns"] = benchmark::Counter((double)ns / (double)pairs,
						    benchmark::Counter::kAvgThreads);
	st.counters["failures"] = benchmark::Counter((double)failures);
	st.counters["node"] = benchmark::Counter((double)node, benchmark::Counter::kAvgThreads);
	st.SetItemsProcessed((int64_t)pairs);
}

void register_all()
{
	static const unsigned orders[] = { 0, 1, 3, 9, 10 };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (bool all : { false, true }) {
		for (unsigned order : orders) {
			for (uint32_t a : { NB_BENCH_NUMABUDDY, NB_BENCH_KERNEL }) {
				std::string name = std::string(all ? "kernel_alloc_free_allcpus"
								   : "kernel_alloc_free") +
						   "/order" + std::to_string(order) + "/" +
						   (a == NB_BENCH_NUMABUDDY ? "numabuddy" : "alloc_pages");
				auto *b = benchmark::RegisterBenchmark(
					name.c_str(), [a, order, all](benchmark::State &st) {
						bm_bench(st, a, order, all);
					});
				b->UseManualTime()->Unit(benchmark::kMicrosecond);
				if (all)
					b->Threads((int)ncpu);
			}
		}
	}
}

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	benchmark::AddCustomContext("zeroing",
				    "numabuddy: none (nb_buddy_alloc); alloc_pages: only if init_on_alloc=1");
	register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
