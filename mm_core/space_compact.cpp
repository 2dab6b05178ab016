// SPDX-License-Identifier: GPL-2.0
//
// space_compact.cpp - what compaction (compact.cpp) asks of a space: which of its frames may
// move, and moving the ones in the chosen run to other frames of the same node.
//
// Relocation is a migration in place to the same node restricted to the run: the range goes
// through the migration states (kMigrating: faults get -NB_EAGAIN, FREE and MIGRATE wait),
// and its frames in the run move in the migration's batches: the owner's mapper unmaps a
// window before the copies and maps every frame of it again after the table is repointed,
// as nbc_space_migrate_finish_mapped does: mappings keep their entries, nothing re-faults.
// Quotas do not change: the node does not.
//
// Every walk here holds lock_ for one range's frames (its extents, or its table's leaves):
// long for a 64 GiB range of 4 KiB frames, but no more than what the range costs to free.
#include "compact.h"
#include "leaf_orders.h"
#include "space.h"

namespace nb {

namespace {

struct LeafVisit {
	Compactor *c;
	bool any; // a leaf in the run was seen (RelocateBegin), or frames noted (CompactNote)
	bool note;
};

int VisitLeaf(void *arg, const PageTable::Leaf &leaf)
{
	auto *v = static_cast<LeafVisit *>(arg);
	u64 nr = 1ull << leaf.order;
	if (v->note) {
		v->c->Note(leaf.pfn, nr);
		return 0;
	}
	v->any = v->c->InRun(leaf.pfn, nr);
	return v->any ? 1 : 0; // stop at the first
}

} // namespace

int Space::CompactNote(Compactor *c, int (*pinned)(void *owner, u64 offset), void *owner)
{
	// Spare table pages go back to the pool; the table's own pages can move.
	TrimStash(0);
	{
		Guard g(&lock_);
		table_.ForEachTablePage([](void *arg, u64 pfn) { static_cast<Compactor *>(arg)->Note(pfn, 1); },
					c);
	}
	for (u64 cursor = 0;;) {
		Guard g(&lock_);
		Range *r = ranges_.FirstFrom(cursor);
		if (!r)
			return 0;
		cursor = r->offset + r->size;
		// A range that is not live is being freed or moved by someone else: its frames
		// are not ours to count on (they count as unmovable).
		if (r->state != kLive || (pinned && pinned(owner, r->offset)))
			continue;
		if (r->kind == NBC_SPACE_KIND_BLOCK) {
			for (u32 i = 0; i < r->nr_extents; i++)
				c->Note(r->extents[i].pfn, r->extents[i].nr_frames);
		} else {
			LeafVisit v{c, false, true};
			table_.Walk(r->offset, r->size, VisitLeaf, &v);
		}
	}
}

bool Space::InRunLocked(const Range &r, const Compactor &c)
{
	if (r.kind == NBC_SPACE_KIND_BLOCK) {
		for (u32 i = 0; i < r.nr_extents; i++)
			if (c.InRun(r.extents[i].pfn, r.extents[i].nr_frames))
				return true;
		return false;
	}
	LeafVisit v{const_cast<Compactor *>(&c), false, false};
	table_.Walk(r.offset, r.size, VisitLeaf, &v);
	return v.any;
}

int Space::RelocateBegin(Compactor *c, u64 from, int (*pinned)(void *owner, u64 offset),
			 void *owner, u64 *offset, u64 *len)
{
	Guard g(&lock_);
	for (Range *r = ranges_.FirstFrom(from); r; r = ranges_.FirstFrom(r->offset + r->size)) {
		if (r->state != kLive || (pinned && pinned(owner, r->offset)) || !InRunLocked(*r, *c))
			continue;
		r->state = kMigrating;
		r->target = -1; // not a migration to a node: MigrateFinish never sees this range
		*offset = r->offset;
		*len = r->size;
		return 0;
	}
	return -NB_ENOENT;
}

// One frame lying in the run, its mappings unmapped (no store may land in it during the
// copy): copy it to a frame outside the run, repoint the table, hand the old one to the
// compactor. The range is kMigrating: no fault maps it meanwhile, nothing else changes its
// frames.
int Space::RelocateFrame(Compactor *c, u64 virt, u64 *pfn, u32 order, u64 nr_frames, u32 flags,
			 nb_ctx ctx)
{
	u64 fresh;
	int rc = c->TakeDest(order, nr_frames, flags & NBC_SPACE_LOW4G, ctx, &fresh);
	if (rc)
		return rc;
	FillFrames(fresh, *pfn, nr_frames, ctx, false);
	u64 old = *pfn;
	{
		Guard g(&lock_);
		rc = table_.Remap(virt, nr_frames * kFrame, fresh);
		if (!rc)
			*pfn = fresh; // queries read extents under lock_
	}
	if (rc) {
		// Same shape and alignment as the old frame: Remap has nothing to refuse.
		NB_ASSERT(!rc);
		c->DropDest(order, nr_frames, fresh);
		return rc;
	}
	c->Adopt(old, nr_frames);
	return 0;
}

// The range's frames in the run move in the batches of a migration (space_extents.cpp): one
// unmap per 2 MiB window, every frame of it mapped again after.
int Space::RelocateFinish(Compactor *c, u64 offset, const nbc_space_mapper *m, nb_ctx ctx,
			  u64 *frames, u64 *blocks)
{
	Range *r;
	{
		Guard g(&lock_);
		int rc = ranges_.Lookup(offset, RangeUse::kMigrateFinish, &r);
		if (rc)
			return rc;
	}
	struct Arg {
		Space *s;
		Compactor *c;
		u32 flags;
		nb_ctx ctx;
		u64 *frames, *blocks;
	} arg{this, c, r->flags, ctx, frames, blocks};
	const FrameMove fm{
		[](void *a, u64 pfn, u64 nr, i32) { return static_cast<Arg *>(a)->c->WhollyInRun(pfn, nr); },
		[](void *a, u64 virt, u64 *pfn, i32 *, u32 order, u64 nr) {
			auto *x = static_cast<Arg *>(a);
			int rc = x->s->RelocateFrame(x->c, virt, pfn, order, nr, x->flags, x->ctx);
			if (!rc) {
				*x->frames += nr;
				++*x->blocks;
			}
			return rc;
		},
		&arg};
	int rc = r->kind == NBC_SPACE_KIND_BLOCK ? MoveBlockFrames(r, m, ctx, fm)
						 : MoveReservedFrames(r, m, ctx, fm);
	{
		Guard g(&lock_);
		r->state = kLive;
	}
	TrimStash(TableStash::kMax);
	return rc;
}

// The table's pages in the run, a batch at a time: frames for them are taken with lock_
// dropped (the core is never entered under it), then the pages move under it; what a
// batch did not use (the table changed meanwhile) goes back.
int Space::RelocateTables(Compactor *c, nb_ctx ctx, u64 *frames)
{
	constexpr u64 kTableBatch = 32;
	for (;;) {
		struct Count {
			const Compactor *c;
			u64 n;
		} count{c, 0};
		{
			Guard g(&lock_);
			table_.ForEachTablePage(
				[](void *arg, u64 pfn) {
					auto *k = static_cast<Count *>(arg);
					k->n += k->c->WhollyInRun(pfn, 1);
				},
				&count);
		}
		if (!count.n)
			return 0;
		u64 fresh[kTableBatch], old[kTableBatch], nr = Min(count.n, kTableBatch), got = 0;
		int rc = 0;
		for (; got < nr && !rc; got++)
			rc = c->TakeDest(0, 1, false, ctx, &fresh[got]);
		if (rc)
			got--;
		u64 used;
		{
			Guard g(&lock_);
			used = table_.MoveTablePages(
				[](void *arg, u64 pfn) {
					return static_cast<const Compactor *>(arg)->WhollyInRun(pfn, 1);
				},
				c, fresh, got, old);
		}
		for (u64 i = 0; i < used; i++)
			c->Adopt(old[i], 1);
		for (u64 i = used; i < got; i++)
			c->DropDest(0, 1, fresh[i]);
		*frames += used;
		if (rc)
			return rc;
		if (!used)
			return -NB_EAGAIN; // counted some, moved none: the table is changing under us
	}
}

} // namespace nb
