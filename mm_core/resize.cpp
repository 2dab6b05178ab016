// SPDX-License-Identifier: GPL-2.0
/*
 * resize.cpp - regions added to and removed from a live core, and the segment tables both
 * replace (seg_table.h says why tables are replaced, never edited).
 *
 * Order of publication, so that every lookup a racing allocation or free makes succeeds:
 *  add:    segments built (all free, unreachable) -> index gains them -> node table gains
 *          them under the node lock. A block can be allocated from a segment only after the
 *          node table has it, and by then the index (where frees look) has it too.
 *  remove: node table loses them under the node lock, after checking every frame is free
 *          there (the per-CPU caches drained first) -> index loses them. No block of them can
 *          be allocated once the node table is replaced; a stale lookup that still finds one
 *          reaches descriptors that say "free" and is refused like any double free.
 */
#include "core.h"

namespace nb {

SegTable *Core::NewTable(u32 cap)
{
	SegTable *t = Meta<SegTable>(1, -1);
	if (t == nullptr)
		return nullptr;
	t->cap = cap;
	t->seg = cap != 0 ? Meta<Segment *>(cap, -1) : nullptr;
	if (cap != 0 && t->seg == nullptr) {
		Unmeta(t, 1);
		return nullptr;
	}
	return t;
}

void Core::FreeSegment(Segment *s)
{
	Unmeta(s->desc(), s->frames());
	Unmeta(s, 1);
}

void Core::FreeTable(SegTable *t, bool with_segments)
{
	if (t == nullptr)
		return;
	if (with_segments)
		for (u32 i = 0; i < t->n; i++)
			FreeSegment(t->seg[i]);
	Unmeta(t->seg, t->cap);
	Unmeta(t->granule, t->granules);
	Unmeta(t, 1);
}

void Core::Retire(SegTable *t)
{
	t->retired = retired_;
	retired_ = t;
}

int Core::MakeSegments(const nbc_region &r, Segment **out, u32 *made)
{
	*made = 0;
	for (u64 p = r.start_pfn, e = p + r.nr_frames; p < e;) {
		u64 pe = SegmentEnd(p, e);
		Segment *s = Meta<Segment>(1, r.node);
		FrameDesc *desc = Meta<FrameDesc>(pe - p, r.node);
		if (s == nullptr || desc == nullptr) {
			Unmeta(desc, pe - p);
			Unmeta(s, 1);
			return -NB_ENOMEM;
		}
		s->Init(p, pe - p, r.node, desc, max_order_);
		s->AddAllFree();
		out[(*made)++] = s;
		p = pe;
		nb_env_resched();
	}
	return 0;
}

/* A table holding old's segments plus add[0..na) (sorted in), minus those in [cut, cut_end). */
static void MergeInto(SegTable *dst, const SegTable *old, Segment *const *add, u32 na, u64 cut,
		      u64 cut_end)
{
	u32 i = 0, j = 0;
	dst->n = 0;
	while (i < old->n || j < na) {
		Segment *s;
		if (j == na || (i < old->n && old->seg[i]->base() < add[j]->base()))
			s = old->seg[i++];
		else
			s = add[j++];
		if (s->base() >= cut && s->end() <= cut_end)
			continue;
		dst->seg[dst->n++] = s;
	}
}

int Core::AddRegion(const nbc_region *r)
{
	if (r == nullptr || r->nr_frames == 0 || r->start_pfn >= (1ull << 52) ||
	    r->nr_frames > (1ull << 52) - r->start_pfn || r->node < 0 ||
	    static_cast<unsigned>(r->node) >= node_ids_)
		return -NB_EINVAL;
	/* Only nodes that had a pool at create: a node's per-CPU caches, heap and fallback
	 * lists are built then. */
	Node *node = nodes_[r->node];
	if (node == nullptr)
		return -NB_ENODEV;
	if (!AtomicCas(&resizing_, 0u, 1u))
		return -NB_EBUSY;
	int rc = 0;
	SegTable *ix = index(), *nt = node->table();
	u64 end = r->start_pfn + r->nr_frames;
	for (u32 i = 0; i < ix->n; i++)
		if (ix->seg[i]->base() < end && r->start_pfn < ix->seg[i]->end())
			rc = -NB_EEXIST;
	u32 segs = CountSegments(*r);
	SegTable *add = rc == 0 ? NewTable(segs) : nullptr;
	SegTable *new_ix = rc == 0 ? NewTable(ix->n + segs) : nullptr;
	SegTable *new_nt = rc == 0 ? NewTable(nt->n + segs) : nullptr;
	if (rc == 0 && (add == nullptr || new_ix == nullptr || new_nt == nullptr))
		rc = -NB_ENOMEM;
	if (rc == 0) {
		rc = MakeSegments(*r, add->seg, &add->n);
	}
	if (rc != 0) {
		FreeTable(add, true);
		FreeTable(new_ix, false);
		FreeTable(new_nt, false);
		AtomicStoreRelease(&resizing_, 0u);
		return rc;
	}
	MergeInto(new_ix, ix, add->seg, add->n, 0, 0);
	MapTable(new_ix);
	MergeInto(new_nt, nt, add->seg, add->n, 0, 0);
	AtomicStoreRelease(&index_, new_ix);
	Retire(ix);
	{
		Guard g(node->lock());
		Retire(node->PublishLocked(new_nt));
	}
	FreeTable(add, false); /* its segments now belong to the node's table */
	AtomicStoreRelease(&resizing_, 0u);
	return 0;
}

int Core::RemoveRegion(u64 start, u64 nr)
{
	if (nr == 0 || start >= (1ull << 52) || nr > (1ull << 52) - start)
		return -NB_EINVAL;
	if (!AtomicCas(&resizing_, 0u, 1u))
		return -NB_EBUSY;
	u64 end = start + nr;
	SegTable *ix = index();
	/* [start, end) must be exactly whole segments of one node, with no gap. */
	u32 first = ix->n, count = 0;
	u64 expect = start;
	int nd = -1, rc = 0;
	for (u32 i = 0; i < ix->n; i++) {
		Segment *s = ix->seg[i];
		if (s->end() <= start || s->base() >= end)
			continue;
		if (s->base() != expect || s->end() > end || (nd >= 0 && s->node() != nd)) {
			rc = -NB_EINVAL;
			break;
		}
		if (first == ix->n)
			first = i;
		nd = s->node();
		expect = s->end();
		count++;
	}
	if (rc == 0 && expect != end)
		rc = -NB_EINVAL;
	Node *node = rc == 0 ? nodes_[nd] : nullptr;
	SegTable *new_ix = rc == 0 ? NewTable(ix->n - count) : nullptr;
	SegTable *new_nt = rc == 0 ? NewTable(node->table()->n - count) : nullptr;
	SegTable *dead = rc == 0 ? NewTable(count) : nullptr;
	if (rc == 0 && (new_ix == nullptr || new_nt == nullptr || dead == nullptr))
		rc = -NB_ENOMEM;
	if (rc == 0) {
		for (u32 i = 0; i < count; i++)
			dead->seg[dead->n++] = ix->seg[first + i];
		dead->owns_segs = true;
		/* Blocks parked in the per-CPU caches are free to us but not to the segment. */
		DrainNode(nd);
		Guard g(node->lock());
		for (u32 i = 0; i < count && rc == 0; i++)
			if (dead->seg[i]->free_frames() != dead->seg[i]->frames())
				rc = -NB_EBUSY;
		if (rc == 0) {
			MergeInto(new_nt, node->table(), nullptr, 0, start, end);
			Retire(node->PublishLocked(new_nt));
		}
	}
	if (rc != 0) {
		FreeTable(new_ix, false);
		FreeTable(new_nt, false);
		FreeTable(dead, false);
		AtomicStoreRelease(&resizing_, 0u);
		return rc;
	}
	MergeInto(new_ix, ix, nullptr, 0, start, end);
	MapTable(new_ix);
	AtomicStoreRelease(&index_, new_ix);
	Retire(ix);
	Retire(dead);
	AtomicStoreRelease(&resizing_, 0u);
	return 0;
}

} /* namespace nb */
