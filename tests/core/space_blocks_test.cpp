/* SPDX-License-Identifier: GPL-2.0 */
/*
 * space_blocks_test.cpp - nbc_space blocks: 1G/2M/4K decomposition at aligned offsets, the
 * 1G -> 2M -> 4K fallback and its all-or-nothing rule, offsets never reused, CONTIG and
 * LOW4G, frames zeroed before a user sees them.
 */
#include <cstring>

#include "space_fixture.h"

namespace nbtest {

TEST_F(SpaceBigTest, OneGigSixMegTwelveKDecomposesAndFaults) {
	const nb_u64 size = k1G + 6 * (1ull << 20) + 12 * 1024;
	nb_u64 off = Alloc(size, 0, NBC_SPACE_NOZERO);
	ASSERT_NE(~0ull, off);
	EXPECT_EQ(0u, off % k1G) << "aligned to the largest leaf";

	nbc_space_info i = Info(off + size - 1);
	EXPECT_EQ(off, i.offset);
	EXPECT_EQ(size, i.size);
	EXPECT_EQ((nb_u32)NBC_SPACE_KIND_BLOCK, i.kind);
	EXPECT_EQ(1u, i.frames_by_order[18]);
	EXPECT_EQ(3u, i.frames_by_order[9]);
	EXPECT_EQ(3u, i.frames_by_order[0]);
	EXPECT_EQ(18u, i.max_frame_order);
	EXPECT_EQ(size, i.populated_bytes);
	EXPECT_EQ(size, i.node_bytes[0]);
	EXPECT_EQ(0, i.node);
	EXPECT_EQ(0u, i.first_pfn % (1ull << 18));
	EXPECT_EQ(12 * 1024u, i.leaf_bytes[0]);
	EXPECT_EQ(6u << 20, i.leaf_bytes[1]);
	EXPECT_EQ(k1G, i.leaf_bytes[2]);
	EXPECT_EQ(size, nbc_space_node_bytes(sp, 0));

	nbc_space_fault_result r = Fault(off + 12345 * k4K);
	EXPECT_EQ(18u, r.order);
	EXPECT_EQ(off, r.offset);
	EXPECT_EQ(i.first_pfn, r.pfn);
	EXPECT_EQ(1u, r.writable);

	r = Fault(off + k1G + k2M + 5 * k4K);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(off + k1G + k2M, r.offset);
	EXPECT_EQ(0u, r.pfn % 512);
	EXPECT_EQ(0, RegionNode(r.pfn, 512));

	r = Fault(off + k1G + 3 * k2M + 2 * k4K);
	EXPECT_EQ(0u, r.order);
	EXPECT_EQ(off + k1G + 3 * k2M + 2 * k4K, r.offset);

	/* the VMA allows only 2 MiB or 4 KiB here: sub-frames of the 1 GiB frame */
	r = Fault(off + 5 * (1ull << 20) + k4K, 0, 9);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(off + 2 * k2M, r.offset);
	EXPECT_EQ(i.first_pfn + 1024, r.pfn);
	r = Fault(off + 5 * (1ull << 20) + k4K, 0, 0);
	EXPECT_EQ(0u, r.order);
	EXPECT_EQ(i.first_pfn + 1281, r.pfn);

	EXPECT_EQ(-NB_EFAULT, FaultRc(off + size));
	EXPECT_EQ(k1G, nbc_space_huge_align(sp, off, size));
	EXPECT_EQ(k2M, nbc_space_huge_align(sp, off + k1G, 6 << 20));
	EXPECT_EQ(k4K, nbc_space_huge_align(sp, off + k1G + 6 * (1 << 20), 12 << 10));
	EXPECT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	EXPECT_EQ(0u, nbc_space_node_bytes(sp, 0));
}

TEST_F(SpaceBigTest, DemandOneGigFrame) {
	nbc_policy p = Bind(1);
	nb_u64 off;
	ASSERT_EQ(0, nbc_space_reserve(sp, k1G + 2 * k2M, &p, NBC_SPACE_HUGE_1G | NBC_SPACE_NOZERO, 0,
				       NB_CTX_SLEEP, &off));
	EXPECT_EQ(0u, off % k1G);
	nbc_space_fault_result r = Fault(off + 77 * k4K);
	EXPECT_EQ(18u, r.order);
	EXPECT_EQ(1, RegionNode(r.pfn, 1ull << 18));
	r = Fault(off + k1G + k4K); /* past the 1 GiB chunk: a 2 MiB chunk inside the range */
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(k1G + k2M, nbc_space_node_bytes(sp, 1));
}

/* No 1 GiB block is free (one 2 MiB block of the GiB is held elsewhere), but plenty of 2 MiB
 * blocks are: the 1 GiB chunk is built from 512 of them, and the query says so. */
TEST_F(SpaceBigTest, BlockFallsBackToTwoMegFrames) {
	const nb_u64 base = 4 * nbtest::kHigh; /* node 0's 1 GiB-aligned region */
	Fragment(0, 9, 18, base, base + nbtest::kGiB);
	ASSERT_EQ(1u, pins.size());
	nbc_pcp_drain(core);
	ASSERT_LT(Stats(0).largest_free_order, 18);

	const nb_u64 size = k1G + 6 * (1ull << 20) + 12 * 1024;
	nb_u64 off = Alloc(size, 0, NBC_SPACE_NOZERO | NBC_SPACE_HUGE_2M);
	ASSERT_NE(~0ull, off);
	EXPECT_EQ(0u, off % k2M);
	nbc_space_info i = Info(off);
	EXPECT_EQ(k1G + 8 * (1ull << 20), i.size) << "HUGE_2M still rounds the size";
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));

	off = Alloc(size, 0, NBC_SPACE_NOZERO);
	ASSERT_NE(~0ull, off);
	i = Info(off);
	EXPECT_EQ(0u, i.frames_by_order[18]);
	EXPECT_EQ(515u, i.frames_by_order[9]);
	EXPECT_EQ(3u, i.frames_by_order[0]);
	EXPECT_EQ(9u, i.max_frame_order);
	EXPECT_EQ(size, i.populated_bytes);
	EXPECT_EQ(size, i.node_bytes[0]);
	EXPECT_EQ(0u, i.leaf_bytes[2]);
	EXPECT_EQ(515 * k2M, i.leaf_bytes[1]);
	EXPECT_EQ(12 * 1024u, i.leaf_bytes[0]);
	EXPECT_EQ(size, nbc_space_node_bytes(sp, 0));
	nbc_space_fault_result r = Fault(off + 12345 * k4K);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(0, RegionNode(r.pfn, 512));
	EXPECT_EQ(0u, Fault(off + 515 * k2M + k4K).order);
	EXPECT_EQ(k2M, nbc_space_huge_align(sp, off, size));

	/* HUGE_1G is a preference too; CONTIG is not: it needs the whole GiB in one piece */
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	nbc_policy b0 = Bind(0);
	nb_u64 o;
	EXPECT_EQ(-NB_ENOMEM, nbc_space_alloc(sp, k1G, &b0, NBC_SPACE_CONTIG | NBC_SPACE_NOZERO,
					      NB_CTX_SLEEP, &o));
	off = Alloc(k1G, 0, NBC_SPACE_HUGE_1G | NBC_SPACE_NOZERO);
	EXPECT_EQ(512u, Info(off).frames_by_order[9]);
}

/* One 4 KiB frame held in every 2 MiB of node 0: 2 MiB chunks are built from 4 KiB frames. */
TEST_F(SpaceTest, BlockFallsBackToFourKFrames) {
	Fragment(0, 0, 9);
	EXPECT_EQ(8u, pins.size());
	const nb_u64 size = 3 * k2M + 3 * k4K;
	nb_u64 off = Alloc(size, 0, NBC_SPACE_HUGE_2M);
	ASSERT_NE(~0ull, off);
	nbc_space_info i = Info(off);
	EXPECT_EQ(4 * k2M, i.size);
	EXPECT_EQ(0u, i.frames_by_order[9]);
	EXPECT_EQ(4 * 512u, i.frames_by_order[0]);
	EXPECT_EQ(0u, i.max_frame_order);
	EXPECT_EQ(4 * k2M, i.leaf_bytes[0]);
	EXPECT_EQ(0u, Fault(off + k2M + 7 * k4K, 0, 18).order);
	EXPECT_EQ(k4K, nbc_space_huge_align(sp, off, i.size));
	Write(off, i.size, 5);

	/* migration keeps what it got, 4 KiB frame by 4 KiB frame */
	nb_u64 moved = 0;
	ASSERT_EQ(0, nbc_space_migrate(sp, off, 1, NB_CTX_SLEEP, nullptr, nullptr, &moved));
	EXPECT_EQ(i.size, moved);
	EXPECT_EQ(4 * 512u, Info(off).frames_by_order[0]);
	EXPECT_EQ(i.size, nbc_space_node_bytes(sp, 1));
	Check(off, i.size, 5);
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));

	nbc_policy b0 = Bind(0);
	nb_u64 o;
	EXPECT_EQ(-NB_ENOMEM, nbc_space_alloc(sp, k2M, &b0, NBC_SPACE_CONTIG, NB_CTX_SLEEP, &o));
}

/* Fallback keeps all or nothing: no memory, quota and a fatal signal all leave nothing held. */
TEST_F(SpaceTest, BlockFallbackIsAllOrNothing) {
	Fragment(0, 0, 9);
	nbc_policy b0 = Bind(0);
	nb_u64 o, avail = FreeFrames(0);
	EXPECT_EQ(-NB_ENOMEM, nbc_space_alloc(sp, (avail + 1) * k4K, &b0, NBC_SPACE_NOZERO,
					      NB_CTX_SLEEP, &o));
	EXPECT_EQ(avail, FreeFrames(0));
	EXPECT_EQ(0u, nbc_space_node_bytes(sp, 0));

	ASSERT_EQ(0, nbc_space_set_quota(sp, 0, 2 * k2M));
	EXPECT_EQ(-NB_EDQUOT, nbc_space_alloc(sp, 3 * k2M, &b0, 0, NB_CTX_SLEEP, &o));
	EXPECT_EQ(avail, FreeFrames(0));
	EXPECT_EQ(0u, nbc_space_node_bytes(sp, 0));
	ASSERT_EQ(0, nbc_space_set_quota(sp, 0, NBC_SPACE_NO_QUOTA));

	/* 4 KiB frames are zeroed one by one: the signal is seen between them */
	unsigned long before = sim::ReschedCalls();
	sim::SetAbort(true);
	int rc = nbc_space_alloc(sp, 3 * k2M, &b0, 0, NB_CTX_SLEEP, &o);
	sim::SetAbort(false);
	EXPECT_EQ(-NB_EINTR, rc);
	EXPECT_EQ(avail, FreeFrames(0));
	EXPECT_EQ(0u, nbc_space_node_bytes(sp, 0));
	ASSERT_EQ(0, nbc_space_alloc(sp, 3 * k2M, &b0, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &o));
	EXPECT_GE(sim::ReschedCalls() - before, 2u) << "breaks between small frames";
}

TEST_F(SpaceTest, OffsetsAlignedAndNeverReused) {
	nb_u64 a = Alloc(k4K, 0);
	nb_u64 b = Alloc(k2M, 0);
	nb_u64 c = Alloc(3 * k4K, 1);
	EXPECT_EQ(0u, b % k2M);
	EXPECT_GT(b, a);
	EXPECT_GE(c, b + k2M);
	ASSERT_EQ(0, nbc_space_free(sp, a, NB_CTX_SLEEP, nullptr, nullptr));
	nb_u64 d = Alloc(k4K, 0);
	EXPECT_GT(d, c) << "a freed offset is never handed out again";
	EXPECT_EQ(-NB_EFAULT, FaultRc(a));

	/* HUGE_2M rounds the size up to whole 2 MiB frames */
	nb_u64 e = Alloc(3 << 20, 1, NBC_SPACE_HUGE_2M);
	nbc_space_info i = Info(e);
	EXPECT_EQ(4u << 20, i.size);
	EXPECT_EQ(2u, i.frames_by_order[9]);
	EXPECT_EQ(0u, i.frames_by_order[0]);
}

TEST_F(SpaceTest, ContigAndLow4G) {
	nb_u64 off = Alloc(5 * k4K, 1, NBC_SPACE_CONTIG);
	nbc_space_info i = Info(off);
	EXPECT_EQ(5 * k4K, i.populated_bytes);
	for (unsigned k = 0; k <= NBC_ORDER_LIMIT; k++)
		EXPECT_EQ(0u, i.frames_by_order[k]);
	for (nb_u64 p = 0; p < 5; p++)
		EXPECT_EQ(i.first_pfn + p, Fault(off + p * k4K).pfn);
	EXPECT_EQ(1, RegionNode(i.first_pfn, 5));

	/* 3 MiB contiguous: its first frame is 2 MiB-aligned, so its offset is too and it maps huge */
	nb_u64 big = Alloc(3 << 20, 0, NBC_SPACE_CONTIG);
	nbc_space_fault_result r = Fault(big);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(0u, Fault(big + k2M + k4K).order);
	EXPECT_EQ(Info(big).first_pfn + 512 + 1, Fault(big + k2M + k4K).pfn);

	/* this topology has nothing below 4 GiB */
	nbc_policy p = Bind(0);
	nb_u64 o;
	EXPECT_EQ(-NB_ENOMEM, nbc_space_alloc(sp, k4K, &p, NBC_SPACE_LOW4G, NB_CTX_SLEEP, &o));
	EXPECT_EQ(-NB_EINVAL, nbc_space_alloc(sp, 0, &p, 0, NB_CTX_SLEEP, &o));
	EXPECT_EQ(-NB_EINVAL, nbc_space_alloc(sp, k4K, &p, 1u << 9, NB_CTX_SLEEP, &o));
}

TEST_F(SpaceTest, FramesReachUsersZeroed) {
	nb_u64 a = Alloc(16 * k4K, 0);
	Check(a, 0, 0);
	for (nb_u64 q = 0; q < 16; q++)
		std::memset(sim::FrameAddr(Fault(a + q * k4K).pfn), 0xab, k4K);
	nbc_policy p = Bind(0);
	nb_u64 d;
	ASSERT_EQ(0, nbc_space_reserve(sp, 16 * k4K, &p, 0, 0, NB_CTX_SLEEP, &d));
	for (nb_u64 q = 0; q < 16; q++)
		std::memset(sim::FrameAddr(Fault(d + q * k4K).pfn), 0xcd, k4K);
	ASSERT_EQ(0, nbc_space_free(sp, a, NB_CTX_SLEEP, nullptr, nullptr));
	ASSERT_EQ(0, nbc_space_free(sp, d, NB_CTX_SLEEP, nullptr, nullptr));

	nb_u64 b = Alloc(16 * k4K, 0);
	ASSERT_EQ(0, nbc_space_reserve(sp, 16 * k4K, &p, 0, 0, NB_CTX_SLEEP, &d));
	for (nb_u64 off : {b, d})
		for (nb_u64 q = 0; q < 16; q++) {
			const unsigned char *m = static_cast<const unsigned char *>(
				sim::FrameAddr(Fault(off + q * k4K).pfn));
			for (nb_u64 x = 0; x < k4K; x++)
				ASSERT_EQ(0, m[x]) << "page " << q;
		}
}


/* What an empty nodemask means is the core's rule alone (nbc_policy_normalize): the shim
 * passes the uapi's request through, so this is what user space gets (uapi/numabuddy.h).
 * INTERLEAVE over every node with a pool, whatever `node` says; BIND on `node`, or on the
 * calling CPU's node for -1. Nodes are read from the sim's topology, not from the core. */
TEST_F(SpaceTest, EmptyMaskMeansWhatTheUapiSays) {
	for (int node : {-1, 0, 1}) {
		nbc_policy il = Interleave(0);
		il.node = node;
		int seen[2] = {};
		int prev = -1;
		for (int k = 0; k < 4; k++) {
			nb_u64 o;
			ASSERT_EQ(0, nbc_space_alloc(sp, k4K, &il, 0, NB_CTX_SLEEP, &o)) << node;
			int n = RegionNode(Info(o).first_pfn);
			ASSERT_TRUE(n == 0 || n == 1) << n;
			EXPECT_NE(prev, n) << "INTERLEAVE with an empty mask alternates, node " << node;
			prev = n;
			seen[n]++;
		}
		EXPECT_EQ(2, seen[0]);
		EXPECT_EQ(2, seen[1]);
	}
	/* A reserved range goes round every pool node too, frame by frame. */
	nbc_policy il = Interleave(0);
	nb_u64 r;
	ASSERT_EQ(0, nbc_space_reserve(sp, 4 * k4K, &il, 0, 0, NB_CTX_SLEEP, &r));
	EXPECT_NE(RegionNode(Fault(r).pfn), RegionNode(Fault(r + k4K).pfn));

	nbc_policy bind{};
	bind.mode = NBC_POLICY_BIND;
	bind.node = 1;
	nb_u64 o;
	sim::SetCpu(0); /* node 0: BIND must not mean "local" */
	ASSERT_EQ(0, nbc_space_alloc(sp, 3 * k4K, &bind, 0, NB_CTX_SLEEP, &o));
	EXPECT_EQ(3 * k4K, Info(o).node_bytes[1]);
	EXPECT_EQ(1, RegionNode(Info(o).first_pfn));
	bind.node = -1;
	for (unsigned cpu : {2u, 0u}) { /* TwoNodes: CPUs 0, 1 on node 0; 2, 3 on node 1 */
		sim::SetCpu(cpu);
		ASSERT_EQ(0, nbc_space_alloc(sp, 3 * k4K, &bind, 0, NB_CTX_SLEEP, &o));
		EXPECT_EQ(3 * k4K, Info(o).node_bytes[cpu / 2]) << "cpu " << cpu;
		EXPECT_EQ((int)cpu / 2, RegionNode(Info(o).first_pfn));
	}
	sim::SetCpu(0);
	/* And the raw block API keeps taking a policy as it is. */
	nb_u64 pfn;
	EXPECT_EQ(-NB_EINVAL, nbc_alloc(core, 0, &bind, 0, NB_CTX_SLEEP, &pfn, nullptr));
	nbc_policy out;
	ASSERT_EQ(0, nbc_policy_normalize(core, &il, &out));
	EXPECT_EQ(3u, out.nodemask);
}

} /* namespace nbtest */
