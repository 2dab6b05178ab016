// SPDX-License-Identifier: GPL-2.0
/*
 * kernel_bench.cpp - in-kernel allocator cost through NB_IOC_BENCH (CAP_SYS_ADMIN).
 *
 * One sample is one ioctl that times `batch` alloc+free pairs in the kernel, either through
 * mm_core (nbc_buddy_alloc/nbc_buddy_free) or through alloc_pages_node(__GFP_THISNODE)/
 * __free_pages, on the node of the CPU we are pinned to; its elapsed_ns (the syscall not
 * counted) over batch is the cost of one pair. Each case "kernel_alloc_free/orderN/alloc_pages"
 * alternates the two (paired.h) and reports the median per-pair ratio with its interval.
 *
 * Zeroing: mm_core's buddy calls do not zero. alloc_pages zeroes when the kernel runs with
 * init_on_alloc=1 (Debian's default), so scripts/bench-vm.sh also boots a VM with
 * init_on_alloc=0 for the like-for-like comparison.
 *
 * The allcpus variant runs one thread per online CPU, each pinned to its CPU and allocating
 * on that CPU's node: in a sample all threads run the same allocator at once (started and
 * joined by a barrier), and the sample is the mean of their per-pair times.
 *
 * pool_grow/256MiB/nr_hugepages (issue 22): growing the bench node's pool by 256 MiB through
 * /sys/module/numabuddy/pools/nodeN/pool_mb against growing its 2 MiB hugetlb pool by the same
 * amount through nr_hugepages. One sample is the write that grows; each side then shrinks
 * back, untimed, and checks both sizes, so every sample starts from the same state. Both take
 * their memory from the page allocator (4 MiB chunks vs 2 MiB pages), so init_on_alloc zeroes
 * both; neither zeroes otherwise (numabuddy zeroes at ALLOC, hugetlb at fault).
 */
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <memory>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "paired.h"

using namespace nbb;

namespace {

/* Pairs per ioctl: enough for ktime to resolve, few enough to stay well under a second. */
uint64_t batch_for(unsigned order)
{
	uint64_t b = order <= 1 ? 2048 : order <= 3 ? 1024 : 128;
	return smoke() ? (b + 7) / 8 : b;
}

std::atomic<uint64_t> g_failures;

/* One NB_IOC_BENCH on @node: ns per pair, or -1 with @err set. */
double one_batch(uint32_t allocator, unsigned order, int node, std::string *err)
{
	struct nb_bench b;
	memset(&b, 0, sizeof(b));
	b.allocator = allocator;
	b.order = order;
	b.node = node;
	b.iterations = batch_for(order);
	int e = nbl_bench(dev(), &b);
	if (e) {
		*err = std::string("NB_IOC_BENCH: ") + strerror(-e);
		return -1;
	}
	g_failures += b.failures; /* reported per case, as before: a node may run out */
	return (double)b.elapsed_ns / (double)b.iterations;
}

std::string zeroing(uint32_t allocator)
{
	if (allocator == NB_BENCH_NUMABUDDY)
		return "none (nbc_buddy_alloc)";
	return init_on_alloc() ? "every block at alloc_pages (init_on_alloc=1)"
			       : "none (init_on_alloc=0)";
}

Side single_cpu(uint32_t allocator, unsigned order, int node)
{
	return { [=](Probe &pr) { return one_batch(allocator, order, node, &pr.error); },
		 zeroing(allocator) };
}

/* One pinned thread per CPU; run() makes all of them do one batch at once. */
class AllCpus {
public:
	explicit AllCpus(unsigned order)
		: order_(order), n_((unsigned)sysconf(_SC_NPROCESSORS_ONLN)), start_(n_ + 1),
		  done_(n_ + 1), ns_(n_), err_(n_)
	{
		for (unsigned cpu = 0; cpu < n_; cpu++)
			threads_.emplace_back([this, cpu] { Worker(cpu); });
	}
	~AllCpus()
	{
		stop_ = true;
		start_.arrive_and_wait();
		for (auto &t : threads_)
			t.join();
	}
	double run(uint32_t allocator, std::string *err)
	{
		allocator_ = allocator;
		start_.arrive_and_wait();
		done_.arrive_and_wait();
		double sum = 0;
		for (unsigned i = 0; i < n_; i++) {
			if (ns_[i] < 0) {
				*err = "cpu " + std::to_string(i) + ": " + err_[i];
				return -1;
			}
			sum += ns_[i];
		}
		return sum / n_;
	}

private:
	void Worker(unsigned cpu)
	{
		int node = pin_cpu((int)cpu);
		for (;;) {
			start_.arrive_and_wait();
			if (stop_)
				return;
			if (node < 0) {
				ns_[cpu] = -1;
				err_[cpu] = "cannot pin";
			} else {
				ns_[cpu] = one_batch(allocator_, order_, node, &err_[cpu]);
			}
			done_.arrive_and_wait();
		}
	}

	unsigned order_, n_;
	std::barrier<> start_, done_;
	std::vector<double> ns_;
	std::vector<std::string> err_;
	std::vector<std::thread> threads_;
	uint32_t allocator_ = 0; /* written before start_, read after it: the barrier orders */
	bool stop_ = false;
};

void bm_single(benchmark::State &st, unsigned order)
{
	int node = pin_cpu(bench_cpu());
	if (node < 0) {
		failed_cases()++;
		fail(st, "pin", node);
		return;
	}
	g_failures = 0;
	run_paired(st, single_cpu(NB_BENCH_NUMABUDDY, order, node),
		   single_cpu(NB_BENCH_KERNEL, order, node), 1, 25);
	st.counters["node"] = node;
	st.counters["failures"] = (double)g_failures;
}

void bm_allcpus(benchmark::State &st, unsigned order)
{
	auto pool = std::make_shared<AllCpus>(order);
	Side a = { [pool](Probe &pr) { return pool->run(NB_BENCH_NUMABUDDY, &pr.error); },
		   zeroing(NB_BENCH_NUMABUDDY) };
	Side b = { [pool](Probe &pr) { return pool->run(NB_BENCH_KERNEL, &pr.error); },
		   zeroing(NB_BENCH_KERNEL) };
	g_failures = 0;
	run_paired(st, a, b, 1, 25);
	st.counters["failures"] = (double)g_failures;
}


/* Write v to a sysfs file: 0 or -errno. */
int sysfs_write(const std::string &path, long v)
{
	int fd = open(path.c_str(), O_WRONLY);
	if (fd < 0)
		return -errno;
	std::string s = std::to_string(v) + "\n";
	int err = write(fd, s.data(), s.size()) == (ssize_t)s.size() ? 0 : -errno;
	close(fd);
	return err;
}

/*
 * One side of pool_grow: file holds a size in `unit`s; grow it by `by` units, time the
 * write, check the size reached, shrink back and check that too.
 */
Side grow_side(std::string file, long by, const char *zero)
{
	return { [file, by](Probe &pr) -> double {
			 long before = read_number(file.c_str());
			 if (before < 0) {
				 pr.error = "cannot read " + file;
				 return -1;
			 }
			 uint64_t t0 = now_ns();
			 int err = sysfs_write(file, before + by);
			 uint64_t t1 = now_ns();
			 long got = read_number(file.c_str());
			 int back = sysfs_write(file, before);
			 if (err || got != before + by || back || read_number(file.c_str()) != before) {
				 pr.error = file + ": " + std::to_string(before) + " -> " +
					    std::to_string(got) + " (asked " + std::to_string(before + by) +
					    ", " + strerror(-(err ? err : back)) + "), back to " +
					    std::to_string(read_number(file.c_str()));
				 return -1;
			 }
			 if (pr.warmup)
				 pr.note = "from " + std::to_string(before);
			 return (double)(t1 - t0);
		 },
		 zero };
}

void bm_pool_grow(benchmark::State &st)
{
	int node = pin_cpu(bench_cpu());
	if (node < 0) {
		failed_cases()++;
		fail(st, "pin", node);
		return;
	}
	std::string n = std::to_string(node);
	const char *zero = init_on_alloc() ? "every page at alloc_pages (init_on_alloc=1)"
					   : "none (init_on_alloc=0)";
	run_paired(st, grow_side("/sys/module/numabuddy/pools/node" + n + "/pool_mb", 256, zero),
		   grow_side("/sys/devices/system/node/node" + n +
				     "/hugepages/hugepages-2048kB/nr_hugepages",
			     128, zero),
		   1, 15);
	st.counters["node"] = node;
}

void register_all()
{
	static const unsigned orders[] = { 0, 1, 3, 9, 10 };
	for (unsigned order : orders)
		reg_paired("kernel_alloc_free/order" + std::to_string(order) + "/alloc_pages",
			   [order](benchmark::State &st) { bm_single(st, order); });
	for (unsigned order : orders)
		reg_paired("kernel_alloc_free_allcpus/order" + std::to_string(order) + "/alloc_pages",
			   [order](benchmark::State &st) { bm_allcpus(st, order); });
	reg_paired("pool_grow/256MiB/nr_hugepages", bm_pool_grow);
}

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (!dev())
		return 1;
	benchmark::AddCustomContext("init_on_alloc", init_on_alloc() ? "1" : "0");
	register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return exit_status();
}
