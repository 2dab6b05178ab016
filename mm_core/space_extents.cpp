// SPDX-License-Identifier: GPL-2.0
//
// space_extents.cpp - frames of a space: taken from the core, zeroed, charged, given back,
// moved to another node. A block range (nbc_space_alloc) holds its frames as extents; a
// reserved range's frames are its leaves (space_fault.cpp takes them one first touch at a
// time, through the same TakeFrames/GiveBack). Free and migrate come here for both kinds.
#include "leaf_orders.h"
#include "space.h"

namespace nb {

// ---- one frame in, one frame out ---------------------------------------------------------

// Zeroes (src == kNoSource) or copies nr frames, kChunkFrames (2 MiB) at a time with a
// reschedule between chunks in SLEEP context: a 1 GiB frame is 512 chunks. `abortable` work
// stops early for a fatal signal: zeroing a new allocation may, a migration's copy may not
// be left half done. The address is taken per chunk: frame_addr is only promised per region.
int Space::FillFrames(u64 dst, u64 src, u64 nr, nb_ctx ctx, bool abortable)
{
	for (u64 done = 0; done < nr;) {
		u64 n = Min(nr - done, kChunkFrames);
		void *to = nb_env_frame_addr(dst + done);
		if (src == kNoSource)
			MemZero(to, n * kFrame);
		else
			nb_env_copy_frames(to, nb_env_frame_addr(src + done), n);
		done += n;
		if (ctx == NB_CTX_SLEEP && done < nr) {
			if (abortable && nb_env_should_abort())
				return -NB_EINTR;
			nb_env_resched();
		}
	}
	return 0;
}

// A buddy block of `order`, or nr_frames contiguous frames (order kContig), under p, zeroed
// unless range_flags has NBC_SPACE_NOZERO: a block the core's zeroer cleared while it was free
// skips the memset, any other is zeroed here (`abortable` as FillFrames; on -EINTR nothing is
// held).
int Space::TakeFrames(u32 order, u64 nr_frames, const nbc_policy &p, u32 range_flags,
		      nb_ctx ctx, u64 *pfn, int *node, bool abortable)
{
	unsigned af = range_flags & NBC_SPACE_LOW4G ? NBC_AF_LOW4G : 0;
	if (range_flags & NBC_SPACE_NOZERO)
		return order == kContig ? nbc_alloc_contig(core_, nr_frames, &p, af, ctx, pfn, node)
					: nbc_alloc(core_, order, &p, af, ctx, pfn, node);
	int zeroed = 0;
	int rc = order == kContig
			 ? nbc_alloc_contig_zeroed(core_, nr_frames, &p, af, ctx, pfn, node, &zeroed)
			 : nbc_alloc_zeroed(core_, order, &p, af, ctx, pfn, node, &zeroed);
	if (rc || zeroed)
		return rc;
	rc = FillFrames(*pfn, kNoSource, nr_frames, ctx, abortable);
	if (rc)
		GiveBack(*pfn, order, nr_frames);
	return rc;
}

void Space::GiveBack(u64 pfn, u32 order, u64 nr_frames)
{
	if (order == kContig)
		nbc_free_range(core_, pfn, nr_frames);
	else
		nbc_buddy_free(core_, pfn, order);
}

// ---- blocks ------------------------------------------------------------------------------

// One frame of a block: allocate zeroed, charge. On error nothing is held and e->pfn is unset.
// INTERLEAVE takes the file's next turn for every frame (nbc_alloc starts at il_next).
int Space::AllocExtent(const Range &r, Extent *e, nb_ctx ctx)
{
	nbc_policy p = r.policy;
	if (p.mode == NBC_POLICY_INTERLEAVE)
		p.il_next = AtomicAdd(&il_next_, 1u) - 1;
	u64 pfn = 0;
	int node = -1;
	int rc = TakeFrames(e->order, e->nr_frames, p, r.flags, ctx, &pfn, &node, true);
	if (rc)
		return rc;
	{
		Guard g(&lock_);
		rc = quotas_.Charge(node, e->nr_frames * kFrame);
	}
	if (rc) {
		GiveBack(pfn, e->order, e->nr_frames);
		return rc;
	}
	e->pfn = pfn;
	e->node = node;
	return 0;
}

void Space::FreeExtents(Range *r, u32 count)
{
	for (u32 i = 0; i < count; i++) {
		const Extent &e = r->extents[i];
		{
			Guard g(&lock_);
			quotas_.Uncharge(e.node, e.nr_frames * kFrame);
		}
		GiveBack(e.pfn, e.order, e.nr_frames);
	}
}

// Room for `cap` extents: the range is not published yet, so it can move to a larger copy.
int Space::GrowExtents(Range **rp, u64 cap, nb_ctx ctx)
{
	if (cap > kMaxExtents)
		return -NB_ENOMEM; // the memory is there only in frames too small to describe
	usize meta = sizeof(Range) + cap * sizeof(Extent);
	Range *fresh = static_cast<Range *>(nb_env_meta_alloc(meta, node_, ctx, NB_META_USER));
	if (!fresh)
		return -NB_ENOMEM;
	Range *old = *rp;
	*fresh = *old;
	fresh->cap_extents = (u32)cap;
	fresh->meta_bytes = meta;
	fresh->extents = reinterpret_cast<Extent *>(fresh + 1);
	MemCopy(fresh->extents, old->extents, old->nr_extents * sizeof(Extent));
	nb_env_meta_free(old, old->meta_bytes);
	*rp = fresh;
	return 0;
}

// A block's frames: buddy blocks of the leaf orders, each the largest that fits what is
// left, so every frame is a whole leaf at an offset aligned to it and stays one when it
// migrates. When no block of an order is free anywhere the policy allows (nbc_alloc has
// drained the caches by then), the rest of the range is built from the next order down, as a
// demand fault falls back 18 -> 9 -> 0: a 1 GiB chunk becomes 512 2 MiB frames, a 2 MiB chunk
// 512 4 KiB frames. The order never goes back up within a range -- one failed nbc_alloc per
// order, not one per chunk -- so the extents stay sorted largest first, which is what keeps
// each aligned. All or nothing: on error every frame taken so far goes back.
int Space::AllocBlocks(Range **rp, u64 frames, nb_ctx ctx)
{
	unsigned top = LeafAtMost(max_order_);
	u64 since_break = 0; // frames allocated since the last reschedule
	for (u64 left = frames; left;) {
		Range *r = *rp;
		unsigned o = FitOrder(left, top);
		int rc = 0;
		// Fallback makes many small blocks: break between them as FillFrames does within
		// a large one, and let a fatal signal interrupt the zeroing here too.
		if (ctx == NB_CTX_SLEEP && since_break >= kChunkFrames) {
			since_break = 0;
			if (!(r->flags & NBC_SPACE_NOZERO) && nb_env_should_abort())
				rc = -NB_EINTR;
			else
				nb_env_resched();
		}
		if (!rc && r->nr_extents == r->cap_extents) {
			rc = GrowExtents(rp, r->nr_extents + CountBlocks(left, top), ctx);
			r = *rp;
		}
		if (!rc) {
			Extent *e = &r->extents[r->nr_extents];
			*e = Extent{~0ull, 1ull << o, o, -1};
			rc = AllocExtent(*r, e, ctx);
			if (rc == -NB_ENOMEM && o != kLeaf4K) {
				top = LeafBelow(o);
				continue;
			}
		}
		if (rc) {
			FreeExtents(r, r->nr_extents);
			r->nr_extents = 0;
			return rc;
		}
		r->nr_extents++;
		left -= 1ull << o;
		since_break += 1ull << o;
	}
	return 0;
}

int Space::Alloc(u64 bytes, const nbc_policy *pol, unsigned flags, nb_ctx ctx, u64 *offset_out)
{
	if (!bytes || bytes > PageTable::kVirtLimit / 2 || (flags & ~NBC_SPACE_FLAGS_ALL))
		return -NB_EINVAL;
	nbc_policy p;
	int rc = TakePolicy(pol, &p);
	if (rc)
		return rc;
	u64 size = AlignUp(bytes, flags & NBC_SPACE_HUGE_1G   ? LeafBytes(kLeaf1G)
				  : flags & NBC_SPACE_HUGE_2M ? LeafBytes(kLeaf2M)
							      : kFrame);
	rc = CheckRoom(p, size);
	if (rc)
		return rc;
	u64 frames = size / kFrame;
	// Room for the blocks the range takes when every order is free; fallback grows it.
	u64 n = flags & NBC_SPACE_CONTIG ? 1 : CountBlocks(frames, LeafAtMost(max_order_));
	if (n > kMaxExtents)
		return -NB_EINVAL;
	usize meta = sizeof(Range) + n * sizeof(Extent);
	Range *r = static_cast<Range *>(nb_env_meta_alloc(meta, node_, ctx, NB_META_USER));
	if (!r)
		return -NB_ENOMEM;
	*r = Range{0, size, flags & ~NBC_SPACE_POPULATE, NBC_SPACE_KIND_BLOCK, kLive, -1, p,
		   0, (u32)n, meta, reinterpret_cast<Extent *>(r + 1)};
	if (flags & NBC_SPACE_CONTIG) {
		// One physically contiguous range or nothing: smaller frames are no substitute.
		r->extents[0] = Extent{~0ull, frames, kContig, -1};
		rc = AllocExtent(*r, &r->extents[0], ctx);
		if (!rc)
			r->nr_extents = 1;
	} else {
		rc = AllocBlocks(&r, frames, ctx);
	}
	if (rc) {
		nb_env_meta_free(r, r->meta_bytes);
		return rc;
	}
	u64 align = kFrame, phase = 0;
	if (flags & NBC_SPACE_CONTIG) {
		// The largest leaf the size allows, at the frame's own phase within it.
		for (unsigned o : kLeafOrders)
			if (size >= LeafBytes(o)) {
				align = LeafBytes(o);
				break;
			}
		phase = (r->extents[0].pfn * kFrame) % align;
	} else {
		align = LeafBytes(r->extents[0].order);
	}
	u64 off;
	rc = Publish(r, align, phase, ctx, &off);
	TrimStash(TableStash::kMax);
	if (rc) {
		FreeExtents(r, r->nr_extents);
		nb_env_meta_free(r, r->meta_bytes);
		return rc;
	}
	*offset_out = off; // not r->offset: r may already be freed by a racing FREE
	return 0;
}

// Unmaps a freeing range and returns its frames. A block's frames are its extents, unmapped
// kQueryBatch extents per hold of lock_ (a 64 GiB block of 4 KiB frames is 16M leaves). A
// reserved range's frames are its leaves (each first touch maps exactly one frame as one
// leaf, and nothing splits or merges them), taken kBatch at a time. Either way lock_ is never
// held for the whole of a large range. Returns how many buddy blocks went back.
u64 Space::ReleaseFrames(Range *r, nb_ctx ctx)
{
	if (r->kind == NBC_SPACE_KIND_BLOCK) {
		u64 pos = r->offset;
		for (u32 i = 0; i < r->nr_extents;) {
			u64 from = pos;
			for (u32 stop = Min(r->nr_extents, i + kQueryBatch); i < stop; i++)
				pos += r->extents[i].nr_frames * kFrame;
			{
				Guard g(&lock_);
				// Extent ends are leaf boundaries: no split, cannot fail.
				NB_ASSERT(!table_.Unmap(from, pos - from));
			}
			if (ctx == NB_CTX_SLEEP && i < r->nr_extents)
				nb_env_resched();
		}
		FreeExtents(r, r->nr_extents);
		return r->nr_extents && r->extents[0].order == kContig ? 0 : r->nr_extents;
	}
	u64 end = r->offset + r->size, freed = 0;
	for (u64 cursor = r->offset;;) {
		PageTable::Leaf got[kBatch];
		unsigned n = 0;
		{
			Guard g(&lock_);
			for (; n < kBatch && table_.FirstLeaf(cursor, end - cursor, &got[n]) == 0; n++) {
				cursor = got[n].virt + LeafBytes(got[n].order);
				NB_ASSERT(!table_.Unmap(got[n].virt, LeafBytes(got[n].order)));
				if (cursor >= end) {
					n++;
					break;
				}
			}
		}
		if (!n)
			return freed;
		int nodes[kBatch];
		for (unsigned i = 0; i < n; i++)
			nodes[i] = nbc_pfn_node(core_, got[i].pfn);
		{
			Guard g(&lock_);
			for (unsigned i = 0; i < n; i++)
				quotas_.Uncharge(nodes[i], LeafBytes(got[i].order));
		}
		for (unsigned i = 0; i < n; i++)
			GiveBack(got[i].pfn, got[i].order, 1ull << got[i].order);
		freed += n;
		if (ctx == NB_CTX_SLEEP)
			nb_env_resched();
		if (cursor >= end)
			return freed;
	}
}

// ---- migration ---------------------------------------------------------------------------

int Space::MigrateBegin(u64 offset, int node, u64 *start, u64 *len)
{
	if (node < 0 || node >= NBC_MAX_NODES || !((nbc_nodes_with_memory(core_) >> node) & 1))
		return -NB_EINVAL;
	Guard g(&lock_);
	Range *r;
	int rc = ranges_.Lookup(offset, RangeUse::kMigrate, &r);
	if (rc)
		return rc;
	r->state = kMigrating;
	r->target = node;
	*start = r->offset;
	*len = r->size;
	return 0;
}

// Moves one frame (buddy block or contiguous range) mapped at virt to node `to`. Charged to
// `to` before the copy so a quota refusal costs nothing; the table and the extent switch to
// the new frame under lock_ in one step. Buddy blocks go through nbc_buddy_migrate (same
// order: huge stays huge); contiguous and LOW4G frames are reallocated here, because
// nbc_buddy_migrate knows neither ranges nor the 4 GiB limit.
int Space::MoveFrames(u64 virt, u64 *pfn, i32 *node, u32 order, u64 nr_frames, u32 flags,
		      int to, nb_ctx ctx)
{
	u64 bytes = nr_frames * kFrame, fresh = 0;
	int from = *node;
	int rc;
	{
		Guard g(&lock_);
		rc = quotas_.Charge(to, bytes);
	}
	if (rc)
		return rc;
	bool by_core = order != kContig && !(flags & NBC_SPACE_LOW4G);
	if (by_core) {
		rc = nbc_buddy_migrate(core_, *pfn, order, from, to, ctx, &fresh);
	} else {
		nbc_policy bind{NBC_POLICY_BIND, to, 1ull << to, 0, 0};
		// NOZERO: the copy below overwrites every frame.
		rc = TakeFrames(order, nr_frames, bind, flags | NBC_SPACE_NOZERO, ctx, &fresh, nullptr);
		if (!rc)
			FillFrames(fresh, *pfn, nr_frames, ctx, false);
	}
	if (rc) {
		Guard g(&lock_);
		quotas_.Uncharge(to, bytes);
		return rc;
	}
	{
		Guard g(&lock_);
		rc = table_.Remap(virt, bytes, fresh);
		if (!rc) {
			u64 old = *pfn;
			*pfn = fresh;
			*node = to;
			fresh = old; // what to free below
			quotas_.Uncharge(from, bytes);
		} else {
			NB_ASSERT(!by_core); // same order, same alignment: only a range can disagree
			quotas_.Uncharge(to, bytes);
		}
	}
	if (!by_core)
		GiveBack(fresh, order, nr_frames);
	return rc;
}

// A block's frames move in batches: a run of extents that fm wants moved, at most 2 MiB of
// them (one larger frame alone), kBatch at most. With a mapper, the batch's offsets are
// unmapped before the first copy and every frame of it is mapped again after the last (moved
// or, after an error, still the old one): the user's entries come back at once, one unmap
// (one TLB flush per mapping) per batch, and no store lands in a frame being copied.
int Space::MoveBlockFrames(Range *r, const nbc_space_mapper *m, nb_ctx ctx, const FrameMove &fm)
{
	const u64 window = kChunkFrames * kFrame;
	// The extents are this move's alone (kMigrating): read without lock_.
	auto wants = [&](const Extent &e) { return fm.wants(fm.arg, e.pfn, e.nr_frames, e.node); };
	u64 pos = r->offset;
	for (u32 i = 0; i < r->nr_extents;) {
		if (!wants(r->extents[i])) {
			pos += r->extents[i].nr_frames * kFrame;
			i++;
			continue;
		}
		u32 j = i + 1;
		u64 end = pos + r->extents[i].nr_frames * kFrame;
		for (; j < r->nr_extents && j - i < kBatch && wants(r->extents[j]); j++) {
			u64 bytes = r->extents[j].nr_frames * kFrame;
			if (end - pos + bytes > window)
				break;
			end += bytes;
		}
		if (m)
			m->unmap(m->arg, pos, end - pos);
		int rc = 0;
		u64 at = pos;
		for (u32 k = i; k < j && !rc; k++) {
			Extent &e = r->extents[k];
			rc = fm.move(fm.arg, at, &e.pfn, &e.node, e.order, e.nr_frames);
			at += e.nr_frames * kFrame;
		}
		at = pos;
		for (u32 k = i; m && k < j; k++) {
			m->map(m->arg, at, r->extents[k].pfn, r->extents[k].nr_frames);
			at += r->extents[k].nr_frames * kFrame;
		}
		if (rc)
			return rc;
		if (ctx == NB_CTX_SLEEP)
			nb_env_resched();
		pos = end;
		i = j;
	}
	return 0;
}

// A reserved range's frames are its leaves; a batch is the leaves (kBatch at most) that lie
// in one window of at most 2 MiB (one larger leaf alone). Leaves of the window that fm does
// not want moved are unmapped and mapped with it.
int Space::MoveReservedFrames(Range *r, const nbc_space_mapper *m, nb_ctx ctx,
			      const FrameMove &fm)
{
	const u64 window = kChunkFrames * kFrame;
	u64 end = r->offset + r->size;
	for (u64 cursor = r->offset; cursor < end;) {
		PageTable::Leaf got[kBatch];
		i32 nodes[kBatch];
		bool want[kBatch];
		unsigned n = 0;
		{
			Guard g(&lock_);
			for (; n < kBatch && cursor < end; n++) {
				if (table_.FirstLeaf(cursor, end - cursor, &got[n]))
					break;
				u64 leaf_end = got[n].virt + LeafBytes(got[n].order);
				if (n && leaf_end - got[0].virt > window)
					break;
				cursor = leaf_end;
			}
		}
		if (!n)
			return 0;
		bool any = false;
		for (unsigned k = 0; k < n; k++) {
			nodes[k] = nbc_pfn_node(core_, got[k].pfn);
			want[k] = fm.wants(fm.arg, got[k].pfn, 1ull << got[k].order, nodes[k]);
			any |= want[k];
		}
		if (!any)
			continue;
		u64 from = got[0].virt, to = got[n - 1].virt + LeafBytes(got[n - 1].order);
		if (m)
			m->unmap(m->arg, from, to - from);
		int rc = 0;
		for (unsigned k = 0; k < n && !rc; k++)
			if (want[k])
				rc = fm.move(fm.arg, got[k].virt, &got[k].pfn, &nodes[k], got[k].order,
					     1ull << got[k].order);
		for (unsigned k = 0; m && k < n; k++)
			m->map(m->arg, got[k].virt, got[k].pfn, 1ull << got[k].order);
		if (rc)
			return rc;
		if (ctx == NB_CTX_SLEEP)
			nb_env_resched();
	}
	return 0;
}

int Space::MigrateFinish(u64 offset, nb_ctx ctx, const nbc_space_mapper *m, u64 *bytes_moved)
{
	*bytes_moved = 0;
	Range *r;
	{
		Guard g(&lock_);
		int rc = ranges_.Lookup(offset, RangeUse::kMigrateFinish, &r);
		if (rc)
			return rc;
	}
	// kMigrating keeps faults, frees and other migrations off r: its frames are ours.
	struct Arg {
		Space *s;
		Range *r;
		nb_ctx ctx;
		u64 *moved;
	} arg{this, r, ctx, bytes_moved};
	const FrameMove fm{
		[](void *a, u64, u64, i32 node) { return node != static_cast<Arg *>(a)->r->target; },
		[](void *a, u64 virt, u64 *pfn, i32 *node, u32 order, u64 nr) {
			auto *x = static_cast<Arg *>(a);
			int rc = x->s->MoveFrames(virt, pfn, node, order, nr, x->r->flags,
						  x->r->target, x->ctx);
			if (!rc)
				*x->moved += nr * kFrame;
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

} // namespace nb
