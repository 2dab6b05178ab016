// SPDX-License-Identifier: GPL-2.0
/*
 * prezero_test.cpp - pre-zeroed pools (segment.cpp's zeroed bit, node.cpp, core.cpp's Prezero,
 * alloc.cpp): a block reported zeroed reads zero, dirty memory never comes back as zeroed,
 * zeroed/dirty buddies kept apart still serve a large request, an allocation waits for the
 * zeroer instead of failing, and all of it under threads.
 */
#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "space_fixture.h"

namespace nbtest {
namespace {

bool ReadsZero(nb_u64 pfn, nb_u64 frames)
{
	for (nb_u64 f = 0; f < frames; f++) {
		const nb_u64 *w = static_cast<const nb_u64 *>(sim::FrameAddr(pfn + f));
		for (size_t i = 0; i < NBC_FRAME_SIZE / sizeof(nb_u64); i++)
			if (w[i] != 0)
				return false;
	}
	return true;
}

void Scribble(nb_u64 pfn, nb_u64 frames)
{
	for (nb_u64 f = 0; f < frames; f++)
		memset(sim::FrameAddr(pfn + f), 0xa5, NBC_FRAME_SIZE);
}

/* Run the node's zeroer until nothing is dirty; the frames it zeroed. */
nb_u64 ZeroAll(nbc_core *c, int node)
{
	nb_u64 total = 0;
	for (;;) {
		nb_i64 n = nbc_core_prezero(c, node, 512, NB_CTX_SLEEP);
		EXPECT_GE(n, 0);
		if (n <= 0)
			return total;
		EXPECT_LE(n, 512);
		total += static_cast<nb_u64>(n);
	}
}

template <typename C> using PrezeroTest = ConfigTest<C>;
TYPED_TEST_SUITE(PrezeroTest, AllConfigs);

TYPED_TEST(PrezeroTest, DirtyFramesComeBackZeroedOnlyAfterTheZeroer)
{
	for (unsigned n = 0; n < this->Nodes(); n++) {
		int node = static_cast<int>(n);
		nbc_policy bind = CoreTest::Bind(node);
		std::vector<nb_u64> got;
		nb_u64 pfn;
		int zeroed = -1;
		/* Every frame of the node, written: nothing on it is zero now. */
		while (nbc_alloc_zeroed(this->core, 0, &bind, NBC_AF_NOCACHE, NB_CTX_SLEEP, &pfn,
					nullptr, &zeroed) == 0) {
			EXPECT_EQ(0, zeroed) << "a fresh pool is not zeroed";
			Scribble(pfn, 1);
			got.push_back(pfn);
		}
		for (nb_u64 p : got)
			ASSERT_EQ(0, nbc_buddy_free(this->core, p, 0));
		nbc_pcp_drain(this->core);
		EXPECT_EQ(0u, this->Stats(node).zeroed_frames);
		nb_u64 free_frames = this->Stats(node).free_frames;
		EXPECT_EQ(free_frames, ZeroAll(this->core, node));
		NodeStats s = this->Stats(node);
		EXPECT_EQ(s.free_frames, s.zeroed_frames);
		EXPECT_EQ(0u, s.prezero_in_flight);
		ASSERT_EQ(0, nbc_check(this->core));
		/* Every frame again: each reported zeroed, each reading zero. */
		got.clear();
		while (nbc_alloc_zeroed(this->core, 0, &bind, NBC_AF_NOCACHE, NB_CTX_SLEEP, &pfn,
					nullptr, &zeroed) == 0) {
			EXPECT_EQ(1, zeroed);
			EXPECT_TRUE(ReadsZero(pfn, 1)) << "pfn " << pfn;
			got.push_back(pfn);
		}
		EXPECT_EQ(free_frames, got.size());
		for (nb_u64 p : got)
			ASSERT_EQ(0, nbc_buddy_free(this->core, p, 0));
	}
	this->ExpectPristine();
}

TYPED_TEST(PrezeroTest, ZeroerRejectsBadArguments)
{
	EXPECT_EQ(-NB_EINVAL, nbc_core_prezero(this->core, -1, 512, NB_CTX_SLEEP));
	EXPECT_EQ(-NB_EINVAL, nbc_core_prezero(this->core, NBC_MAX_NODES, 512, NB_CTX_SLEEP));
	EXPECT_EQ(-NB_EINVAL, nbc_core_prezero(this->core, 0, 0, NB_CTX_SLEEP));
	/* max_frames below a block's size: the zeroer splits down to what it may take. */
	EXPECT_EQ(1, nbc_core_prezero(this->core, 0, 1, NB_CTX_ATOMIC));
	EXPECT_EQ(4, nbc_core_prezero(this->core, 0, 7, NB_CTX_ATOMIC));
	EXPECT_EQ(0, nbc_check(this->core));
}

TYPED_TEST(PrezeroTest, ZeroedBlocksKeepTheLow4GLimit)
{
	for (unsigned n = 0; n < this->Nodes(); n++) {
		int node = static_cast<int>(n);
		nbc_policy bind = CoreTest::Bind(node);
		ZeroAll(this->core, node);
		nb_u64 pfn;
		int z = -1;
		int rc = nbc_alloc_zeroed(this->core, 0, &bind, NBC_AF_LOW4G, NB_CTX_SLEEP, &pfn,
					  nullptr, &z);
		if (this->Stats(node).low_total_frames == 0) {
			EXPECT_EQ(-NB_ENOMEM, rc) << "node " << n;
			continue;
		}
		ASSERT_EQ(0, rc) << "node " << n;
		EXPECT_EQ(1, z);
		EXPECT_LT(pfn, NBC_LOW_LIMIT_PFN);
		EXPECT_EQ(0, nbc_buddy_free(this->core, pfn, 0));
	}
}

class PrezeroOneNode : public CoreTest {
protected:
	void SetUp() override { Start(OneNode::Make()); } /* 8192 frames, one order-13 block */
	nbc_policy bind_ = CoreTest::Bind(0);
};

TEST_F(PrezeroOneNode, ZeroedGoesToWhoWantsItDirtyToTheRest)
{
	ASSERT_EQ(8192u, ZeroAll(core, 0));
	nb_u64 a, b, c;
	int z = -1;
	ASSERT_EQ(0, nbc_alloc_zeroed(core, 9, &bind_, 0, NB_CTX_SLEEP, &a, nullptr, &z));
	EXPECT_EQ(1, z);
	EXPECT_TRUE(ReadsZero(a, 512));
	Scribble(a, 512);
	ASSERT_EQ(0, nbc_buddy_free(core, a, 9));
	nbc_pcp_drain(core);
	/* A is dirty again, its zeroed buddy kept apart from it. */
	NodeStats s = Stats(0);
	EXPECT_EQ(8192u, s.free_frames);
	EXPECT_EQ(8192u - 512, s.zeroed_frames);
	ASSERT_EQ(0, nbc_check(core));
	/* Who does not care takes the dirty block, and leaves the zeroed ones. */
	ASSERT_EQ(0, nbc_alloc(core, 9, &bind_, NBC_AF_NOCACHE, NB_CTX_SLEEP, &b, nullptr));
	EXPECT_EQ(a, b);
	EXPECT_EQ(8192u - 512, Stats(0).zeroed_frames);
	/* Who wants zeroes gets a zeroed one, even from the per-CPU cache's order. */
	ASSERT_EQ(0, nbc_alloc_zeroed(core, 9, &bind_, 0, NB_CTX_SLEEP, &c, nullptr, &z));
	EXPECT_NE(a, c);
	EXPECT_EQ(1, z);
	EXPECT_TRUE(ReadsZero(c, 512));
	ASSERT_EQ(0, nbc_buddy_free(core, b, 9));
	ASSERT_EQ(0, nbc_buddy_free(core, c, 9));
	nbc_pcp_drain(core);
	EXPECT_EQ(1024u, ZeroAll(core, 0));
	EXPECT_EQ(8192u, Stats(0).zeroed_frames);
	ExpectPristine(); /* zeroed buddies merge back into the one block */
}

TEST_F(PrezeroOneNode, SmallRequestsLeaveZeroedHugeBlocksWhole)
{
	ASSERT_EQ(8192u, ZeroAll(core, 0));
	nb_u64 a, x;
	ASSERT_EQ(0, nbc_alloc(core, 9, &bind_, NBC_AF_NOCACHE, NB_CTX_SLEEP, &a, nullptr));
	ASSERT_EQ(0, nbc_buddy_free(core, a, 9));
	nbc_pcp_drain(core);
	int z = -1;
	ASSERT_EQ(0, nbc_alloc_zeroed(core, 0, &bind_, 0, NB_CTX_SLEEP, &x, nullptr, &z));
	EXPECT_EQ(0, z) << "a 4 KiB request is served dirty (and zeroes itself)";
	EXPECT_TRUE(x >= a && x < a + 512) << "from the dirty 2 MiB block, not a zeroed one";
	EXPECT_EQ(8192u - 512, Stats(0).zeroed_frames);
	ASSERT_EQ(0, nbc_buddy_free(core, x, 0));
	nbc_pcp_drain(core);
	ZeroAll(core, 0);
	ExpectPristine();
}

TEST_F(PrezeroOneNode, KeptApartHalvesStillServeTheWholeNode)
{
	ASSERT_EQ(8192u, ZeroAll(core, 0));
	nb_u64 x, all;
	ASSERT_EQ(0, nbc_alloc(core, 0, &bind_, NBC_AF_NOCACHE, NB_CTX_SLEEP, &x, nullptr));
	ASSERT_EQ(0, nbc_buddy_free(core, x, 0));
	EXPECT_LT(Stats(0).largest_free_order, 13);
	ASSERT_EQ(0, nbc_check(core));
	/* One dirty frame among zeroed ones: the whole node is one block again, and dirty. */
	int z = -1;
	ASSERT_EQ(0, nbc_alloc_contig_zeroed(core, 8192, &bind_, 0, NB_CTX_ATOMIC, &all, nullptr,
					     &z));
	EXPECT_EQ(0, z);
	ASSERT_EQ(0, nbc_free_range(core, all, 8192));
	EXPECT_EQ(0u, Stats(0).zeroed_frames);
	ExpectPristine();
}

TEST_F(PrezeroOneNode, ThousandsOfKeptApartPairsMergeForOneLargeRequest)
{
	/* Every frame held; the odd ones freed and zeroed, then the even ones freed dirty:
	 * 4096 zeroed/dirty buddy pairs at order 0, none merged. */
	std::vector<nb_u64> got;
	nb_u64 pfn, all;
	while (nbc_alloc(core, 0, &bind_, NBC_AF_NOCACHE, NB_CTX_SLEEP, &pfn, nullptr) == 0)
		got.push_back(pfn);
	ASSERT_EQ(8192u, got.size());
	for (nb_u64 p : got) {
		if (p & 1) {
			ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
		}
	}
	nbc_pcp_drain(core); /* order-0 frees park in the per-CPU cache first */
	EXPECT_EQ(4096u, ZeroAll(core, 0));
	for (nb_u64 p : got) {
		if (!(p & 1)) {
			ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
		}
	}
	nbc_pcp_drain(core);
	NodeStats s = Stats(0);
	EXPECT_EQ(8192u, s.free_blocks[0]);
	EXPECT_EQ(4096u, s.zeroed_frames);
	ASSERT_EQ(0, nbc_check(core));
	int z = -1;
	ASSERT_EQ(0, nbc_alloc_contig_zeroed(core, 8192, &bind_, 0, NB_CTX_SLEEP, &all, nullptr, &z));
	EXPECT_EQ(0, z);
	ASSERT_EQ(0, nbc_free_range(core, all, 8192));
	ExpectPristine();
}

/* zeroed_huge_frames counts only the zeroed blocks a 2 MiB request can take. One frame held
 * in each 2 MiB block of the lower half, the rest of it freed and zeroed; the upper half
 * freed dirty: 4088 frames are zeroed, none in a block of 2 MiB, and a zeroed 2 MiB
 * allocation gets a dirty block (to memset) whatever zeroed_frames says. */
TEST_F(PrezeroOneNode, ZeroedHugeFramesCountsOnlyBlocksOf2MiBOrMore)
{
	ASSERT_EQ(8192u, ZeroAll(core, 0));
	EXPECT_EQ(8192u, Stats(0).zeroed_huge_frames);
	std::vector<nb_u64> got, pins, upper;
	nb_u64 pfn;
	while (nbc_alloc(core, 0, &bind_, NBC_AF_NOCACHE, NB_CTX_SLEEP, &pfn, nullptr) == 0)
		got.push_back(pfn);
	ASSERT_EQ(8192u, got.size());
	EXPECT_EQ(0u, Stats(0).zeroed_frames);
	nb_u64 base = *std::min_element(got.begin(), got.end());
	for (nb_u64 p : got) {
		if (p - base >= 4096)
			upper.push_back(p);
		else if ((p - base) % 512 == 0)
			pins.push_back(p);
		else
			ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
	}
	ASSERT_EQ(8u, pins.size());
	nbc_pcp_drain(core);
	EXPECT_EQ(4096u - 8, ZeroAll(core, 0));
	for (nb_u64 p : upper)
		ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
	nbc_pcp_drain(core);
	NodeStats s = Stats(0);
	EXPECT_EQ(8192u - 8, s.free_frames);
	EXPECT_EQ(4096u - 8, s.zeroed_frames);
	EXPECT_EQ(0u, s.zeroed_huge_frames);
	ASSERT_EQ(0, nbc_check(core));
	int z = -1;
	ASSERT_EQ(0, nbc_alloc_zeroed(core, 9, &bind_, 0, NB_CTX_SLEEP, &pfn, nullptr, &z));
	EXPECT_EQ(0, z) << "no zeroed 2 MiB block exists";
	EXPECT_GE(pfn, base + 4096);
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 9));
	for (nb_u64 p : pins)
		ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
	nbc_pcp_drain(core);
	ZeroAll(core, 0);
	s = Stats(0);
	EXPECT_EQ(8192u, s.zeroed_frames);
	EXPECT_EQ(8192u, s.zeroed_huge_frames);
	ASSERT_EQ(0, nbc_check(core));
	ExpectPristine();
}

TEST_F(PrezeroOneNode, TrimmedTailOfAZeroedRangeStaysZeroed)
{
	ASSERT_EQ(8192u, ZeroAll(core, 0));
	nb_u64 p;
	int z = -1;
	ASSERT_EQ(0, nbc_alloc_contig_zeroed(core, 3000, &bind_, 0, NB_CTX_SLEEP, &p, nullptr, &z));
	EXPECT_EQ(1, z);
	EXPECT_TRUE(ReadsZero(p, 3000));
	NodeStats s = Stats(0);
	EXPECT_EQ(8192u - 3000, s.free_frames);
	EXPECT_EQ(s.free_frames, s.zeroed_frames);
	ASSERT_EQ(0, nbc_free_range(core, p, 3000));
	EXPECT_EQ(8192u - 3000, Stats(0).zeroed_frames);
	ZeroAll(core, 0);
	ExpectPristine();
}

/* The zeroer holds the node's only large block while the whole node is asked for: a SLEEP
 * allocation waits for it and succeeds, an ATOMIC one cannot wait and fails. */
TEST_F(PrezeroOneNode, AllocationWaitsForTheZeroerInsteadOfFailing)
{
	std::atomic<bool> holding{false}, release{false}, waited{false};
	std::thread::id zeroer_id;
	std::mutex mu;
	sim::SetReschedHook([&] {
		std::thread::id me = std::this_thread::get_id();
		bool is_zeroer;
		{
			std::lock_guard<std::mutex> g(mu);
			is_zeroer = me == zeroer_id;
		}
		if (is_zeroer) {
			holding = true;
			while (!release.load())
				std::this_thread::yield();
		} else if (holding.load()) {
			waited = true;
			release = true;
		}
	});
	/* A dirty 2 MiB block in a node that is otherwise free: the zeroer takes it. */
	nb_u64 a, all;
	ASSERT_EQ(0, nbc_alloc(core, 9, &bind_, NBC_AF_NOCACHE, NB_CTX_SLEEP, &a, nullptr));
	ASSERT_EQ(0, nbc_buddy_free(core, a, 9));
	std::thread zeroer([&] {
		{
			std::lock_guard<std::mutex> g(mu);
			zeroer_id = std::this_thread::get_id();
		}
		EXPECT_EQ(512, nbc_core_prezero(core, 0, 512, NB_CTX_SLEEP));
	});
	while (!holding.load())
		std::this_thread::yield();
	EXPECT_EQ(1u, Stats(0).prezero_in_flight);
	EXPECT_EQ(-NB_ENOMEM,
		  nbc_alloc_contig(core, 8192, &bind_, 0, NB_CTX_ATOMIC, &all, nullptr));
	EXPECT_EQ(0, nbc_alloc_contig(core, 8192, &bind_, 0, NB_CTX_SLEEP, &all, nullptr));
	zeroer.join();
	sim::SetReschedHook(nullptr);
	EXPECT_TRUE(waited.load());
	EXPECT_EQ(0u, Stats(0).prezero_in_flight);
	ASSERT_EQ(0, nbc_free_range(core, all, 8192));
	ExpectPristine();
}

/* Through a space, as the module uses it: ALLOC and a RESERVE's first touch take zeroed blocks
 * (the node's zeroed count drops by what they took, so their memset was skipped) and read
 * zero; memory a block held comes back dirty; NOZERO (a copy target) leaves zeroed blocks to
 * others. */
class PrezeroSpaceTest : public SpaceTest {
protected:
	bool AllZero(nb_u64 off, nb_u64 bytes)
	{
		for (nb_u64 i = 0; i < bytes / k4K; i++)
			if (!ReadsZero(Fault(off + i * k4K, 0, 0).pfn, 1))
				return false;
		return true;
	}
	void TearDown() override
	{
		if (sp != nullptr)
			nbc_space_destroy(sp, NB_CTX_SLEEP);
		sp = nullptr;
		nbc_pcp_drain(core);
		for (unsigned n = 0; n < Nodes(); n++) /* zeroed everywhere: merged again */
			ZeroAll(core, static_cast<int>(n));
		SpaceTest::TearDown();
	}
};

TEST_F(PrezeroSpaceTest, AllocAndFirstTouchTakeZeroedBlocks)
{
	nb_u64 free0 = ZeroAll(core, 0); /* the lists'; the per-CPU caches' stay dirty */
	ASSERT_EQ(free0, Stats(0).free_frames);
	nb_u64 off = Alloc(k2M, 0, NBC_SPACE_HUGE_2M);
	EXPECT_EQ(free0 - 512, Stats(0).zeroed_frames);
	EXPECT_TRUE(AllZero(off, k2M));
	Write(off, k2M, 5);
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	nbc_pcp_drain(core);
	EXPECT_EQ(free0 - 512, Stats(0).zeroed_frames) << "what a block held is dirty";

	nbc_policy bind = Bind(0);
	nb_u64 r;
	ASSERT_EQ(0, nbc_space_reserve(sp, k2M, &bind, NBC_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &r));
	nbc_space_fault_result f = Fault(r, 0, 9);
	EXPECT_EQ(9u, f.order);
	EXPECT_EQ(free0 - 1024, Stats(0).zeroed_frames);
	EXPECT_TRUE(ReadsZero(f.pfn, 512));

	/* NOZERO takes the dirty block the ALLOC above gave back, not a zeroed one (a few
	 * frames may go to the space's own tables). */
	nb_u64 z = Stats(0).zeroed_frames;
	nb_u64 nz = Alloc(k2M, 0, NBC_SPACE_HUGE_2M | NBC_SPACE_NOZERO);
	EXPECT_LT(z - Stats(0).zeroed_frames, 512u);
	ASSERT_EQ(0, nbc_space_free(sp, nz, NB_CTX_SLEEP, nullptr, nullptr));
	ASSERT_EQ(0, nbc_space_free(sp, r, NB_CTX_SLEEP, nullptr, nullptr));
	/* Every 2 MiB block held, one written and given back: the next ALLOC gets that dirty
	 * block and must zero it itself. */
	nbc_policy p = Bind(0);
	std::vector<nb_u64> held;
	for (nb_u64 o; nbc_space_alloc(sp, k2M, &p, NBC_SPACE_HUGE_2M | NBC_SPACE_NOZERO,
				       NB_CTX_SLEEP, &o) == 0;)
		held.push_back(o);
	ASSERT_FALSE(held.empty());
	Write(held.back(), k2M, 9);
	ASSERT_EQ(0, nbc_space_free(sp, held.back(), NB_CTX_SLEEP, nullptr, nullptr));
	held.pop_back();
	off = Alloc(k2M, 0, NBC_SPACE_HUGE_2M);
	EXPECT_TRUE(AllZero(off, k2M)) << "a dirty block must be zeroed by the ALLOC itself";
	for (nb_u64 h : held)
		ASSERT_EQ(0, nbc_space_free(sp, h, NB_CTX_SLEEP, nullptr, nullptr));
}

/* Threads allocate (wanting zeroes), check, scribble and free while a zeroer thread runs and
 * a reader walks the lists: every block reported zeroed must read zero at allocation. */
template <typename Config> class PrezeroStress : public ConfigTest<Config> {};
using StressConfigs = ::testing::Types<TwoNodes, FourNodesHoles>;
TYPED_TEST_SUITE(PrezeroStress, StressConfigs);

TYPED_TEST(PrezeroStress, ZeroedBlocksReadZeroUnderLoad)
{
	constexpr int kThreads = 3;
	constexpr int kOps = 1500;
	std::atomic<int> errors{0}, zeroed_seen{0};
	unsigned nodes = this->Nodes();
	Together t;
	t.Side([&](const std::atomic<bool> &done) {
		for (unsigned n = 0; !done.load(); n = (n + 1) % nodes)
			if (nbc_core_prezero(this->core, static_cast<int>(n), 512, NB_CTX_SLEEP) < 0)
				errors++;
	});
	t.Side([&](const std::atomic<bool> &done) {
		while (!done.load())
			if (nbc_check(this->core) != 0) {
				ADD_FAILURE() << "check: " << sim::LastLog();
				errors++;
			}
	});
	t.Run(kThreads, [&](int id) {
		std::mt19937 rng(static_cast<unsigned>(id) * 104729u);
		std::vector<Held> mine;
		nb_u64 seq = 0;
		const unsigned orders[] = {0, 0, 1, 3, 5, 9};
		for (int i = 0; i < kOps; i++) {
			if (rng() % 2 == 0 || mine.empty()) {
				unsigned k = orders[rng() % 6];
				nbc_policy pol = CoreTest::Bind(static_cast<int>(rng() % nodes));
				nb_u64 pfn;
				int z = -1;
				if (nbc_alloc_zeroed(this->core, k, &pol, rng() % 4 == 0 ? NBC_AF_NOCACHE : 0,
						     NB_CTX_SLEEP, &pfn, nullptr, &z) != 0)
					continue;
				if (z == 1) {
					zeroed_seen++;
					if (!ReadsZero(pfn, 1ull << k)) {
						ADD_FAILURE() << "zeroed block reads dirty: " << pfn << " order " << k;
						errors++;
					}
				}
				Held h{pfn, k, (nb_u64(id + 1) << 48) | ++seq};
				Tag(h);
				mine.push_back(h);
			} else {
				size_t at = rng() % mine.size();
				Held b = mine[at];
				mine[at] = mine.back();
				mine.pop_back();
				if (!Tagged(b)) {
					ADD_FAILURE() << "block handed out twice: " << b.pfn;
					errors++;
				}
				if (nbc_buddy_free(this->core, b.pfn, b.order) != 0) {
					ADD_FAILURE() << "free refused: " << b.pfn;
					errors++;
				}
			}
		}
		for (auto &b : mine)
			if (nbc_buddy_free(this->core, b.pfn, b.order) != 0)
				errors++;
	});
	EXPECT_EQ(0, errors.load());
	EXPECT_GT(zeroed_seen.load(), 0) << "the zeroer never served anyone: the test tested nothing";
	nbc_pcp_drain(this->core);
	for (unsigned n = 0; n < nodes; n++) {
		ZeroAll(this->core, static_cast<int>(n));
		NodeStats s = this->Stats(static_cast<int>(n));
		EXPECT_EQ(s.free_frames, s.zeroed_frames);
	}
	this->ExpectPristine();
}

} /* namespace */
} /* namespace nbtest */
