/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_util.h - fixtures and topologies shared by the mm_core tests.
 */
#ifndef NB_TEST_UTIL_H
#define NB_TEST_UTIL_H

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "../../mm_core/nbc_core.h"
#include "../sim/sim_env.h"

namespace nbtest {

using sim::Region;
using NodeStats = struct nbc_node_stats;

constexpr nb_u64 kGiB = 1ull << 18; /* frames */
constexpr nb_u64 kHigh = NBC_LOW_LIMIT_PFN; /* first frame above 4 GiB */

/* Topologies the typed tests run over. Sizes stay small: the suites run under sanitizers. */
struct OneNode {
	static sim::Topology Make() {
		sim::Topology t;
		t.nodes = 1;
		t.cpus_per_node = 2;
		t.regions = {Region(2 * kHigh, 8192, 0)};
		return t;
	}
};

struct TwoNodes {
	static sim::Topology Make() {
		sim::Topology t;
		t.nodes = 2;
		t.cpus_per_node = 2;
		t.regions = {Region(4 * kHigh, 4096, 0), Region(8 * kHigh, 4096, 1)};
		return t;
	}
};

/* Unaligned starts and holes, several regions per node. */
struct FourNodesHoles {
	static sim::Topology Make() {
		sim::Topology t;
		t.nodes = 4;
		t.cpus_per_node = 1;
		for (int n = 0; n < 4; n++) {
			nb_u64 base = (16 + 4 * static_cast<nb_u64>(n)) * kHigh;
			t.regions.push_back(Region(base + 3, 1500, n));
			t.regions.push_back(Region(base + 2048 + 7, 1001, n));
		}
		return t;
	}
};

struct EightNodes {
	static sim::Topology Make() {
		sim::Topology t;
		t.nodes = 8;
		t.cpus_per_node = 1;
		for (int n = 0; n < 8; n++)
			t.regions.push_back(Region((40 + static_cast<nb_u64>(n)) * kHigh, 1024, n));
		return t;
	}
};

/* Node 0: a region below 4 GiB and one straddling the line; node 1 far above (2^48 bytes). */
struct LowHigh {
	static sim::Topology Make() {
		sim::Topology t;
		t.nodes = 2;
		t.cpus_per_node = 2;
		t.regions = {Region(0x1000, 2048, 0), Region(kHigh - 1024 - 5, 2048 + 10, 0),
			     Region(1ull << 36, 4096, 1)};
		return t;
	}
};

using AllConfigs = ::testing::Types<OneNode, TwoNodes, FourNodesHoles, EightNodes, LowHigh>;

class CoreTest : public ::testing::Test {
protected:
	nbc_core *core = nullptr;

	void Start(const sim::Topology &t, unsigned max_order = 0, unsigned batch = 0) {
		sim::Setup(t);
		meta_before_ = sim::MetaBytes();
		bi_ = nbc_bootinfo{};
		regions_ = t.regions;
		bi_.regions = regions_.data();
		bi_.nr_regions = static_cast<nb_u32>(regions_.size());
		bi_.max_order = max_order;
		bi_.pcp_batch = batch;
		ASSERT_EQ(0, nbc_core_create(&bi_, &core));
		for (unsigned n = 0; n < t.nodes; n++)
			initial_.push_back(Stats(static_cast<int>(n)));
	}
	void TearDown() override {
		if (core != nullptr) {
			if (!skip_full_check_) {
				EXPECT_EQ(0, nbc_check(core));
			}
			EXPECT_EQ(0, nbc_core_destroy(core));
			EXPECT_EQ(meta_before_, sim::MetaBytes());
		}
		sim::SetCpu(0);
		sim::Teardown();
	}
	NodeStats Stats(int n) {
		NodeStats s;
		EXPECT_EQ(0, nbc_node_stats(core, n, &s));
		return s;
	}
	unsigned Nodes() const { return sim::Current().nodes; }
	/* Everything back where it started: same free blocks per order (full coalescing). */
	void ExpectPristine() {
		nbc_pcp_drain(core);
		ASSERT_EQ(0, nbc_check(core));
		for (unsigned n = 0; n < Nodes(); n++) {
			NodeStats s = Stats(static_cast<int>(n));
			EXPECT_EQ(initial_[n].free_frames, s.free_frames) << "node " << n;
			EXPECT_EQ(0u, s.pcp_frames);
			for (unsigned k = 0; k <= NBC_ORDER_LIMIT; k++)
				EXPECT_EQ(initial_[n].free_blocks[k], s.free_blocks[k])
					<< "node " << n << " order " << k;
		}
	}
	static nbc_policy Bind(int node) {
		nbc_policy p{};
		p.mode = NBC_POLICY_BIND;
		p.nodemask = 1ull << node;
		return p;
	}

	std::vector<NodeStats> initial_;
	/* The consistency walk reads every descriptor: 2^28 of them for a 1 TiB node. */
	bool skip_full_check_ = false;

private:
	size_t meta_before_ = 0;
	nbc_bootinfo bi_{};
	std::vector<nbc_region> regions_;
};

template <typename Config> class ConfigTest : public CoreTest {
protected:
	void SetUp() override { Start(Config::Make()); }
};

/* Node whose region holds pfn per the topology (independent of the core's answer). */
inline int RegionNode(nb_u64 pfn, nb_u64 frames = 1) {
	for (const nbc_region &r : sim::Current().regions)
		if (pfn >= r.start_pfn && pfn + frames <= r.start_pfn + r.nr_frames)
			return r.node;
	return -1;
}

/* A block a stress thread holds, and the tag it wrote into each of its frames: a block
 * handed out twice shows as a frame whose tag is someone else's. */
struct Held {
	nb_u64 pfn;
	unsigned order;
	nb_u64 tag;
};

inline void Tag(const Held &h)
{
	for (nb_u64 i = 0; i < (nb_u64(1) << h.order); i++)
		*static_cast<nb_u64 *>(sim::FrameAddr(h.pfn + i)) = h.tag + i;
}

inline bool Tagged(const Held &h)
{
	for (nb_u64 i = 0; i < (nb_u64(1) << h.order); i++)
		if (*static_cast<nb_u64 *>(sim::FrameAddr(h.pfn + i)) != h.tag + i)
			return false;
	return true;
}

/*
 * The shape of the concurrency tests: workers that start together (worker id on sim CPU
 * id % CpuCount()), and side threads (checkers, an admin) that start with them and run until
 * the last worker has finished.
 *   Together t;
 *   t.Side([&](const std::atomic<bool> &done) { while (!done.load()) Check(); });
 *   t.Run(kThreads, [&](int id) { ... });
 */
class Together {
public:
	void Side(std::function<void(const std::atomic<bool> &done)> fn) { sides_.push_back(std::move(fn)); }
	void Run(int workers, const std::function<void(int id)> &body)
	{
		unsigned cpus = sim::CpuCount();
		std::vector<std::thread> th;
		for (int i = 0; i < workers; i++)
			th.emplace_back([&, i] {
				sim::SetCpu(static_cast<unsigned>(i) % cpus);
				ready_++;
				WaitGo();
				body(i);
			});
		std::vector<std::thread> side;
		for (auto &fn : sides_)
			side.emplace_back([&] {
				WaitGo();
				fn(done_);
			});
		while (ready_.load() != workers)
			std::this_thread::yield();
		go_ = true;
		for (auto &t : th)
			t.join();
		done_ = true;
		for (auto &t : side)
			t.join();
	}

private:
	void WaitGo() const
	{
		while (!go_.load())
			std::this_thread::yield();
	}
	std::vector<std::function<void(const std::atomic<bool> &)>> sides_;
	std::atomic<int> ready_{0};
	std::atomic<bool> go_{false}, done_{false};
};

} /* namespace nbtest */

#endif /* NB_TEST_UTIL_H */
