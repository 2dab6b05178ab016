// SPDX-License-Identifier: GPL-2.0
/*
 * kheap_test.cpp - kheap.cpp: every size zeroed and disjoint, node placement, slabs handed
 * back, large sizes, wrong kfree calls logged and ignored, teardown with nothing leaked.
 */
#include <algorithm>
#include <random>

#include "test_util.h"

namespace nbtest {
namespace {

class KHeapTest : public CoreTest {
protected:
	/* Node whose backing holds p, from the sim's mapping. */
	int NodeOf(const void *p) {
		for (const nb_region &r : sim::Current().regions) {
			auto *b = static_cast<const char *>(sim::FrameAddr(r.start_pfn));
			auto *c = static_cast<const char *>(p);
			if (c >= b && c < b + r.nr_frames * NB_FRAME_SIZE)
				return r.node;
		}
		return -1;
	}
};

TEST_F(KHeapTest, EverySizeZeroedAndDisjoint)
{
	Start(TwoNodes::Make());
	std::vector<std::pair<unsigned char *, size_t>> got;
	for (size_t size : {1, 8, 16, 17, 48, 64, 100, 250, 256, 336, 500, 672, 1000, 1024, 1344,
			    2000, 2016, 2017, 2048, 4000, 4096, 10000, 100000}) {
		for (int i = 0; i < 5; i++) {
			auto *p = static_cast<unsigned char *>(nb_kalloc(core, size, -1, NB_CTX_SLEEP));
			ASSERT_NE(nullptr, p) << size;
			EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(p) % 16);
			for (size_t b = 0; b < size; b++)
				ASSERT_EQ(0, p[b]) << size;
			memset(p, 0xee, size);
			got.push_back({p, size});
		}
	}
	std::sort(got.begin(), got.end());
	for (size_t i = 1; i < got.size(); i++)
		EXPECT_LE(got[i - 1].first + got[i - 1].second, got[i].first);
	for (auto &g : got)
		nb_kfree(core, g.first);
	/* Reused memory comes back zeroed too. */
	auto *p = static_cast<unsigned char *>(nb_kalloc(core, 64, -1, NB_CTX_SLEEP));
	for (int b = 0; b < 64; b++)
		ASSERT_EQ(0, p[b]);
	nb_kfree(core, p);
	EXPECT_EQ(nullptr, nb_kalloc(core, 0, -1, NB_CTX_SLEEP));
	EXPECT_EQ(nullptr, nb_kalloc(core, 1ull << 40, -1, NB_CTX_SLEEP));
	nb_kfree(core, nullptr);
}

TEST_F(KHeapTest, NodeAwarePlacement)
{
	Start(TwoNodes::Make());
	for (int node : {0, 1}) {
		void *s = nb_kalloc(core, 96, node, NB_CTX_SLEEP);
		void *l = nb_kalloc(core, 64 << 10, node, NB_CTX_SLEEP);
		EXPECT_EQ(node, NodeOf(s));
		EXPECT_EQ(node, NodeOf(l));
		nb_kfree(core, s);
		nb_kfree(core, l);
	}
	sim::SetCpu(3); /* node 1: -1 means local */
	void *p = nb_kalloc(core, 200, -1, NB_CTX_ATOMIC);
	EXPECT_EQ(1, NodeOf(p));
	nb_kfree(core, p);
	p = nb_kalloc(core, 200, 7, NB_CTX_ATOMIC); /* no such node: local */
	EXPECT_EQ(1, NodeOf(p));
	nb_kfree(core, p);
}

TEST_F(KHeapTest, ManyObjectsThenAllFramesReturn)
{
	Start(OneNode::Make());
	std::mt19937 rng(1);
	std::vector<void *> got;
	for (int i = 0; i < 20000; i++) {
		size_t size = 1 + rng() % 700;
		void *p = nb_kalloc(core, size, 0, NB_CTX_SLEEP);
		ASSERT_NE(nullptr, p);
		got.push_back(p);
	}
	EXPECT_LT(Stats(0).free_frames + Stats(0).pcp_frames, initial_[0].free_frames);
	std::shuffle(got.begin(), got.end(), rng);
	for (void *p : got)
		nb_kfree(core, p);
	/* At most one cached empty slab per class stays out. */
	nb_pcp_drain(core);
	EXPECT_GE(Stats(0).free_frames + 15, initial_[0].free_frames);
	EXPECT_EQ(0, nb_check(core));
}

TEST_F(KHeapTest, OomReturnsNull)
{
	sim::Topology t;
	t.regions = {Region(kHigh, 4, 0)};
	Start(t);
	std::vector<void *> got;
	void *p;
	while ((p = nb_kalloc(core, 2016, 0, NB_CTX_ATOMIC)) != nullptr)
		got.push_back(p);
	EXPECT_EQ(8u, got.size()); /* 4 pages x 2 objects */
	EXPECT_EQ(nullptr, nb_kalloc(core, 5000, 0, NB_CTX_ATOMIC));
	for (void *q : got)
		nb_kfree(core, q);
}

TEST_F(KHeapTest, WrongKfreeIsLoggedAndIgnored)
{
	Start(OneNode::Make());
	auto *p = static_cast<char *>(nb_kalloc(core, 64, 0, NB_CTX_SLEEP));
	auto *l = static_cast<char *>(nb_kalloc(core, 9000, 0, NB_CTX_SLEEP));
	unsigned long errs = sim::ErrorLogs();
	nb_kfree(core, p + 8);  /* inside an object */
	nb_kfree(core, l + 64); /* inside a large block */
	EXPECT_EQ(errs + 2, sim::ErrorLogs());
	nb_kfree(core, l);
	nb_kfree(core, l);      /* large double free */
	EXPECT_EQ(errs + 3, sim::ErrorLogs());
	nb_kfree(core, p);
	EXPECT_EQ(0, nb_check(core));
}

} /* namespace */
} /* namespace nbtest */
