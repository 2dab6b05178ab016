/* SPDX-License-Identifier: GPL-2.0 */
/*
 * paired_stats.h - the statistics behind every numabuddy-vs-kernel ratio the bench reports.
 *
 * Under QEMU TCG one run's ratio of two separately measured means can move 2x in the next, so
 * each case measures numabuddy (A) and its kernel counterpart (B) alternately, A B A B ..., in
 * one process, and reduces the pairs here:
 *   ratio of pair i  = B_i / A_i (kernel time / numabuddy time: above 1 numabuddy is faster)
 *   ratio            = median of the per-pair ratios
 *   interval         = 95% percentile bootstrap of that median (fixed seed: a rerun of the
 *                      report over the same samples prints the same interval)
 *   verdict          = on par when the interval lies inside [0.95, 1.05]; else faster when it
 *                      lies above 1, slower when below 1; else undecided.
 * Header-only and free of the library and Google Benchmark, so that the hosted unit test
 * (tests/userspace/paired_stats_test.cpp) checks it with known inputs.
 */
#ifndef NB_BENCH_PAIRED_STATS_H
#define NB_BENCH_PAIRED_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <vector>

namespace nbb {

/* The values are what the JSON counter "verdict" carries (scripts/bench-report.py names them). */
enum class Verdict : int { Undecided = 0, Faster = 1, Slower = 2, OnPar = 3 };

inline const char *verdict_name(Verdict v)
{
	switch (v) {
	case Verdict::Faster: return "faster";
	case Verdict::Slower: return "slower";
	case Verdict::OnPar: return "on par";
	default: return "undecided";
	}
}

constexpr double kOnParLow = 0.95, kOnParHigh = 1.05;
constexpr unsigned kResamples = 2000;
constexpr uint64_t kBootstrapSeed = 0x6e756d6162756464ull; /* "numabudd" */

/* The verdict an interval [lo, hi] of the ratio supports (kernel / numabuddy). */
inline Verdict decide(double lo, double hi)
{
	if (!(lo <= hi))
		return Verdict::Undecided; /* also NaN */
	if (lo >= kOnParLow && hi <= kOnParHigh)
		return Verdict::OnPar;
	if (lo > 1.0)
		return Verdict::Faster;
	if (hi < 1.0)
		return Verdict::Slower;
	return Verdict::Undecided;
}

/* Median of @v (mean of the two middle values for an even count); 0 when empty. */
inline double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	size_t mid = v.size() / 2;
	std::nth_element(v.begin(), v.begin() + (long)mid, v.end());
	double hi = v[mid];
	if (v.size() % 2)
		return hi;
	double lo = *std::max_element(v.begin(), v.begin() + (long)mid);
	return (lo + hi) / 2;
}

/* splitmix64: a fixed, portable sequence (std:: distributions differ between libraries). */
struct SplitMix64 {
	uint64_t state;
	uint64_t next()
	{
		uint64_t z = (state += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		return z ^ (z >> 31);
	}
};

struct PairedResult {
	size_t pairs = 0;     /* pairs used (both sides > 0) */
	double ratio = 0;     /* median of per-pair ratios */
	double lo = 0, hi = 0; /* 95% bootstrap interval of that median */
	double a_median = 0, b_median = 0; /* median time of each side, for display */
	Verdict verdict = Verdict::Undecided;
};

/*
 * Reduce paired samples: a[i] is numabuddy's time in pair i, b[i] the kernel's. Pairs where
 * either time is not positive are dropped; fewer than 2 pairs left decide nothing.
 */
inline PairedResult analyze_pairs(const std::vector<double> &a, const std::vector<double> &b,
				  uint64_t seed = kBootstrapSeed, unsigned resamples = kResamples)
{
	PairedResult r;
	std::vector<double> ratios, as, bs;
	for (size_t i = 0; i < a.size() && i < b.size(); i++) {
		if (!(a[i] > 0) || !(b[i] > 0))
			continue;
		ratios.push_back(b[i] / a[i]);
		as.push_back(a[i]);
		bs.push_back(b[i]);
	}
	r.pairs = ratios.size();
	if (r.pairs == 0)
		return r;
	r.ratio = median(ratios);
	r.a_median = median(as);
	r.b_median = median(bs);
	if (r.pairs < 2 || resamples == 0) {
		r.lo = r.hi = r.ratio;
		return r; /* one pair: no spread known, Undecided */
	}
	SplitMix64 rng{ seed };
	std::vector<double> meds(resamples), sample(r.pairs);
	for (unsigned k = 0; k < resamples; k++) {
		for (double &s : sample)
			s = ratios[rng.next() % r.pairs];
		meds[k] = median(sample);
	}
	std::sort(meds.begin(), meds.end());
	/* Percentile interval: the 2.5th and 97.5th of the bootstrap medians. */
	r.lo = meds[(size_t)(0.025 * (resamples - 1) + 0.5)];
	r.hi = meds[(size_t)(0.975 * (resamples - 1) + 0.5)];
	r.verdict = decide(r.lo, r.hi);
	return r;
}

} // namespace nbb

#endif /* NB_BENCH_PAIRED_STATS_H */
