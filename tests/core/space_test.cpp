/* SPDX-License-Identifier: GPL-2.0 */
/*
 * space_test.cpp - nb_space: blocks decomposed into 1G/2M/4K frames and mapped at aligned
 * offsets, demand faults under local/bind/interleave, two-phase free, quotas, migration with
 * contents and orders kept, destroy returning the pool to its initial state, and faults
 * racing migrations and each other (run under TSan by `make -C tests tsan`).
 *
 * Placement is checked against the sim's topology (RegionNode), not against the core.
 */
#include <algorithm>
#include <atomic>
#include <cstring>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../mm_core/nb_space.h"
#include "test_util.h"

namespace {

using nbtest::RegionNode;

constexpr nb_u64 k4K = 1ull << 12;
constexpr nb_u64 k2M = 1ull << 21;
constexpr nb_u64 k1G = 1ull << 30;

/* Two nodes of 1 GiB + 32 MiB each, 1 GiB-aligned, so an order-18 block exists on each. */
struct BigTwoNodes {
	static sim::Topology Make() {
		sim::Topology t;
		t.nodes = 2;
		t.cpus_per_node = 2;
		t.regions = {sim::Region(4 * nbtest::kHigh, nbtest::kGiB + 8192, 0),
			     sim::Region(8 * nbtest::kHigh, nbtest::kGiB + 8192, 1)};
		return t;
	}
};

class SpaceTest : public nbtest::CoreTest {
protected:
	nb_space *sp = nullptr;

	void SetUp() override { Open(nbtest::TwoNodes::Make()); }
	void Open(const sim::Topology &t) {
		Start(t);
		ASSERT_EQ(0, nb_space_create(core, 0, NB_CTX_SLEEP, &sp));
	}
	/* Blocks the test holds outside the space to fragment a node: {pfn, order}. */
	std::vector<std::pair<nb_u64, unsigned>> pins;

	void TearDown() override {
		if (sp != nullptr)
			nb_space_destroy(sp, NB_CTX_SLEEP);
		for (const auto &p : pins)
			EXPECT_EQ(0, nb_buddy_free(core, p.first, p.second));
		if (core != nullptr)
			ExpectPristine();
		nbtest::CoreTest::TearDown();
	}
	/* Takes every free block of `order` on `node`, then gives back all but the first one whose
	 * pfn >> keep_shift is new: one pinned block per 2^keep_shift frames stops any larger
	 * block from forming there. */
	void Fragment(int node, unsigned order, unsigned keep_shift, nb_u64 lo = 0,
		      nb_u64 hi = ~0ull) {
		nb_policy p = Bind(node);
		std::vector<nb_u64> all;
		for (nb_u64 pfn; nb_alloc(core, order, &p, NB_AF_NOCACHE, NB_CTX_SLEEP, &pfn,
					   nullptr) == 0;)
			all.push_back(pfn);
		std::vector<nb_u64> groups;
		for (nb_u64 pfn : all) {
			bool pin = pfn >= lo && pfn < hi &&
				   std::find(groups.begin(), groups.end(), pfn >> keep_shift) == groups.end();
			if (pin) {
				groups.push_back(pfn >> keep_shift);
				pins.push_back({pfn, order});
			} else {
				ASSERT_EQ(0, nb_buddy_free(core, pfn, order));
			}
		}
	}
	/* 2 MiB blocks allocated and freed one at a time on every CPU: each free parks its
	 * block in that CPU's cache (too small a free to drain them). */
	void ChurnTwoMegBlocks(int node, int rounds) {
		nb_policy p = Bind(node);
		for (int round = 0; round < rounds; round++) {
			std::vector<nb_u64> offs(6);
			for (nb_u64 &o : offs)
				ASSERT_EQ(0, nb_space_alloc(sp, k2M, &p, NB_SPACE_NOZERO, NB_CTX_SLEEP, &o));
			for (size_t k = 0; k < offs.size(); k++) {
				sim::SetCpu((unsigned)(k + round) % sim::CpuCount());
				ASSERT_EQ(0, nb_space_free(sp, offs[k], NB_CTX_SLEEP, nullptr, nullptr));
			}
			sim::SetCpu(0);
		}
	}
	nb_u64 FreeFrames(int node) {
		nbtest::NodeStats st = Stats(node);
		return st.free_frames + st.pcp_frames;
	}
	int FaultRc(nb_u64 off, unsigned cpu = 0, unsigned max_order = 18, int write = 1) {
		nb_space_fault_result r;
		return nb_space_fault(sp, off, write, cpu, max_order, NB_CTX_SLEEP, &r);
	}
	nb_space_fault_result Fault(nb_u64 off, unsigned cpu = 0, unsigned max_order = 18) {
		nb_space_fault_result r{};
		EXPECT_EQ(0, nb_space_fault(sp, off, 1, cpu, max_order, NB_CTX_SLEEP, &r))
			<< std::hex << off;
		return r;
	}
	nb_space_info Info(nb_u64 off) {
		nb_space_info i{};
		EXPECT_EQ(0, nb_space_query(sp, off, &i));
		return i;
	}
	nb_u64 Alloc(nb_u64 bytes, int node, unsigned flags = 0) {
		nb_policy p = Bind(node);
		nb_u64 off = ~0ull;
		EXPECT_EQ(0, nb_space_alloc(sp, bytes, &p, flags, NB_CTX_SLEEP, &off));
		return off;
	}
	static nb_policy Interleave(nb_u64 mask) {
		nb_policy p{};
		p.mode = NB_POLICY_INTERLEAVE;
		p.nodemask = mask;
		return p;
	}
	/* Page i of [off, off+bytes) holds i * 7919 + salt in every u64. */
	void Write(nb_u64 off, nb_u64 bytes, nb_u64 salt) {
		for (nb_u64 i = 0; i < bytes / k4K; i++) {
			nb_space_fault_result r = Fault(off + i * k4K, 0, 0);
			nb_u64 *p = static_cast<nb_u64 *>(sim::FrameAddr(r.pfn));
			ASSERT_NE(nullptr, p);
			for (unsigned w = 0; w < k4K / 8; w++)
				p[w] = i * 7919 + salt;
		}
	}
	void Check(nb_u64 off, nb_u64 bytes, nb_u64 salt) {
		for (nb_u64 i = 0; i < bytes / k4K; i++) {
			nb_space_fault_result r = Fault(off + i * k4K, 0, 0);
			const nb_u64 *p = static_cast<const nb_u64 *>(sim::FrameAddr(r.pfn));
			ASSERT_NE(nullptr, p);
			for (unsigned w = 0; w < k4K / 8; w += 64)
				ASSERT_EQ(i * 7919 + salt, p[w]) << "page " << i;
		}
	}
};

class SpaceBigTest : public SpaceTest {
protected:
	void SetUp() override { Open(BigTwoNodes::Make()); }
};

TEST_F(SpaceBigTest, OneGigSixMegTwelveKDecomposesAndFaults) {
	const nb_u64 size = k1G + 6 * (1ull << 20) + 12 * 1024;
	nb_u64 off = Alloc(size, 0, NB_SPACE_NOZERO);
	ASSERT_NE(~0ull, off);
	EXPECT_EQ(0u, off % k1G) << "aligned to the largest leaf";

	nb_space_info i = Info(off + size - 1);
	EXPECT_EQ(off, i.offset);
	EXPECT_EQ(size, i.size);
	EXPECT_EQ((nb_u32)NB_SPACE_KIND_BLOCK, i.kind);
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
	EXPECT_EQ(size, nb_space_node_bytes(sp, 0));

	nb_space_fault_result r = Fault(off + 12345 * k4K);
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
	EXPECT_EQ(k1G, nb_space_huge_align(sp, off, size));
	EXPECT_EQ(k2M, nb_space_huge_align(sp, off + k1G, 6 << 20));
	EXPECT_EQ(k4K, nb_space_huge_align(sp, off + k1G + 6 * (1 << 20), 12 << 10));
	EXPECT_EQ(0, nb_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	EXPECT_EQ(0u, nb_space_node_bytes(sp, 0));
}

TEST_F(SpaceBigTest, DemandOneGigFrame) {
	nb_policy p = Bind(1);
	nb_u64 off;
	ASSERT_EQ(0, nb_space_reserve(sp, k1G + 2 * k2M, &p, NB_SPACE_HUGE_1G | NB_SPACE_NOZERO, 0,
				      NB_CTX_SLEEP, &off));
	EXPECT_EQ(0u, off % k1G);
	nb_space_fault_result r = Fault(off + 77 * k4K);
	EXPECT_EQ(18u, r.order);
	EXPECT_EQ(1, RegionNode(r.pfn, 1ull << 18));
	r = Fault(off + k1G + k4K); /* past the 1 GiB chunk: a 2 MiB chunk inside the range */
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(k1G + k2M, nb_space_node_bytes(sp, 1));
}

/* No 1 GiB block is free (one 2 MiB block of the GiB is held elsewhere), but plenty of 2 MiB
 * blocks are: the 1 GiB chunk is built from 512 of them, and the query says so. */
TEST_F(SpaceBigTest, BlockFallsBackToTwoMegFrames) {
	const nb_u64 base = 4 * nbtest::kHigh; /* node 0's 1 GiB-aligned region */
	Fragment(0, 9, 18, base, base + nbtest::kGiB);
	ASSERT_EQ(1u, pins.size());
	nb_pcp_drain(core);
	ASSERT_LT(Stats(0).largest_free_order, 18);

	const nb_u64 size = k1G + 6 * (1ull << 20) + 12 * 1024;
	nb_u64 off = Alloc(size, 0, NB_SPACE_NOZERO | NB_SPACE_HUGE_2M);
	ASSERT_NE(~0ull, off);
	EXPECT_EQ(0u, off % k2M);
	nb_space_info i = Info(off);
	EXPECT_EQ(k1G + 8 * (1ull << 20), i.size) << "HUGE_2M still rounds the size";
	ASSERT_EQ(0, nb_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));

	off = Alloc(size, 0, NB_SPACE_NOZERO);
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
	EXPECT_EQ(size, nb_space_node_bytes(sp, 0));
	nb_space_fault_result r = Fault(off + 12345 * k4K);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(0, RegionNode(r.pfn, 512));
	EXPECT_EQ(0u, Fault(off + 515 * k2M + k4K).order);
	EXPECT_EQ(k2M, nb_space_huge_align(sp, off, size));

	/* HUGE_1G is a preference too; CONTIG is not: it needs the whole GiB in one piece */
	ASSERT_EQ(0, nb_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
	nb_policy b0 = Bind(0);
	nb_u64 o;
	EXPECT_EQ(-NB_ENOMEM, nb_space_alloc(sp, k1G, &b0, NB_SPACE_CONTIG | NB_SPACE_NOZERO,
					     NB_CTX_SLEEP, &o));
	off = Alloc(k1G, 0, NB_SPACE_HUGE_1G | NB_SPACE_NOZERO);
	EXPECT_EQ(512u, Info(off).frames_by_order[9]);
}

/* One 4 KiB frame held in every 2 MiB of node 0: 2 MiB chunks are built from 4 KiB frames. */
TEST_F(SpaceTest, BlockFallsBackToFourKFrames) {
	Fragment(0, 0, 9);
	EXPECT_EQ(8u, pins.size());
	const nb_u64 size = 3 * k2M + 3 * k4K;
	nb_u64 off = Alloc(size, 0, NB_SPACE_HUGE_2M);
	ASSERT_NE(~0ull, off);
	nb_space_info i = Info(off);
	EXPECT_EQ(4 * k2M, i.size);
	EXPECT_EQ(0u, i.frames_by_order[9]);
	EXPECT_EQ(4 * 512u, i.frames_by_order[0]);
	EXPECT_EQ(0u, i.max_frame_order);
	EXPECT_EQ(4 * k2M, i.leaf_bytes[0]);
	EXPECT_EQ(0u, Fault(off + k2M + 7 * k4K, 0, 18).order);
	EXPECT_EQ(k4K, nb_space_huge_align(sp, off, i.size));
	Write(off, i.size, 5);

	/* migration keeps what it got, 4 KiB frame by 4 KiB frame */
	nb_u64 moved = 0;
	ASSERT_EQ(0, nb_space_migrate(sp, off, 1, NB_CTX_SLEEP, nullptr, nullptr, &moved));
	EXPECT_EQ(i.size, moved);
	EXPECT_EQ(4 * 512u, Info(off).frames_by_order[0]);
	EXPECT_EQ(i.size, nb_space_node_bytes(sp, 1));
	Check(off, i.size, 5);
	ASSERT_EQ(0, nb_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));

	nb_policy b0 = Bind(0);
	nb_u64 o;
	EXPECT_EQ(-NB_ENOMEM, nb_space_alloc(sp, k2M, &b0, NB_SPACE_CONTIG, NB_CTX_SLEEP, &o));
}

/* Fallback keeps all or nothing: no memory, quota and a fatal signal all leave nothing held. */
TEST_F(SpaceTest, BlockFallbackIsAllOrNothing) {
	Fragment(0, 0, 9);
	nb_policy b0 = Bind(0);
	nb_u64 o, avail = FreeFrames(0);
	EXPECT_EQ(-NB_ENOMEM, nb_space_alloc(sp, (avail + 1) * k4K, &b0, NB_SPACE_NOZERO,
					     NB_CTX_SLEEP, &o));
	EXPECT_EQ(avail, FreeFrames(0));
	EXPECT_EQ(0u, nb_space_node_bytes(sp, 0));

	ASSERT_EQ(0, nb_space_set_quota(sp, 0, 2 * k2M));
	EXPECT_EQ(-NB_EDQUOT, nb_space_alloc(sp, 3 * k2M, &b0, 0, NB_CTX_SLEEP, &o));
	EXPECT_EQ(avail, FreeFrames(0));
	EXPECT_EQ(0u, nb_space_node_bytes(sp, 0));
	ASSERT_EQ(0, nb_space_set_quota(sp, 0, NB_SPACE_NO_QUOTA));

	/* 4 KiB frames are zeroed one by one: the signal is seen between them */
	unsigned long before = sim::ReschedCalls();
	sim::SetAbort(true);
	int rc = nb_space_alloc(sp, 3 * k2M, &b0, 0, NB_CTX_SLEEP, &o);
	sim::SetAbort(false);
	EXPECT_EQ(-NB_EINTR, rc);
	EXPECT_EQ(avail, FreeFrames(0));
	EXPECT_EQ(0u, nb_space_node_bytes(sp, 0));
	ASSERT_EQ(0, nb_space_alloc(sp, 3 * k2M, &b0, NB_SPACE_NOZERO, NB_CTX_SLEEP, &o));
	EXPECT_GE(sim::ReschedCalls() - before, 2u) << "breaks between small frames";
}

TEST_F(SpaceTest, OffsetsAlignedAndNeverReused) {
	nb_u64 a = Alloc(k4K, 0);
	nb_u64 b = Alloc(k2M, 0);
	nb_u64 c = Alloc(3 * k4K, 1);
	EXPECT_EQ(0u, b % k2M);
	EXPECT_GT(b, a);
	EXPECT_GE(c, b + k2M);
	ASSERT_EQ(0, nb_space_free(sp, a, NB_CTX_SLEEP, nullptr, nullptr));
	nb_u64 d = Alloc(k4K, 0);
	EXPECT_GT(d, c) << "a freed offset is never handed out again";
	EXPECT_EQ(-NB_EFAULT, FaultRc(a));

	/* HUGE_2M rounds the size up to whole 2 MiB frames */
	nb_u64 e = Alloc(3 << 20, 1, NB_SPACE_HUGE_2M);
	nb_space_info i = Info(e);
	EXPECT_EQ(4u << 20, i.size);
	EXPECT_EQ(2u, i.frames_by_order[9]);
	EXPECT_EQ(0u, i.frames_by_order[0]);
}

TEST_F(SpaceTest, ContigAndLow4G) {
	nb_u64 off = Alloc(5 * k4K, 1, NB_SPACE_CONTIG);
	nb_space_info i = Info(off);
	EXPECT_EQ(5 * k4K, i.populated_bytes);
	for (unsigned k = 0; k <= NB_ORDER_LIMIT; k++)
		EXPECT_EQ(0u, i.frames_by_order[k]);
	for (nb_u64 p = 0; p < 5; p++)
		EXPECT_EQ(i.first_pfn + p, Fault(off + p * k4K).pfn);
	EXPECT_EQ(1, RegionNode(i.first_pfn, 5));

	/* 3 MiB contiguous: its first frame is 2 MiB-aligned, so its offset is too and it maps huge */
	nb_u64 big = Alloc(3 << 20, 0, NB_SPACE_CONTIG);
	nb_space_fault_result r = Fault(big);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(0u, Fault(big + k2M + k4K).order);
	EXPECT_EQ(Info(big).first_pfn + 512 + 1, Fault(big + k2M + k4K).pfn);

	/* this topology has nothing below 4 GiB */
	nb_policy p = Bind(0);
	nb_u64 o;
	EXPECT_EQ(-NB_ENOMEM, nb_space_alloc(sp, k4K, &p, NB_SPACE_LOW4G, NB_CTX_SLEEP, &o));
	EXPECT_EQ(-NB_EINVAL, nb_space_alloc(sp, 0, &p, 0, NB_CTX_SLEEP, &o));
	EXPECT_EQ(-NB_EINVAL, nb_space_alloc(sp, k4K, &p, 1u << 9, NB_CTX_SLEEP, &o));
}

TEST_F(SpaceTest, FramesReachUsersZeroed) {
	nb_u64 a = Alloc(16 * k4K, 0);
	Check(a, 0, 0);
	for (nb_u64 q = 0; q < 16; q++)
		std::memset(sim::FrameAddr(Fault(a + q * k4K).pfn), 0xab, k4K);
	nb_policy p = Bind(0);
	nb_u64 d;
	ASSERT_EQ(0, nb_space_reserve(sp, 16 * k4K, &p, 0, 0, NB_CTX_SLEEP, &d));
	for (nb_u64 q = 0; q < 16; q++)
		std::memset(sim::FrameAddr(Fault(d + q * k4K).pfn), 0xcd, k4K);
	ASSERT_EQ(0, nb_space_free(sp, a, NB_CTX_SLEEP, nullptr, nullptr));
	ASSERT_EQ(0, nb_space_free(sp, d, NB_CTX_SLEEP, nullptr, nullptr));

	nb_u64 b = Alloc(16 * k4K, 0);
	ASSERT_EQ(0, nb_space_reserve(sp, 16 * k4K, &p, 0, 0, NB_CTX_SLEEP, &d));
	for (nb_u64 off : {b, d})
		for (nb_u64 q = 0; q < 16; q++) {
			const unsigned char *m = static_cast<const unsigned char *>(
				sim::FrameAddr(Fault(off + q * k4K).pfn));
			for (nb_u64 x = 0; x < k4K; x++)
				ASSERT_EQ(0, m[x]) << "page " << q;
		}
}

TEST_F(SpaceTest, DemandFaultsLandOnTheFaultingCpusNode) {
	nb_u64 off;
	ASSERT_EQ(0, nb_space_reserve(sp, 16 * k4K, nullptr, 0, 0, NB_CTX_SLEEP, &off));
	nb_space_info i = Info(off);
	EXPECT_EQ(-1, i.node);
	EXPECT_EQ(0u, i.populated_bytes);
	EXPECT_EQ((nb_u32)NB_SPACE_KIND_RESERVED, i.kind);

	sim::SetCpu(2); /* node 1 */
	nb_space_fault_result r = Fault(off, 2);
	EXPECT_EQ(1, RegionNode(r.pfn));
	sim::SetCpu(0);
	EXPECT_EQ(0, RegionNode(Fault(off + k4K, 0).pfn));
	/* the fault's cpu argument decides, not the CPU the call happens to run on */
	EXPECT_EQ(1, RegionNode(Fault(off + 2 * k4K, 3).pfn));
	EXPECT_EQ(r.pfn, Fault(off, 0).pfn) << "a second touch finds the frame";
	EXPECT_EQ(k4K, nb_space_node_bytes(sp, 0));
	EXPECT_EQ(2 * k4K, nb_space_node_bytes(sp, 1));
	i = Info(off);
	EXPECT_EQ(3 * k4K, i.populated_bytes);
	EXPECT_EQ(1, i.node);
	EXPECT_EQ(2 * k4K, i.node_bytes[1]);
}

TEST_F(SpaceTest, DemandHugeChunksWhereAligned) {
	nb_u64 off;
	ASSERT_EQ(0, nb_space_reserve(sp, 3 * k2M + k4K, nullptr, NB_SPACE_HUGE_2M, 0,
				      NB_CTX_SLEEP, &off));
	EXPECT_EQ(0u, off % k2M);
	nb_space_fault_result r = Fault(off + k2M + 3 * k4K);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(off + k2M, r.offset);
	EXPECT_EQ(0u, Fault(off + 3 * k2M).order) << "the tail chunk is not inside the range";
	/* a 4 KiB-only VMA touches first: the frame is still 2 MiB, the answer a sub-frame */
	r = Fault(off + 5 * k4K, 0, 0);
	EXPECT_EQ(0u, r.order);
	nb_space_fault_result h = Fault(off, 0, 9);
	EXPECT_EQ(9u, h.order);
	EXPECT_EQ(h.pfn + 5, r.pfn);
	nb_space_info i = Info(off);
	EXPECT_EQ(2u, i.frames_by_order[9]);
	EXPECT_EQ(1u, i.frames_by_order[0]);
	EXPECT_EQ(k2M, nb_space_huge_align(sp, off, 3 * k2M));

	ASSERT_EQ(0, nb_space_reserve(sp, 2 * k2M, nullptr, 0, 0, NB_CTX_SLEEP, &off));
	EXPECT_EQ(0u, Fault(off).order) << "no HUGE flag: 4 KiB frames";
}

TEST_F(SpaceTest, DemandHugeFallsBackTo4KWhenNoHugeFrameIsFree) {
	std::vector<nb_u64> blocks;
	nb_policy b0 = Bind(0);
	for (nb_u64 o; nb_space_alloc(sp, k2M, &b0, NB_SPACE_NOZERO, NB_CTX_SLEEP, &o) == 0;)
		blocks.push_back(o);
	EXPECT_FALSE(blocks.empty());
	nb_u64 d;
	ASSERT_EQ(0, nb_space_reserve(sp, k2M, &b0, NB_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &d));
	nb_space_fault_result r{};
	int rc = nb_space_fault(sp, d + k4K, 1, 0, 18, NB_CTX_SLEEP, &r);
	if (rc == 0) { /* a 4 KiB frame was left over: the chunk is now 4 KiB for good */
		EXPECT_EQ(0u, r.order);
		EXPECT_EQ(0, RegionNode(r.pfn));
		ASSERT_EQ(0, nb_space_free(sp, blocks[0], NB_CTX_SLEEP, nullptr, nullptr));
		EXPECT_EQ(0u, Fault(d).order) << "a chunk holding 4 KiB frames stays 4 KiB";
	} else {
		EXPECT_EQ(-NB_ENOMEM, rc);
	}
}

TEST_F(SpaceTest, BindAndInterleaveHonoured) {
	nb_policy b = Bind(1);
	nb_u64 off;
	ASSERT_EQ(0, nb_space_reserve(sp, 8 * k4K, &b, 0, 0, NB_CTX_SLEEP, &off));
	for (nb_u64 q = 0; q < 8; q++)
		EXPECT_EQ(1, RegionNode(Fault(off + q * k4K, 0).pfn));

	nb_policy il = Interleave(3);
	ASSERT_EQ(0, nb_space_reserve(sp, 8 * k4K, &il, 0, 0, NB_CTX_SLEEP, &off));
	for (nb_u64 q = 8; q-- > 0;) /* touched backwards: placement follows the offset */
		EXPECT_EQ((int)(q % 2), RegionNode(Fault(off + q * k4K, 0).pfn)) << q;

	nb_u64 blk;
	ASSERT_EQ(0, nb_space_alloc(sp, 4 * k4K, &il, 0, NB_CTX_SLEEP, &blk));
	nb_space_info i = Info(blk);
	EXPECT_EQ(2 * k4K, i.node_bytes[0]);
	EXPECT_EQ(2 * k4K, i.node_bytes[1]);
}

TEST_F(SpaceTest, PopulateAllocatesEverythingNow) {
	nb_policy b = Bind(1);
	nb_u64 off;
	ASSERT_EQ(0, nb_space_reserve(sp, 2 * k2M + k4K, &b, NB_SPACE_HUGE_2M | NB_SPACE_POPULATE,
				      0, NB_CTX_SLEEP, &off));
	nb_space_info i = Info(off);
	EXPECT_EQ(2 * k2M + k4K, i.populated_bytes);
	EXPECT_EQ(2u, i.frames_by_order[9]);
	EXPECT_EQ(1u, i.frames_by_order[0]);
	EXPECT_EQ(2 * k2M + k4K, i.node_bytes[1]);
}

TEST_F(SpaceTest, FreeIsTwoPhase) {
	nb_u64 off = Alloc(2 * k4K, 0);
	Fault(off);
	nb_u64 s = 0, l = 0;
	EXPECT_EQ(-NB_ENOENT, nb_space_free_begin(sp, off + k4K, &s, &l)) << "not a range start";
	ASSERT_EQ(0, nb_space_free_begin(sp, off, &s, &l));
	EXPECT_EQ(off, s);
	EXPECT_EQ(2 * k4K, l);
	EXPECT_EQ(-NB_EFAULT, FaultRc(off + k4K)) << "dying: the shim sends SIGBUS";
	EXPECT_EQ(-NB_ENOENT, nb_space_free_begin(sp, off, &s, &l));
	EXPECT_EQ(-NB_EBUSY, nb_space_migrate_begin(sp, off, 1, &s, &l));
	EXPECT_EQ(2 * k4K, nb_space_node_bytes(sp, 0)) << "frames stay until finish";
	ASSERT_EQ(0, nb_space_free_finish(sp, off, NB_CTX_SLEEP));
	EXPECT_EQ(0u, nb_space_node_bytes(sp, 0));
	EXPECT_EQ(-NB_EINVAL, nb_space_free_finish(sp, off, NB_CTX_SLEEP));
	EXPECT_EQ(-NB_EFAULT, FaultRc(off));
	nb_space_info i;
	EXPECT_EQ(-NB_ENOENT, nb_space_query(sp, off, &i));

	/* the one-call form zaps between the phases */
	nb_u64 d;
	ASSERT_EQ(0, nb_space_reserve(sp, 4 * k4K, nullptr, 0, 0, NB_CTX_SLEEP, &d));
	Fault(d + k4K);
	struct Zap {
		nb_u64 start = 0, len = 0;
		nb_space *sp;
		int fault_rc = 0;
	} z;
	z.sp = sp;
	ASSERT_EQ(0, nb_space_free(sp, d, NB_CTX_SLEEP,
				   [](void *arg, nb_u64 start, nb_u64 len) {
					   Zap *zz = static_cast<Zap *>(arg);
					   zz->start = start;
					   zz->len = len;
					   nb_space_fault_result r;
					   zz->fault_rc = nb_space_fault(zz->sp, start, 0, 0, 18,
									 NB_CTX_ATOMIC, &r);
				   },
				   &z));
	EXPECT_EQ(d, z.start);
	EXPECT_EQ(4 * k4K, z.len);
	EXPECT_EQ(-NB_EFAULT, z.fault_rc);
}

TEST_F(SpaceTest, QuotaRefusesAndRecovers) {
	ASSERT_EQ(0, nb_space_set_quota(sp, 0, 16 * k4K));
	EXPECT_EQ(16 * k4K, nb_space_quota(sp, 0));
	EXPECT_EQ(NB_SPACE_NO_QUOTA, nb_space_quota(sp, 1));
	nb_u64 a = Alloc(16 * k4K, 0);
	nb_policy b0 = Bind(0);
	nb_u64 o;
	EXPECT_EQ(-NB_EDQUOT, nb_space_alloc(sp, k4K, &b0, 0, NB_CTX_SLEEP, &o));
	nb_u64 d;
	ASSERT_EQ(0, nb_space_reserve(sp, 4 * k4K, &b0, 0, 0, NB_CTX_SLEEP, &d));
	EXPECT_EQ(-NB_EDQUOT, FaultRc(d));
	Alloc(k4K, 1); /* another node is not limited */
	EXPECT_EQ(16 * k4K, nb_space_node_bytes(sp, 0));

	/* a block refused halfway gives back what it had taken */
	ASSERT_EQ(0, nb_space_set_quota(sp, 0, 16 * k4K + 3 * k2M));
	EXPECT_EQ(-NB_EDQUOT, nb_space_alloc(sp, 4 * k2M, &b0, 0, NB_CTX_SLEEP, &o));
	EXPECT_EQ(16 * k4K, nb_space_node_bytes(sp, 0));

	ASSERT_EQ(0, nb_space_set_quota(sp, 0, 16 * k4K));
	ASSERT_EQ(0, nb_space_free(sp, a, NB_CTX_SLEEP, nullptr, nullptr));
	Alloc(k4K, 0);
	EXPECT_EQ(0, FaultRc(d));
	EXPECT_EQ(2 * k4K, nb_space_node_bytes(sp, 0));
	EXPECT_EQ(-NB_EINVAL, nb_space_set_quota(sp, NB_MAX_NODES, 0));
}

TEST_F(SpaceTest, MigrationKeepsContentsAndOrders) {
	const nb_u64 size = 2 * k2M + 2 * k4K;
	nb_u64 off = Alloc(size, 0);
	Write(off, size, 1);
	nb_u64 s, l, moved = 0;
	ASSERT_EQ(0, nb_space_migrate_begin(sp, off, 1, &s, &l));
	EXPECT_EQ(off, s);
	EXPECT_EQ(size, l);
	EXPECT_EQ(-NB_EAGAIN, FaultRc(off)) << "faults wait while the range moves";
	EXPECT_EQ(-NB_EBUSY, nb_space_free_begin(sp, off, &s, &l));
	EXPECT_EQ(-NB_EBUSY, nb_space_migrate_begin(sp, off, 0, &s, &l));
	ASSERT_EQ(0, nb_space_migrate_finish(sp, off, NB_CTX_SLEEP, &moved));
	EXPECT_EQ(size, moved);

	nb_space_info i = Info(off);
	EXPECT_EQ(2u, i.frames_by_order[9]) << "huge stays huge";
	EXPECT_EQ(2u, i.frames_by_order[0]);
	EXPECT_EQ(size, i.node_bytes[1]);
	EXPECT_EQ(0u, nb_space_node_bytes(sp, 0));
	EXPECT_EQ(size, nb_space_node_bytes(sp, 1));
	nb_space_fault_result r = Fault(off + k2M + k4K);
	EXPECT_EQ(9u, r.order);
	EXPECT_EQ(1, RegionNode(r.pfn, 512));
	Check(off, size, 1);

	ASSERT_EQ(0, nb_space_migrate(sp, off, 1, NB_CTX_SLEEP, nullptr, nullptr, &moved));
	EXPECT_EQ(0u, moved) << "already there";
	EXPECT_EQ(-NB_EINVAL, nb_space_migrate(sp, off, 7, NB_CTX_SLEEP, nullptr, nullptr, &moved));
}

TEST_F(SpaceTest, MigrationOfDemandAndContigRanges) {
	nb_u64 d;
	const nb_u64 size = 2 * k2M + 2 * k4K;
	ASSERT_EQ(0, nb_space_reserve(sp, size, nullptr, NB_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &d));
	Write(d, k2M + k4K, 2); /* the first chunk and one page of the second */
	nb_u64 zapped = 0, moved = 0;
	ASSERT_EQ(0, nb_space_migrate(sp, d, 1, NB_CTX_SLEEP,
				      [](void *arg, nb_u64, nb_u64 len) {
					      *static_cast<nb_u64 *>(arg) = len;
				      },
				      &zapped, &moved));
	EXPECT_EQ(size, zapped);
	EXPECT_EQ(2 * k2M, moved);
	EXPECT_EQ(1, RegionNode(Fault(d).pfn, 512));
	EXPECT_EQ(9u, Fault(d).order);
	Check(d, k2M + k4K, 2);

	nb_u64 c = Alloc(5 * k4K, 0, NB_SPACE_CONTIG);
	Write(c, 5 * k4K, 3);
	ASSERT_EQ(0, nb_space_migrate(sp, c, 1, NB_CTX_SLEEP, nullptr, nullptr, &moved));
	EXPECT_EQ(5 * k4K, moved);
	nb_space_info i = Info(c);
	EXPECT_EQ(1, RegionNode(i.first_pfn, 5));
	for (nb_u64 q = 0; q < 5; q++)
		EXPECT_EQ(i.first_pfn + q, Fault(c + q * k4K).pfn);
	Check(c, 5 * k4K, 3);
}

TEST_F(SpaceTest, MigrationRefusedByQuotaChangesNothing) {
	nb_u64 off = Alloc(k2M, 0);
	Write(off, k2M, 4);
	nb_u64 before = Fault(off).pfn, moved = 7;
	ASSERT_EQ(0, nb_space_set_quota(sp, 1, k4K));
	EXPECT_EQ(-NB_EDQUOT, nb_space_migrate(sp, off, 1, NB_CTX_SLEEP, nullptr, nullptr, &moved));
	EXPECT_EQ(0u, moved);
	EXPECT_EQ(before, Fault(off).pfn) << "live again, where it was";
	EXPECT_EQ(0u, nb_space_node_bytes(sp, 1));
	Check(off, k2M, 4);
}

TEST_F(SpaceTest, DestroyReturnsThePoolExactly) {
	nb_policy il = Interleave(3);
	nb_u64 o;
	Alloc(3 * k2M + 5 * k4K, 0);
	Alloc(7 * k4K, 1, NB_SPACE_CONTIG);
	ASSERT_EQ(0, nb_space_alloc(sp, 9 * k4K, &il, 0, NB_CTX_SLEEP, &o));
	ASSERT_EQ(0, nb_space_reserve(sp, 4 * k2M, &il, NB_SPACE_HUGE_2M, 0, NB_CTX_SLEEP, &o));
	Fault(o);
	Fault(o + 3 * k2M);
	ASSERT_EQ(0, nb_space_reserve(sp, 64 * k4K, nullptr, 0, 0, NB_CTX_SLEEP, &o));
	for (nb_u64 q = 0; q < 64; q += 3)
		Fault(o + q * k4K, q % 4);
	nb_u64 s, l;
	ASSERT_EQ(0, nb_space_free_begin(sp, o, &s, &l)); /* left half-freed at close */
	EXPECT_GT(nb_space_table_pages(sp), 1u);
	/* TearDown destroys the space and checks every free list against the initial state */
}

/* Freed memory coalesces again: blocks parked in per-CPU caches are given back when a
 * contiguous allocation needs them, and at the latest when the space is destroyed. */
TEST_F(SpaceTest, FreedBlocksCoalesceAgain) {
	nb_space_destroy(sp, NB_CTX_SLEEP); /* tables on node 1, so that node 0 can be had whole */
	sp = nullptr;
	ASSERT_EQ(0, nb_space_create(core, 1, NB_CTX_SLEEP, &sp));
	const nb_u64 whole = initial_[0].total_frames;
	ChurnTwoMegBlocks(0, 4);
	ASSERT_GT(Stats(0).pcp_frames, 0u);
	ASSERT_LT(Stats(0).largest_free_order, initial_[0].largest_free_order);

	/* nb_alloc_contig drains the caches before it gives up */
	nb_policy b0 = Bind(0);
	nb_u64 pfn;
	int node = -1;
	ASSERT_EQ(0, nb_alloc_contig(core, whole, &b0, 0, NB_CTX_SLEEP, &pfn, &node));
	EXPECT_EQ(0, node);
	ASSERT_EQ(0, nb_free_range(core, pfn, whole));

	/* destroy gives them back itself: the node is as it started, with no drain by anyone */
	ChurnTwoMegBlocks(0, 4);
	ASSERT_GT(Stats(0).pcp_frames, 0u);
	nb_space_destroy(sp, NB_CTX_SLEEP);
	sp = nullptr;
	for (int n = 0; n < 2; n++) {
		nbtest::NodeStats st = Stats(n);
		EXPECT_EQ(0u, st.pcp_frames) << "node " << n;
		EXPECT_EQ(initial_[n].free_frames, st.free_frames) << "node " << n;
		EXPECT_EQ(initial_[n].largest_free_order, st.largest_free_order) << "node " << n;
	}
	ASSERT_EQ(0, nb_alloc_contig(core, whole, &b0, 0, NB_CTX_SLEEP, &pfn, &node));
	ASSERT_EQ(0, nb_free_range(core, pfn, whole));
}

/* A free of many blocks drains the caches; a single 2 MiB block is not worth a drain. */
TEST_F(SpaceTest, FreeOfManyBlocksDrainsTheCaches) {
	nb_u64 few = Alloc(k2M, 0, NB_SPACE_NOZERO);
	nb_u64 many = Alloc(2 * k2M + 8 * k4K, 0, NB_SPACE_NOZERO); /* 10 blocks >= 4 CPUs x 2 */
	ASSERT_EQ(0, nb_space_free(sp, few, NB_CTX_SLEEP, nullptr, nullptr));
	EXPECT_GE(Stats(0).pcp_frames, 512u);
	ASSERT_EQ(0, nb_space_free(sp, many, NB_CTX_SLEEP, nullptr, nullptr));
	EXPECT_EQ(0u, Stats(0).pcp_frames);
	EXPECT_EQ(0u, Stats(1).pcp_frames);
}

TEST_F(SpaceTest, ManyRangesGrowTheIndex) {
	std::vector<nb_u64> offs;
	for (int k = 0; k < 100; k++)
		offs.push_back(Alloc(k4K, k % 2));
	for (size_t k = 0; k < offs.size(); k += 2)
		ASSERT_EQ(0, nb_space_free(sp, offs[k], NB_CTX_SLEEP, nullptr, nullptr));
	for (size_t k = 1; k < offs.size(); k += 2)
		EXPECT_EQ((int)(k % 2), RegionNode(Fault(offs[k]).pfn));
	EXPECT_EQ(50 * k4K, nb_space_node_bytes(sp, 1));
}

/* First touches of the same pages from many threads: each page gets exactly one frame. */
TEST_F(SpaceTest, ConcurrentFirstTouch) {
	nb_u64 off;
	ASSERT_EQ(0, nb_space_reserve(sp, 64 * k4K + 2 * k2M, nullptr, NB_SPACE_HUGE_2M, 0,
				      NB_CTX_SLEEP, &off));
	const unsigned kThreads = 4;
	std::vector<std::vector<nb_u64>> seen(kThreads);
	std::atomic<unsigned> ready{0};
	std::vector<std::thread> ts;
	for (unsigned t = 0; t < kThreads; t++)
		ts.emplace_back([&, t] {
			sim::SetCpu(t);
			ready++;
			while (ready.load() < kThreads) {
			}
			for (nb_u64 q = 0; q < 64 + 1024; q++) {
				nb_space_fault_result r{};
				EXPECT_EQ(0, nb_space_fault(sp, off + q * k4K, 1, t, 0, NB_CTX_SLEEP, &r));
				seen[t].push_back(r.pfn);
			}
		});
	for (std::thread &t : ts)
		t.join();
	for (unsigned t = 1; t < kThreads; t++)
		EXPECT_EQ(seen[0], seen[t]);
	EXPECT_EQ(64 * k4K + 2 * k2M, nb_space_node_bytes(sp, 0) + nb_space_node_bytes(sp, 1));
	EXPECT_EQ(2u, Info(off).frames_by_order[9]);
}

/*
 * Faults racing migrations, with the shim's zap protocol modelled by a shared_mutex: a fault
 * holds it shared from nb_space_fault until it is done with the frame (the PTE's life), the
 * migrator holds it exclusively around migrate_begin (the zap). Every increment must survive
 * every copy, and no fault may ever use a frame after it was freed (ASan/TSan would see it).
 */
TEST_F(SpaceTest, ConcurrentFaultsAndMigrations) {
	const nb_u64 size = k2M + 4 * k4K;
	nb_u64 off = Alloc(size, 0);
	std::shared_mutex zap;
	std::atomic<bool> stop{false};
	std::atomic<unsigned long> done{0}, again{0};
	auto faulter = [&](unsigned cpu) {
		sim::SetCpu(cpu);
		for (unsigned long k = 0; !stop.load(); k++) {
			nb_u64 at = k % 5 == 0 ? off + (k % 7) * k4K : off + k2M + (k % 4) * k4K;
			std::shared_lock<std::shared_mutex> g(zap);
			nb_space_fault_result r;
			int rc = nb_space_fault(sp, at, 1, cpu, 0, NB_CTX_SLEEP, &r);
			if (rc == -NB_EAGAIN) {
				again++;
				continue;
			}
			ASSERT_EQ(0, rc);
			__atomic_fetch_add(static_cast<nb_u64 *>(sim::FrameAddr(r.pfn)), 1,
					   __ATOMIC_RELAXED);
			done++;
		}
	};
	std::thread f1(faulter, 0), f2(faulter, 2);
	int target = 1;
	nb_u64 total_moved = 0;
	for (int m = 0; m < 40; m++, target ^= 1) {
		nb_u64 s, l, moved;
		{
			std::unique_lock<std::shared_mutex> g(zap);
			ASSERT_EQ(0, nb_space_migrate_begin(sp, off, target, &s, &l));
		}
		ASSERT_EQ(0, nb_space_migrate_finish(sp, off, NB_CTX_SLEEP, &moved));
		EXPECT_EQ(size, moved);
		total_moved += moved;
		std::this_thread::yield();
	}
	stop = true;
	f1.join();
	f2.join();
	EXPECT_EQ(40 * size, total_moved);
	nb_u64 sum = 0;
	for (nb_u64 q = 0; q < 7; q++)
		sum += *static_cast<nb_u64 *>(sim::FrameAddr(Fault(off + q * k4K, 0, 0).pfn));
	for (nb_u64 q = 0; q < 4; q++)
		sum += *static_cast<nb_u64 *>(sim::FrameAddr(Fault(off + k2M + q * k4K, 0, 0).pfn));
	EXPECT_EQ(done.load(), sum) << again.load() << " retries";
	EXPECT_GT(done.load(), 0u);
	RecordProperty("faults", std::to_string(done.load()));
	RecordProperty("eagain", std::to_string(again.load()));
	EXPECT_EQ(1u, Info(off).frames_by_order[9]);
}

} /* namespace */
