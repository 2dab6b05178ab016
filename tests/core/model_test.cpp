// SPDX-License-Identifier: GPL-2.0
/*
 * model_test.cpp - long random alloc/free/migrate/contig sequences over every topology,
 * checked against a reference model (a map of what is out): no overlap, every block inside a
 * region of the node reported, policies honoured, exact accounting per node at every step,
 * -ENOMEM only when nothing fits, and full coalescing after freeing everything.
 */
#include <map>
#include <random>

#include "test_util.h"

namespace nbtest {
namespace {

struct Out {
	nb_u64 frames;
	int order; /* -1: a contig range */
	int node;
};

template <typename C> class ModelTest : public ConfigTest<C> {
protected:
	std::map<nb_u64, Out> out_;
	std::mt19937_64 rng_;

	void Tag(nb_u64 pfn) { *static_cast<nb_u64 *>(sim::FrameAddr(pfn)) = ~pfn; }
	bool Tagged(nb_u64 pfn) { return *static_cast<nb_u64 *>(sim::FrameAddr(pfn)) == ~pfn; }

	void Add(nb_u64 pfn, Out o) {
		ASSERT_EQ(o.node, RegionNode(pfn, o.frames)) << std::hex << pfn;
		auto next = out_.lower_bound(pfn);
		if (next != out_.end()) {
			ASSERT_LE(pfn + o.frames, next->first) << "overlaps the next block";
		}
		if (next != out_.begin()) {
			auto prev = std::prev(next);
			ASSERT_LE(prev->first + prev->second.frames, pfn) << "overlaps the previous block";
		}
		out_[pfn] = o;
		Tag(pfn);
	}

	nbc_policy RandomPolicy(unsigned nodes) {
		nbc_policy p{};
		p.mode = static_cast<nb_u32>(rng_() % 4);
		p.node = static_cast<int>(rng_() % (nodes + 1)) - 1;
		p.nodemask = rng_() & ((1ull << nodes) - 1);
		if (p.nodemask == 0)
			p.nodemask = 1;
		return p;
	}

	/*
	 * The node a policy must try first, from the topology alone (numactl's rules): the CPU's
	 * node for LOCAL (the first node with memory when the CPU has none), PREFERRED's node,
	 * INTERLEAVE's turn (a fresh policy's first turn: the mask's lowest node with memory), each
	 * the nearest node with memory to it; BIND the nearest allowed node to the CPU's.
	 */
	int StartNode(const nbc_policy &p, unsigned cpu) {
		nb_u64 mem = 0;
		for (const nbc_region &r : sim::Current().regions)
			mem |= 1ull << r.node;
		int local = nb_env_cpu_node(cpu);
		int from = local >= 0 ? local : __builtin_ctzll(mem);
		nb_u64 allowed = mem;
		if (p.mode == NBC_POLICY_PREFERRED && p.node >= 0)
			from = p.node;
		else if (p.mode == NBC_POLICY_BIND)
			allowed &= p.nodemask;
		else if (p.mode == NBC_POLICY_INTERLEAVE && (p.nodemask & mem))
			from = __builtin_ctzll(p.nodemask & mem);
		int best = -1, best_d = 1 << 30;
		for (unsigned n = 0; n < this->Nodes(); n++) {
			if (!((allowed >> n) & 1))
				continue;
			int d = static_cast<int>(n) == from ? -1 : nb_env_node_distance(from, static_cast<int>(n));
			if (d < best_d) {
				best = static_cast<int>(n);
				best_d = d;
			}
		}
		return best;
	}

	void CheckAccounting() {
		std::vector<nb_u64> used(this->Nodes(), 0);
		for (auto &e : out_)
			used[e.second.node] += e.second.frames;
		for (unsigned n = 0; n < this->Nodes(); n++) {
			NodeStats s = this->Stats(static_cast<int>(n));
			ASSERT_EQ(s.total_frames, s.free_frames + s.pcp_frames + used[n]) << "node " << n;
		}
	}

	void Run(unsigned seed, int ops) {
		rng_.seed(seed);
		unsigned nodes = this->Nodes();
		for (int i = 0; i < ops; i++) {
			unsigned cpu = static_cast<unsigned>(rng_() % sim::CpuCount());
			sim::SetCpu(cpu);
			unsigned r = rng_() % 100;
			if (r < 45 || out_.empty()) {
				unsigned order = rng_() % 4 == 0 ? static_cast<unsigned>(rng_() % 11)
								  : static_cast<unsigned>(rng_() % 4);
				nbc_policy pol = RandomPolicy(nodes);
				unsigned flags = (rng_() % 4 == 0 ? NBC_AF_NOCACHE : 0) |
						 (rng_() % 16 == 0 ? NBC_AF_LOW4G : 0);
				/* An atomic caller drains only its own CPU's caches before -ENOMEM. */
				nb_ctx ctx = rng_() % 2 ? NB_CTX_SLEEP : NB_CTX_ATOMIC;
				nb_u64 pfn;
				int node;
				int rc = nbc_alloc(this->core, order, &pol, flags, ctx, &pfn, &node);
				if (rc == 0) {
					if (pol.mode == NBC_POLICY_BIND) {
						ASSERT_TRUE((pol.nodemask >> node) & 1);
					}
					if (flags & NBC_AF_LOW4G) {
						ASSERT_LE(pfn + (1ull << order), NBC_LOW_LIMIT_PFN);
					} else if (int start = StartNode(pol, cpu); node != start) {
						/* Elsewhere only when the policy's first node had no room. */
						ASSERT_LT(this->Stats(start).largest_free_order, static_cast<int>(order))
							<< "policy " << pol.mode << " got node " << node
							<< " though node " << start << " had room";
					}
					ASSERT_EQ(0u, pfn & ((1ull << order) - 1));
					Add(pfn, {1ull << order, static_cast<int>(order), node});
				} else {
					ASSERT_EQ(-NB_ENOMEM, rc);
					if (!(flags & NBC_AF_LOW4G) && ctx == NB_CTX_SLEEP) {
						/* Nothing that fits anywhere the policy allows. */
						nbc_pcp_drain(this->core);
						for (unsigned n = 0; n < nodes; n++) {
							if (pol.mode == NBC_POLICY_BIND && !((pol.nodemask >> n) & 1))
								continue;
							ASSERT_LT(this->Stats(static_cast<int>(n)).largest_free_order,
								  static_cast<int>(order));
						}
					}
				}
			} else if (r < 55) {
				nb_u64 nr = 1 + rng_() % 100;
				nb_u64 pfn;
				int node;
				nbc_policy pol = RandomPolicy(nodes);
				if (nbc_alloc_contig(this->core, nr, &pol, 0, NB_CTX_SLEEP, &pfn, &node) == 0) {
					if (pol.mode == NBC_POLICY_BIND) {
						ASSERT_TRUE((pol.nodemask >> node) & 1);
					}
					Add(pfn, {nr, -1, node});
				}
			} else if (r < 65) {
				auto it = std::next(out_.begin(), static_cast<long>(rng_() % out_.size()));
				if (it->second.order < 0)
					continue;
				int to = static_cast<int>(rng_() % nodes);
				nb_u64 np;
				Out o = it->second;
				nb_u64 pfn = it->first;
				int rc = nbc_buddy_migrate(this->core, pfn, static_cast<unsigned>(o.order), o.node,
							   to, NB_CTX_SLEEP, &np);
				if (rc == 0) {
					out_.erase(it);
					ASSERT_TRUE(*static_cast<nb_u64 *>(sim::FrameAddr(np)) == ~pfn);
					Add(np, {o.frames, o.order, to});
				} else {
					ASSERT_EQ(-NB_ENOMEM, rc);
					ASSERT_TRUE(Tagged(pfn));
				}
			} else {
				auto it = std::next(out_.begin(), static_cast<long>(rng_() % out_.size()));
				nb_u64 pfn = it->first;
				Out o = it->second;
				ASSERT_TRUE(Tagged(pfn)) << "someone else wrote into our block";
				if (o.order >= 0 && rng_() % 2) {
					ASSERT_EQ(0, nbc_buddy_free(this->core, pfn, static_cast<unsigned>(o.order)));
				} else {
					ASSERT_EQ(0, nbc_free_range(this->core, pfn, o.frames));
				}
				out_.erase(it);
				if (rng_() % 8 == 0) { /* a double free changes nothing */
					ASSERT_EQ(-NB_EINVAL, nbc_free_range(this->core, pfn, o.frames));
				}
			}
			if (i % 64 == 0) {
				CheckAccounting();
				ASSERT_EQ(0, nbc_check(this->core));
			}
		}
		CheckAccounting();
		for (auto &e : out_)
			ASSERT_EQ(0, nbc_free_range(this->core, e.first, e.second.frames));
		out_.clear();
		this->ExpectPristine();
	}
};
TYPED_TEST_SUITE(ModelTest, AllConfigs);

TYPED_TEST(ModelTest, RandomSequencesSeed1) { this->Run(1, 4000); }
TYPED_TEST(ModelTest, RandomSequencesSeed2) { this->Run(2, 4000); }
TYPED_TEST(ModelTest, RandomSequencesSeed3) { this->Run(3, 4000); }

} /* namespace */
} /* namespace nbtest */
