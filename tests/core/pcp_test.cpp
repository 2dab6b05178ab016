// SPDX-License-Identifier: GPL-2.0
/*
 * pcp_test.cpp - pcp.cpp: batched refill, the high mark, drain on demand, NOCACHE bypass,
 * cached orders (0..3, 9) and a barrier-started multi-thread stress (run under TSan).
 */
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "test_util.h"

namespace nbtest {
namespace {

class PcpTest : public CoreTest {};

TEST_F(PcpTest, RefillIsBatchedAndFreeParks)
{
	Start(OneNode::Make(), 0, 8);
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	NodeStats s = Stats(0);
	EXPECT_EQ(7u, s.pcp_frames);
	EXPECT_EQ(initial_[0].free_frames - 8, s.free_frames);
	EXPECT_EQ(0, nbc_buddy_free(core, pfn, 0));
	EXPECT_EQ(8u, Stats(0).pcp_frames);
	nbc_pcp_drain(core);
	EXPECT_EQ(0u, Stats(0).pcp_frames);
	/* NOCACHE never touches the cache. */
	ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, NBC_AF_NOCACHE, NB_CTX_ATOMIC, &pfn, nullptr));
	EXPECT_EQ(0u, Stats(0).pcp_frames);
	EXPECT_EQ(0, nbc_buddy_free(core, pfn, 0)); /* frees do go through it */
	EXPECT_EQ(1u, Stats(0).pcp_frames);
	ExpectPristine();
}

TEST_F(PcpTest, CachedOrdersAreZeroToThreeAndNine)
{
	Start(OneNode::Make());
	for (unsigned k = 0; k <= 10; k++) {
		nb_u64 pfn;
		ASSERT_EQ(0, nbc_alloc(core, k, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
		ASSERT_EQ(0, nbc_buddy_free(core, pfn, k));
		bool cached = k <= 3 || k == 9;
		EXPECT_EQ(cached, Stats(0).pcp_frames != 0) << "order " << k;
		nbc_pcp_drain(core);
	}
	ExpectPristine();
}

TEST_F(PcpTest, HighMarkBoundsParkedFrames)
{
	Start(OneNode::Make(), 0, 16);
	std::vector<nb_u64> got(1000);
	for (nb_u64 &p : got)
		ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, NBC_AF_NOCACHE, NB_CTX_ATOMIC, &p, nullptr));
	for (nb_u64 p : got) {
		ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
		ASSERT_LT(Stats(0).pcp_frames, 64u); /* high = 4 x batch */
	}
	ExpectPristine();
}

TEST_F(PcpTest, LargeRequestDrainsOtherCpusCaches)
{
	sim::Topology t;
	t.cpus_per_node = 2;
	t.regions = {Region(kHigh, 64, 0)};
	Start(t);
	sim::SetCpu(0);
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 0));
	EXPECT_EQ(31u, Stats(0).pcp_frames);
	sim::SetCpu(1);
	/* An atomic request may not visit CPU 0 (that sleeps in the kernel): no order 6. */
	EXPECT_EQ(-NB_ENOMEM, nbc_alloc(core, 6, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	EXPECT_EQ(31u, Stats(0).pcp_frames);
	ASSERT_EQ(0, nbc_alloc(core, 6, nullptr, 0, NB_CTX_SLEEP, &pfn, nullptr));
	EXPECT_EQ(0u, Stats(0).pcp_frames);
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 6));
	/* A node running short drains too: CPU 1 parks order-0 frames, CPU 0 takes all 64. */
	ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 0));
	sim::SetCpu(0);
	std::vector<nb_u64> got;
	while (nbc_alloc(core, 0, nullptr, 0, NB_CTX_SLEEP, &pfn, nullptr) == 0)
		got.push_back(pfn);
	EXPECT_EQ(64u, got.size());
	for (nb_u64 p : got)
		ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
	ExpectPristine();
}

TEST_F(PcpTest, AtomicRequestDrainsItsOwnCpu)
{
	sim::Topology t;
	t.cpus_per_node = 2;
	t.regions = {Region(kHigh, 64, 0)};
	Start(t);
	sim::SetCpu(1);
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 0));
	EXPECT_EQ(31u, Stats(0).pcp_frames);
	/* Its own CPU's cache is reachable without sleeping: the order 6 forms again. */
	ASSERT_EQ(0, nbc_alloc(core, 6, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	EXPECT_EQ(0u, Stats(0).pcp_frames);
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 6));
	ExpectPristine();
}

TEST_F(PcpTest, Low4GBypassesCaches)
{
	Start(LowHigh::Make());
	nb_u64 pfn;
	nbc_policy b = Bind(0);
	ASSERT_EQ(0, nbc_alloc(core, 0, &b, NBC_AF_LOW4G, NB_CTX_ATOMIC, &pfn, nullptr));
	EXPECT_LT(pfn, NBC_LOW_LIMIT_PFN);
	EXPECT_EQ(0u, Stats(0).pcp_frames);
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 0));
	ExpectPristine();
}

/* Threads on different simulated CPUs allocate, tag, hand blocks to each other and free, all
 * released by one barrier. Tags in the frames catch any block handed out twice. */

template <typename Config> class PcpStress : public ConfigTest<Config> {};
using StressConfigs = ::testing::Types<TwoNodes, FourNodesHoles>;
TYPED_TEST_SUITE(PcpStress, StressConfigs);

TYPED_TEST(PcpStress, BarrierStartedThreads)
{
	constexpr int kThreads = 4;
	constexpr int kOps = 3000;
	std::mutex mu;
	std::vector<Held> shared; /* handed between threads */
	std::atomic<int> errors{0};
	Together t;
	/* A debugfs reader: consistency walk and stats on the live pool. */
	t.Side([&](const std::atomic<bool> &done) {
		while (!done.load()) {
			if (nbc_check(this->core) != 0)
				errors++;
			NodeStats s; /* a snapshot per lock, not atomic across them: no sum check */
			if (nbc_node_stats(this->core, 0, &s) != 0 || s.free_frames > s.total_frames)
				errors++;
		}
	});
	t.Run(kThreads, [&](int id) {
		std::mt19937 rng(static_cast<unsigned>(id) * 7919u);
		std::vector<Held> mine;
		nb_u64 seq = 0;
		const unsigned orders[] = {0, 0, 0, 1, 2, 3, 4, 9};
		for (int i = 0; i < kOps; i++) {
			unsigned r = rng() % 10;
			if (r < 5 || mine.empty()) {
				unsigned k = orders[rng() % 8];
				nbc_policy pol{};
				pol.mode = rng() % 2 ? NBC_POLICY_LOCAL : NBC_POLICY_INTERLEAVE;
				pol.nodemask = (1ull << sim::Current().nodes) - 1;
				nb_u64 pfn;
				if (nbc_alloc(this->core, k, &pol, rng() % 8 == 0 ? NBC_AF_NOCACHE : 0,
					      NB_CTX_ATOMIC, &pfn, nullptr) != 0)
					continue;
				/* Owner and sequence in every frame: a block handed out twice, or
				 * overlapping another, is overwritten by its second owner. */
				Held h{pfn, k, (nb_u64(id) << 48) | ++seq};
				Tag(h);
				mine.push_back(h);
			} else if (r < 7) {
				std::lock_guard<std::mutex> g(mu);
				shared.push_back(mine.back());
				mine.pop_back();
			} else {
				Held b;
				if (r == 9) {
					std::lock_guard<std::mutex> g(mu);
					if (shared.empty())
						continue;
					b = shared.back();
					shared.pop_back();
				} else {
					b = mine.back();
					mine.pop_back();
				}
				if (!Tagged(b))
					errors++;
				if (nbc_buddy_free(this->core, b.pfn, b.order) != 0)
					errors++;
			}
		}
		for (auto &b : mine)
			if (nbc_buddy_free(this->core, b.pfn, b.order) != 0)
				errors++;
	});
	for (auto &b : shared)
		EXPECT_EQ(0, nbc_buddy_free(this->core, b.pfn, b.order));
	EXPECT_EQ(0, errors.load());
	this->ExpectPristine();
}

} /* namespace */
} /* namespace nbtest */
