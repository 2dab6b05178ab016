// SPDX-License-Identifier: GPL-2.0
/*
 * seg_table_test.cpp - seg_table.h's O(1) pfn -> segment map against a linear scan: sparse
 * and adjacent segments, segments meeting inside a granule, the 4 GiB cut, the memory bound;
 * and through the core, nbc_pfn_node over sparse pools before and after a resize.
 */
#include <algorithm>
#include <random>

#include "../../mm_core/seg_table.h"
#include "test_util.h"

namespace nbtest {
namespace {

using nb::Segment;
using nb::SegTable;

struct Built {
	std::vector<Segment> segs;
	std::vector<Segment *> ptrs;
	std::vector<nb_u32> map;
	SegTable t{};
};

/* A table over [base, base + frames) pairs, sorted, with its map. */
void Build(Built *b, std::vector<std::pair<nb_u64, nb_u64>> spans)
{
	std::sort(spans.begin(), spans.end());
	b->segs.resize(spans.size());
	for (size_t i = 0; i < spans.size(); i++) {
		b->segs[i].Init(spans[i].first, spans[i].second, 0, nullptr, NBC_DEFAULT_MAX_ORDER);
		b->ptrs.push_back(&b->segs[i]);
	}
	b->t.seg = b->ptrs.data();
	b->t.n = b->t.cap = static_cast<nb_u32>(spans.size());
	unsigned shift;
	nb_u64 count = b->t.GranuleCount(&shift);
	ASSERT_LE(count, std::max<nb_u64>(nb::kGranulesMin, nb::kGranulesPerSegment * b->t.n))
		<< "the map's memory is bounded by the segment count, not the span";
	b->map.assign(count, 0);
	b->t.SetGranules(b->map.data(), count, shift);
}

Segment *Scan(const Built &b, nb_u64 pfn)
{
	for (Segment *s : b.ptrs)
		if (pfn >= s->base() && pfn < s->end())
			return s;
	return nullptr;
}

/* Every edge of every segment and of every gap, plus random frames. */
void ExpectSameAsScan(const Built &b, std::mt19937_64 *rng)
{
	std::vector<nb_u64> probe = {0, ~0ull >> 12, b.ptrs.front()->base() - 1};
	for (Segment *s : b.ptrs)
		for (nb_u64 p : {s->base() - 1, s->base(), s->base() + 1, s->end() - 1, s->end(),
				 s->base() + (s->frames() / 2)})
			probe.push_back(p);
	nb_u64 lo = b.ptrs.front()->base(), hi = b.ptrs.back()->end();
	for (int i = 0; i < 2000; i++)
		probe.push_back(lo + (*rng)() % (hi - lo + 64));
	for (nb_u64 p : probe)
		ASSERT_EQ(Scan(b, p), b.t.Find(p)) << "pfn " << std::hex << p;
}

TEST(SegTableTest, WorkedExampleOfTheHeader)
{
	Built b;
	Build(&b, {{0x100000, 0x40000}, {0x140000, 0x40000}});
	EXPECT_EQ(256u, b.t.granules);
	EXPECT_EQ(11u, b.t.granule_shift);
	EXPECT_EQ(1u, b.map[127]); /* segment 0, + 1 */
	EXPECT_EQ(2u, b.map[128]);
	EXPECT_EQ(&b.segs[0], b.t.Find(0x13ffff));
	EXPECT_EQ(&b.segs[1], b.t.Find(0x140000));
	EXPECT_EQ(nullptr, b.t.Find(0x180000));
	EXPECT_EQ(nullptr, b.t.Find(0xfffff));
}

TEST(SegTableTest, SegmentsMeetingInsideAGranuleFallBackToTheSearch)
{
	/* A sparse span makes granules coarse: the three low segments share granule 0. */
	Built b;
	Build(&b, {{0x10, 5}, {0x15, 100}, {0x200, 1}, {1ull << 40, 4096}});
	EXPECT_EQ(nb::kGranuleShared, b.map[0]);
	std::mt19937_64 rng(1);
	ExpectSameAsScan(b, &rng);
}

TEST(SegTableTest, RandomLayoutsMatchALinearScan)
{
	std::mt19937_64 rng(7);
	for (int round = 0; round < 300; round++) {
		std::vector<std::pair<nb_u64, nb_u64>> spans;
		nb_u64 p = rng() % 4096;
		unsigned n = 1 + static_cast<unsigned>(rng() % 40);
		for (unsigned i = 0; i < n; i++) {
			nb_u64 frames = 1 + rng() % (rng() % 2 ? 64 : 100000);
			spans.push_back({p, frames});
			/* Adjacent, a small hole, or a jump far up the physical space. */
			nb_u64 kind = rng() % 8;
			p += frames + (kind < 3 ? 0 : kind < 7 ? rng() % 5000 : rng() % (1ull << 38));
		}
		Built b;
		Build(&b, spans);
		ExpectSameAsScan(b, &rng);
	}
}

TEST(SegTableTest, CoreLooksUpSparsePoolsAcrossTheCutAndResizes)
{
	sim::Topology t;
	t.nodes = 2;
	t.cpus_per_node = 1;
	t.back_frames = false;
	/* Node 0 straddles the 4 GiB line (two segments meeting there); node 1 sits near the
	 * top of the 52-bit space; a spare region lands between them later. */
	nbc_region r0 = Region(kHigh - 3000, 6000, 0), r1 = Region((1ull << 50) + 77, 5000, 1);
	nbc_region spare = Region(1ull << 36, 2048, 0);
	t.regions = {r0, r1, spare};
	sim::Setup(t);
	size_t meta_before = sim::MetaBytes();
	nbc_region pools[] = {r0, r1};
	nbc_bootinfo bi{};
	bi.regions = pools;
	bi.nr_regions = 2;
	nbc_core *core = nullptr;
	ASSERT_EQ(0, nbc_core_create(&bi, &core));
	auto expect_nodes = [&](const std::vector<nbc_region> &live) {
		for (const nbc_region &r : {r0, r1, spare}) {
			int want = -1;
			for (const nbc_region &l : live)
				if (l.start_pfn == r.start_pfn)
					want = l.node;
			for (nb_u64 p : {r.start_pfn, r.start_pfn + r.nr_frames / 2,
					 r.start_pfn + r.nr_frames - 1})
				EXPECT_EQ(want, nbc_pfn_node(core, p)) << std::hex << p;
			EXPECT_EQ(-1, nbc_pfn_node(core, r.start_pfn - 1));
			EXPECT_EQ(-1, nbc_pfn_node(core, r.start_pfn + r.nr_frames));
		}
	};
	expect_nodes({r0, r1});
	EXPECT_EQ(0, nbc_pfn_node(core, kHigh - 1));
	EXPECT_EQ(0, nbc_pfn_node(core, kHigh));
	ASSERT_EQ(0, nbc_core_add_region(core, &spare));
	expect_nodes({r0, r1, spare});
	ASSERT_EQ(0, nbc_core_remove_region(core, spare.start_pfn, spare.nr_frames));
	expect_nodes({r0, r1});
	EXPECT_EQ(0, nbc_check(core));
	EXPECT_EQ(0, nbc_core_destroy(core));
	EXPECT_EQ(meta_before, sim::MetaBytes());
	sim::Teardown();
}

} // namespace
} // namespace nbtest
