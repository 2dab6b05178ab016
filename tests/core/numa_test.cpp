// SPDX-License-Identifier: GPL-2.0
/*
 * numa_test.cpp - numa.cpp: fallback order from the distance matrix (ties by id), memoryless
 * nodes, sparse CPUs, every policy, and exact numastat counters.
 */
#include <random>

#include "../../mm_core/numa.h"
#include "test_util.h"

namespace nbtest {
namespace {

class NumaTest : public CoreTest {
protected:
	/* Four nodes, node 2 memoryless; distances with ties. CPU 4 possible-but-absent. */
	void StartFour() {
		sim::Topology t;
		t.nodes = 4;
		t.cpu_node = {0, 1, 2, 3, -1, 0};
		t.distance = {10, 21, 21, 31,  //
			      21, 10, 31, 21,  //
			      21, 31, 10, 21,  //
			      31, 21, 21, 10};
		for (int n : {0, 1, 3})
			t.regions.push_back(Region((8 + static_cast<nb_u64>(n)) * kHigh, 512, n));
		Start(t);
	}
	std::vector<int> Fallback(int node) {
		int out[NBC_MAX_NODES];
		unsigned n = nbc_fallback_order(core, node, out, NBC_MAX_NODES);
		return std::vector<int>(out, out + n);
	}
	int AllocNode(const nbc_policy *pol, unsigned flags = 0) {
		nb_u64 pfn;
		int node = -1;
		EXPECT_EQ(0, nbc_alloc(core, 0, pol, flags, NB_CTX_ATOMIC, &pfn, &node));
		EXPECT_EQ(node, nbc_pfn_node(core, pfn));
		EXPECT_EQ(0, nbc_buddy_free(core, pfn, 0));
		return node;
	}
};

TEST_F(NumaTest, FallbackFollowsDistanceTiesById)
{
	StartFour();
	EXPECT_EQ(0xbull, nbc_nodes_with_memory(core));
	EXPECT_EQ((std::vector<int>{0, 1, 3}), Fallback(0)); /* 1 and 2 tie at 21; 2 has no memory */
	EXPECT_EQ((std::vector<int>{1, 0, 3}), Fallback(1)); /* 0 and 3 tie at 21: id order */
	EXPECT_EQ((std::vector<int>{0, 3, 1}), Fallback(2)); /* memoryless: itself absent */
	EXPECT_EQ((std::vector<int>{3, 1, 0}), Fallback(3));
	EXPECT_TRUE(Fallback(4).empty());
	int two[2];
	EXPECT_EQ(2u, nbc_fallback_order(core, 1, two, 2));
	EXPECT_EQ(1, two[0]);
}

TEST_F(NumaTest, CurrentCpuNodeAndSparseCpus)
{
	StartFour();
	sim::SetCpu(3);
	EXPECT_EQ(3, nbc_current_cpu_node(core));
	sim::SetCpu(2);
	EXPECT_EQ(2, nbc_current_cpu_node(core)); /* memoryless, still its node */
	EXPECT_EQ(0, AllocNode(nullptr));        /* served by the nearest node with memory */
	sim::SetCpu(4);
	EXPECT_EQ(0, nbc_current_cpu_node(core)); /* absent CPU: first node with memory */
	EXPECT_EQ(0, AllocNode(nullptr));        /* and no per-CPU cache to use */
	sim::SetCpu(99);
	EXPECT_EQ(0, AllocNode(nullptr));
	EXPECT_EQ(-1, nbc_pfn_node(core, 0));
}

TEST_F(NumaTest, PoliciesPickTheirNodes)
{
	StartFour();
	sim::SetCpu(1);
	EXPECT_EQ(1, AllocNode(nullptr));
	nbc_policy p{};
	p.mode = NBC_POLICY_LOCAL;
	EXPECT_EQ(1, AllocNode(&p));
	p.mode = NBC_POLICY_PREFERRED;
	p.node = 3;
	EXPECT_EQ(3, AllocNode(&p));
	p.node = -1;
	EXPECT_EQ(1, AllocNode(&p));
	p.node = 2; /* memoryless preferred node: its fallback order */
	EXPECT_EQ(0, AllocNode(&p));
	p.mode = NBC_POLICY_BIND;
	p.nodemask = (1ull << 0) | (1ull << 3);
	EXPECT_EQ(0, AllocNode(&p)); /* nearest to CPU 1's node among {0, 3}: a tie, lower id */
	sim::SetCpu(3);
	EXPECT_EQ(3, AllocNode(&p));
	p.mode = NBC_POLICY_INTERLEAVE;
	p.nodemask = 0xf; /* 2 has no memory: rotates over 0, 1, 3 */
	p.il_next = 0;
	std::vector<int> seen;
	for (int i = 0; i < 6; i++)
		seen.push_back(AllocNode(&p));
	EXPECT_EQ((std::vector<int>{0, 1, 3, 0, 1, 3}), seen);
	EXPECT_EQ(6u, p.il_next);
}

TEST_F(NumaTest, MalformedPoliciesAreRejected)
{
	StartFour();
	nb_u64 pfn;
	nbc_policy p{};
	p.mode = 7;
	EXPECT_EQ(-NB_EINVAL, nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	p.mode = NBC_POLICY_PREFERRED;
	p.node = 4;
	EXPECT_EQ(-NB_EINVAL, nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	p.mode = NBC_POLICY_BIND;
	p.nodemask = 0;
	EXPECT_EQ(-NB_EINVAL, nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	p.nodemask = 1ull << 5;
	EXPECT_EQ(-NB_EINVAL, nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	p.nodemask = 1ull << 2; /* exists, no memory */
	EXPECT_EQ(-NB_ENOMEM, nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	p.mode = NBC_POLICY_INTERLEAVE;
	EXPECT_EQ(-NB_ENOMEM, nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, nullptr));
	EXPECT_EQ(-NB_EINVAL, nbc_alloc(core, 0, nullptr, 1u << 7, NB_CTX_ATOMIC, &pfn, nullptr));
	NodeStats s;
	EXPECT_EQ(-NB_EINVAL, nbc_node_stats(core, 4, &s));
	EXPECT_EQ(0, nbc_node_stats(core, 2, &s));
	EXPECT_EQ(0u, s.total_frames);
	EXPECT_EQ(-1, s.largest_free_order);
}

TEST_F(NumaTest, BindNeverFallsBack)
{
	StartFour();
	nbc_policy p = Bind(3);
	std::vector<nb_u64> got;
	nb_u64 pfn;
	int node;
	while (nbc_alloc(core, 0, &p, 0, NB_CTX_ATOMIC, &pfn, &node) == 0) {
		EXPECT_EQ(3, node);
		got.push_back(pfn);
	}
	EXPECT_EQ(512u, got.size());
	/* Preferred falls back by distance from 3: node 1. */
	EXPECT_EQ(0, nbc_buddy_alloc(core, 0, 3, 0, NB_CTX_ATOMIC, &pfn));
	EXPECT_EQ(1, nbc_pfn_node(core, pfn));
	got.push_back(pfn);
	for (nb_u64 q : got)
		EXPECT_EQ(0, nbc_buddy_free(core, q, 0));
	ExpectPristine();
}

TEST_F(NumaTest, NumastatCountersAreExact)
{
	StartFour();
	sim::SetCpu(0); /* node 0 */
	nb_u64 pfn[8];
	nbc_policy pref{};
	pref.mode = NBC_POLICY_PREFERRED;
	pref.node = 1;
	/* Local, cached path: hit + local on 0. */
	ASSERT_EQ(0, nbc_alloc(core, 0, nullptr, 0, NB_CTX_ATOMIC, &pfn[0], nullptr));
	/* Preferred 1 from a CPU of node 0: hit + other on 1. */
	ASSERT_EQ(0, nbc_alloc(core, 2, &pref, NBC_AF_NOCACHE, NB_CTX_ATOMIC, &pfn[1], nullptr));
	/* Fill node 3 so a preferred-3 request lands on 1: miss on 1, foreign on 3. */
	pref.node = 3;
	ASSERT_EQ(0, nbc_alloc(core, 9, &pref, 0, NB_CTX_ATOMIC, &pfn[2], nullptr));
	ASSERT_EQ(3, nbc_pfn_node(core, pfn[2]));
	ASSERT_EQ(0, nbc_alloc(core, 0, &pref, 0, NB_CTX_ATOMIC, &pfn[3], nullptr));
	EXPECT_EQ(1, nbc_pfn_node(core, pfn[3]));
	/* Interleave over {0, 1}: interleave hits on both. */
	nbc_policy il{};
	il.mode = NBC_POLICY_INTERLEAVE;
	il.nodemask = 3;
	ASSERT_EQ(0, nbc_alloc(core, 1, &il, 0, NB_CTX_ATOMIC, &pfn[4], nullptr));
	ASSERT_EQ(0, nbc_alloc(core, 1, &il, 0, NB_CTX_ATOMIC, &pfn[5], nullptr));
	NodeStats s0 = Stats(0), s1 = Stats(1), s3 = Stats(3), s2 = Stats(2);
	EXPECT_EQ(2u, s0.numa_hit);
	EXPECT_EQ(0u, s0.numa_miss);
	EXPECT_EQ(2u, s0.local_node);
	EXPECT_EQ(1u, s0.interleave_hit);
	EXPECT_EQ(2u, s1.numa_hit);
	EXPECT_EQ(1u, s1.numa_miss);
	EXPECT_EQ(1u, s1.interleave_hit);
	EXPECT_EQ(3u, s1.other_node);
	EXPECT_EQ(1u, s3.numa_hit);
	EXPECT_EQ(1u, s3.numa_foreign);
	EXPECT_EQ(1u, s3.alloc_fail);
	EXPECT_EQ(0u, s2.numa_hit + s2.numa_foreign);
	unsigned order[] = {0, 2, 9, 0, 1, 1};
	for (int i = 0; i < 6; i++)
		EXPECT_EQ(0, nbc_buddy_free(core, pfn[i], order[i]));
	ExpectPristine();
}

/* The allocation fast path pops the cache of FirstChoice's node before any list is built:
 * whenever it names a node, Resolve must agree that the node is tried first and counts as
 * intended; and it must name one for LOCAL, PREFERRED and one-node BIND on a node with
 * memory (else the fast path would never run). */
TEST(NumaFirstChoiceTest, AgreesWithResolve)
{
	sim::Topology t;
	t.nodes = 4;
	t.cpu_node = {0, 1, 2, 3, -1, 0};
	for (int n : {0, 1, 3})
		t.regions.push_back(Region((8 + static_cast<nb_u64>(n)) * kHigh, 512, n));
	sim::Setup(t);
	nb::Numa numa{};
	ASSERT_EQ(0, numa.Init(0xb));
	std::mt19937 rng(3);
	unsigned named = 0;
	for (int i = 0; i < 20000; i++) {
		nbc_policy pol{};
		pol.mode = rng() % 5; /* 4: malformed */
		pol.node = static_cast<int>(rng() % 6) - 1;
		pol.nodemask = rng() % 3 == 0 ? 1ull << (rng() % 5) : rng() % 32;
		unsigned cpu = rng() % 7;
		const nbc_policy *p = rng() % 8 == 0 ? nullptr : &pol;
		int n = numa.FirstChoice(p, numa.CpuNode(cpu));
		nb::NodeList nl;
		int rc = numa.Resolve(p, cpu, &nl);
		if (n >= 0) {
			named++;
			ASSERT_EQ(0, rc);
			EXPECT_EQ(n, nl.node[0]);
			EXPECT_EQ(n, nl.intended);
			EXPECT_FALSE(nl.interleave);
		}
		bool one_node = pol.mode == NBC_POLICY_LOCAL ||
				(pol.mode == NBC_POLICY_PREFERRED) ||
				(pol.mode == NBC_POLICY_BIND && __builtin_popcountll(pol.nodemask) == 1);
		int first = pol.mode == NBC_POLICY_BIND ? __builtin_ctzll(pol.nodemask | (1ull << 63))
			    : pol.mode == NBC_POLICY_PREFERRED && pol.node >= 0 ? pol.node
										: nb_env_cpu_node(cpu);
		if (one_node && first >= 0 && first < 4 && ((0xbull >> first) & 1)) {
			EXPECT_EQ(first, numa.FirstChoice(&pol, numa.CpuNode(cpu))) << "mode " << pol.mode;
		}
	}
	EXPECT_GT(named, 1000u);
	numa.Destroy();
	sim::Teardown();
}

} /* namespace */
} /* namespace nbtest */
