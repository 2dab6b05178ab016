// SPDX-License-Identifier: GPL-2.0
/*
 * compact_test.cpp - nbc_compact_node (mm_core/compact.cpp, space_compact.cpp).
 *
 * The owner of the spaces is modelled as the shim is: one shared_mutex per space stands for
 * zap_lock (faults hold it shared from nbc_space_fault until they are done with the frame,
 * compaction exclusively around marking a range migrating), and its mapper records what was
 * unmapped and mapped again (the shim's nb_remap.c). Expectations come from what
 * the test itself placed where (pfns it read back through faults), never from the compactor.
 */
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>

#include "../../mm_core/nbc_compact.h"
#include "space_fixture.h"

namespace nbtest {
namespace {

constexpr unsigned kRunOrder = 10; // 4 MiB runs: 4 on each 16 MiB node of TwoNodes
constexpr nb_u64 kRun = 1ull << kRunOrder;

struct Owner {
	nbc_space *sp;
	std::shared_mutex zap;
	std::set<nb_u64> pinned;
	std::atomic<int> unmaps{0};
	std::atomic<int> dones{0};
	std::mutex map_lock;
	std::map<nb_u64, nb_u64> mapped; // offset -> pfn the mapper was last told to map there
	void *user = nullptr;
};

struct Owners {
	std::vector<Owner *> all;
	nbc_compact_ops ops;

	Owners() {
		ops.for_each = [](void *arg, void (*fn)(void *, nbc_space *, void *), void *farg) {
			for (Owner *o : static_cast<Owners *>(arg)->all)
				fn(farg, o->sp, o);
		};
		ops.pinned = [](void *owner, nb_u64 off) -> int {
			return static_cast<Owner *>(owner)->pinned.count(off) != 0;
		};
		ops.lock = [](void *owner) { static_cast<Owner *>(owner)->zap.lock(); };
		ops.unlock = [](void *owner) { static_cast<Owner *>(owner)->zap.unlock(); };
		ops.done = [](void *owner) { static_cast<Owner *>(owner)->dones++; };
		ops.unmap = [](void *owner, nb_u64, nb_u64) { static_cast<Owner *>(owner)->unmaps++; };
		ops.map = [](void *owner, nb_u64 off, nb_u64 pfn, nb_u64) {
			auto *o = static_cast<Owner *>(owner);
			std::lock_guard<std::mutex> g(o->map_lock);
			o->mapped[off] = pfn;
		};
	}
	int Compact(nbc_core *core, int node, unsigned order, nbc_compact_result *out) {
		return nbc_compact_node(core, node, order, &ops, this, NB_CTX_SLEEP, out);
	}
};

class CompactTest : public SpaceTest {
protected:
	Owner owner;
	Owners owners;

	/* The space's table pages live on node 1, so node 0 holds only what the tests put
	 * there (TablePagesPoisonTheirRuns keeps them on node 0 on purpose). */
	void SetUp() override {
		SpaceTest::SetUp();
		nbc_space_destroy(sp, NB_CTX_SLEEP);
		ASSERT_EQ(0, nbc_space_create(core, 1, NB_CTX_SLEEP, &sp));
		owner.sp = sp;
		owners.all.push_back(&owner);
	}
	nb_u64 NodeBase(int node) { return (node == 0 ? 4 : 8) * kHigh; }
	nb_u64 PfnOf(nb_u64 off) { return Fault(off, 0, 0).pfn; }
	int LargestFree(int node) {
		nbc_pcp_drain(core);
		return Stats(node).largest_free_order;
	}
	/* Every frame of node 0 as a 4 KiB block of the space; returns offset by pfn. What is
	 * left (page-table pages) the space's own table took. */
	std::map<nb_u64, nb_u64> FillNode0() {
		std::map<nb_u64, nb_u64> by_pfn;
		nbc_policy p = Bind(0);
		for (nb_u64 off; nbc_space_alloc(sp, k4K, &p, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &off) == 0;)
			by_pfn[PfnOf(off)] = off;
		return by_pfn;
	}
};

TEST_F(CompactTest, BadInput) {
	nbc_compact_result r;
	EXPECT_EQ(-NB_EINVAL, owners.Compact(core, -1, kRunOrder, &r));
	EXPECT_EQ(-NB_EINVAL, owners.Compact(core, 2, kRunOrder, &r));
	EXPECT_EQ(-NB_EINVAL, owners.Compact(core, NBC_MAX_NODES, kRunOrder, &r));
	EXPECT_EQ(-NB_EINVAL, owners.Compact(core, 0, 0, &r));
	EXPECT_EQ(-NB_EINVAL, owners.Compact(core, 0, nbc_max_order(core) + 1, &r));
	EXPECT_EQ(-NB_EINVAL,
		  nbc_compact_node(core, 0, kRunOrder, &owners.ops, &owners, NB_CTX_ATOMIC, &r));
	EXPECT_EQ(~0ull, r.run_pfn);
}

TEST_F(CompactTest, NothingToDoWhenABlockIsFree) {
	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, kRunOrder, &r));
	EXPECT_EQ(~0ull, r.run_pfn);
	EXPECT_EQ(0u, r.frames_moved);
	EXPECT_EQ(0, owner.unmaps.load());
}

/*
 * Four runs on node 0 holding 300, 40, 10 and 120 of the space's 4 KiB blocks; the 10-block
 * run also holds a pinned block, and whatever run the space's table pages landed in holds
 * unmovable frames. The choice must be the eligible run with the fewest frames, and only its
 * blocks may move, each to node 0, data intact.
 */
TEST_F(CompactTest, ChoosesTheMovableRunWithFewestFrames) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	ASSERT_GT(ours.size(), 4000u);
	const nb_u64 base = NodeBase(0);
	const nb_u64 keep[4] = {300, 40, 10, 120};
	std::map<nb_u64, nb_u64> kept; // pfn -> offset
	nb_u64 seen[4] = {0, 0, 0, 0};
	for (auto [pfn, off] : ours) {
		unsigned run = (unsigned)((pfn - base) / kRun);
		if (seen[run] < keep[run] && (pfn & 1)) { // odd frames only: no buddy may merge
			seen[run]++;
			kept[pfn] = off;
		} else {
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
		}
	}
	for (unsigned run = 0; run < 4; run++)
		ASSERT_EQ(keep[run], seen[run]);
	// Unmovable: frames of node 0 that are not ours (the table's pages), and a pinned block.
	bool unmovable[4] = {false, false, false, false};
	for (nb_u64 pfn = base; pfn < base + 4 * kRun; pfn++)
		if (!ours.count(pfn))
			unmovable[(pfn - base) / kRun] = true;
	for (auto [pfn, off] : kept)
		if ((pfn - base) / kRun == 2) {
			owner.pinned.insert(off);
			unmovable[2] = true;
			break;
		}
	int expect = -1;
	for (int run = 0; run < 4; run++)
		if (!unmovable[run] && (expect < 0 || keep[run] < keep[expect]))
			expect = run;
	ASSERT_GE(expect, 0) << "the table's pages are everywhere";
	for (auto [pfn, off] : kept)
		Write(off, k4K, pfn);
	ASSERT_LT(LargestFree(0), (int)kRunOrder);

	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, kRunOrder, &r));
	EXPECT_EQ(base + (nb_u64)expect * kRun, r.run_pfn);
	EXPECT_EQ(keep[expect], r.frames_moved);
	EXPECT_EQ(keep[expect], r.blocks_moved);
	EXPECT_EQ(4u, r.runs);
	nb_u64 eligible = 0;
	for (int run = 0; run < 4; run++)
		eligible += !unmovable[run];
	EXPECT_EQ(eligible, r.runs_movable);
	EXPECT_EQ((int)keep[expect], owner.unmaps.load()); // one unmap per frame moved
	// Each moved block was mapped again at its new frame: nothing needs to re-fault.
	EXPECT_EQ(keep[expect], owner.mapped.size());
	for (auto [off, pfn] : owner.mapped)
		EXPECT_EQ(PfnOf(off), pfn) << "offset " << off;
	EXPECT_GE(LargestFree(0), (int)kRunOrder);
	for (auto [pfn, off] : kept) {
		nb_u64 now = PfnOf(off);
		nbc_space_info i = Info(off);
		EXPECT_EQ(k4K, i.node_bytes[0]) << "moved off its node";
		if ((pfn - base) / kRun == (nb_u64)expect)
			EXPECT_FALSE(now >= r.run_pfn && now < r.run_pfn + kRun);
		else
			EXPECT_EQ(pfn, now) << "a block outside the run moved";
		Check(off, k4K, pfn);
	}
	EXPECT_EQ(0, nbc_check(core));
}

/*
 * A region added at run time (a pool grow) is a segment of its own, not in the array the
 * node started with: the compactor must find runs in it through the node's segment table.
 * Node 0 = region A (4 runs) + region B (1 run), B removed and added back as a grow does.
 * A keeps every other frame of the space's (its runs hold 512 each), B's run two: that run
 * is chosen and its two blocks move into A's holes, data and node intact.
 */
class CompactGrownTest : public CompactTest {
protected:
	static constexpr nb_u64 kB = 6 * nbtest::kHigh;
	void SetUp() override {
		sim::Topology t = nbtest::TwoNodes::Make();
		t.regions.push_back(nbtest::Region(kB, kRun, 0));
		Open(t);
		nbc_space_destroy(sp, NB_CTX_SLEEP);
		ASSERT_EQ(0, nbc_space_create(core, 1, NB_CTX_SLEEP, &sp));
		owner.sp = sp;
		owners.all.push_back(&owner);
		ASSERT_EQ(0, nbc_core_remove_region(core, kB, kRun));
		nbc_region b = nbtest::Region(kB, kRun, 0);
		ASSERT_EQ(0, nbc_core_add_region(core, &b));
	}
};

TEST_F(CompactGrownTest, FindsRunsInAGrownSegment) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	std::map<nb_u64, nb_u64> kept; // pfn -> offset
	unsigned in_b = 0;
	for (auto [pfn, off] : ours) {
		bool b = pfn >= kB && pfn < kB + kRun;
		if ((pfn & 1) && (!b || in_b++ < 2))
			kept[pfn] = off;
		else
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	}
	ASSERT_GE(in_b, 2u) << "region B holds fewer than two of our odd frames";
	for (auto [pfn, off] : kept)
		Write(off, k4K, pfn);

	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, kRunOrder, &r));
	EXPECT_EQ(kB, r.run_pfn);
	EXPECT_EQ(2u, r.frames_moved);
	EXPECT_EQ(5u, r.runs);
	for (auto [pfn, off] : kept) {
		EXPECT_EQ(k4K, Info(off).node_bytes[0]) << "moved off its node";
		nb_u64 now = PfnOf(off);
		if (pfn >= kB && pfn < kB + kRun)
			EXPECT_TRUE(now < kB || now >= kB + kRun) << "still in the run";
		else
			EXPECT_EQ(pfn, now) << "a block outside the run moved";
		Check(off, k4K, pfn);
	}
	EXPECT_EQ(0, nbc_check(core));
}

/* While compaction moves a range, FREE and MIGRATE of it get -EAGAIN (the shim waits for
 * the move and retries), not the -EBUSY of a user's migration in progress. */
TEST_F(CompactTest, FreeAndMigrateOfAMovingRangeAreTold) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	std::set<nb_u64> groups;
	for (auto [pfn, off] : ours) {
		if (!groups.insert(pfn >> 8).second) {
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
		}
	}
	struct Seen {
		nbc_space *sp;
		int free_rc = 0, migrate_rc = 0, calls = 0;
	} seen{sp};
	owners.ops.unmap = [](void *owner, nb_u64 start, nb_u64) {
		auto *o = static_cast<Owner *>(owner);
		o->unmaps++;
		auto *s = static_cast<Seen *>(o->user);
		nb_u64 a, b;
		s->calls++;
		s->free_rc = nbc_space_free_begin(s->sp, start, &a, &b);
		s->migrate_rc = nbc_space_migrate_begin(s->sp, start, 1, &a, &b);
	};
	owner.user = &seen;
	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, kRunOrder, &r));
	EXPECT_GT(seen.calls, 0);
	EXPECT_EQ(-NB_EAGAIN, seen.free_rc);
	EXPECT_EQ(-NB_EAGAIN, seen.migrate_rc);
	// A user's migration in progress still says EBUSY.
	nb_u64 off = ours.begin()->second, a, b;
	for (auto [pfn, o] : ours) {
		nbc_space_info i{};
		if (nbc_space_query(sp, o, &i) == 0) {
			off = o;
			break;
		}
	}
	ASSERT_EQ(0, nbc_space_migrate_begin(sp, off, 1, &a, &b));
	EXPECT_EQ(-NB_EBUSY, nbc_space_free_begin(sp, off, &a, &b));
	nb_u64 moved;
	ASSERT_EQ(0, nbc_space_migrate_finish(sp, off, NB_CTX_SLEEP, &moved));
}

/* Every run holds a frame no space owns (an in-kernel nbc_alloc user): nothing can move. */
TEST_F(CompactTest, BusyWhenEveryRunHoldsAnUnmovableFrame) {
	Fragment(0, 0, kRunOrder); // one core block per 4 MiB run
	nb_u64 off = Alloc(64 * k4K, 0);
	Write(off, 64 * k4K, 5);
	nbc_compact_result r;
	EXPECT_EQ(-NB_EBUSY, owners.Compact(core, 0, kRunOrder, &r));
	EXPECT_EQ(0u, r.runs_movable);
	EXPECT_EQ(~0ull, r.run_pfn);
	EXPECT_EQ(0, owner.unmaps.load());
	Check(off, 64 * k4K, 5);
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
}

/* A frame larger than the run (a 2 MiB frame when compacting for 1 MiB) is not moved: its
 * run counts as unmovable, and smaller runs elsewhere are used. */
TEST_F(CompactTest, FramesLargerThanTheRunStay) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	const nb_u64 base = NodeBase(0);
	// Free all but one 4K block per 512 KiB (order 7) and everything in the first 2 MiB.
	std::set<nb_u64> groups;
	std::vector<nb_u64> kept;
	for (auto [pfn, off] : ours) {
		bool first_2m = pfn - base < 512;
		if (!first_2m && groups.insert(pfn >> 7).second)
			kept.push_back(off);
		else
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	}
	nbc_pcp_drain(core);
	nb_u64 big = Alloc(k2M, 0, NBC_SPACE_NOZERO);
	Write(big, k2M, 77);
	nb_u64 big_pfn = PfnOf(big);
	ASSERT_EQ(9u, Info(big).max_frame_order);
	ASSERT_EQ(base, big_pfn);
	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, 8, &r));
	EXPECT_FALSE(r.run_pfn >= base && r.run_pfn < base + 512);
	EXPECT_EQ(2u, r.frames_moved);
	EXPECT_EQ(14u, r.runs_movable); // 16 runs of 1 MiB, two of them inside the 2 MiB frame
	EXPECT_EQ(big_pfn, PfnOf(big));
	Check(big, k2M, 77);
}

/* Demand-faulted leaves of a reserved range and a contiguous range move too. */
TEST_F(CompactTest, MovesReservedLeavesAndContigRanges) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	// Keep one 4K block per 256 KiB: nothing of order 6 is free anywhere.
	std::set<nb_u64> groups;
	for (auto [pfn, off] : ours) {
		if (!groups.insert(pfn >> 6).second) {
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
		}
	}
	nbc_policy p = Bind(0);
	nb_u64 res, contig;
	ASSERT_EQ(0, nbc_space_reserve(sp, 16 * k4K, &p, 0, 0, NB_CTX_SLEEP, &res));
	Write(res, 16 * k4K, 3);
	ASSERT_EQ(0, nbc_space_alloc(sp, 5 * k4K, &p, NBC_SPACE_CONTIG, NB_CTX_SLEEP, &contig));
	Write(contig, 5 * k4K, 4);
	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, 6, &r));
	ASSERT_NE(~0ull, r.run_pfn);
	EXPECT_GE(LargestFree(0), 6);
	Check(res, 16 * k4K, 3);
	Check(contig, 5 * k4K, 4);
	EXPECT_EQ(16 * k4K, Info(res).node_bytes[0]);
	EXPECT_EQ(5 * k4K, Info(contig).node_bytes[0]);
	for (nb_u64 i = 0; i < 16; i++) {
		nb_u64 f = PfnOf(res + i * k4K);
		EXPECT_FALSE(f >= r.run_pfn && f < r.run_pfn + 64);
	}
	// A second compaction for a larger order still works on what the first left.
	ASSERT_EQ(0, owners.Compact(core, 0, 8, &r));
	EXPECT_GE(LargestFree(0), 8);
	Check(res, 16 * k4K, 3);
	Check(contig, 5 * k4K, 4);
}

/*
 * A range's leaves in the run move in a migration's batches: one unmap per batch (at most 32
 * leaves within 2 MiB), not one per leaf, and every leaf is mapped again at its new frame.
 */
TEST_F(CompactTest, LeavesOfOneRangeMoveWithOneUnmapPerBatch) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	const nb_u64 base = NodeBase(0);
	for (auto [pfn, off] : ours) {
		if (pfn - base < kRun) { // run 0 empty: the reserved range's leaves land there
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
		}
	}
	nbc_pcp_drain(core);
	nbc_policy p = Bind(0);
	nb_u64 res;
	ASSERT_EQ(0, nbc_space_reserve(sp, 64 * k4K, &p, 0, 0, NB_CTX_SLEEP, &res));
	Write(res, 64 * k4K, 9);
	for (nb_u64 i = 0; i < 64; i++)
		ASSERT_LT(PfnOf(res + i * k4K) - base, kRun) << "leaf " << i << " outside run 0";
	for (auto [pfn, off] : ours) { // every other frame of run 1: where the leaves can go
		if (pfn - base >= kRun && pfn - base < 2 * kRun && (pfn & 1)) {
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
		}
	}
	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, kRunOrder, &r));
	EXPECT_EQ(base, r.run_pfn);
	EXPECT_EQ(64u, r.frames_moved);
	EXPECT_EQ(2, owner.unmaps.load()); // 64 leaves in 256 KiB: two batches of 32
	Check(res, 64 * k4K, 9);
	for (nb_u64 i = 0; i < 64; i++) {
		nb_u64 off = res + i * k4K, pfn = PfnOf(off);
		EXPECT_GE(pfn - base, kRun) << "leaf " << i << " still in run 0";
		ASSERT_TRUE(owner.mapped.count(off)) << "leaf " << i << " not mapped again";
		EXPECT_EQ(pfn, owner.mapped[off]) << "leaf " << i;
	}
}

/*
 * A space whose table lives on the node it fills takes its table pages one at a time as it
 * grows, wherever the allocator has a free frame, so they end up in every run (checked
 * below, from the frames the space does not map). They are the space's software table, so
 * compaction moves them like the blocks: the run empties, the table pages count stays, and
 * every block still faults to its own data.
 */
TEST_F(CompactTest, TablePagesMoveToo) {
	nbc_space *s0;
	ASSERT_EQ(0, nbc_space_create(core, 0, NB_CTX_SLEEP, &s0));
	Owner o0;
	o0.sp = s0;
	owners.all.push_back(&o0);
	nbc_policy p = Bind(0);
	std::vector<nb_u64> offs;
	for (nb_u64 off; nbc_space_alloc(s0, k4K, &p, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &off) == 0;)
		offs.push_back(off);
	auto pfn_of = [&](nb_u64 off) {
		nbc_space_fault_result fr{};
		EXPECT_EQ(0, nbc_space_fault(s0, off, 1, 0, 0, NB_CTX_SLEEP, &fr));
		return fr.pfn;
	};
	std::set<nb_u64> mine;
	for (nb_u64 off : offs)
		mine.insert(pfn_of(off));
	bool run_has_table[4] = {false, false, false, false};
	for (nb_u64 pfn = NodeBase(0); pfn < NodeBase(0) + 4 * kRun; pfn++)
		if (!mine.count(pfn))
			run_has_table[(pfn - NodeBase(0)) / kRun] = true;
	ASSERT_TRUE(run_has_table[0] && run_has_table[1] && run_has_table[2] && run_has_table[3])
		<< "the premise: a table page in every run";
	std::vector<nb_u64> kept;
	for (size_t i = 0; i < offs.size(); i++) {
		if (i % 2) {
			ASSERT_EQ(0, nbc_space_free(s0, offs[i], NB_CTX_SLEEP, nullptr, nullptr));
		} else {
			kept.push_back(offs[i]);
			*static_cast<nb_u64 *>(sim::FrameAddr(pfn_of(offs[i]))) = offs[i] * 3;
		}
	}
	nb_u64 tables = nbc_space_table_pages(s0);
	nbc_compact_result r;
	ASSERT_EQ(0, owners.Compact(core, 0, kRunOrder, &r));
	EXPECT_GE(LargestFree(0), (int)kRunOrder);
	EXPECT_GT(r.frames_moved, r.blocks_moved) << "table pages moved besides the blocks";
	EXPECT_EQ(tables, nbc_space_table_pages(s0));
	for (nb_u64 off : kept) {
		nb_u64 f = pfn_of(off);
		ASSERT_FALSE(f >= r.run_pfn && f < r.run_pfn + kRun);
		ASSERT_EQ(off * 3, *static_cast<nb_u64 *>(sim::FrameAddr(f)));
		ASSERT_EQ(0, nbc_pfn_node(core, f));
	}
	owners.all.pop_back();
	nbc_space_destroy(s0, NB_CTX_SLEEP);
}

/*
 * Compaction while threads fault, read and increment the blocks (the shim's zap protocol
 * modelled by Owner::zap): every increment survives every move, every block stays on node
 * 0, and the untouched pattern of each block is intact.
 */
TEST_F(CompactTest, ConcurrentReadersAndWritersKeepTheirData) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	std::vector<nb_u64> kept;
	std::mt19937_64 rng(7);
	for (auto [pfn, off] : ours) {
		if (rng() % 4 == 0)
			kept.push_back(off);
		else
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	}
	for (nb_u64 off : kept)
		Write(off, k4K, off);
	// Word 0 of each block is the counter the threads increment; word 1.. keep the pattern.
	std::vector<nb_u64> base0(kept.size());
	for (size_t i = 0; i < kept.size(); i++)
		base0[i] = *static_cast<nb_u64 *>(sim::FrameAddr(PfnOf(kept[i])));
	std::atomic<bool> stop{false};
	std::vector<std::atomic<nb_u64>> incs(kept.size());
	auto worker = [&](unsigned cpu, unsigned seed) {
		sim::SetCpu(cpu);
		std::mt19937 g(seed);
		while (!stop.load()) {
			size_t i = g() % kept.size();
			std::shared_lock<std::shared_mutex> lk(owner.zap);
			nbc_space_fault_result fr;
			int rc = nbc_space_fault(sp, kept[i], 1, cpu, 0, NB_CTX_SLEEP, &fr);
			if (rc == -NB_EAGAIN)
				continue;
			ASSERT_EQ(0, rc);
			auto *w = static_cast<nb_u64 *>(sim::FrameAddr(fr.pfn));
			ASSERT_EQ(kept[i] + 0, w[1] - 0) << "pattern lost";
			__atomic_fetch_add(w, 1, __ATOMIC_RELAXED);
			incs[i]++;
		}
	};
	std::thread t1(worker, 1, 1), t2(worker, 2, 2);
	int ok = 0;
	for (unsigned order : {8u, 9u, 10u}) {
		nbc_compact_result r;
		int rc = owners.Compact(core, 0, order, &r);
		EXPECT_TRUE(rc == 0 || rc == -NB_EAGAIN) << rc;
		ok += rc == 0;
	}
	stop = true;
	t1.join();
	t2.join();
	EXPECT_GE(ok, 2);
	for (size_t i = 0; i < kept.size(); i++) {
		const nb_u64 *w = static_cast<const nb_u64 *>(sim::FrameAddr(PfnOf(kept[i])));
		ASSERT_EQ(base0[i] + incs[i].load(), w[0]) << "block " << i;
		for (unsigned k = 1; k < k4K / 8; k += 97)
			ASSERT_EQ(kept[i] + 0, w[k] - 0);
		ASSERT_EQ(k4K, Info(kept[i]).node_bytes[0]);
	}
	EXPECT_EQ(0, nbc_check(core));
}

} // namespace
} // namespace nbtest

namespace nbtest {
namespace {

/*
 * RESERVE + POPULATE while compaction moves the range it is populating: compaction is not a
 * user's MIGRATE or FREE of a guessed offset (after which RESERVE may stop early), it gives
 * the range back by itself, so RESERVE waits for it and populates all of it. (nb_fuzz found
 * the early stop: a POPULATE range with unpopulated pages, whose first touch then failed.)
 * Run 0 of node 0 holds every other frame (so the range's 4 KiB frames come from there) and
 * runs 1-3 one free 1 MiB block each, so run 0 is the one compaction empties.
 */
TEST_F(CompactTest, PopulateWaitsForACompactionOfItsRange) {
	std::map<nb_u64, nb_u64> ours = FillNode0();
	const nb_u64 base = NodeBase(0);
	nb_u64 max_kept = 0;
	for (auto [pfn, off] : ours) {
		nb_u64 i = pfn - base;
		bool free_it = i < kRun ? (i & 1) : (i % kRun) < 256;
		if (free_it)
			ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
		else
			max_kept = std::max(max_kept, off);
	}
	nbc_pcp_drain(core);
	ASSERT_LT(LargestFree(0), (int)kRunOrder);

	std::atomic<bool> r_moving{false}, a_saw_eagain{false}, a_done{false}, b_done{false};
	auto wait_for = [](const std::function<bool()> &cond) {
		for (int i = 0; i < 10000 && !cond(); i++)
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
	};
	// Thread B compacts; when it unmaps a frame of the range being populated (the only one
	// above every kept block), it waits until A has met the move (or is done).
	owners.ops.unmap = [](void *owner, nb_u64 start, nb_u64) {
		auto *o = static_cast<Owner *>(owner);
		o->unmaps++;
		auto *w = static_cast<std::function<void(nb_u64)> *>(o->user);
		(*w)(start);
	};
	std::function<void(nb_u64)> on_unmap = [&](nb_u64 start) {
		if (start <= max_kept || r_moving.exchange(true))
			return;
		wait_for([&] { return a_saw_eagain.load() || a_done.load(); });
	};
	owner.user = &on_unmap;
	nbc_compact_result res{};
	int compact_rc = 1;
	std::thread b;
	const std::thread::id a_id = std::this_thread::get_id();
	int a_calls = 0;
	sim::SetReschedHook([&] {
		if (std::this_thread::get_id() != a_id)
			return;
		if (a_calls++ == 0) { // one frame populated: start the compaction, wait for the move
			b = std::thread([&] {
				sim::SetCpu(1);
				compact_rc = owners.Compact(core, 0, kRunOrder, &res);
				b_done = true;
			});
			wait_for([&] { return r_moving.load() || b_done.load(); });
		} else if (r_moving && !b_done) {
			a_saw_eagain = true; // populating goes on only after the compaction
		}
	});
	nbc_policy p = Bind(0);
	nb_u64 off = 0;
	const nb_u64 size = 64 * k4K;
	int rc = nbc_space_reserve(sp, size, &p, NBC_SPACE_POPULATE, 0, NB_CTX_SLEEP, &off);
	a_done = true;
	if (b.joinable())
		b.join();
	sim::SetReschedHook({});
	ASSERT_EQ(0, rc);
	EXPECT_TRUE(r_moving.load()) << "the compaction did not move the populating range";
	EXPECT_TRUE(a_saw_eagain.load()) << "RESERVE did not wait for the compaction";
	EXPECT_EQ(0, compact_rc);
	EXPECT_EQ(size, Info(off).populated_bytes) << "POPULATE stopped early";
	EXPECT_EQ(0, nbc_check(core));
}

} // namespace
} // namespace nbtest
