// SPDX-License-Identifier: GPL-2.0
/*
 * space_migrate_test.cpp - migration that keeps a range mapped (nbc_space_migrate_finish_mapped,
 * space_extents.cpp). The mapper here is a model of the user's page tables: a map from 4 KiB
 * page to pfn that unmap() empties and map() fills, and a "user" that stores into every page
 * it can reach each time a batch is unmapped. Every store must survive (no frame is copied
 * before its batch is unmapped), the model must end up equal to the space's table (nothing
 * has to fault), and batches must stay within 2 MiB (or one larger frame).
 */
#include <map>

#include "space_fixture.h"

namespace {

using namespace nbtest;

struct UserModel {
	nbc_space *sp = nullptr;
	nb_u64 range = 0; /* the range's start: the two-phase calls look ranges up by it */
	int target = -1;
	std::map<nb_u64, nb_u64> pte;    /* page offset -> pfn the user reaches it through */
	std::map<nb_u64, nb_u64> stores; /* page offset -> stores made through the mapping */
	nb_u64 win_from = 0, win_to = 0; /* the batch unmapped last */
	unsigned unmaps = 0, maps = 0, bad = 0;
	bool store_on_unmap = true;

	static void Unmap(void *arg, nb_u64 off, nb_u64 len) {
		auto *m = static_cast<UserModel *>(arg);
		m->unmaps++;
		if (m->store_on_unmap) {
			for (auto &[page, pfn] : m->pte) {
				nb_u64 *p = static_cast<nb_u64 *>(sim::FrameAddr(pfn));
				(*p)++;
				m->stores[page]++;
			}
		}
		for (nb_u64 page = off; page < off + len; page += k4K)
			m->pte.erase(page);
		m->win_from = off;
		m->win_to = off + len;
		/* No lock is held: the range is migrating to everyone else. */
		nbc_space_fault_result r;
		nb_u64 s, l;
		if (nbc_space_fault(m->sp, off, 1, 0, 18, NB_CTX_SLEEP, &r) != -NB_EAGAIN ||
		    nbc_space_migrate_begin(m->sp, m->range, 0, &s, &l) != -NB_EBUSY ||
		    nbc_space_free_begin(m->sp, m->range, &s, &l) != -NB_EBUSY)
			m->bad++;
	}
	static void Map(void *arg, nb_u64 off, nb_u64 pfn, nb_u64 nr) {
		auto *m = static_cast<UserModel *>(arg);
		m->maps++;
		if (off < m->win_from || off + nr * k4K > m->win_to)
			m->bad++; /* maps only what the last unmap took */
		for (nb_u64 i = 0; i < nr; i++)
			m->pte[off + i * k4K] = pfn + i;
	}
	nbc_space_mapper Mapper() { return nbc_space_mapper{Unmap, Map, this}; }
};

class SpaceMigrateTest : public SpaceTest {
protected:
	UserModel user;

	/* The model holds every page of [off, off+bytes) mapped, as a fault would map it. */
	void MapAll(nb_u64 off, nb_u64 bytes) {
		user.sp = sp;
		for (nb_u64 page = off; page < off + bytes; page += k4K) {
			nbc_space_fault_result r = Fault(page, 0, 0);
			user.pte[page] = r.pfn;
		}
	}
	int MigrateMapped(nb_u64 off, int node, nb_u64 *moved) {
		nb_u64 s, l;
		int rc = nbc_space_migrate_begin(sp, off, node, &s, &l);
		if (rc)
			return rc;
		user.target = node;
		user.range = off;
		nbc_space_mapper m = user.Mapper();
		return nbc_space_migrate_finish_mapped(sp, off, NB_CTX_SLEEP, &m, moved);
	}
	/* The model equals the table, and every page holds its pattern plus its stores. */
	void ExpectModelIsTable(nb_u64 off, nb_u64 bytes, nb_u64 salt) {
		EXPECT_EQ(0u, user.bad);
		for (nb_u64 page = off, i = 0; page < off + bytes; page += k4K, i++) {
			nbc_space_fault_result r = Fault(page, 0, 0);
			auto it = user.pte.find(page);
			ASSERT_NE(user.pte.end(), it) << std::hex << page;
			ASSERT_EQ(r.pfn, it->second) << std::hex << page;
			const nb_u64 *p = static_cast<const nb_u64 *>(sim::FrameAddr(r.pfn));
			ASSERT_EQ(i * 7919 + salt + user.stores[page], p[0]) << "page " << i;
			ASSERT_EQ(i * 7919 + salt, p[1]) << "page " << i;
		}
	}
};

/* 2 MiB frames: one batch per frame, stores before each batch all kept, nothing to fault. */
TEST_F(SpaceMigrateTest, HugeBlockStaysMappedAndKeepsStores) {
	const nb_u64 size = 4 * k2M;
	nb_u64 off = Alloc(size, 0, NBC_SPACE_HUGE_2M);
	ASSERT_EQ(9u, Info(off).max_frame_order);
	Write(off, size, 11);
	MapAll(off, size);
	nb_u64 moved = 0;
	ASSERT_EQ(0, MigrateMapped(off, 1, &moved));
	EXPECT_EQ(size, moved);
	EXPECT_EQ(4u, user.unmaps);
	EXPECT_EQ(4u, user.maps);
	ExpectModelIsTable(off, size, 11);
	for (auto &[page, pfn] : user.pte)
		EXPECT_EQ(1, RegionNode(pfn));
	EXPECT_EQ(size, nbc_space_node_bytes(sp, 1));
	EXPECT_EQ(0u, nbc_space_node_bytes(sp, 0));
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
}

/* 4 KiB frames (fallback): batches of at most 32 frames within 2 MiB, and the window's
 * frames already on the target (moved back below) are mapped again too. */
TEST_F(SpaceMigrateTest, SmallFramesMoveInBoundedBatches) {
	Fragment(0, 0, 9);
	const nb_u64 size = k2M;
	nb_u64 off = Alloc(size, 0, NBC_SPACE_HUGE_2M);
	ASSERT_EQ(0u, Info(off).max_frame_order);
	Write(off, size, 3);
	MapAll(off, size);
	nb_u64 moved = 0;
	ASSERT_EQ(0, MigrateMapped(off, 1, &moved));
	EXPECT_EQ(size, moved);
	EXPECT_EQ(512u / 32, user.unmaps);
	EXPECT_EQ(512u, user.maps);
	ExpectModelIsTable(off, size, 3);
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
}

/* A reserved range: only populated leaves move and come back, holes stay unmapped, and a
 * second migration moves nothing and unmaps nothing. */
TEST_F(SpaceMigrateTest, ReservedLeavesComeBackHolesStayEmpty) {
	nbc_policy b0 = Bind(0);
	nb_u64 off;
	ASSERT_EQ(0, nbc_space_reserve(sp, 4 * k2M, &b0, 0, 0, NB_CTX_SLEEP, &off));
	user.sp = sp;
	std::vector<nb_u64> touched;
	for (nb_u64 page = off; page < off + 4 * k2M; page += 37 * k4K) {
		nbc_space_fault_result r = Fault(page, 0, 0);
		*static_cast<nb_u64 *>(sim::FrameAddr(r.pfn)) = page;
		user.pte[page] = r.pfn;
		touched.push_back(page);
	}
	nb_u64 moved = 0;
	ASSERT_EQ(0, MigrateMapped(off, 1, &moved));
	EXPECT_EQ(touched.size() * k4K, moved);
	EXPECT_EQ(0u, user.bad);
	EXPECT_EQ(touched.size(), user.pte.size());
	EXPECT_EQ(touched.size(), user.maps);
	for (nb_u64 page : touched) {
		nbc_space_fault_result r = Fault(page, 0, 0);
		EXPECT_EQ(r.pfn, user.pte[page]);
		EXPECT_EQ(1, RegionNode(r.pfn));
		EXPECT_EQ(page + user.stores[page], *static_cast<nb_u64 *>(sim::FrameAddr(r.pfn)));
	}
	unsigned unmaps = user.unmaps;
	ASSERT_EQ(0, MigrateMapped(off, 1, &moved));
	EXPECT_EQ(0u, moved);
	EXPECT_EQ(unmaps, user.unmaps);
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
}

/* A refusal part-way (quota on the target) still maps every frame of the failed batch, on
 * whichever frame the table now has: the user's view never points at a freed frame. */
TEST_F(SpaceMigrateTest, RefusalPartWayMapsWhatTheTableHas) {
	Fragment(0, 0, 9);
	const nb_u64 size = k2M;
	nb_u64 off = Alloc(size, 0, NBC_SPACE_HUGE_2M);
	Write(off, size, 9);
	MapAll(off, size);
	ASSERT_EQ(0, nbc_space_set_quota(sp, 1, 40 * k4K));
	nb_u64 moved = 0;
	EXPECT_EQ(-NB_EDQUOT, MigrateMapped(off, 1, &moved));
	EXPECT_EQ(40 * k4K, moved);
	EXPECT_EQ(2u, user.unmaps); /* 32 moved, then 8 of the next batch */
	ExpectModelIsTable(off, size, 9);
	EXPECT_EQ(40 * k4K, nbc_space_node_bytes(sp, 1));
	/* Live again: a plain migration back works. */
	ASSERT_EQ(0, nbc_space_migrate(sp, off, 0, NB_CTX_SLEEP, nullptr, nullptr, &moved));
	EXPECT_EQ(40 * k4K, moved);
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
}

/* A contiguous range is one frame: one batch however large, copied whole. */
TEST_F(SpaceMigrateTest, ContiguousRangeIsOneBatch) {
	const nb_u64 size = 3 * k2M + 5 * k4K;
	nb_u64 off = Alloc(size, 0, NBC_SPACE_CONTIG);
	nb_u64 bytes = Info(off).size;
	Write(off, bytes, 21);
	MapAll(off, bytes);
	nb_u64 moved = 0;
	ASSERT_EQ(0, MigrateMapped(off, 1, &moved));
	EXPECT_EQ(bytes, moved);
	EXPECT_EQ(1u, user.unmaps);
	EXPECT_EQ(1u, user.maps);
	ExpectModelIsTable(off, bytes, 21);
	ASSERT_EQ(0, nbc_space_free(sp, off, NB_CTX_SLEEP, nullptr, nullptr));
}

} /* namespace */
