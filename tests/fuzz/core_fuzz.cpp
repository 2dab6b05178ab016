// SPDX-License-Identifier: GPL-2.0
/*
 * core_fuzz.cpp - libFuzzer target: the input is a sequence of core operations (alloc,
 * free, wrong free, contig, migrate, kalloc/kfree, drain, check, CPU switch) on a small
 * two-node topology with a low region, holes and a far-high region. Any inconsistency,
 * overlap, accounting error or leak after freeing everything traps.
 */
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "../../mm_core/nb_core.h"
#include "../sim/sim_env.h"

namespace {

struct Out {
	nb_u64 frames;
	int order;
};

#define FUZZ_CHECK(e) \
	do { \
		if (!(e)) { \
			fprintf(stderr, "fuzz check failed: %s (line %d)\n", #e, __LINE__); \
			abort(); \
		} \
	} while (0)

struct Reader {
	const uint8_t *p;
	size_t n;
	uint8_t Byte() {
		if (n == 0)
			return 0;
		n--;
		return *p++;
	}
	uint32_t U16() { return Byte() | (static_cast<uint32_t>(Byte()) << 8); }
};

nb_u64 Used(const std::map<nb_u64, Out> &out, int node, nb_core *c)
{
	nb_u64 u = 0;
	for (auto &e : out)
		if (nb_pfn_node(c, e.first) == node)
			u += e.second.frames;
	return u;
}

} /* namespace */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sim::Topology t;
	t.nodes = 2;
	t.cpus_per_node = 2;
	t.regions = {sim::Region(0x100, 300, 0), sim::Region(NB_LOW_LIMIT_PFN - 64, 200, 0),
		     sim::Region(NB_LOW_LIMIT_PFN + 1000, 513, 1), sim::Region(1ull << 38, 256, 1)};
	sim::Setup(t);
	nb_bootinfo bi{};
	bi.regions = t.regions.data();
	bi.nr_regions = static_cast<nb_u32>(t.regions.size());
	bi.max_order = 8;
	bi.pcp_batch = 4;
	nb_core *c = nullptr;
	FUZZ_CHECK(nb_core_create(&bi, &c) == 0);

	std::map<nb_u64, Out> out;
	std::vector<void *> heap;
	Reader r{data, size};
	while (r.n > 0) {
		uint8_t op = r.Byte() % 10;
		auto pick = [&]() { return std::next(out.begin(), static_cast<long>(r.U16() % out.size())); };
		switch (op) {
		case 0:
		case 1: {
			unsigned order = r.Byte() % 10; /* 9: beyond max_order 8 */
			nb_policy pol{};
			uint8_t b = r.Byte();
			pol.mode = b % 5; /* 4: invalid */
			pol.node = static_cast<int>((b >> 3) % 3) - 1;
			pol.nodemask = (b >> 5) % 4;
			unsigned flags = r.Byte() % 4;
			nb_u64 pfn;
			int node;
			int rc = nb_alloc(c, order, &pol, flags, NB_CTX_ATOMIC, &pfn, &node);
			FUZZ_CHECK(rc == 0 || rc == -NB_ENOMEM || rc == -NB_EINVAL);
			if (rc == 0) {
				auto next = out.lower_bound(pfn);
				FUZZ_CHECK(next == out.end() || pfn + (1ull << order) <= next->first);
				FUZZ_CHECK(next == out.begin() || std::prev(next)->first + std::prev(next)->second.frames <= pfn);
				FUZZ_CHECK(nb_pfn_node(c, pfn) == node);
				FUZZ_CHECK(!(flags & NB_AF_LOW4G) || pfn + (1ull << order) <= NB_LOW_LIMIT_PFN);
				out[pfn] = {1ull << order, static_cast<int>(order)};
			}
			break;
		}
		case 2:
		case 3:
			if (!out.empty()) {
				auto it = pick();
				int rc = it->second.order >= 0 && (op == 2)
						 ? nb_buddy_free(c, it->first, static_cast<unsigned>(it->second.order))
						 : nb_free_range(c, it->first, it->second.frames);
				FUZZ_CHECK(rc == 0);
				out.erase(it);
			}
			break;
		case 4: { /* wrong frees the model can prove wrong: all must fail, change nothing */
			uint8_t kind = r.Byte() % 3;
			if (kind == 0) {
				FUZZ_CHECK(nb_buddy_free(c, r.Byte(), r.Byte() % 9) == -NB_EINVAL); /* no pool */
			} else if (!out.empty()) {
				auto it = pick();
				if (it->second.order < 0)
					break; /* contig pieces are valid blocks of their own */
				unsigned k = static_cast<unsigned>(it->second.order);
				if (kind == 1)
					FUZZ_CHECK(nb_buddy_free(c, it->first, k + 1 + r.Byte() % 3) == -NB_EINVAL);
				else if (k > 0)
					FUZZ_CHECK(nb_buddy_free(c, it->first + 1 + r.Byte() % ((1u << k) - 1), 0) ==
						   -NB_EINVAL);
			}
			break;
		}
		case 5: {
			nb_u64 nr = r.Byte() % 300;
			nb_u64 pfn;
			int node;
			int rc = nb_alloc_contig(c, nr, nullptr, r.Byte() % 2 ? NB_AF_LOW4G : 0, NB_CTX_SLEEP, &pfn, &node);
			FUZZ_CHECK(rc == 0 || rc == -NB_ENOMEM || rc == -NB_EINVAL);
			if (rc == 0) {
				auto next = out.lower_bound(pfn);
				FUZZ_CHECK(next == out.end() || pfn + nr <= next->first);
				out[pfn] = {nr, -1};
			}
			break;
		}
		case 6:
			if (!out.empty()) {
				auto it = pick();
				if (it->second.order < 0)
					break;
				int from = nb_pfn_node(c, it->first), to = r.Byte() % 2;
				nb_u64 np;
				int rc = nb_buddy_migrate(c, it->first, static_cast<unsigned>(it->second.order), from, to,
							  r.Byte() % 2 ? NB_CTX_SLEEP : NB_CTX_ATOMIC, &np);
				FUZZ_CHECK(rc == 0 || rc == -NB_ENOMEM);
				if (rc == 0) {
					Out o = it->second;
					out.erase(it);
					FUZZ_CHECK(out.find(np) == out.end());
					out[np] = o;
				}
			}
			break;
		case 7: {
			size_t sz = r.U16() % 9000;
			if (r.Byte() % 2 && !heap.empty()) {
				size_t i = sz % heap.size();
				nb_kfree(c, heap[i]);
				heap.erase(heap.begin() + static_cast<long>(i));
			} else if (void *p = nb_kalloc(c, sz, r.Byte() % 3 - 1, NB_CTX_ATOMIC)) {
				memset(p, 0x5a, sz);
				heap.push_back(p);
			}
			break;
		}
		case 8:
			sim::SetCpu(r.Byte() % 5); /* 4: no such CPU */
			break;
		case 9:
			if (r.Byte() % 2)
				nb_pcp_drain(c);
			FUZZ_CHECK(nb_check(c) == 0);
			break;
		}
	}
	FUZZ_CHECK(nb_check(c) == 0);
	for (void *p : heap)
		nb_kfree(c, p);
	/* Exact accounting; the heap may keep one empty slab per class out, no more. */
	for (int n = 0; n < 2; n++) {
		struct nb_node_stats s;
		FUZZ_CHECK(nb_node_stats(c, n, &s) == 0);
		nb_u64 used = Used(out, n, c);
		FUZZ_CHECK(s.free_frames + s.pcp_frames + used <= s.total_frames);
		FUZZ_CHECK(s.free_frames + s.pcp_frames + used + 15 >= s.total_frames);
	}
	for (auto &e : out)
		FUZZ_CHECK(nb_free_range(c, e.first, e.second.frames) == 0);
	FUZZ_CHECK(nb_core_destroy(c) == 0);
	FUZZ_CHECK(sim::MetaBytes() == 0);
	sim::SetCpu(0);
	sim::Teardown();
	return 0;
}
