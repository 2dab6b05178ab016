/* SPDX-License-Identifier: GPL-2.0 */
/*
 * range_index_test.cpp - nb::RangeIndex: the verdict Lookup gives every use in every range
 * state (the table nbc_space.h documents, written out here independently), containment vs
 * by-start lookups, placement at the cursor with alignment and phase, removal, growth.
 */
#include <vector>

#include <gtest/gtest.h>

#include "../../mm_core/range_index.h"

namespace {

using nb::Range;
using nb::RangeIndex;
using nb::RangeState;
using nb::RangeUse;

constexpr nb_u64 k4K = 1ull << 12;
constexpr nb_u64 k2M = 1ull << 21;

struct Index {
	RangeIndex idx;
	std::vector<Range *> arrays; /* every array adopted, freed at the end */
	std::vector<Range> ranges = std::vector<Range>(64);
	unsigned used = 0;

	~Index() {
		Range **a;
		nb_u32 cap;
		idx.Release(&a, &cap);
		for (Range *p : arrays)
			delete[] reinterpret_cast<Range **>(p);
	}
	void Grow() {
		nb_u32 cap = idx.GrowTo();
		if (cap == 0 || cap == ~0u)
			return;
		Range **fresh = new Range *[cap];
		arrays.push_back(reinterpret_cast<Range *>(fresh));
		Range **old;
		nb_u32 old_cap;
		idx.Adopt(fresh, cap, &old, &old_cap);
	}
	Range *Add(nb_u64 size, nb_u64 align = k4K, nb_u64 phase = 0) {
		Grow();
		Range *r = &ranges.at(used++);
		*r = Range{};
		r->size = size;
		r->state = nb::kLive;
		EXPECT_EQ(0, idx.Place(r, align, phase));
		return r;
	}
};

/* What each use gets in each state, as nbc_space.h promises it. */
int Expected(RangeUse use, RangeState s) {
	bool gone = s == nb::kDying || s == nb::kFreeing || s == nb::kPublishing;
	switch (use) {
	case RangeUse::kRead:
		return 0;
	case RangeUse::kFault:
		return gone ? -NB_EFAULT : s == nb::kMigrating ? -NB_EAGAIN : 0;
	case RangeUse::kFree:
		return gone ? -NB_ENOENT : s == nb::kMigrating ? -NB_EBUSY : 0;
	case RangeUse::kFreeFinish:
		return s == nb::kDying ? 0 : -NB_EINVAL;
	case RangeUse::kMigrate:
		return s == nb::kLive ? 0 : -NB_EBUSY;
	case RangeUse::kMigrateFinish:
		return s == nb::kMigrating ? 0 : -NB_EINVAL;
	}
	return 1;
}

TEST(RangeIndexTest, EveryUseGetsItsVerdictInEveryState) {
	Index ix;
	Range *r = ix.Add(4 * k4K);
	const RangeUse uses[] = {RangeUse::kRead, RangeUse::kFault, RangeUse::kFree,
				 RangeUse::kFreeFinish, RangeUse::kMigrate, RangeUse::kMigrateFinish};
	const RangeState states[] = {nb::kLive, nb::kDying, nb::kFreeing, nb::kMigrating,
				     nb::kPublishing};
	for (RangeState s : states) {
		r->state = s;
		for (RangeUse u : uses) {
			Range *got = reinterpret_cast<Range *>(1);
			int rc = ix.idx.Lookup(r->offset, u, &got);
			EXPECT_EQ(Expected(u, s), rc) << int(u) << " in state " << int(s);
			EXPECT_EQ(rc ? nullptr : r, got);
		}
	}
}

TEST(RangeIndexTest, InsideIsEnoughOnlyForReadsAndFaults) {
	Index ix;
	Range *a = ix.Add(4 * k4K);
	Range *b = ix.Add(2 * k4K);
	Range *got;
	EXPECT_EQ(0, ix.idx.Lookup(b->offset + k4K, RangeUse::kFault, &got));
	EXPECT_EQ(b, got);
	EXPECT_EQ(0, ix.idx.Lookup(a->offset + 3 * k4K, RangeUse::kRead, &got));
	EXPECT_EQ(a, got);
	EXPECT_EQ(-NB_ENOENT, ix.idx.Lookup(a->offset + k4K, RangeUse::kFree, &got));
	EXPECT_EQ(-NB_ENOENT, ix.idx.Lookup(a->offset + k4K, RangeUse::kMigrate, &got));
	EXPECT_EQ(-NB_EINVAL, ix.idx.Lookup(b->offset + k4K, RangeUse::kMigrateFinish, &got));
	EXPECT_EQ(-NB_EFAULT, ix.idx.Lookup(b->offset + 2 * k4K, RangeUse::kFault, &got));
	EXPECT_EQ(nullptr, got);
}

TEST(RangeIndexTest, OffsetsOnlyGrowAlignedAndAreNeverReused) {
	Index ix;
	Range *a = ix.Add(3 * k4K);
	EXPECT_EQ(0u, a->offset);
	Range *b = ix.Add(k2M, k2M);
	EXPECT_EQ(k2M, b->offset);
	Range *c = ix.Add(k4K, k2M, 5 * k4K); /* a contiguous range's frame phase */
	EXPECT_EQ(2 * k2M + 5 * k4K, c->offset);
	ix.idx.Remove(b);
	Range *got;
	EXPECT_EQ(-NB_ENOENT, ix.idx.Lookup(k2M, RangeUse::kRead, &got));
	EXPECT_EQ(0, ix.idx.Lookup(c->offset, RangeUse::kRead, &got));
	EXPECT_EQ(c, got);
	Range *d = ix.Add(k4K);
	EXPECT_EQ(c->offset + k4K, d->offset) << "the freed offsets stay unused";
	EXPECT_EQ(d, ix.idx.Last());
}

TEST(RangeIndexTest, ManyRangesGrowTheArrayAndStaySorted) {
	Index ix;
	std::vector<Range *> all;
	for (int i = 0; i < 40; i++)
		all.push_back(ix.Add(k4K * (1 + i % 3)));
	for (size_t i = 0; i < all.size(); i += 2)
		ix.idx.Remove(all[i]);
	for (size_t i = 0; i < all.size(); i++) {
		Range *got;
		int rc = ix.idx.Lookup(all[i]->offset, RangeUse::kRead, &got);
		EXPECT_EQ(i % 2 ? 0 : -NB_ENOENT, rc) << i;
	}
	Range one{};
	one.size = 1ull << 48; /* the whole offset space: past the cursor it cannot fit */
	ix.Grow();
	EXPECT_EQ(-NB_ENOSPC, ix.idx.Place(&one, k4K, 0));
}

} /* namespace */
