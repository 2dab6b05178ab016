// SPDX-License-Identifier: GPL-2.0
/*
 * resize_test.cpp - resize.cpp: regions added to and removed from a live core, their errors,
 * and a barrier-started stress that grows and shrinks a node while threads allocate, free and
 * migrate on it (run under TSan: scripts/test-hosted.sh).
 */
#include <atomic>
#include <random>
#include <thread>

#include "../../mm_core/nbc_space.h"
#include "test_util.h"

namespace nbtest {
namespace {

/* Node 0: a pool region at create and two spare regions the sim backs but the core does not
 * have yet; node 1: a pool; node 2: no pool at all (its spare region cannot be added). */
constexpr nb_u64 kPool0 = 2 * kHigh, kSpareA = 2 * kHigh + 4096, kSpareB = 2 * kHigh + 16384;
constexpr nb_u64 kPool1 = 6 * kHigh, kSpare2 = 10 * kHigh;

class ResizeTest : public ::testing::Test {
protected:
	nbc_core *core = nullptr;
	void SetUp() override
	{
		sim::Topology t;
		t.nodes = 3;
		t.cpus_per_node = 2;
		t.regions = {Region(kPool0, 2048, 0), Region(kSpareA, 1024, 0),
			     Region(kSpareB, 2048 + 512, 0), Region(kPool1, 1024, 1),
			     Region(kSpare2, 1024, 2)};
		sim::Setup(t);
		meta_before_ = sim::MetaBytes();
		nbc_region pools[] = {t.regions[0], t.regions[3]};
		nbc_bootinfo bi{};
		bi.regions = pools;
		bi.nr_regions = 2;
		ASSERT_EQ(0, nbc_core_create(&bi, &core));
	}
	void TearDown() override
	{
		if (core != nullptr) {
			EXPECT_EQ(0, nbc_check(core));
			EXPECT_EQ(0, nbc_core_destroy(core));
			EXPECT_EQ(meta_before_, sim::MetaBytes());
		}
		sim::SetCpu(0);
		sim::Teardown();
	}
	NodeStats Stats(int n)
	{
		NodeStats s;
		EXPECT_EQ(0, nbc_node_stats(core, n, &s));
		return s;
	}
	static nbc_policy Bind(int node)
	{
		nbc_policy p{};
		p.mode = NBC_POLICY_BIND;
		p.nodemask = 1ull << node;
		return p;
	}
	int AllocOn(int node, unsigned order, nb_u64 *pfn)
	{
		nbc_policy p = Bind(node);
		return nbc_alloc(core, order, &p, NBC_AF_NOCACHE, NB_CTX_SLEEP, pfn, nullptr);
	}

private:
	size_t meta_before_ = 0;
};

TEST_F(ResizeTest, AddedRegionServesWhenTheOldOneIsFull)
{
	nb_u64 all, more;
	ASSERT_EQ(0, AllocOn(0, 11, &all)); /* the whole 2048-frame pool */
	EXPECT_EQ(-NB_ENOMEM, AllocOn(0, 0, &more));
	nbc_region r = Region(kSpareA, 1024, 0);
	ASSERT_EQ(0, nbc_core_add_region(core, &r));
	NodeStats s = Stats(0);
	EXPECT_EQ(2048u + 1024, s.total_frames);
	EXPECT_EQ(1024u, s.free_frames);
	EXPECT_EQ(1u, s.free_blocks[10]);
	ASSERT_EQ(0, AllocOn(0, 10, &more));
	EXPECT_EQ(kSpareA, more);
	EXPECT_EQ(0, nbc_pfn_node(core, kSpareA + 1023));
	EXPECT_EQ(0, nbc_buddy_free(core, more, 10));
	EXPECT_EQ(0, nbc_buddy_free(core, all, 11));
	EXPECT_EQ(0, nbc_check(core));
	/* Node 1 did not change. */
	EXPECT_EQ(1024u, Stats(1).total_frames);
}

TEST_F(ResizeTest, AddRefusesOverlapUnknownNodeAndNonsense)
{
	nbc_region overlap = Region(kPool0 + 2000, 100, 0);
	EXPECT_EQ(-NB_EEXIST, nbc_core_add_region(core, &overlap));
	nbc_region nopool = Region(kSpare2, 1024, 2);
	EXPECT_EQ(-NB_ENODEV, nbc_core_add_region(core, &nopool));
	nbc_region empty = Region(kSpareA, 0, 0);
	EXPECT_EQ(-NB_EINVAL, nbc_core_add_region(core, &empty));
	nbc_region badnode = Region(kSpareA, 16, 7);
	EXPECT_EQ(-NB_EINVAL, nbc_core_add_region(core, &badnode));
	nbc_region huge = Region((1ull << 52) - 1, 2, 0);
	EXPECT_EQ(-NB_EINVAL, nbc_core_add_region(core, &huge));
	EXPECT_EQ(-NB_EINVAL, nbc_core_add_region(core, nullptr));
	EXPECT_EQ(2048u, Stats(0).total_frames);
	/* The same region twice: the second overlaps the first. */
	nbc_region r = Region(kSpareA, 1024, 0);
	ASSERT_EQ(0, nbc_core_add_region(core, &r));
	EXPECT_EQ(-NB_EEXIST, nbc_core_add_region(core, &r));
}

TEST_F(ResizeTest, RemoveGivesBackOnlyWhollyFreeRegions)
{
	nbc_region a = Region(kSpareA, 1024, 0), b = Region(kSpareB, 2048 + 512, 0);
	ASSERT_EQ(0, nbc_core_add_region(core, &a));
	ASSERT_EQ(0, nbc_core_add_region(core, &b));
	EXPECT_EQ(2048u + 1024 + 2560, Stats(0).total_frames);
	/* One frame of b in use: b stays, exactly as it was. */
	nb_u64 held;
	ASSERT_EQ(0, AllocOn(0, 11, &held)); /* pool0 */
	nb_u64 inb;
	ASSERT_EQ(0, AllocOn(0, 11, &inb));
	ASSERT_EQ(0, nbc_pfn_node(core, inb));
	ASSERT_TRUE(inb >= kSpareB && inb < kSpareB + 2560) << std::hex << inb;
	NodeStats before = Stats(0);
	EXPECT_EQ(-NB_EBUSY, nbc_core_remove_region(core, kSpareB, 2560));
	NodeStats after = Stats(0);
	EXPECT_EQ(before.total_frames, after.total_frames);
	EXPECT_EQ(before.free_frames, after.free_frames);
	/* a is free: it goes. */
	ASSERT_EQ(0, nbc_core_remove_region(core, kSpareA, 1024));
	EXPECT_EQ(2048u + 2560, Stats(0).total_frames);
	EXPECT_EQ(-1, nbc_pfn_node(core, kSpareA));
	/* Not whole regions, or nothing the core has. */
	EXPECT_EQ(-NB_EINVAL, nbc_core_remove_region(core, kSpareB, 100));
	EXPECT_EQ(-NB_EINVAL, nbc_core_remove_region(core, kSpareA, 1024));
	EXPECT_EQ(-NB_EINVAL, nbc_core_remove_region(core, kSpareB - 1, 2561));
	EXPECT_EQ(-NB_EINVAL, nbc_core_remove_region(core, kSpareB, 0));
	/* A free into a removed region is refused like any bad free. */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(core, kSpareA, 10));
	EXPECT_EQ(0, nbc_buddy_free(core, inb, 11));
	ASSERT_EQ(0, nbc_core_remove_region(core, kSpareB, 2560));
	EXPECT_EQ(2048u, Stats(0).total_frames);
	EXPECT_EQ(0, nbc_buddy_free(core, held, 11));
	/* The removed range can come back. */
	ASSERT_EQ(0, nbc_core_add_region(core, &a));
	EXPECT_EQ(2048u + 1024, Stats(0).total_frames);
	EXPECT_EQ(2048u + 1024, Stats(0).free_frames);
}

/* A space made before a resize sees the pool's size now: its room check (ENOMEM beyond the
 * pools before anything is allocated) and so a quota set from the new size both follow. */
TEST_F(ResizeTest, SpaceCreatedBeforeAResizeSeesTheNewPoolSize)
{
	constexpr nb_u64 kMiB = 1ull << 20;
	nbc_space *sp = nullptr;
	ASSERT_EQ(0, nbc_space_create(core, 0, NB_CTX_SLEEP, &sp));
	nbc_policy p = Bind(0);
	nb_u64 off;
	/* 10 MiB on an 8 MiB pool: refused before anything is taken. */
	EXPECT_EQ(-NB_ENOMEM, nbc_space_alloc(sp, 10 * kMiB, &p, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &off));
	nbc_region a = Region(kSpareA, 1024, 0);
	ASSERT_EQ(0, nbc_core_add_region(core, &a)); /* 12 MiB */
	ASSERT_EQ(0, nbc_space_alloc(sp, 10 * kMiB, &p, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &off));
	EXPECT_EQ(10 * kMiB, nbc_space_node_bytes(sp, 0));
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	/* A quota set from the new size (as the module does on every resize) applies. */
	ASSERT_EQ(0, nbc_space_set_quota(sp, 0, 9 * kMiB));
	EXPECT_EQ(-NB_EDQUOT, nbc_space_alloc(sp, 10 * kMiB, &p, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &off));
	ASSERT_EQ(0, nbc_space_set_quota(sp, 0, NBC_SPACE_NO_QUOTA));
	/* Shrunk back to 8 MiB: 10 MiB is refused up front again. */
	ASSERT_EQ(0, nbc_core_remove_region(core, kSpareA, 1024));
	EXPECT_EQ(-NB_ENOMEM, nbc_space_alloc(sp, 10 * kMiB, &p, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &off));
	nbc_space_destroy(sp, NB_CTX_SLEEP);
	EXPECT_EQ(2048u, Stats(0).free_frames);
}

TEST_F(ResizeTest, RemoveDrainsThePerCpuCaches)
{
	nbc_region a = Region(kSpareA, 1024, 0);
	nb_u64 pool;
	ASSERT_EQ(0, AllocOn(0, 11, &pool));
	ASSERT_EQ(0, nbc_core_add_region(core, &a));
	nbc_policy p = Bind(0);
	nb_u64 pfn;
	ASSERT_EQ(0, nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, nullptr)); /* refills a batch */
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 0));
	ASSERT_NE(0u, Stats(0).pcp_frames);
	EXPECT_EQ(0, nbc_core_remove_region(core, kSpareA, 1024));
	EXPECT_EQ(0u, Stats(0).pcp_frames);
	EXPECT_EQ(2048u, Stats(0).total_frames);
	EXPECT_EQ(0, nbc_buddy_free(core, pool, 11));
}

TEST_F(ResizeTest, RegionAcrossTheFourGiBLineIsTwoSegments)
{
	/* A region cut at the 4 GiB line is added as one, removed whole or segment by segment,
	 * never in smaller pieces. */
	nbc_core_destroy(core);
	core = nullptr;
	sim::Teardown();
	sim::Topology t;
	t.nodes = 1;
	t.regions = {Region(kHigh + 4096, 1024, 0), Region(kHigh - 512, 1024, 0)};
	sim::Setup(t);
	nbc_bootinfo bi{};
	bi.regions = t.regions.data();
	bi.nr_regions = 1;
	ASSERT_EQ(0, nbc_core_create(&bi, &core));
	ASSERT_EQ(0, nbc_core_add_region(core, &t.regions[1]));
	EXPECT_EQ(512u, Stats(0).low_total_frames);
	EXPECT_EQ(2048u, Stats(0).total_frames);
	EXPECT_EQ(-NB_EINVAL, nbc_core_remove_region(core, kHigh - 512, 256));
	EXPECT_EQ(-NB_EINVAL, nbc_core_remove_region(core, kHigh - 256, 512));
	ASSERT_EQ(0, nbc_core_remove_region(core, kHigh - 512, 512));
	EXPECT_EQ(0u, Stats(0).low_total_frames);
	EXPECT_EQ(1024u + 512, Stats(0).total_frames);
	ASSERT_EQ(0, nbc_core_remove_region(core, kHigh, 512));
	EXPECT_EQ(1024u, Stats(0).total_frames);
	ASSERT_EQ(0, nbc_core_add_region(core, &t.regions[1]));
	ASSERT_EQ(0, nbc_core_remove_region(core, kHigh - 512, 1024));
	EXPECT_EQ(1024u, Stats(0).total_frames);
}


bool InNodeZeroPool(nb_u64 pfn, unsigned order)
{
	nb_u64 end = pfn + (nb_u64(1) << order);
	return (pfn >= kPool0 && end <= kPool0 + 2048) || (pfn >= kSpareA && end <= kSpareA + 1024) ||
	       (pfn >= kSpareB && end <= kSpareB + 2560);
}

TEST_F(ResizeTest, GrowAndShrinkWhileThreadsAllocateFreeAndMigrate)
{
	constexpr int kThreads = 3;
	constexpr int kOps = 4000;
	std::atomic<bool> cycled{false};
	std::atomic<int> errors{0};
	unsigned cpus = sim::CpuCount();
	auto body = [&](int id) {
		std::mt19937 rng(static_cast<unsigned>(id) * 104729u);
		std::vector<Held> mine;
		nb_u64 seq = 0;
		const unsigned orders[] = {0, 0, 1, 2, 3, 5, 9};
		// Past kOps until the admin has both grown and shrunk under this load (a loaded
		// host may starve it), within a bound.
		for (int i = 0; i < kOps || (!cycled.load() && i < 50 * kOps); i++) {
			unsigned r = rng() % 10;
			if (i >= kOps) { // overtime: hold at most one block, so regions empty now and then
				while (mine.size() > 1) {
					Held b = mine.back();
					mine.pop_back();
					if (!Tagged(b) || nbc_buddy_free(core, b.pfn, b.order) != 0)
						errors++;
				}
				r = mine.empty() ? 0 : 9;
			}
			if (r < 5 || mine.empty()) {
				unsigned k = orders[rng() % 7];
				nb_u64 pfn;
				nbc_policy p = Bind(0);
				if (nbc_alloc(core, k, &p, rng() % 4 == 0 ? NBC_AF_NOCACHE : 0,
					     NB_CTX_ATOMIC, &pfn, nullptr) != 0)
					continue;
				Held h{pfn, k, (nb_u64(id + 1) << 48) | (++seq << 20)};
				if (!InNodeZeroPool(pfn, k))
					errors++;
				Tag(h);
				mine.push_back(h);
			} else if (r < 6) {
				/* Migrate to node 1 and back: lookups on both nodes meanwhile. */
				Held &h = mine.back();
				nb_u64 to;
				if (nbc_buddy_migrate(core, h.pfn, h.order, 0, 1, NB_CTX_ATOMIC, &to) == 0) {
					nb_u64 back;
					int rc = nbc_buddy_migrate(core, to, h.order, 1, 0, NB_CTX_ATOMIC, &back);
					if (rc == 0) {
						h.pfn = back;
						if (!InNodeZeroPool(back, h.order) || !Tagged(h))
							errors++;
					} else {
						/* Node 0 full: keep it on node 1, freed there. */
						h.pfn = to;
						if (!Tagged(h))
							errors++;
					}
				}
			} else {
				Held b = mine.back();
				mine.pop_back();
				if (!Tagged(b))
					errors++;
				if (nbc_buddy_free(core, b.pfn, b.order) != 0)
					errors++;
			}
		}
		for (auto &b : mine)
			if (!Tagged(b) || nbc_buddy_free(core, b.pfn, b.order) != 0)
				errors++;
	};
	Together t;
	/* The admin: grows and shrinks node 0 as fast as it can, and reads stats. */
	int added = 0, removed = 0, busy = 0;
	t.Side([&](const std::atomic<bool> &done) {
		sim::SetCpu(cpus - 1);
		nbc_region a = Region(kSpareA, 1024, 0), b = Region(kSpareB, 2560, 0);
		bool has_a = false, has_b = false;
		std::mt19937 rng(7);
		while (!done.load()) {
			nbc_region &r = rng() % 2 ? a : b;
			bool &has = &r == &a ? has_a : has_b;
			int rc = has ? nbc_core_remove_region(core, r.start_pfn, r.nr_frames)
				     : nbc_core_add_region(core, &r);
			if (rc == 0) {
				has = !has;
				(has ? added : removed)++;
				if (added && removed)
					cycled = true;
			} else if (rc == -NB_EBUSY && has) {
				busy++;
			} else {
				errors++;
			}
			NodeStats s = Stats(0);
			nb_u64 want = 2048 + (has_a ? 1024 : 0) + (has_b ? 2560 : 0);
			// free and cached frames are read under different locks, so a block moving
			// between them may count twice: only each is bounded here (exact at the end).
			if (s.total_frames != want || s.free_frames > want || s.pcp_frames > want)
				errors++;
		}
		/* Leave the spare regions in: the threads' last frees may still go there. */
	});
	t.Run(kThreads, body);
	EXPECT_EQ(0, errors.load());
	EXPECT_GT(added, 0);
	EXPECT_GT(removed, 0);
	nbc_pcp_drain(core);
	EXPECT_EQ(0, nbc_check(core));
	NodeStats s = Stats(0);
	EXPECT_EQ(s.total_frames, s.free_frames);
	/* With every block back, whatever was added can be removed. */
	for (nb_u64 start : {kSpareA, kSpareB}) {
		int rc = nbc_core_remove_region(core, start, start == kSpareA ? 1024 : 2560);
		EXPECT_TRUE(rc == 0 || rc == -NB_EINVAL) << rc;
	}
	EXPECT_EQ(2048u, Stats(0).total_frames);
	std::printf("resize stress: %d adds, %d removes, %d refused busy\n", added, removed, busy);
}

} /* namespace */
} /* namespace nbtest */
