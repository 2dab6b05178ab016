/* SPDX-License-Identifier: GPL-2.0 */
/*
 * space_fault_test.cpp - the demand-fault path itself (space_fault.cpp): how many lock rounds
 * a fault takes (counted by the sim), first touches of one chunk from many threads at an
 * exact quota, and a first touch racing FREE and MIGRATE of its range at every point where
 * the fault has dropped the space's lock.
 */
#include <atomic>
#include <thread>

#include "space_fixture.h"

namespace nbtest {

namespace {

/* Lock rounds of one call on this thread, by class (sim::LockRounds). */
struct Rounds {
	unsigned long space, pcp, node;
	static Rounds Now() {
		return {sim::LockRounds(NB_LOCK_SPACE), sim::LockRounds(NB_LOCK_PCP),
			sim::LockRounds(NB_LOCK_NODE)};
	}
	Rounds operator-(const Rounds &o) const {
		return {space - o.space, pcp - o.pcp, node - o.node};
	}
};

/* Threads that meet before each step: a spinning barrier, so they really start together. */
class Meet {
public:
	explicit Meet(unsigned n) : n_(n) {}
	void Wait() {
		unsigned gen = gen_.load();
		if (arrived_.fetch_add(1) + 1 == n_) {
			arrived_ = 0;
			gen_++;
			return;
		}
		while (gen_.load() == gen)
			std::this_thread::yield();
	}

private:
	const unsigned n_;
	std::atomic<unsigned> arrived_{0}, gen_{0};
};

} /* namespace */

/*
 * A mapped offset costs one hold of the space lock; a first touch two (the miss, then the
 * install that answers the fault) and nothing else of the space's, where it took six (the
 * miss, the range and emptiness looked up again, the stash checked, the install, then the
 * whole lookup again). The allocation's own rounds are the allocator's business; they are
 * recorded, and may not be more than one allocation's.
 */
TEST_F(SpaceTest, FaultLockRounds) {
	nbc_policy b = Bind(0);
	nb_u64 off, huge;
	ASSERT_EQ(0, nbc_space_reserve(sp, 64 * k4K, &b, 0, 0, NB_CTX_SLEEP, &off));
	ASSERT_EQ(0, nbc_space_reserve(sp, 2 * k2M, &b, NBC_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &huge));

	/* A new range: its first touch needs three table pages, which RESERVE stashed. */
	Rounds r0 = Rounds::Now();
	nbc_space_fault_result first = Fault(off + 5 * k4K, 0, 0);
	Rounds first_touch = Rounds::Now() - r0;
	EXPECT_EQ(2u, first_touch.space);

	/* The common case: a first touch beside mapped pages (its table is there). */
	r0 = Rounds::Now();
	nbc_space_fault_result second = Fault(off + 6 * k4K, 0, 0);
	Rounds neighbour = Rounds::Now() - r0;
	EXPECT_EQ(2u, neighbour.space);
	EXPECT_NE(first.pfn, second.pfn);

	/* What one allocation of a 4 KiB frame takes by itself, from the same warm cache. */
	nb_u64 pfn;
	r0 = Rounds::Now();
	ASSERT_EQ(0, nbc_alloc(core, 0, &b, 0, NB_CTX_SLEEP, &pfn, nullptr));
	Rounds alloc = Rounds::Now() - r0;
	ASSERT_EQ(0, nbc_buddy_free(core, pfn, 0));
	EXPECT_LE(neighbour.pcp + neighbour.node, alloc.pcp + alloc.node + 1);

	/* Mapped already: one hold, nothing else. */
	r0 = Rounds::Now();
	nbc_space_fault_result again = Fault(off + 6 * k4K, 0, 0);
	Rounds hit = Rounds::Now() - r0;
	EXPECT_EQ(second.pfn, again.pfn);
	EXPECT_EQ(1u, hit.space);
	EXPECT_EQ(0u, hit.pcp + hit.node);

	/* A 2 MiB first touch: two as well. */
	r0 = Rounds::Now();
	nbc_space_fault_result h = Fault(huge + k2M + 3 * k4K, 0, 9);
	Rounds huge_touch = Rounds::Now() - r0;
	EXPECT_EQ(9u, h.order);
	EXPECT_EQ(2u, huge_touch.space);

	RecordProperty("first_touch_space_pcp_node",
		       std::to_string(first_touch.space) + "/" + std::to_string(first_touch.pcp) +
			       "/" + std::to_string(first_touch.node));
	RecordProperty("neighbour_space_pcp_node",
		       std::to_string(neighbour.space) + "/" + std::to_string(neighbour.pcp) + "/" +
			       std::to_string(neighbour.node));
	RecordProperty("alloc_alone_pcp_node",
		       std::to_string(alloc.pcp) + "/" + std::to_string(alloc.node));
}

/*
 * Many threads touch the same page (or the same 2 MiB chunk) at once, page after page, with
 * the file's quota set to exactly what the range needs: each page gets one frame, every
 * thread sees it, no toucher is refused for a quota the winner filled (a loser must see
 * "populated", not "over quota"), and every frame the losers took went back (the pool is
 * checked whole at TearDown).
 */
TEST_F(SpaceBigTest, ConcurrentFirstTouchesOfOneChunk) {
	/* Big nodes: eight racers each take a 2 MiB frame before one installs, more than a
	 * 16 MiB node may have free, and a racer that falls back to 4 KiB may win. */
	const unsigned kThreads = 8;
	const nb_u64 pages = 24;
	nbc_policy b = Bind(0);
	nb_u64 off, huge;
	ASSERT_EQ(0, nbc_space_reserve(sp, pages * k4K, &b, 0, 0, NB_CTX_SLEEP, &off));
	ASSERT_EQ(0, nbc_space_reserve(sp, 2 * k2M, &b, NBC_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &huge));
	ASSERT_EQ(0, nbc_space_set_quota(sp, 0, pages * k4K + 2 * k2M));
	nb_u64 free_before = FreeFrames(0);

	std::vector<std::vector<nb_u64>> seen(kThreads);
	std::vector<std::vector<int>> rcs(kThreads);
	Meet meet(kThreads);
	std::vector<std::thread> ts;
	for (unsigned t = 0; t < kThreads; t++)
		ts.emplace_back([&, t] {
			sim::SetCpu(t % sim::CpuCount());
			for (nb_u64 q = 0; q < pages + 2; q++) {
				/* pages, then each 2 MiB chunk at a different 4 KiB per thread */
				nb_u64 at = q < pages ? off + q * k4K
						      : huge + (q - pages) * k2M + t * 5 * k4K;
				meet.Wait();
				nbc_space_fault_result r{};
				rcs[t].push_back(nbc_space_fault(sp, at, 1, t % sim::CpuCount(), 0,
								 NB_CTX_SLEEP, &r));
				/* the 2 MiB frame's first pfn, from its 4 KiB sub-frame */
				seen[t].push_back(q < pages ? r.pfn : r.pfn - t * 5);
			}
		});
	for (std::thread &t : ts)
		t.join();
	for (unsigned t = 0; t < kThreads; t++) {
		EXPECT_EQ(std::vector<int>(pages + 2, 0), rcs[t]) << "thread " << t;
		EXPECT_EQ(seen[0], seen[t]) << "thread " << t;
	}
	std::sort(seen[0].begin(), seen[0].end());
	EXPECT_EQ(seen[0].end(), std::adjacent_find(seen[0].begin(), seen[0].end()));
	EXPECT_EQ(pages * k4K + 2 * k2M, nbc_space_node_bytes(sp, 0));
	EXPECT_EQ(0u, nbc_space_node_bytes(sp, 1));
	EXPECT_EQ(pages * k4K, Info(off).populated_bytes);
	EXPECT_EQ(pages, Info(off).frames_by_order[0]);
	EXPECT_EQ(2u, Info(huge).frames_by_order[9]);
	EXPECT_EQ(free_before - pages - 1024, FreeFrames(0)) << "the losers' frames went back";
	/* The quota is exactly full: one page more is refused, and its frame goes back. */
	nb_u64 more;
	ASSERT_EQ(0, nbc_space_reserve(sp, k4K, &b, 0, 0, NB_CTX_SLEEP, &more));
	nb_u64 free_now = FreeFrames(0); /* RESERVE stashed table pages */
	EXPECT_EQ(-NB_EDQUOT, FaultRc(more, 0, 0));
	EXPECT_EQ(free_now, FreeFrames(0));
}

/*
 * A first touch whose range is freed, or starts migrating, while the fault has the space's
 * lock dropped (allocating, zeroing, between its two holds): at each of those points in
 * turn (the sim's unlock hook runs the FREE or MIGRATE exactly there). The fault either
 * finished before (0, and its frame is the range's) or fails as a fault on a dead or moving
 * range does (-EFAULT, -EAGAIN), and a frame it took is never left behind: the pool is
 * checked whole at TearDown.
 */
TEST_F(SpaceTest, FirstTouchRacingFreeAndMigrate) {
	nbc_policy b = Bind(0);
	for (bool migrate : {false, true}) {
		unsigned hit_between = 0;
		for (unsigned k = 1; k <= 8; k++) {
			nb_u64 off, s, l;
			ASSERT_EQ(0, nbc_space_reserve(sp, 4 * k4K, &b, 0, 0, NB_CTX_SLEEP, &off));
			unsigned unlocks = 0;
			bool done = false;
			sim::SetUnlockHook([&] {
				if (done || ++unlocks != k)
					return;
				done = true;
				if (migrate)
					ASSERT_EQ(0, nbc_space_migrate_begin(sp, off, 1, &s, &l));
				else
					ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
			});
			nbc_space_fault_result r{};
			int rc = nbc_space_fault(sp, off + 2 * k4K, 1, 0, 0, NB_CTX_SLEEP, &r);
			sim::SetUnlockHook({});
			if (k == 1) { /* right after the miss: the install must see it */
				EXPECT_TRUE(done);
				EXPECT_EQ(migrate ? -NB_EAGAIN : -NB_EFAULT, rc);
			}
			if (migrate) {
				EXPECT_TRUE(rc == 0 || rc == -NB_EAGAIN) << rc;
				if (done) {
					nb_u64 moved;
					ASSERT_EQ(0, nbc_space_migrate_finish(sp, off, NB_CTX_SLEEP, &moved));
				}
				/* the table's truth: a frame installed before the migration moved */
				EXPECT_EQ(rc == 0 ? k4K : 0u, Info(off).populated_bytes) << "k " << k;
				ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
			} else {
				EXPECT_TRUE(rc == 0 || rc == -NB_EFAULT) << rc;
				if (!done) {
					ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
				}
			}
			hit_between += rc != 0;
			EXPECT_EQ(0u, nbc_space_node_bytes(sp, 0) + nbc_space_node_bytes(sp, 1))
				<< "k " << k;
		}
		EXPECT_GE(hit_between, 2u) << "the race window was hit more than once";
	}
}

/* Every page fault-around reports is what a fault there gets (the table's answer). */
static void ExpectAroundIsMapped(nbc_space *sp, const nbc_space_around &ar) {
	for (nb_u32 i = 0; i < ar.nr_pages; i++) {
		nbc_space_fault_result r{};
		ASSERT_EQ(0, nbc_space_fault(sp, ar.offset + i * k4K, 0, 0, 0, NB_CTX_SLEEP, &r));
		EXPECT_EQ(r.pfn, ar.pfn[i]) << "page " << i;
		EXPECT_EQ(r.writable, (ar.writable >> i) & 1) << "page " << i;
	}
	for (nb_u32 i = ar.nr_pages; i < NBC_SPACE_AROUND_PAGES; i++)
		EXPECT_EQ(NBC_SPACE_NO_PFN, ar.pfn[i]);
}

/*
 * Fault-around's query: a block's frames around a fault, inside the 64 KiB window counted
 * from the block's start, the bounds the shim gives (its VMA) and the block itself; nothing
 * for reserved ranges, dead or moving blocks.
 */
TEST_F(SpaceTest, FaultAroundStaysInsideBlockWindowAndBounds) {
	const nb_u64 win = NBC_SPACE_AROUND_PAGES * k4K;
	nb_u64 a = Alloc(16 * k4K, 0);
	nb_u64 b = Alloc(24 * k4K, 0);
	nb_u64 c = Alloc(3 * k4K, 0);
	nbc_space_around ar{};

	EXPECT_EQ(1u, Fault(a + 5 * k4K, 0, 0).block) << "the shim faults around blocks only";
	ASSERT_EQ(0, nbc_space_fault_around(sp, a + 5 * k4K, a, a + win, &ar));
	EXPECT_EQ(a, ar.offset);
	EXPECT_EQ(16u, ar.nr_pages);
	EXPECT_EQ(0xffffu, ar.writable);
	ExpectAroundIsMapped(sp, ar);

	/* a VMA covering pages 4..11 only */
	ASSERT_EQ(0, nbc_space_fault_around(sp, a + 5 * k4K, a + 4 * k4K, a + 12 * k4K, &ar));
	EXPECT_EQ(a + 4 * k4K, ar.offset);
	EXPECT_EQ(8u, ar.nr_pages);
	ExpectAroundIsMapped(sp, ar);

	/* bounds far beyond the block: still only the block's window, never the next block */
	ASSERT_EQ(0, nbc_space_fault_around(sp, b + 18 * k4K, 0, b + 64 * win, &ar));
	EXPECT_EQ(b + 16 * k4K, ar.offset);
	EXPECT_EQ(8u, ar.nr_pages);
	ExpectAroundIsMapped(sp, ar);
	ASSERT_EQ(0, nbc_space_fault_around(sp, b + 3 * k4K, 0, b + 64 * win, &ar));
	EXPECT_EQ(b, ar.offset);
	EXPECT_EQ(16u, ar.nr_pages);
	ASSERT_EQ(0, nbc_space_fault_around(sp, c + 2 * k4K, 0, c + 64 * win, &ar));
	EXPECT_EQ(c, ar.offset);
	EXPECT_EQ(3u, ar.nr_pages);
	ExpectAroundIsMapped(sp, ar);

	EXPECT_EQ(-NB_EINVAL, nbc_space_fault_around(sp, a + 5 * k4K, a + 6 * k4K, a + win, &ar));
	EXPECT_EQ(-NB_EINVAL, nbc_space_fault_around(sp, a + 5 * k4K, a + 1, a + win, &ar));

	nbc_policy p = Bind(0);
	nb_u64 res;
	ASSERT_EQ(0, nbc_space_reserve(sp, 16 * k4K, &p, 0, 0, NB_CTX_SLEEP, &res));
	EXPECT_EQ(0u, Fault(res + k4K, 0, 0).block) << "a first touch";
	EXPECT_EQ(0u, Fault(res + k4K, 0, 0).block) << "mapped";
	Fault(res + 2 * k4K, 0, 0);
	EXPECT_EQ(-NB_ENOENT, nbc_space_fault_around(sp, res + k4K, res, res + win, &ar));

	nb_u64 s, l;
	ASSERT_EQ(0, nbc_space_migrate_begin(sp, a, 1, &s, &l));
	EXPECT_EQ(-NB_EAGAIN, nbc_space_fault_around(sp, a, a, a + win, &ar));
	nb_u64 moved;
	ASSERT_EQ(0, nbc_space_migrate_finish(sp, a, NB_CTX_SLEEP, &moved));
	ASSERT_EQ(0, nbc_space_fault_around(sp, a, a, a + win, &ar));
	EXPECT_EQ(16u, ar.nr_pages);
	ExpectAroundIsMapped(sp, ar);
	ASSERT_EQ(0, nbc_space_free_begin(sp, a, &s, &l));
	EXPECT_EQ(-NB_EFAULT, nbc_space_fault_around(sp, a, a, a + win, &ar));
	ASSERT_EQ(0, nbc_space_free_finish(sp, a, NB_CTX_SLEEP));
	EXPECT_EQ(-NB_EFAULT, nbc_space_fault_around(sp, a, a, a + win, &ar));
}

/* A 2 MiB block mapped by 4 KiB entries (a VMA not 2 MiB-aligned): the pages of a 2 MiB
 * frame, one window at a time. */
TEST_F(SpaceTest, FaultAroundInsideAHugeFrame) {
	nb_u64 a = Alloc(k2M, 0);
	nbc_space_around ar{};
	ASSERT_EQ(0, nbc_space_fault_around(sp, a + 40 * k4K, a, a + k2M, &ar));
	EXPECT_EQ(a + 32 * k4K, ar.offset);
	EXPECT_EQ(16u, ar.nr_pages);
	EXPECT_EQ(Fault(a, 0, 9).pfn + 32, ar.pfn[0]);
	ExpectAroundIsMapped(sp, ar);
}

} /* namespace nbtest */
