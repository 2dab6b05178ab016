// SPDX-License-Identifier: GPL-2.0
/*
 * buddy_test.cpp - the buddy allocator (segment.cpp, node.cpp, alloc.cpp): init accounting,
 * every order, splitting and full coalescing, wrong frees, contiguous ranges, OOM on tiny
 * regions, bootinfo validation, the debug dump.
 */
#include <algorithm>
#include <random>
#include <string>

#include "../../mm_core/legacy_page.h"
#include "test_util.h"

namespace nbtest {
namespace {

template <typename C> using BuddyTest = ConfigTest<C>;
TYPED_TEST_SUITE(BuddyTest, AllConfigs);

TYPED_TEST(BuddyTest, InitAccountsEveryFrame)
{
	const sim::Topology &t = sim::Current();
	for (unsigned n = 0; n < t.nodes; n++) {
		nb_u64 frames = 0, low = 0;
		for (const nbc_region &r : t.regions) {
			if (r.node != static_cast<int>(n))
				continue;
			frames += r.nr_frames;
			for (nb_u64 p = r.start_pfn; p < r.start_pfn + r.nr_frames; p++)
				low += p < NBC_LOW_LIMIT_PFN;
		}
		NodeStats s = this->Stats(static_cast<int>(n));
		EXPECT_EQ(frames, s.total_frames);
		EXPECT_EQ(frames, s.free_frames);
		EXPECT_EQ(low, s.low_total_frames);
		EXPECT_EQ(low, s.low_free_frames);
		nb_u64 sum = 0;
		for (unsigned k = 0; k <= NBC_ORDER_LIMIT; k++)
			sum += s.free_blocks[k] << k;
		EXPECT_EQ(frames, sum);
		EXPECT_EQ(static_cast<nb_u32>(NBC_DEFAULT_MAX_ORDER), s.max_order);
	}
	EXPECT_EQ(0, nbc_check(this->core));
}

TYPED_TEST(BuddyTest, EveryOrderIsAlignedInsideItsNode)
{
	for (unsigned n = 0; n < this->Nodes(); n++) {
		nbc_policy bind = CoreTest::Bind(static_cast<int>(n));
		for (unsigned k = 0; k <= 10; k++) {
			nb_u64 pfn;
			int node = -1;
			int rc = nbc_alloc(this->core, k, &bind, 0, NB_CTX_ATOMIC, &pfn, &node);
			if (this->Stats(static_cast<int>(n)).largest_free_order < static_cast<int>(k) &&
			    rc != 0)
				continue;
			ASSERT_EQ(0, rc) << "node " << n << " order " << k;
			EXPECT_EQ(static_cast<int>(n), node);
			EXPECT_EQ(0u, pfn & ((1ull << k) - 1));
			EXPECT_EQ(static_cast<int>(n), RegionNode(pfn, 1ull << k));
			EXPECT_EQ(static_cast<int>(n), nbc_pfn_node(this->core, pfn));
			EXPECT_EQ(0, nbc_buddy_free(this->core, pfn, k));
		}
	}
	this->ExpectPristine();
}

TYPED_TEST(BuddyTest, ExhaustThenFreeAllCoalescesFully)
{
	std::mt19937_64 rng(42);
	for (unsigned n = 0; n < this->Nodes(); n++) {
		nbc_policy bind = CoreTest::Bind(static_cast<int>(n));
		std::vector<nb_u64> got;
		nb_u64 pfn;
		while (nbc_alloc(this->core, 0, &bind, NBC_AF_NOCACHE, NB_CTX_ATOMIC, &pfn, nullptr) == 0)
			got.push_back(pfn);
		NodeStats s = this->Stats(static_cast<int>(n));
		EXPECT_EQ(s.total_frames, got.size());
		EXPECT_EQ(0u, s.free_frames);
		EXPECT_EQ(-1, s.largest_free_order);
		EXPECT_GT(s.alloc_fail, 0u);
		std::sort(got.begin(), got.end());
		EXPECT_TRUE(std::adjacent_find(got.begin(), got.end()) == got.end());
		std::shuffle(got.begin(), got.end(), rng);
		for (nb_u64 p : got)
			ASSERT_EQ(0, nbc_buddy_free(this->core, p, 0));
	}
	this->ExpectPristine();
}

TYPED_TEST(BuddyTest, WrongFreesChangeNothing)
{
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_alloc(this->core, 3, nullptr, NBC_AF_NOCACHE, NB_CTX_ATOMIC, &pfn, nullptr));
	NodeStats before = this->Stats(nbc_pfn_node(this->core, pfn));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn, 2));      /* wrong order */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn, 4));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn + 1, 0));  /* a tail frame */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn + 4, 2));  /* inside, aligned */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, 7, 0));        /* not in the pool */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn, NBC_ORDER_LIMIT + 1));
	EXPECT_EQ(-NB_EINVAL, nbc_free_range(this->core, pfn, 9));
	EXPECT_EQ(-NB_EINVAL, nbc_free_range(this->core, pfn, 0));
	NodeStats after = this->Stats(nbc_pfn_node(this->core, pfn));
	EXPECT_EQ(before.free_frames, after.free_frames);
	EXPECT_EQ(0, nbc_check(this->core));
	EXPECT_EQ(0, nbc_buddy_free(this->core, pfn, 3));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn, 3));      /* double free */
	/* A free block's head is not an allocation either, whatever order is claimed. */
	for (unsigned k = 0; k <= 4; k++)
		EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn, k));
	/* Double free through the per-CPU cache path. */
	ASSERT_EQ(0, nbc_alloc(this->core, 0, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	EXPECT_EQ(0, nbc_buddy_free(this->core, pfn, 0));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn, 0));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(this->core, pfn, 1));
	EXPECT_EQ(0, nbc_check(this->core));
	this->ExpectPristine();
}

TYPED_TEST(BuddyTest, ContigAnyCountGivesTheTailBack)
{
	for (nb_u64 nr = 1; nr <= 300; nr += (nr < 20 ? 1 : 37)) {
		nb_u64 pfn;
		int node;
		ASSERT_EQ(0, nbc_alloc_contig(this->core, nr, nullptr, 0, NB_CTX_SLEEP, &pfn, &node));
		EXPECT_EQ(node, RegionNode(pfn, nr));
		NodeStats s = this->Stats(node);
		EXPECT_EQ(this->initial_[node].free_frames - nr, s.free_frames) << nr;
		EXPECT_EQ(0, nbc_check(this->core));
		if (nr > 1) {
			EXPECT_EQ(-NB_EINVAL, nbc_free_range(this->core, pfn + 1, nr - 1));
		}
		EXPECT_EQ(-NB_EINVAL, nbc_free_range(this->core, pfn, nr + 1));
		ASSERT_EQ(0, nbc_free_range(this->core, pfn, nr));
		EXPECT_EQ(-NB_EINVAL, nbc_free_range(this->core, pfn, nr));
	}
	nb_u64 pfn;
	EXPECT_EQ(-NB_EINVAL, nbc_alloc_contig(this->core, 0, nullptr, 0, NB_CTX_SLEEP, &pfn, nullptr));
	EXPECT_EQ(-NB_EINVAL, nbc_alloc_contig(this->core, (1ull << NBC_DEFAULT_MAX_ORDER) + 1, nullptr,
					       0, NB_CTX_SLEEP, &pfn, nullptr));
	this->ExpectPristine();
}

TYPED_TEST(BuddyTest, DebugPrintDumpsEveryNode)
{
	std::vector<std::string> lines;
	nbc_buddy_debug_print(
		this->core,
		[](void *arg, const char *line) {
			static_cast<std::vector<std::string> *>(arg)->push_back(line);
		},
		&lines);
	ASSERT_EQ(2 * this->Nodes(), lines.size());
	EXPECT_EQ(0u, lines[0].rfind("Node 0, free", 0));
	EXPECT_NE(std::string::npos, lines[1].find("largest"));
	nbc_buddy_debug_print(this->core, nullptr, nullptr); /* through nb_env_log */
}

TEST(BuddyTiny, OomOnThreeFrames)
{
	class T : public CoreTest {
	public:
		void TestBody() override {}
		void Run() {
			sim::Topology t;
			t.regions = {Region(kHigh + 1, 3, 0)}; /* frames 1, 2, 3: order 0 + order 1 */
			Start(t);
			nb_u64 a, b, c, d;
			EXPECT_EQ(-NB_ENOMEM, nbc_alloc(core, 2, nullptr, 0, NB_CTX_ATOMIC, &a, nullptr));
			ASSERT_EQ(0, nbc_alloc(core, 1, nullptr, 0, NB_CTX_ATOMIC, &a, nullptr));
			EXPECT_EQ(kHigh + 2, a);
			ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &b, nullptr));
			EXPECT_EQ(-NB_ENOMEM, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &c, nullptr));
			EXPECT_EQ(0, nbc_buddy_free(core, a, 1));
			/* The order-1 block parks in the per-CPU cache; an order-0 request on another
			 * CPU must drain it rather than fail. */
			sim::SetCpu(0);
			ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &c, nullptr));
			ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &d, nullptr));
			EXPECT_EQ(-NB_ENOMEM, nbc_alloc(core, 0, nullptr, NBC_AF_NOCACHE, NB_CTX_ATOMIC, &a, nullptr));
			for (nb_u64 p : {b, c, d})
				EXPECT_EQ(0, nbc_buddy_free(core, p, 0));
			ExpectPristine();
			TearDown();
			core = nullptr;
		}
	} t;
	t.Run();
}

class BuddyConfig : public CoreTest {};

TEST_F(BuddyConfig, LowMemoryOnlyForLow4GAndLast)
{
	Start(LowHigh::Make());
	nbc_policy bind0 = Bind(0);
	NodeStats s = Stats(0);
	nb_u64 high = s.total_frames - s.low_total_frames;
	/* Ordinary requests take high frames first... */
	std::vector<nb_u64> got;
	nb_u64 pfn;
	for (nb_u64 i = 0; i < high; i++) {
		ASSERT_EQ(0, nbc_alloc(core, 0, &bind0, NBC_AF_NOCACHE, NB_CTX_ATOMIC, &pfn, nullptr));
		EXPECT_GE(pfn, NBC_LOW_LIMIT_PFN);
		got.push_back(pfn);
	}
	/* ...and LOW4G ones only low frames, until they run out. */
	nb_u64 low = 0;
	while (nbc_alloc(core, 0, &bind0, NBC_AF_LOW4G, NB_CTX_ATOMIC, &pfn, nullptr) == 0) {
		EXPECT_LT(pfn, NBC_LOW_LIMIT_PFN);
		got.push_back(pfn);
		low++;
	}
	EXPECT_EQ(s.low_total_frames, low);
	EXPECT_EQ(0u, Stats(0).free_frames);
	for (nb_u64 p : got)
		ASSERT_EQ(0, nbc_buddy_free(core, p, 0));
	/* A LOW4G request never gets a block from the straddling region's high half. */
	ASSERT_EQ(0, nbc_alloc(core, 9, &bind0, NBC_AF_LOW4G, NB_CTX_ATOMIC, &pfn, nullptr));
	EXPECT_LT(pfn + 512, NBC_LOW_LIMIT_PFN + 1);
	EXPECT_EQ(0, nbc_buddy_free(core, pfn, 9));
	ExpectPristine();
}

TEST_F(BuddyConfig, MaxOrderIsConfigurable)
{
	sim::Topology t;
	t.regions = {Region(0, 1ull << 21, 0)}; /* 8 GiB from pfn 0, cut at 4 GiB */
	t.back_frames = false;
	Start(t, NBC_ORDER_LIMIT);
	NodeStats s = Stats(0);
	EXPECT_EQ(2u, s.free_blocks[NBC_ORDER_LIMIT]);
	EXPECT_EQ(static_cast<nb_u32>(NBC_ORDER_LIMIT), s.max_order);
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_alloc(core, NBC_ORDER_LIMIT, nullptr, NBC_AF_LOW4G, NB_CTX_ATOMIC, &pfn,
			       nullptr));
	EXPECT_EQ(0u, pfn);
	EXPECT_EQ(0, nbc_buddy_free(core, pfn, NBC_ORDER_LIMIT));
	EXPECT_EQ(-NB_EINVAL,
		  nbc_alloc(core, NBC_ORDER_LIMIT + 1, nullptr, 0, NB_CTX_ATOMIC, &pfn, nullptr));
}

TEST_F(BuddyConfig, BootinfoValidation)
{
	sim::Topology t;
	t.nodes = 2;
	sim::Setup(t);
	nbc_core *c = nullptr;
	auto create = [&](std::vector<nbc_region> r, unsigned max_order = 0) {
		nbc_bootinfo bi{};
		bi.regions = r.data();
		bi.nr_regions = static_cast<nb_u32>(r.size());
		bi.max_order = max_order;
		int rc = nbc_core_create(&bi, &c);
		if (rc == 0) {
			EXPECT_EQ(0, nbc_core_destroy(c));
		}
		return rc;
	};
	EXPECT_EQ(-NB_EINVAL, create({}));
	EXPECT_EQ(-NB_EINVAL, create({Region(0, 0, 0)}));
	EXPECT_EQ(-NB_EINVAL, create({Region(0, 16, 2)}));
	EXPECT_EQ(-NB_EINVAL, create({Region(0, 16, -1)}));
	EXPECT_EQ(-NB_EINVAL, create({Region(0, 16, 0), Region(15, 16, 1)}));
	EXPECT_EQ(-NB_EINVAL, create({Region(0, 16, 0)}, NBC_ORDER_LIMIT + 1));
	EXPECT_EQ(-NB_EINVAL, create({Region((1ull << 52) - 1, 2, 0)}));
	EXPECT_EQ(0, create({Region(0, 16, 0), Region(16, 16, 1)}));
	EXPECT_EQ(-NB_EINVAL, nbc_core_create(nullptr, &c));
	EXPECT_EQ(0u, sim::MetaBytes());
	sim::Teardown();
}

TEST_F(BuddyConfig, DestroyRefusesWhileBlocksAreOut)
{
	Start(OneNode::Make());
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_alloc(core, 5, nullptr, 0, NB_CTX_SLEEP, &pfn, nullptr));
	EXPECT_EQ(-NB_EBUSY, nbc_core_destroy(core));
	EXPECT_EQ(0, nbc_check(core));
	EXPECT_EQ(0, nbc_buddy_free(core, pfn, 5));
}

TEST_F(BuddyConfig, LegacyWrappers)
{
	Start(TwoNodes::Make());
	sim::SetCpu(2); /* node 1 */
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_legacy_alloc_page(core, NB_CTX_SLEEP, &pfn));
	EXPECT_EQ(1, nbc_pfn_node(core, pfn));
	EXPECT_EQ(0, nbc_legacy_free_page(core, pfn));
	EXPECT_EQ(-NB_EINVAL, nbc_legacy_free_page(core, pfn));
	void *p = nbc_legacy_alloc_page_addr(core, NB_CTX_SLEEP);
	ASSERT_NE(nullptr, p);
	memset(p, 0xab, NBC_FRAME_SIZE);
	nbc_pcp_drain(core);
	EXPECT_EQ(Stats(1).total_frames - 1, Stats(1).free_frames);
	/* Give it back: find its pfn through the topology. */
	for (const nbc_region &r : sim::Current().regions)
		for (nb_u64 q = r.start_pfn; q < r.start_pfn + r.nr_frames; q++)
			if (sim::FrameAddr(q) == p) {
				EXPECT_EQ(0, nbc_legacy_free_page(core, q));
			}
	ExpectPristine();
}

/* The design scales: a 1 TiB node (frames never backed) initializes, allocates, and its
 * metadata stays within 0.2% of the pool. */
TEST_F(BuddyConfig, OneTebibyteNodeMetadataUnderBudget)
{
	sim::Topology t;
	t.nodes = 2;
	t.cpus_per_node = 2;
	t.back_frames = false;
	t.regions = {Region(1ull << 28, 1ull << 28, 0), Region(3ull << 28, 1ull << 18, 1)};
	Start(t);
	NodeStats s = Stats(0);
	EXPECT_EQ(1ull << 28, s.total_frames);
	EXPECT_EQ(1024u, s.free_blocks[NBC_DEFAULT_MAX_ORDER]);
	double pool = static_cast<double>((1ull << 28) + (1ull << 18)) * NBC_FRAME_SIZE;
	double ratio = static_cast<double>(sim::MetaBytes()) / pool;
	RecordProperty("meta_ratio_percent", std::to_string(ratio * 100));
	EXPECT_LE(ratio, 0.002) << sim::MetaBytes() << " metadata bytes";
	nbc_policy bind = Bind(0);
	nb_u64 a, b;
	ASSERT_EQ(0, nbc_alloc(core, 18, &bind, 0, NB_CTX_SLEEP, &a, nullptr));
	ASSERT_EQ(0, nbc_alloc(core, 0, &bind, 0, NB_CTX_SLEEP, &b, nullptr));
	EXPECT_EQ(0, nbc_buddy_free(core, a, 18));
	EXPECT_EQ(0, nbc_buddy_free(core, b, 0));
	nbc_pcp_drain(core);
	EXPECT_EQ(1024u, Stats(0).free_blocks[NBC_DEFAULT_MAX_ORDER]);
	skip_full_check_ = true; /* 2^28 descriptor reads: seconds under sanitizers */
}

} /* namespace */
} /* namespace nbtest */
