/* SPDX-License-Identifier: GPL-2.0 */
/*
 * paired.h - the paired runner every numabuddy-vs-kernel case goes through.
 *
 * Why a runner inside Google Benchmark rather than two benchmarks: Google Benchmark runs one
 * benchmark to completion before the next, so numabuddy and the kernel would be measured
 * minutes apart, and under TCG on a shared host that alone moves a ratio 2x. Here one
 * benchmark (one iteration, manual time) is one case "<case>/<param>/<kernel alternative>":
 * it runs a discarded warm-up pair (TCG translates the code on first use; each side also
 * probes its mapping then, outside any measured sample), then PAIRS pairs A B A B ... of
 * numabuddy (A) and the kernel (B) in this process, and reduces them with paired_stats.h.
 * Google Benchmark keeps the registration, filtering, context and JSON output; the results
 * are its custom counters (scripts/bench-report.py reads them):
 *   pairs, ratio, ratio_lo, ratio_hi   median of kernel/numabuddy per pair, 95% interval
 *   verdict                            paired_stats.h's Verdict value
 *   nb_ns, kernel_ns                   each side's median time per unit (page, pair, read)
 * and its label, "key=value; ..." pairs: what each side mapped, THP found, who zeroes when.
 *
 * A side times itself (only the operation, never its setup) and returns nanoseconds, or -1
 * with Probe::error set. The first failure of either side ends the case with SkipWithError
 * and counts as a failed case: the program then exits 1 (the smoke run relies on that).
 */
#ifndef NB_BENCH_PAIRED_H
#define NB_BENCH_PAIRED_H

#include <stdio.h>
#include <stdlib.h>

#include <functional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "paired_stats.h"

namespace nbb {

/* What a side learns in the warm-up sample (warmup true), and why a sample failed. */
struct Probe {
	bool warmup = false;
	std::string note;  /* e.g. "mapped 2M", "THP 2048 of 2048 KiB" */
	std::string error; /* set with a negative return */
};

struct Side {
	std::function<double(Probe &)> sample; /* ns of one operation, or < 0 with error */
	std::string zeroing;                   /* who zeroes what, and when, on this side */
};

/* Cases that could not run; main() returns exit_status(). */
inline int &failed_cases()
{
	static int n;
	return n;
}

inline int exit_status() { return failed_cases() ? 1 : 0; }

inline unsigned bench_pairs(unsigned dflt)
{
	const char *e = getenv("NB_BENCH_PAIRS");
	if (getenv("NB_BENCH_SMOKE"))
		return 3; /* enough to exercise the statistics, not to decide */
	unsigned n = e ? (unsigned)strtoul(e, nullptr, 0) : dflt;
	return n < 15 ? 15 : n;
}

/* Run one paired case; @units divides each sample for the per-unit display (pages, pairs). */
inline void run_paired(benchmark::State &st, const Side &nb, const Side &kernel, double units,
		       unsigned pairs_dflt = 15)
{
	unsigned pairs = bench_pairs(pairs_dflt);
	for (auto _ : st) {
		Probe pa, pb;
		pa.warmup = pb.warmup = true;
		std::vector<double> a, b;
		std::string error;
		double total = 0;
		for (unsigned i = 0; i <= pairs && error.empty(); i++) {
			double ta = nb.sample(pa);
			if (ta < 0) {
				error = "numabuddy: " + pa.error;
				break;
			}
			double tb = kernel.sample(pb);
			if (tb < 0) {
				error = "kernel: " + pb.error;
				break;
			}
			pa.warmup = pb.warmup = false;
			if (i == 0)
				continue; /* the warm-up pair */
			a.push_back(ta / units);
			b.push_back(tb / units);
			total += ta + tb;
		}
		if (!error.empty()) {
			failed_cases()++;
			fprintf(stderr, "paired case failed: %s\n", error.c_str());
			st.SkipWithError(error.c_str());
			break;
		}
		PairedResult r = analyze_pairs(a, b);
		st.SetIterationTime(total * 1e-9);
		st.counters["pairs"] = (double)r.pairs;
		st.counters["ratio"] = r.ratio;
		st.counters["ratio_lo"] = r.lo;
		st.counters["ratio_hi"] = r.hi;
		st.counters["verdict"] = (double)(int)r.verdict;
		st.counters["nb_ns"] = r.a_median;
		st.counters["kernel_ns"] = r.b_median;
		/* "; " separates the label's fields: keep it out of the values. */
		auto clean = [](std::string v) {
			for (size_t i; (i = v.find("; ")) != std::string::npos;)
				v[i] = ',';
			return v;
		};
		std::string label = "verdict=" + std::string(verdict_name(r.verdict));
		if (!pa.note.empty())
			label += "; nb_seen=" + clean(pa.note);
		if (!pb.note.empty())
			label += "; kernel_seen=" + clean(pb.note);
		label += "; nb_zeroes=" + clean(nb.zeroing) + "; kernel_zeroes=" + clean(kernel.zeroing);
		st.SetLabel(label);
	}
}

/* Register a paired case: one iteration (the runner does its own repetitions). */
inline void reg_paired(const std::string &name, std::function<void(benchmark::State &)> f)
{
	benchmark::RegisterBenchmark(name.c_str(), [f](benchmark::State &st) { f(st); })
		->UseManualTime()
		->Iterations(1)
		->Unit(benchmark::kMillisecond);
}

} // namespace nbb

#endif /* NB_BENCH_PAIRED_H */
