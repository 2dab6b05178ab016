// SPDX-License-Identifier: GPL-2.0
/*
 * core_fuzz.cpp - libFuzzer target: the input is a sequence of core operations (alloc,
 * free, wrong free, contig, migrate, kalloc/kfree, drain, check, CPU switch, prezero steps
 * (a block reported zeroed must read zero), and blocks of
 * one space with compaction of a node) on a small two-node topology with a low region, holes
 * and a far-high region. Any inconsistency, overlap, accounting error, a space block whose
 * data or node changed, or a leak after freeing everything traps.
 */
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "../../mm_core/nbc_compact.h"
#include "../../mm_core/nbc_space.h"
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

nb_u64 Used(const std::map<nb_u64, Out> &out, int node, nbc_core *c)
{
	nb_u64 u = 0;
	for (auto &e : out)
		if (nbc_pfn_node(c, e.first) == node)
			u += e.second.frames;
	return u;
}

/* A space block: its pages hold offset + page index in their first word. */
struct SpaceBlock {
	nb_u64 pages;
	int node;
};

nb_u64 PagePfn(nbc_space *sp, nb_u64 off)
{
	nbc_space_fault_result fr;
	FUZZ_CHECK(nbc_space_fault(sp, off, 1, 0, 0, NB_CTX_SLEEP, &fr) == 0);
	return fr.pfn;
}

/* The owner of one space, single-threaded: nothing to lock, unmap or map. */
void ForOne(void *arg, void (*fn)(void *, nbc_space *, void *), void *farg)
{
	fn(farg, static_cast<nbc_space *>(arg), nullptr);
}
int NotPinned(void *, nb_u64) { return 0; }
void Nop(void *) {}
void NopUnmap(void *, nb_u64, nb_u64) {}
void NopMap(void *, nb_u64, nb_u64, nb_u64) {}
const nbc_compact_ops kOneSpace = {ForOne, NotPinned, Nop, Nop, Nop, NopUnmap, NopMap};

} /* namespace */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sim::Topology t;
	t.nodes = 2;
	t.cpus_per_node = 2;
	t.regions = {sim::Region(0x100, 300, 0), sim::Region(NBC_LOW_LIMIT_PFN - 64, 200, 0),
		     sim::Region(NBC_LOW_LIMIT_PFN + 1000, 513, 1), sim::Region(1ull << 38, 256, 1)};
	sim::Setup(t);
	nbc_bootinfo bi{};
	bi.regions = t.regions.data();
	bi.nr_regions = static_cast<nb_u32>(t.regions.size());
	bi.max_order = 8;
	bi.pcp_batch = 4;
	nbc_core *c = nullptr;
	FUZZ_CHECK(nbc_core_create(&bi, &c) == 0);

	std::map<nb_u64, Out> out;
	std::vector<void *> heap;
	nbc_space *sp = nullptr;
	FUZZ_CHECK(nbc_space_create(c, 1, NB_CTX_SLEEP, &sp) == 0);
	std::map<nb_u64, SpaceBlock> blocks;
	Reader r{data, size};
	while (r.n > 0) {
		uint8_t op = r.Byte() % 14;
		auto pick = [&]() { return std::next(out.begin(), static_cast<long>(r.U16() % out.size())); };
		switch (op) {
		case 0:
		case 1: {
			unsigned order = r.Byte() % 10; /* 9: beyond max_order 8 */
			nbc_policy pol{};
			uint8_t b = r.Byte();
			pol.mode = b % 5; /* 4: invalid */
			pol.node = static_cast<int>((b >> 3) % 3) - 1;
			pol.nodemask = (b >> 5) % 4;
			unsigned flags = r.Byte() % 8;
			bool want_zeroed = flags & 4; /* nbc_alloc_zeroed, not a flag */
			flags &= 3;
			nb_u64 pfn;
			int node, zeroed = 0;
			int rc = want_zeroed ? nbc_alloc_zeroed(c, order, &pol, flags, NB_CTX_ATOMIC, &pfn,
							       &node, &zeroed)
					     : nbc_alloc(c, order, &pol, flags, NB_CTX_ATOMIC, &pfn, &node);
			FUZZ_CHECK(rc == 0 || !zeroed);
			/* Zeroed means zero: then written, so a stale zeroed bit would show later. */
			for (nb_u64 f = 0; rc == 0 && want_zeroed && f < (1ull << order); f++) {
				nb_u64 *w = static_cast<nb_u64 *>(sim::FrameAddr(pfn + f));
				for (unsigned i = 0; zeroed && i < 512; i++)
					FUZZ_CHECK(w[i] == 0);
				w[f % 512] = 0x5a5a5a5a5a5a5a5aull;
			}
			FUZZ_CHECK(rc == 0 || rc == -NB_ENOMEM || rc == -NB_EINVAL);
			if (rc == 0) {
				auto next = out.lower_bound(pfn);
				FUZZ_CHECK(next == out.end() || pfn + (1ull << order) <= next->first);
				FUZZ_CHECK(next == out.begin() || std::prev(next)->first + std::prev(next)->second.frames <= pfn);
				FUZZ_CHECK(nbc_pfn_node(c, pfn) == node);
				FUZZ_CHECK(!(flags & NBC_AF_LOW4G) || pfn + (1ull << order) <= NBC_LOW_LIMIT_PFN);
				out[pfn] = {1ull << order, static_cast<int>(order)};
			}
			break;
		}
		case 2:
		case 3:
			if (!out.empty()) {
				auto it = pick();
				int rc = it->second.order >= 0 && (op == 2)
						 ? nbc_buddy_free(c, it->first, static_cast<unsigned>(it->second.order))
						 : nbc_free_range(c, it->first, it->second.frames);
				FUZZ_CHECK(rc == 0);
				out.erase(it);
			}
			break;
		case 4: { /* wrong frees the model can prove wrong: all must fail, change nothing */
			uint8_t kind = r.Byte() % 3;
			if (kind == 0) {
				FUZZ_CHECK(nbc_buddy_free(c, r.Byte(), r.Byte() % 9) == -NB_EINVAL); /* no pool */
			} else if (!out.empty()) {
				auto it = pick();
				if (it->second.order < 0)
					break; /* contig pieces are valid blocks of their own */
				unsigned k = static_cast<unsigned>(it->second.order);
				if (kind == 1)
					FUZZ_CHECK(nbc_buddy_free(c, it->first, k + 1 + r.Byte() % 3) == -NB_EINVAL);
				else if (k > 0)
					FUZZ_CHECK(nbc_buddy_free(c, it->first + 1 + r.Byte() % ((1u << k) - 1), 0) ==
						   -NB_EINVAL);
			}
			break;
		}
		case 5: {
			nb_u64 nr = r.Byte() % 300;
			nb_u64 pfn;
			int node;
			int rc = nbc_alloc_contig(c, nr, nullptr, r.Byte() % 2 ? NBC_AF_LOW4G : 0,
						  NB_CTX_SLEEP, &pfn, &node);
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
				int from = nbc_pfn_node(c, it->first), to = r.Byte() % 2;
				nb_u64 np;
				int rc = nbc_buddy_migrate(c, it->first, static_cast<unsigned>(it->second.order), from, to,
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
				nbc_kfree(c, heap[i]);
				heap.erase(heap.begin() + static_cast<long>(i));
			} else if (void *p = nbc_kalloc(c, sz, r.Byte() % 3 - 1, NB_CTX_ATOMIC)) {
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
				nbc_pcp_drain(c);
			FUZZ_CHECK(nbc_check(c) == 0);
			break;
		case 10: { /* a space block: what compaction moves */
			nb_u64 pages = 1 + r.Byte() % 16, off;
			uint8_t b = r.Byte();
			nbc_policy pol{};
			pol.mode = NBC_POLICY_BIND;
			pol.nodemask = 1ull << (b % 2);
			unsigned flags = NBC_SPACE_NOZERO | ((b >> 1) % 2 ? NBC_SPACE_CONTIG : 0);
			int rc = nbc_space_alloc(sp, pages << 12, &pol, flags, NB_CTX_SLEEP, &off);
			FUZZ_CHECK(rc == 0 || rc == -NB_ENOMEM);
			if (rc == 0) {
				for (nb_u64 i = 0; i < pages; i++)
					*static_cast<nb_u64 *>(sim::FrameAddr(PagePfn(sp, off + (i << 12)))) = off + i;
				blocks[off] = {pages, b % 2};
			}
			break;
		}
		case 11:
			if (!blocks.empty()) {
				auto it = std::next(blocks.begin(), static_cast<long>(r.U16() % blocks.size()));
				FUZZ_CHECK(nbc_space_free(sp, it->first, NB_CTX_SLEEP, nullptr, nullptr) == 0);
				blocks.erase(it);
			}
			break;
		case 12: { /* compaction: only the space's frames move, each within its node */
			int node = r.Byte() % 3; /* 2: no such node */
			unsigned order = r.Byte() % 10; /* 0 and 9: invalid (max_order 8) */
			nbc_compact_result res;
			int rc = nbc_compact_node(c, node, order, &kOneSpace, sp, NB_CTX_SLEEP, &res);
			bool bad = node == 2 || order == 0 || order > 8;
			FUZZ_CHECK(bad ? rc == -NB_EINVAL
				       : rc == 0 || rc == -NB_EBUSY || rc == -NB_EAGAIN || rc == -NB_ENOMEM);
			if (rc == 0) {
				struct nbc_node_stats st;
				nbc_pcp_drain(c);
				FUZZ_CHECK(nbc_node_stats(c, node, &st) == 0 &&
					   st.largest_free_order >= static_cast<int>(order));
			}
			FUZZ_CHECK(rc == 0 || res.run_pfn == ~0ull);
			for (auto &bl : blocks)
				for (nb_u64 i = 0; i < bl.second.pages; i++) {
					nb_u64 pfn = PagePfn(sp, bl.first + (i << 12));
					FUZZ_CHECK(*static_cast<nb_u64 *>(sim::FrameAddr(pfn)) == bl.first + i);
					FUZZ_CHECK(nbc_pfn_node(c, pfn) == bl.second.node);
					FUZZ_CHECK(out.find(pfn) == out.end());
				}
			FUZZ_CHECK(nbc_check(c) == 0);
			break;
		}
		case 13: { /* a step of the background zeroer */
			int node = r.Byte() % 3; /* 2: no such node */
			nb_u64 max = r.U16() % 600; /* 0: invalid */
			nb_i64 got = nbc_core_prezero(c, node, max, r.Byte() % 2 ? NB_CTX_SLEEP : NB_CTX_ATOMIC);
			FUZZ_CHECK(node == 2 || max == 0 ? got == -NB_EINVAL
						       : got >= 0 && static_cast<nb_u64>(got) <= max &&
							 (got & (got - 1)) == 0);
			break;
		}
		}
	}
	nbc_space_destroy(sp, NB_CTX_SLEEP);
	nbc_pcp_drain(c);
	FUZZ_CHECK(nbc_check(c) == 0);
	for (void *p : heap)
		nbc_kfree(c, p);
	/* Exact accounting; the heap may keep one empty slab per class out, no more. */
	for (int n = 0; n < 2; n++) {
		struct nbc_node_stats s;
		FUZZ_CHECK(nbc_node_stats(c, n, &s) == 0);
		nb_u64 used = Used(out, n, c);
		FUZZ_CHECK(s.free_frames + s.pcp_frames + used <= s.total_frames);
		FUZZ_CHECK(s.free_frames + s.pcp_frames + used + 15 >= s.total_frames);
	}
	for (auto &e : out)
		FUZZ_CHECK(nbc_free_range(c, e.first, e.second.frames) == 0);
	FUZZ_CHECK(nbc_core_destroy(c) == 0);
	FUZZ_CHECK(sim::MetaBytes() == 0);
	sim::SetCpu(0);
	sim::Teardown();
	return 0;
}
