/* SPDX-License-Identifier: GPL-2.0 */
/*
 * paging_test.cpp - nb::PageTable: map/unmap/lookup at 4 KiB, 2 MiB and 1 GiB, splits and
 * merges, decomposition of odd orders, protect, remap, walk, and teardown freeing every table
 * page. Table pages are real pool frames (order-0 blocks of a one-node sim core) so the count
 * is checked twice: by the allocator below and by the pool returning to its initial state.
 * Leaf frames are never touched by the table, so they are arbitrary pfns here.
 */
#include <set>
#include <vector>

#include "../../mm_core/paging.h"
#include "test_util.h"

namespace {

using nb::PageTable;

constexpr nb_u64 k4K = 1ull << 12;
constexpr nb_u64 k2M = 1ull << 21;
constexpr nb_u64 k1G = 1ull << 30;
constexpr nb_u64 kRW = PAGE_PRESENT | PAGE_WRITABLE;

struct CountingAlloc {
	nbc_core *core = nullptr;
	std::set<nb_u64> live;
	unsigned long allocs = 0, frees = 0;
	long fail_after = -1; /* allocations left before -ENOMEM; -1: never fail */

	static int Alloc(void *arg, nb_u64 *pfn) {
		CountingAlloc *a = static_cast<CountingAlloc *>(arg);
		if (a->fail_after == 0)
			return -NB_ENOMEM;
		if (a->fail_after > 0)
			a->fail_after--;
		int rc = nbc_alloc(a->core, 0, nullptr, 0, NB_CTX_ATOMIC, pfn, nullptr);
		if (rc == 0) {
			EXPECT_TRUE(a->live.insert(*pfn).second);
			a->allocs++;
		}
		return rc;
	}
	static void Free(void *arg, nb_u64 pfn) {
		CountingAlloc *a = static_cast<CountingAlloc *>(arg);
		EXPECT_EQ(1u, a->live.erase(pfn)) << "freeing a page the table does not own";
		a->frees++;
		EXPECT_EQ(0, nbc_buddy_free(a->core, pfn, 0));
	}
};

class PagingTest : public nbtest::CoreTest {
protected:
	CountingAlloc alloc;
	PageTable pt;

	void SetUp() override {
		Start(nbtest::OneNode::Make());
		alloc.core = core;
		ASSERT_EQ(0, pt.Init(nb::PageTableAllocator{CountingAlloc::Alloc, CountingAlloc::Free,
							     &alloc}));
	}
	void TearDown() override {
		pt.Teardown();
		EXPECT_EQ(0u, pt.table_pages());
		EXPECT_TRUE(alloc.live.empty());
		EXPECT_EQ(alloc.allocs, alloc.frees);
		ExpectPristine();
		nbtest::CoreTest::TearDown();
	}
	PageTable::Leaf Get(nb_u64 virt) {
		PageTable::Leaf l{};
		EXPECT_EQ(0, pt.Lookup(virt, &l)) << std::hex << virt;
		return l;
	}
	std::vector<PageTable::Leaf> All() {
		std::vector<PageTable::Leaf> v;
		pt.Walk(0, PageTable::kVirtLimit,
			[](void *arg, const PageTable::Leaf &l) {
				static_cast<std::vector<PageTable::Leaf> *>(arg)->push_back(l);
				return 0;
			},
			&v);
		return v;
	}
};

TEST(PagingIndex, WorkedExample) {
	/* 16 GiB + 6 MiB + 12 KiB, the example in paging.h */
	const nb_u64 v = 0x400603000ull;
	EXPECT_EQ(0u, PageTable::Index(v, 4));
	EXPECT_EQ(16u, PageTable::Index(v, 3));
	EXPECT_EQ(3u, PageTable::Index(v, 2));
	EXPECT_EQ(3u, PageTable::Index(v, 1));
	EXPECT_EQ(511u, PageTable::Index(PageTable::kVirtLimit - 1, 4));
	EXPECT_EQ(21u, PageTable::Shift(2));
	EXPECT_EQ(39u, PageTable::Shift(4));
}

TEST_F(PagingTest, MapLookupEachSize) {
	EXPECT_EQ(1u, pt.table_pages()); /* the root */
	ASSERT_EQ(0, pt.Map(0x1000, 5, kRW, 0));
	ASSERT_EQ(0, pt.Map(k2M, 512, kRW | PAGE_HUGE_2MB, 9));
	ASSERT_EQ(0, pt.Map(k1G, 1ull << 18, PAGE_PRESENT, 18));

	PageTable::Leaf l = Get(0x1000);
	EXPECT_EQ(0x1000u, l.virt);
	EXPECT_EQ(5u, l.pfn);
	EXPECT_EQ(0u, l.order);
	EXPECT_EQ(kRW, l.flags);

	l = Get(k2M + 0x3000); /* inside the 2 MiB leaf: the leaf is reported whole */
	EXPECT_EQ(k2M, l.virt);
	EXPECT_EQ(512u, l.pfn);
	EXPECT_EQ(9u, l.order);
	EXPECT_EQ(kRW | PAGE_HUGE_2MB, l.flags);

	l = Get(k1G + 123 * k2M);
	EXPECT_EQ(k1G, l.virt);
	EXPECT_EQ(1ull << 18, l.pfn);
	EXPECT_EQ(18u, l.order);
	EXPECT_EQ(PAGE_PRESENT | PAGE_HUGE_2MB, l.flags); /* read-only */

	EXPECT_EQ(-NB_ENOENT, pt.Lookup(0, nullptr));
	EXPECT_EQ(-NB_ENOENT, pt.Lookup(0x2000, nullptr));
	EXPECT_EQ(-NB_ENOENT, pt.Lookup(2 * k1G, nullptr));
	EXPECT_EQ(1u, pt.leaves(0));
	EXPECT_EQ(1u, pt.leaves(9));
	EXPECT_EQ(1u, pt.leaves(18));
	/* root + one level-3 + one level-2 (shared by the 4K and 2M maps) + one level-1 */
	EXPECT_EQ(4u, pt.table_pages());

	ASSERT_EQ(0, pt.Unmap(0x1000, k4K));
	ASSERT_EQ(0, pt.Unmap(k2M, k2M));
	ASSERT_EQ(0, pt.Unmap(k1G, k1G));
	EXPECT_TRUE(pt.IsEmpty(0, PageTable::kVirtLimit));
	EXPECT_EQ(1u, pt.table_pages()) << "empty tables are freed on unmap";
}

TEST_F(PagingTest, TopOfAddressSpace) {
	const nb_u64 top = PageTable::kVirtLimit - k1G;
	ASSERT_EQ(0, pt.Map(top, 7ull << 18, kRW, 18));
	EXPECT_EQ(7ull << 18, Get(PageTable::kVirtLimit - k4K).pfn);
	EXPECT_EQ(-NB_EINVAL, pt.Map(PageTable::kVirtLimit, 0, kRW, 0));
	EXPECT_EQ(-NB_EINVAL, pt.Map(top, 0, kRW, 19)); /* runs past 2^48 */
	EXPECT_EQ(-NB_EINVAL, pt.Map(0x1234, 0, kRW, 0));
	EXPECT_EQ(-NB_EINVAL, pt.Map(0, PageTable::kPfnLimit, kRW, 0));
	ASSERT_EQ(0, pt.Unmap(top, k1G));
}

TEST_F(PagingTest, MapOverExistingIsRefused) {
	ASSERT_EQ(0, pt.Map(k2M, 512, kRW, 9));
	nb_u64 pages = pt.table_pages();
	EXPECT_EQ(-NB_EEXIST, pt.Map(k2M + 0x5000, 7, kRW, 0));
	EXPECT_EQ(-NB_EEXIST, pt.Map(0, 0, kRW, 10)); /* 4 MiB covering the 2 MiB leaf */
	EXPECT_EQ(pages, pt.table_pages());
	EXPECT_EQ(-NB_ENOENT, pt.Lookup(0, nullptr)) << "a refused map leaves nothing behind";
	EXPECT_EQ(512u, Get(k2M).pfn);
}

TEST_F(PagingTest, PartialUnmapSplits2M) {
	ASSERT_EQ(0, pt.Map(k2M, 1024, kRW, 9));
	nb_u64 pages = pt.table_pages();
	ASSERT_EQ(0, pt.Unmap(k2M + k4K, k4K));
	EXPECT_EQ(pages + 1, pt.table_pages()) << "one level-1 table for the split";
	EXPECT_EQ(0u, pt.leaves(9));
	EXPECT_EQ(511u, pt.leaves(0));

	PageTable::Leaf l = Get(k2M);
	EXPECT_EQ(0u, l.order);
	EXPECT_EQ(1024u, l.pfn);
	EXPECT_EQ(kRW, l.flags) << "a split keeps the flags, drops PS";
	EXPECT_EQ(-NB_ENOENT, pt.Lookup(k2M + k4K, nullptr));
	EXPECT_EQ(1026u, Get(k2M + 2 * k4K).pfn);
	EXPECT_EQ(1024u + 511, Get(2 * k2M - k4K).pfn);

	ASSERT_EQ(0, pt.Unmap(k2M, k2M)); /* the rest, holes included */
	EXPECT_EQ(1u, pt.table_pages());
}

TEST_F(PagingTest, PartialUnmapSplits1GTwice) {
	ASSERT_EQ(0, pt.Map(k1G, 1ull << 18, kRW, 18));
	nb_u64 pages = pt.table_pages();
	/* 1 GiB + 2 MiB + 4 KiB: split the 1 GiB leaf into 2 MiB ones, then one 2 MiB into 4 KiB */
	ASSERT_EQ(0, pt.Unmap(k1G + k2M + k4K, k4K));
	EXPECT_EQ(pages + 2, pt.table_pages());
	EXPECT_EQ(0u, pt.leaves(18));
	EXPECT_EQ(511u, pt.leaves(9));
	EXPECT_EQ(511u, pt.leaves(0));
	EXPECT_EQ(9u, Get(k1G).order);
	EXPECT_EQ((1ull << 18) + 512, Get(k1G + k2M).pfn);
	EXPECT_EQ(0u, Get(k1G + k2M).order);
	EXPECT_EQ((1ull << 18) + 514, Get(k1G + k2M + 2 * k4K).pfn);
	EXPECT_EQ((1ull << 18) + 1024, Get(k1G + 2 * k2M).pfn);
	EXPECT_EQ(9u, Get(k1G + 2 * k2M).order);
}

TEST_F(PagingTest, OddOrdersDecompose) {
	/* order 19 at a 1 GiB-aligned virt and pfn: two 1 GiB leaves */
	ASSERT_EQ(0, pt.Map(0, 1ull << 18, kRW, 19));
	EXPECT_EQ(2u, pt.leaves(18));
	EXPECT_EQ((1ull << 18) + (1ull << 18), Get(k1G).pfn);
	/* order 10 at 4 MiB alignment: two 2 MiB leaves */
	ASSERT_EQ(0, pt.Map(4 * k1G, 2048, kRW, 10));
	EXPECT_EQ(2u, pt.leaves(9));
	/* order 5: 32 4 KiB leaves */
	ASSERT_EQ(0, pt.Map(8 * k1G, 64, kRW, 5));
	EXPECT_EQ(32u, pt.leaves(0));
	/* order 9 at a 2 MiB-aligned virt but an odd pfn: 512 4 KiB leaves, no huge one */
	ASSERT_EQ(0, pt.Map(12 * k1G, 1, kRW, 9));
	EXPECT_EQ(2u, pt.leaves(9));
	EXPECT_EQ(32u + 512, pt.leaves(0));
	EXPECT_EQ(1u + 511, Get(12 * k1G + 511 * k4K).pfn);
	/* 1 GiB + 6 MiB + 12 KiB from a 1 GiB-aligned frame: 1G + 3 x 2M + 3 x 4K */
	ASSERT_EQ(0, pt.MapRange(16 * k1G, 3ull << 18, (1ull << 18) + 3 * 512 + 3, kRW));
	EXPECT_EQ(3u, pt.leaves(18));
	EXPECT_EQ(2u + 3, pt.leaves(9));
	EXPECT_EQ(32u + 512 + 3, pt.leaves(0));
	EXPECT_EQ((3ull << 18) + (1ull << 18) + 1536 + 2, Get(17 * k1G + 6 * k2M / 2 + 2 * k4K).pfn);
}

TEST_F(PagingTest, WalkReportsLeavesInOrder) {
	ASSERT_EQ(0, pt.MapRange(k1G - k2M - k4K, 0x10000 - 1, 1 + 512 + (1ull << 18), kRW));
	/* a 4K leaf at 1G-2M-4K (pfn 0xffff), then virt and pfn 0x10000 are 2 MiB-aligned */
	std::vector<PageTable::Leaf> v = All();
	ASSERT_FALSE(v.empty());
	nb_u64 expect = k1G - k2M - k4K, bytes = 0;
	for (const PageTable::Leaf &l : v) {
		EXPECT_EQ(expect, l.virt);
		EXPECT_EQ(0u, l.virt % (k4K << l.order));
		expect = l.virt + (k4K << l.order);
		bytes += k4K << l.order;
	}
	EXPECT_EQ((1 + 512 + (1ull << 18)) * k4K, bytes);
	EXPECT_EQ(0u, v[0].order);
	EXPECT_EQ(9u, v[1].order);
	/* from 1G on, virt is 1 GiB-aligned but pfn 0x10000+512 is not: 2 MiB leaves */
	EXPECT_EQ(9u, v[2].order);
	PageTable::Leaf first{};
	ASSERT_EQ(0, pt.FirstLeaf(k1G + k4K, k4K, &first));
	EXPECT_EQ(k1G, first.virt);
	EXPECT_EQ(-NB_ENOENT, pt.FirstLeaf(0, k1G - k2M - k4K, &first));
}

TEST_F(PagingTest, ProtectSplitsAndMergeRestores) {
	ASSERT_EQ(0, pt.Map(k2M, 512, kRW, 9));
	ASSERT_EQ(0, pt.Map(k1G, 1ull << 18, kRW, 18));
	nb_u64 pages = pt.table_pages();
	ASSERT_EQ(0, pt.Protect(k2M, k4K, PAGE_PRESENT));
	EXPECT_EQ(PAGE_PRESENT, Get(k2M).flags);
	EXPECT_EQ(kRW, Get(k2M + k4K).flags);
	EXPECT_EQ(pages + 1, pt.table_pages());
	ASSERT_EQ(0, pt.Protect(k1G, k1G, PAGE_PRESENT)); /* whole leaf: no split */
	EXPECT_EQ(PAGE_PRESENT | PAGE_HUGE_2MB, Get(k1G).flags);
	EXPECT_EQ(pages + 1, pt.table_pages());

	pt.Merge(0, k1G); /* flags differ: nothing to merge */
	EXPECT_EQ(pages + 1, pt.table_pages());
	ASSERT_EQ(0, pt.Protect(k2M, k4K, kRW));
	pt.Merge(0, k1G);
	EXPECT_EQ(pages, pt.table_pages());
	EXPECT_EQ(9u, Get(k2M + 0x7000).order);
	EXPECT_EQ(512u, Get(k2M + 0x7000).pfn);

	/* 1 GiB split into 2 MiB leaves by a protect, then merged back */
	ASSERT_EQ(0, pt.Protect(k1G + k2M, k2M, kRW));
	EXPECT_EQ(1u + 512, pt.leaves(9)) << "the 1 GiB leaf became 512 2 MiB leaves";
	ASSERT_EQ(0, pt.Protect(k1G, k1G, PAGE_PRESENT));
	pt.Merge(k1G, k1G);
	EXPECT_EQ(18u, Get(k1G).order);
	EXPECT_EQ(pages, pt.table_pages());
}

TEST_F(PagingTest, RemapKeepsShapes) {
	ASSERT_EQ(0, pt.MapRange(0, 2048, 512 + 2, kRW)); /* 2M + 2 x 4K */
	nb_u64 pages = pt.table_pages();
	ASSERT_EQ(0, pt.Remap(0, k2M + 2 * k4K, 8192));
	EXPECT_EQ(8192u, Get(0).pfn);
	EXPECT_EQ(9u, Get(0).order);
	EXPECT_EQ(8192u + 513, Get(k2M + k4K).pfn);
	EXPECT_EQ(pages, pt.table_pages());
	/* a 2 MiB leaf cannot point at an unaligned frame: refused, nothing changed */
	EXPECT_EQ(-NB_EINVAL, pt.Remap(0, k2M + 2 * k4K, 8193));
	EXPECT_EQ(8192u, Get(0).pfn);
	/* a hole in the range */
	EXPECT_EQ(-NB_ENOENT, pt.Remap(0, k2M + 3 * k4K, 8192));
	/* a leaf straddling the range */
	EXPECT_EQ(-NB_EINVAL, pt.Remap(0, k4K, 8192));
}

TEST_F(PagingTest, OutOfTablePagesChangesNothing) {
	alloc.fail_after = 2; /* a 4 KiB leaf far from the root needs three tables */
	EXPECT_EQ(-NB_ENOMEM, pt.Map(5 * k1G + 3 * k2M, 1, kRW, 0));
	EXPECT_TRUE(pt.IsEmpty(0, PageTable::kVirtLimit));
	EXPECT_EQ(1u, pt.table_pages()) << "partial tables of a failed map are freed";

	alloc.fail_after = -1;
	ASSERT_EQ(0, pt.Map(k2M, 512, kRW, 9));
	alloc.fail_after = 0;
	EXPECT_EQ(-NB_ENOMEM, pt.Unmap(k2M + k4K, k4K)) << "the split needs a page";
	EXPECT_EQ(9u, Get(k2M).order) << "a failed split leaves the leaf whole";
	EXPECT_EQ(-NB_ENOMEM, pt.Protect(k2M, k4K, PAGE_PRESENT));
	EXPECT_EQ(kRW | PAGE_HUGE_2MB, Get(k2M).flags);
	EXPECT_EQ(0, pt.Unmap(k2M, k2M)) << "whole leaves need no page";

	/* a multi-leaf map that runs out halfway is undone */
	alloc.fail_after = 3;
	EXPECT_EQ(-NB_ENOMEM, pt.MapRange(k1G - 4 * k4K, 100, 8, kRW)); /* crosses into a new L3 */
	EXPECT_TRUE(pt.IsEmpty(0, PageTable::kVirtLimit));
	alloc.fail_after = -1;
}

/* The fault path's one descent: where the walk met an empty entry says how much around the
 * address is empty, and MapIfEmpty refuses any overlap in the same descent that installs. */
TEST_F(PagingTest, ProbeSaysHowMuchIsEmpty) {
	unsigned empty = 99;
	EXPECT_EQ(-NB_ENOENT, pt.Probe(5 * k1G, nullptr, &empty));
	EXPECT_EQ(4u, empty) << "an empty root entry: 512 GiB around it are empty";
	ASSERT_EQ(0, pt.Map(5 * k1G + 3 * k2M + 7 * k4K, 11, kRW, 0));
	EXPECT_EQ(-NB_ENOENT, pt.Probe(5 * k1G + 9 * k2M, nullptr, &empty));
	EXPECT_EQ(2u, empty) << "another 2 MiB of the same GiB";
	EXPECT_EQ(-NB_ENOENT, pt.Probe(5 * k1G + 3 * k2M, nullptr, &empty));
	EXPECT_EQ(1u, empty) << "the same 2 MiB: only the 4 KiB is known empty";
	EXPECT_EQ(-NB_ENOENT, pt.Probe(7 * k1G, nullptr, &empty));
	EXPECT_EQ(3u, empty);
	PageTable::Leaf l{};
	EXPECT_EQ(0, pt.Probe(5 * k1G + 3 * k2M + 7 * k4K, &l, &empty));
	EXPECT_EQ(0u, empty);
	EXPECT_EQ(11u, l.pfn);
	EXPECT_EQ(5 * k1G + 3 * k2M + 7 * k4K, l.virt);
	ASSERT_EQ(0, pt.Map(k2M, 512, kRW, 9));
	EXPECT_EQ(0, pt.Probe(k2M + 5 * k4K, &l, &empty));
	EXPECT_EQ(k2M, l.virt);
	EXPECT_EQ(9u, l.order);
}

TEST_F(PagingTest, MapIfEmptyRefusesAnyOverlap) {
	PageTable::Leaf l{};
	ASSERT_EQ(0, pt.MapIfEmpty(3 * k2M + 5 * k4K, 77, kRW, 0, &l));
	EXPECT_EQ(3 * k2M + 5 * k4K, l.virt);
	EXPECT_EQ(77u, l.pfn);
	EXPECT_EQ(0u, l.order);
	EXPECT_EQ(77u, Get(3 * k2M + 5 * k4K).pfn);
	unsigned long tables = pt.table_pages();
	EXPECT_EQ(-NB_EEXIST, pt.MapIfEmpty(3 * k2M + 5 * k4K, 78, kRW, 0, &l)) << "the same page";
	EXPECT_EQ(-NB_EEXIST, pt.MapIfEmpty(3 * k2M, 1024, kRW, 9, &l)) << "its 2 MiB chunk";
	EXPECT_EQ(-NB_EEXIST, pt.MapIfEmpty(0, 1u << 18, kRW, 18, &l)) << "its 1 GiB chunk";
	EXPECT_EQ(tables, pt.table_pages());
	ASSERT_EQ(0, pt.MapIfEmpty(k1G + k2M, 2048, kRW, 9, &l));
	EXPECT_EQ(PAGE_HUGE_2MB | kRW, l.flags);
	EXPECT_EQ(-NB_EEXIST, pt.MapIfEmpty(k1G + k2M + 9 * k4K, 5, kRW, 0, &l)) << "under a 2 MiB leaf";
	EXPECT_EQ(-NB_EINVAL, pt.MapIfEmpty(k1G + 4 * k2M + k4K, 4096, kRW, 9, &l)) << "unaligned";
	EXPECT_EQ(-NB_EINVAL, pt.MapIfEmpty(k1G + 4 * k2M, 4097, kRW, 9, &l)) << "unaligned frame";
	EXPECT_EQ(-NB_EINVAL, pt.MapIfEmpty(k1G + 4 * k2M, 4096, kRW, 3, &l)) << "not a leaf order";
	EXPECT_EQ(2u, pt.leaves(0) + pt.leaves(9));

	/* out of table pages halfway down: the tables this call made are freed again */
	tables = pt.table_pages();
	alloc.fail_after = 2;
	EXPECT_EQ(-NB_ENOMEM, pt.MapIfEmpty(3ull << 39, 1, kRW, 0, &l));
	EXPECT_EQ(tables, pt.table_pages());
	EXPECT_EQ(-NB_ENOENT, pt.Lookup(3ull << 39, &l));
	alloc.fail_after = -1;
	EXPECT_EQ(2u, pt.leaves(0) + pt.leaves(9));
}

TEST_F(PagingTest, TeardownFreesEveryTablePage) {
	/* scatter leaves over many tables at every level: each base has new L4, L3, L2 indices */
	const nb_u64 step = (1ull << 39) + k1G + k2M;
	for (nb_u64 i = 0; i < 40; i++) {
		ASSERT_EQ(0, pt.Map(i * step + i * k4K, i, kRW, 0));
		ASSERT_EQ(0, pt.Map(i * step + 3 * k2M, 512 * i, kRW, 9));
	}
	ASSERT_EQ(0, pt.Unmap(step + 3 * k2M + 5 * k4K, k4K)); /* and a split */
	EXPECT_EQ(39u, pt.leaves(9));
	EXPECT_GT(pt.table_pages(), 100u);
	EXPECT_EQ(alloc.live.size(), pt.table_pages());
	/* TearDown: Teardown() must give back every page (allocator set and pool both checked) */
}

} /* namespace */
