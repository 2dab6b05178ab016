/* SPDX-License-Identifier: GPL-2.0 */
/*
 * space_fixture.h - the fixture of the nbc_space tests (space_*_test.cpp): a core over the
 * sim's two nodes (or two 1 GiB-aligned nodes), one space, helpers to fragment a node, fault,
 * query, and write/check page patterns. TearDown checks the pool is back to its initial state.
 *
 * Placement is checked against the sim's topology (RegionNode), not against the core.
 */
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "../../mm_core/nbc_space.h"
#include "test_util.h"

namespace nbtest {

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
	nbc_space *sp = nullptr;

	void SetUp() override { Open(nbtest::TwoNodes::Make()); }
	void Open(const sim::Topology &t) {
		Start(t);
		ASSERT_EQ(0, nbc_space_create(core, 0, NB_CTX_SLEEP, &sp));
	}
	/* Blocks the test holds outside the space to fragment a node: {pfn, order}. */
	std::vector<std::pair<nb_u64, unsigned>> pins;

	void TearDown() override {
		sim::SetReschedHook({});
		sim::SetUnlockHook({});
		if (sp != nullptr)
			nbc_space_destroy(sp, NB_CTX_SLEEP);
		for (const auto &p : pins)
			EXPECT_EQ(0, nbc_buddy_free(core, p.first, p.second));
		if (core != nullptr)
			ExpectPristine();
		nbtest::CoreTest::TearDown();
	}
	/* Takes every free block of `order` on `node`, then gives back all but the first one whose
	 * pfn >> keep_shift is new: one pinned block per 2^keep_shift frames stops any larger
	 * block from forming there. */
	void Fragment(int node, unsigned order, unsigned keep_shift, nb_u64 lo = 0,
		      nb_u64 hi = ~0ull) {
		nbc_policy p = Bind(node);
		std::vector<nb_u64> all;
		for (nb_u64 pfn; nbc_alloc(core, order, &p, NBC_AF_NOCACHE, NB_CTX_SLEEP, &pfn,
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
				ASSERT_EQ(0, nbc_buddy_free(core, pfn, order));
			}
		}
	}
	/* 2 MiB blocks allocated and freed one at a time on every CPU: each free parks its
	 * block in that CPU's cache (too small a free to drain them). */
	void ChurnTwoMegBlocks(int node, int rounds) {
		nbc_policy p = Bind(node);
		for (int round = 0; round < rounds; round++) {
			std::vector<nb_u64> offs(6);
			for (nb_u64 &o : offs)
				ASSERT_EQ(0, nbc_space_alloc(sp, k2M, &p, NBC_SPACE_NOZERO, NB_CTX_SLEEP, &o));
			for (size_t k = 0; k < offs.size(); k++) {
				sim::SetCpu((unsigned)(k + round) % sim::CpuCount());
				ASSERT_EQ(0, nbc_space_free(sp, offs[k], NB_CTX_SLEEP, nullptr, nullptr));
			}
			sim::SetCpu(0);
		}
	}
	nb_u64 FreeFrames(int node) {
		nbtest::NodeStats st = Stats(node);
		return st.free_frames + st.pcp_frames;
	}
	int FaultRc(nb_u64 off, unsigned cpu = 0, unsigned max_order = 18, int write = 1) {
		nbc_space_fault_result r;
		return nbc_space_fault(sp, off, write, cpu, max_order, NB_CTX_SLEEP, &r);
	}
	nbc_space_fault_result Fault(nb_u64 off, unsigned cpu = 0, unsigned max_order = 18) {
		nbc_space_fault_result r{};
		EXPECT_EQ(0, nbc_space_fault(sp, off, 1, cpu, max_order, NB_CTX_SLEEP, &r))
			<< std::hex << off;
		return r;
	}
	nbc_space_info Info(nb_u64 off) {
		nbc_space_info i{};
		EXPECT_EQ(0, nbc_space_query_full(sp, off, &i));
		return i;
	}
	nb_u64 Alloc(nb_u64 bytes, int node, unsigned flags = 0) {
		nbc_policy p = Bind(node);
		nb_u64 off = ~0ull;
		EXPECT_EQ(0, nbc_space_alloc(sp, bytes, &p, flags, NB_CTX_SLEEP, &off));
		return off;
	}
	static nbc_policy Interleave(nb_u64 mask) {
		nbc_policy p{};
		p.mode = NBC_POLICY_INTERLEAVE;
		p.nodemask = mask;
		return p;
	}
	/* Page i of [off, off+bytes) holds i * 7919 + salt in every u64. */
	void Write(nb_u64 off, nb_u64 bytes, nb_u64 salt) {
		for (nb_u64 i = 0; i < bytes / k4K; i++) {
			nbc_space_fault_result r = Fault(off + i * k4K, 0, 0);
			nb_u64 *p = static_cast<nb_u64 *>(sim::FrameAddr(r.pfn));
			ASSERT_NE(nullptr, p);
			for (unsigned w = 0; w < k4K / 8; w++)
				p[w] = i * 7919 + salt;
		}
	}
	void Check(nb_u64 off, nb_u64 bytes, nb_u64 salt) {
		for (nb_u64 i = 0; i < bytes / k4K; i++) {
			nbc_space_fault_result r = Fault(off + i * k4K, 0, 0);
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

} /* namespace nbtest */
