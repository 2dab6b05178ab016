/* SPDX-License-Identifier: GPL-2.0 */
/*
 * space_demand_test.cpp - nbc_space demand ranges: first touch lands on the faulting CPU's
 * node, huge chunks where aligned (4 KiB when no huge frame is free), bind and interleave,
 * POPULATE.
 */
#include "space_fixture.h"

namespace nbtest {

TEST_F(SpaceTest, DemandFaultsLandOnTheFaultingCpusNode) {
	nb_u64 off;
	ASSERT_EQ(0, nbc_space_reserve(sp, 16 * k4K, nullptr, 0, 0, NB_CTX_SLEEP, &off));
	nbc_space_info i = Info(off);
	EXPECT_EQ(-1, i.node);
	EXPECT_EQ(0u, i.populated_bytes);
	EXPECT_EQ((nb_u32)NBC_SPACE_KIND_RESERVED, i.kind);

	sim::SetCpu(2); /* node 1 */
	nbc_space_fault_result r = Fault(off, 2);
	EXPECT_EQ(1, RegionNode(r.pfn));
	sim::SetCpu(0);
	EXPECT_EQ(0, RegionNode(Fault(off + k4K, 0).pfn));
	/* the fault's cpu argument decides, not the CPU the call happens to run on */
	EXPECT_EQ(1, RegionNode(Fault(off + 2 * k4K, 3).pfn));
	EXPECT_EQ(r.pfn, Fault(off, 0).pfn) << "a second touch finds the frame";
	EXPECT_EQ(k4K, nbc_space_node_bytes(sp, 0));
	EXPECT_EQ(2 * k4K, nbc_space_node_bytes(sp, 1));
	i = Info(off);
	EXPECT_EQ(3 * k4K, i.populated_bytes);
	EXPECT_EQ(1, i.node);
	EXPECT_EQ(2 * k4K, i.node_bytes[1]);
}

TEST_F(SpaceTest, DemandHugeChunksWhereAligned) {
	nb_u64 off;
	ASSERT_EQ(0, nbc_space_reserve(sp, 3 * k2M + k4K, nullptr, NBC_SPACE_HUGE_2M, 0,
				       NB_CTX_SLEEP, &off));
	EXPECT_EQ(0u, off % k2M);
	nbc_space_fault_result r = Fault(off + k2M + 3 * k4K);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(off + k2M, r.offset);
	EXPECT_EQ(0u, Fault(off + 3 * k2M).order) << "the tail chunk is not inside the range";
	/* a 4 KiB-only VMA touches first: the frame is still 2 MiB, the answer a sub-frame */
	r = Fault(off + 5 * k4K, 0, 0);
	EXPECT_EQ(0u, r.order);
	nbc_space_fault_result h = Fault(off, 0, 9);
	EXPECT_EQ(9u, h.order);
	EXPECT_EQ(h.pfn + 5, r.pfn);
	nbc_space_info i = Info(off);
	EXPECT_EQ(2u, i.frames_by_order[9]);
	EXPECT_EQ(1u, i.frames_by_order[0]);
	EXPECT_EQ(k2M, nbc_space_huge_align(sp, off, 3 * k2M));

	ASSERT_EQ(0, nbc_space_reserve(sp, 2 * k2M, nullptr, 0, 0, NB_CTX_SLEEP, &off));
	EXPECT_EQ(0u, Fault(off).order) << "no HUGE flag: 4 KiB frames";
}

TEST_F(SpaceTest, DemandHugeFallsBackTo4KWhenNoHugeFrameIsFree) {
	std::vector<nb_u64> blocks;
	nbc_policy b0 = Bind(0);
	for (nb_u64 o; nbc_space_alloc(sp, k2M, &b0, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &o) == 0;)
		blocks.push_back(o);
	EXPECT_FALSE(blocks.empty());
	nb_u64 d;
	ASSERT_EQ(0, nbc_space_reserve(sp, k2M, &b0, NBC_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &d));
	nbc_space_fault_result r{};
	int rc = nbc_space_fault(sp, d + k4K, 1, 0, 18, NB_CTX_SLEEP, &r);
	if (rc == 0) { /* a 4 KiB frame was left over: the chunk is now 4 KiB for good */
		EXPECT_EQ(0u, r.order);
		EXPECT_EQ(0, RegionNode(r.pfn));
		ASSERT_EQ(0, nbc_space_free(sp, blocks[0], NB_CTX_SLEEP, nullptr, nullptr));
		EXPECT_EQ(0u, Fault(d).order) << "a chunk holding 4 KiB frames stays 4 KiB";
	} else {
		EXPECT_EQ(-NB_ENOMEM, rc);
	}
}

TEST_F(SpaceTest, BindAndInterleaveHonoured) {
	nbc_policy b = Bind(1);
	nb_u64 off;
	ASSERT_EQ(0, nbc_space_reserve(sp, 8 * k4K, &b, 0, 0, NB_CTX_SLEEP, &off));
	for (nb_u64 q = 0; q < 8; q++)
		EXPECT_EQ(1, RegionNode(Fault(off + q * k4K, 0).pfn));

	nbc_policy il = Interleave(3);
	ASSERT_EQ(0, nbc_space_reserve(sp, 8 * k4K, &il, 0, 0, NB_CTX_SLEEP, &off));
	for (nb_u64 q = 8; q-- > 0;) /* touched backwards: placement follows the offset */
		EXPECT_EQ((int)(q % 2), RegionNode(Fault(off + q * k4K, 0).pfn)) << q;

	nb_u64 blk;
	ASSERT_EQ(0, nbc_space_alloc(sp, 4 * k4K, &il, 0, NB_CTX_SLEEP, &blk));
	nbc_space_info i = Info(blk);
	EXPECT_EQ(2 * k4K, i.node_bytes[0]);
	EXPECT_EQ(2 * k4K, i.node_bytes[1]);
}

/*
 * INTERLEAVE continues round robin across a file's allocations (numactl's does across a
 * task's): four one-frame 2 MiB ALLOCs over {0, 1} use both nodes, as do four one-frame
 * RESERVEs, and a mixed sequence keeps one cursor. The cursor used to live in the per-call
 * policy, so every single-block ALLOC and every range's first frame landed on node 0.
 */
TEST_F(SpaceTest, InterleaveRotatesAcrossAllocations) {
	nbc_policy il = Interleave(3);
	std::vector<int> got;
	for (int k = 0; k < 4; k++) {
		nb_u64 off;
		ASSERT_EQ(0, nbc_space_alloc(sp, k2M, &il, NBC_SPACE_HUGE_2M, NB_CTX_SLEEP, &off));
		ASSERT_EQ(1u, Info(off).frames_by_order[9]);
		got.push_back(RegionNode(Fault(off).pfn));
	}
	for (int k = 0; k < 4; k++) {
		nb_u64 off;
		ASSERT_EQ(0, nbc_space_reserve(sp, k2M, &il, NBC_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &off));
		got.push_back(RegionNode(Fault(off).pfn));
	}
	nb_u64 off; /* a third kind in between: a 4 KiB block continues the same cursor */
	ASSERT_EQ(0, nbc_space_alloc(sp, k4K, &il, 0, NB_CTX_SLEEP, &off));
	got.push_back(RegionNode(Fault(off).pfn));
	EXPECT_EQ((std::vector<int>{0, 1, 0, 1, 0, 1, 0, 1, 0}), got);
	/* The caller's il_next is not an input: the space owns the cursor. */
	il.il_next = 1;
	ASSERT_EQ(0, nbc_space_alloc(sp, k4K, &il, 0, NB_CTX_SLEEP, &off));
	EXPECT_EQ(1, RegionNode(Fault(off).pfn));
}

/*
 * A fatal signal during RESERVE + POPULATE ends it: -NB_EINTR between frames, the range and
 * every frame populated so far given back (TearDown checks the pool). It used to populate to
 * the end regardless, as ALLOC did before its finding 2 was fixed.
 */
TEST_F(SpaceTest, PopulateStopsForAFatalSignal) {
	for (unsigned flags : {0u, (unsigned)NBC_SPACE_NOZERO}) {
		nbc_policy b = Bind(0);
		nb_u64 off = ~0ull;
		unsigned calls = 0;
		sim::SetReschedHook([&] {
			if (++calls == 2)
				sim::SetAbort(true); /* the signal arrives after the first frames */
		});
		int rc = nbc_space_reserve(sp, 6 * k2M, &b, flags | NBC_SPACE_HUGE_2M | NBC_SPACE_POPULATE,
					   0, NB_CTX_SLEEP, &off);
		sim::SetReschedHook({});
		sim::SetAbort(false);
		EXPECT_EQ(-NB_EINTR, rc) << flags;
		EXPECT_EQ(~0ull, off);
		EXPECT_EQ(0u, nbc_space_node_bytes(sp, 0) + nbc_space_node_bytes(sp, 1)) << flags;
		nbc_space_info i;
		for (nb_u64 at = 0; at < 12 * k2M; at += k2M)
			EXPECT_EQ(-NB_ENOENT, nbc_space_query(sp, at, &i)) << flags;
	}
}

TEST_F(SpaceTest, PopulateAllocatesEverythingNow) {
	nbc_policy b = Bind(1);
	nb_u64 off;
	ASSERT_EQ(0, nbc_space_reserve(sp, 2 * k2M + k4K, &b, NBC_SPACE_HUGE_2M | NBC_SPACE_POPULATE,
				       0, NB_CTX_SLEEP, &off));
	nbc_space_info i = Info(off);
	EXPECT_EQ(2 * k2M + k4K, i.populated_bytes);
	EXPECT_EQ(2u, i.frames_by_order[9]);
	EXPECT_EQ(1u, i.frames_by_order[0]);
	EXPECT_EQ(2 * k2M + k4K, i.node_bytes[1]);
}

/*
 * RESERVE + POPULATE while another caller, who guessed the offset (offsets start at 0),
 * migrates or frees the range at the first preemption point: RESERVE succeeds and stops
 * populating early. It used to return EAGAIN or EFAULT, and after a migration the range it
 * had failed to make stayed in the file, its offset never told.
 */
TEST_F(SpaceTest, PopulateRacingMigrateEndsEarly) {
	nbc_policy b = Bind(0);
	nb_u64 off = ~0ull, start, len, moved = 0;
	bool begun = false;
	sim::SetReschedHook([&] {
		if (!begun)
			begun = nbc_space_migrate_begin(sp, 0, 1, &start, &len) == 0;
	});
	ASSERT_EQ(0, nbc_space_reserve(sp, 3 * k2M, &b, NBC_SPACE_HUGE_2M | NBC_SPACE_POPULATE, 0,
				       NB_CTX_SLEEP, &off));
	sim::SetReschedHook({});
	ASSERT_TRUE(begun) << "no preemption point while populating";
	EXPECT_EQ(0u, off);
	ASSERT_EQ(0, nbc_space_migrate_finish(sp, off, NB_CTX_SLEEP, &moved));
	nbc_space_info i = Info(off);
	EXPECT_EQ(NBC_SPACE_STATE_LIVE, i.state);
	EXPECT_LT(i.populated_bytes, 3 * k2M) << "populating went on during the migration";
	EXPECT_EQ(moved, i.populated_bytes);
	for (nb_u64 c = 0; c < 3; c++)
		EXPECT_EQ(c * k2M < moved ? 1 : 0, RegionNode(Fault(off + c * k2M).pfn)) << c;
}

TEST_F(SpaceTest, PopulateRacingFreeEndsEarly) {
	nbc_policy b = Bind(0);
	nb_u64 off = ~0ull, start, len;
	bool begun = false;
	sim::SetReschedHook([&] {
		if (!begun)
			begun = nbc_space_free_begin(sp, 0, &start, &len) == 0;
	});
	ASSERT_EQ(0, nbc_space_reserve(sp, 3 * k2M, &b, NBC_SPACE_HUGE_2M | NBC_SPACE_POPULATE, 0,
				       NB_CTX_SLEEP, &off));
	sim::SetReschedHook({});
	ASSERT_TRUE(begun) << "no preemption point while populating";
	EXPECT_EQ(0u, off);
	EXPECT_EQ(0, nbc_space_free_finish(sp, off, NB_CTX_SLEEP));
	nbc_space_info i;
	EXPECT_EQ(-NB_ENOENT, nbc_space_query(sp, off, &i));
	/* TearDown: every frame populated before the free is back in the pool. */
}

} /* namespace nbtest */
