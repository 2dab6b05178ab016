// SPDX-License-Identifier: GPL-2.0
/*
 * migrate_test.cpp - migrate.cpp: contents move, the source is freed, counters count, wrong
 * arguments and full targets leave the source untouched, SLEEP callers reschedule and can
 * be aborted.
 */
#include "test_util.h"

namespace nbtest {
namespace {

class MigrateTest : public CoreTest {
protected:
	void Fill(nb_u64 pfn, unsigned order, unsigned seed) {
		auto *w = static_cast<nb_u64 *>(sim::FrameAddr(pfn));
		for (nb_u64 i = 0; i < (NBC_FRAME_SIZE << order) / 8; i++)
			w[i] = i * 0x9e3779b97f4a7c15ull + seed;
	}
	bool Same(nb_u64 pfn, unsigned order, unsigned seed) {
		auto *w = static_cast<nb_u64 *>(sim::FrameAddr(pfn));
		for (nb_u64 i = 0; i < (NBC_FRAME_SIZE << order) / 8; i++)
			if (w[i] != i * 0x9e3779b97f4a7c15ull + seed)
				return false;
		return true;
	}
};

TEST_F(MigrateTest, MovesContentsAndCounts)
{
	Start(TwoNodes::Make());
	for (unsigned order : {0u, 3u, 9u, 10u}) {
		nbc_policy b = Bind(0);
		nb_u64 pfn, np;
		ASSERT_EQ(0, nbc_alloc(core, order, &b, 0, NB_CTX_SLEEP, &pfn, nullptr));
		Fill(pfn, order, order);
		ASSERT_EQ(0, nbc_buddy_migrate(core, pfn, order, 0, 1, NB_CTX_SLEEP, &np));
		EXPECT_EQ(1, RegionNode(np, 1ull << order));
		EXPECT_TRUE(Same(np, order, order));
		EXPECT_EQ(-NB_EINVAL, nbc_buddy_free(core, pfn, order)); /* source already freed */
		ASSERT_EQ(0, nbc_buddy_free(core, np, order));
	}
	EXPECT_EQ(4u, Stats(0).migrate_out);
	EXPECT_EQ(4u, Stats(1).migrate_in);
	EXPECT_EQ(0u, Stats(0).migrate_in);
	ExpectPristine();
}

TEST_F(MigrateTest, WrongArgumentsLeaveTheSource)
{
	Start(TwoNodes::Make());
	nbc_policy b = Bind(0);
	nb_u64 pfn, np;
	ASSERT_EQ(0, nbc_alloc(core, 2, &b, 0, NB_CTX_SLEEP, &pfn, nullptr));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_migrate(core, pfn, 2, 1, 0, NB_CTX_SLEEP, &np)); /* wrong node */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_migrate(core, pfn, 1, 0, 1, NB_CTX_SLEEP, &np)); /* wrong order */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_migrate(core, pfn + 1, 0, 0, 1, NB_CTX_SLEEP, &np));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_migrate(core, pfn, 2, 0, 5, NB_CTX_SLEEP, &np));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_migrate(core, 3, 0, 0, 1, NB_CTX_SLEEP, &np));
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_migrate(core, pfn, 2, 0, 1, NB_CTX_SLEEP, nullptr));
	/* Target full: -ENOMEM, source still allocated. */
	nbc_policy b1 = Bind(1);
	std::vector<nb_u64> fill;
	nb_u64 q;
	while (nbc_alloc(core, 0, &b1, 0, NB_CTX_SLEEP, &q, nullptr) == 0)
		fill.push_back(q);
	EXPECT_EQ(-NB_ENOMEM, nbc_buddy_migrate(core, pfn, 2, 0, 1, NB_CTX_SLEEP, &np));
	for (nb_u64 f : fill)
		ASSERT_EQ(0, nbc_buddy_free(core, f, 0));
	/* Same node is allowed: a fresh block there. */
	ASSERT_EQ(0, nbc_buddy_migrate(core, pfn, 2, 0, 0, NB_CTX_SLEEP, &np));
	EXPECT_NE(pfn, np);
	EXPECT_EQ(0, nbc_buddy_free(core, np, 2));
	/* A free block is no migration source. */
	EXPECT_EQ(-NB_EINVAL, nbc_buddy_migrate(core, np, 2, 0, 1, NB_CTX_SLEEP, &q));
	ExpectPristine();
}

TEST_F(MigrateTest, SleepCallersRescheduleAndAbort)
{
	Start(TwoNodes::Make());
	nbc_policy b = Bind(0);
	nb_u64 pfn, np;
	ASSERT_EQ(0, nbc_alloc(core, 10, &b, 0, NB_CTX_SLEEP, &pfn, nullptr));
	Fill(pfn, 10, 7);
	unsigned long before = sim::ReschedCalls();
	ASSERT_EQ(0, nbc_buddy_migrate(core, pfn, 10, 0, 1, NB_CTX_SLEEP, &np));
	EXPECT_GE(sim::ReschedCalls() - before, 1u); /* 1024 frames in 512-frame (2 MiB) chunks */
	before = sim::ReschedCalls();
	ASSERT_EQ(0, nbc_buddy_migrate(core, np, 10, 1, 0, NB_CTX_ATOMIC, &pfn));
	EXPECT_EQ(before, sim::ReschedCalls()); /* atomic callers never resched */
	EXPECT_TRUE(Same(pfn, 10, 7));
	sim::SetAbort(true);
	EXPECT_EQ(-NB_EINTR, nbc_buddy_migrate(core, pfn, 10, 0, 1, NB_CTX_SLEEP, &np));
	sim::SetAbort(false);
	EXPECT_TRUE(Same(pfn, 10, 7));
	EXPECT_EQ(0, nbc_buddy_free(core, pfn, 10));
	ExpectPristine();
}

} /* namespace */
} /* namespace nbtest */
