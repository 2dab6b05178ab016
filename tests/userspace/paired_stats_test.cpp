// SPDX-License-Identifier: GPL-2.0
/* paired_stats_test.cpp - the bench's paired ratio, interval and verdict on known inputs. */
#include <gtest/gtest.h>

#include <vector>

#include "../../userspace/bench/paired_stats.h"

namespace {

using nbb::analyze_pairs;
using nbb::decide;
using nbb::Verdict;

/* Numabuddy times 1..n (drift, as a busy host gives), kernel times = ratio_i * numabuddy's. */
void Build(const std::vector<double> &ratios, std::vector<double> *a, std::vector<double> *b)
{
	a->clear();
	b->clear();
	for (size_t i = 0; i < ratios.size(); i++) {
		a->push_back(100.0 + 10.0 * (double)i);
		b->push_back(ratios[i] * a->back());
	}
}

nbb::PairedResult Analyze(const std::vector<double> &ratios)
{
	std::vector<double> a, b;
	Build(ratios, &a, &b);
	return analyze_pairs(a, b);
}

TEST(PairedStats, Median)
{
	EXPECT_DOUBLE_EQ(0, nbb::median({}));
	EXPECT_DOUBLE_EQ(3, nbb::median({ 5, 3, 1 }));
	EXPECT_DOUBLE_EQ(2.5, nbb::median({ 4, 1, 3, 2 }));
	EXPECT_DOUBLE_EQ(7, nbb::median({ 7 }));
}

TEST(PairedStats, DecideFromTheInterval)
{
	EXPECT_EQ(Verdict::OnPar, decide(0.95, 1.05));
	EXPECT_EQ(Verdict::OnPar, decide(1.01, 1.04)); /* excludes 1 but inside the band */
	EXPECT_EQ(Verdict::Faster, decide(1.01, 1.2));
	EXPECT_EQ(Verdict::Faster, decide(1.5, 3.0));
	EXPECT_EQ(Verdict::Slower, decide(0.5, 0.99));
	EXPECT_EQ(Verdict::Slower, decide(0.90, 0.97)); /* leaves the band below */
	EXPECT_EQ(Verdict::Undecided, decide(0.9, 1.1));
	EXPECT_EQ(Verdict::Undecided, decide(0.94, 1.0)); /* touches 1 */
	EXPECT_EQ(Verdict::Undecided, decide(1.0, 1.2));
	EXPECT_EQ(Verdict::Undecided, decide(1.2, 1.1)); /* inverted */
	EXPECT_EQ(Verdict::Undecided, decide(0.0 / 0.0, 1.0));
}

TEST(PairedStats, ConstantRatioIsDecidedExactly)
{
	auto r = Analyze(std::vector<double>(15, 2.0));
	EXPECT_EQ(15u, r.pairs);
	EXPECT_DOUBLE_EQ(2.0, r.ratio);
	EXPECT_DOUBLE_EQ(2.0, r.lo);
	EXPECT_DOUBLE_EQ(2.0, r.hi);
	EXPECT_EQ(Verdict::Faster, r.verdict);
	EXPECT_EQ(Verdict::Slower, Analyze(std::vector<double>(15, 0.5)).verdict);
}

TEST(PairedStats, TightAroundOneIsOnPar)
{
	auto r = Analyze({ 0.98, 1.02, 1.00, 0.99, 1.01, 1.03, 0.97, 1.00, 1.02, 0.99, 1.01,
			   0.98, 1.00, 1.01, 0.99 });
	EXPECT_EQ(Verdict::OnPar, r.verdict);
	EXPECT_GE(r.lo, 0.95);
	EXPECT_LE(r.hi, 1.05);
	EXPECT_LE(r.lo, r.ratio);
	EXPECT_GE(r.hi, r.ratio);
}

TEST(PairedStats, NoisyButConsistentlyAboveOneIsFaster)
{
	/* Each pair moves 1.2x-2.5x with the host's load; every one says numabuddy is faster. */
	auto r = Analyze({ 1.2, 2.5, 1.4, 1.9, 1.3, 2.2, 1.6, 1.25, 2.4, 1.5, 1.7, 1.35, 2.1,
			   1.45, 1.8 });
	EXPECT_EQ(Verdict::Faster, r.verdict);
	EXPECT_DOUBLE_EQ(1.6, r.ratio);
	EXPECT_GT(r.lo, 1.0);
}

TEST(PairedStats, SpreadAcrossOneIsUndecided)
{
	/* The run-to-run picture of issue 16: 0.5x in one pair, 2x in the next. */
	auto r = Analyze({ 0.5, 2.0, 0.6, 1.8, 0.55, 1.9, 0.7, 1.5, 0.5, 2.0, 1.1, 0.9, 0.6, 1.7,
			   0.8 });
	EXPECT_EQ(Verdict::Undecided, r.verdict);
	EXPECT_LT(r.lo, 1.0);
	EXPECT_GT(r.hi, 1.0);
}

TEST(PairedStats, RatioIsKernelOverNumabuddy)
{
	auto r = analyze_pairs({ 1, 1, 1 }, { 3, 3, 3 });
	EXPECT_DOUBLE_EQ(3.0, r.ratio);
	EXPECT_DOUBLE_EQ(1.0, r.a_median);
	EXPECT_DOUBLE_EQ(3.0, r.b_median);
}

TEST(PairedStats, DeterministicForAGivenSeed)
{
	std::vector<double> ratios = { 0.7, 1.3, 0.9, 1.6, 1.1, 0.8, 1.4, 1.0, 1.2, 0.95, 1.5,
				       0.85, 1.25, 1.05, 1.15 };
	auto r1 = Analyze(ratios), r2 = Analyze(ratios);
	EXPECT_EQ(r1.lo, r2.lo);
	EXPECT_EQ(r1.hi, r2.hi);
	EXPECT_LT(r1.lo, r1.hi); /* a spread input gives a real interval */
}

TEST(PairedStats, DropsFailedPairsAndNeedsTwo)
{
	/* 0 or negative = a failed sample: its pair is left out, never counted as infinitely fast. */
	auto r = analyze_pairs({ 1, 0, 1, -5 }, { 2, 2, 0, 2 });
	EXPECT_EQ(1u, r.pairs);
	EXPECT_EQ(Verdict::Undecided, r.verdict); /* one pair shows no spread */
	EXPECT_EQ(0u, analyze_pairs({}, {}).pairs);
	EXPECT_EQ(Verdict::Undecided, analyze_pairs({}, {}).verdict);
	EXPECT_EQ(2u, analyze_pairs({ 1, 1, 1 }, { 1, 1 }).pairs); /* unequal lengths: the common part */
}

} // namespace
