// SPDX-License-Identifier: GPL-2.0
//
// space_twophase.cpp - the two halves of the zap protocol (nb_space.h): free and migration.
//
// Both move a range out of kLive under lock_ in _begin (atomic-safe, so the shim can call it
// under its own locks), let the shim zap the user mappings, and do the long work -- returning
// or copying frames -- in _finish with lock_ dropped. The range's state keeps faults, frees and
// other migrations off it meanwhile, which is what makes its frames ours in _finish.
#include "space.h"

namespace nb {

// Copies go 2 MiB at a time with a reschedule between chunks, as zeroing does (a 1 GiB frame
// is 512 chunks); a migration is not aborted half-copied, so no signal check here.
void Space::CopyFrames(u64 dst, u64 src, u64 nr, nb_ctx ctx)
{
	for (u64 done = 0; done < nr;) {
		u64 n = Min(nr - done, kZeroChunk);
		MemCopy(nb_env_frame_addr(dst + done), nb_env_frame_addr(src + done), n * kFrame);
		done += n;
		if (ctx == NB_CTX_SLEEP && done < nr)
			nb_env_resched();
	}
}

// ---- free --------------------------------------------------------------------------------

int Space::FreeBegin(u64 offset, u64 *start, u64 *len)
{
	Guard g(&lock_);
	Range *r = FindStartLocked(offset);
	if (!r || Unusable(r->state))
		return -NB_ENOENT; // a block still being published does not exist yet
	if (r->state == kMigrating)
		return -NB_EBUSY;
	r->state = kDying;
	*start = r->offset;
	*len = r->size;
	return 0;
}

int Space::FreeFinish(u64 offset, nb_ctx ctx)
{
	Range *r;
	{
		Guard g(&lock_);
		r = FindStartLocked(offset);
		if (!r || r->state != kDying)
			return -NB_EINVAL;
		r->state = kFreeing; // ours alone now: a second finish gets -EINVAL
	}
	u64 size = r->size;
	u64 freed = ReleaseFrames(r, ctx);
	{
		Guard g(&lock_);
		RemoveLocked(r);
	}
	nb_env_meta_free(r, r->meta_bytes);
	TrimStash();
	// nb_buddy_free parks blocks in the freeing CPU's cache, where they cannot merge with
	// their buddies (see Destroy). A drain visits every cache of every node, so it is worth
	// it only after a free that returned at least that many blocks: then it costs at most
	// about one more lock round trip per block. One 2 MiB block is not such a free; its
	// buddies merge when a drain (or a failing nb_alloc) comes.
	if (size >= k2M && freed >= drain_blocks_)
		nb_pcp_drain(core_);
	return 0;
}

// Unmaps a freeing range and returns its frames. A block's frames are its extents, unmapped
// kQueryBatch extents per hold of lock_ (a 64 GiB block of 4 KiB frames is 16M leaves). A
// reserved range's frames are its leaves (each first touch maps exactly one frame as one
// leaf, and nothing splits or merges them), taken kBatch at a time. Either way lock_ is never
// held for the whole of a large range. Returns how many buddy blocks went back
// (nb_buddy_free).
u64 Space::ReleaseFrames(Range *r, nb_ctx ctx)
{
	if (r->kind == NB_SPACE_KIND_BLOCK) {
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
			nodes[i] = nb_pfn_node(core_, got[i].pfn);
		{
			Guard g(&lock_);
			for (unsigned i = 0; i < n; i++)
				UnchargeLocked(nodes[i], LeafBytes(got[i].order));
		}
		for (unsigned i = 0; i < n; i++)
			nb_buddy_free(core_, got[i].pfn, got[i].order);
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
	if (node < 0 || node >= NB_MAX_NODES || !((nb_nodes_with_memory(core_) >> node) & 1))
		return -NB_EINVAL;
	Guard g(&lock_);
	Range *r = FindStartLocked(offset);
	if (!r)
		return -NB_ENOENT;
	if (r->state != kLive)
		return -NB_EBUSY;
	r->state = kMigrating;
	r->target = node;
	*start = r->offset;
	*len = r->size;
	return 0;
}

// Moves one frame (buddy block or contiguous range) mapped at virt to node `to`. Charged to
// `to` before the copy so a quota refusal costs nothing; the table and the extent switch to
// the new frame under lock_ in one step. Buddy blocks go through nb_buddy_migrate (same
// order: huge stays huge); contiguous and LOW4G frames are reallocated here, because
// nb_buddy_migrate knows neither ranges nor the 4 GiB limit.
int Space::MoveFrames(u64 virt, u64 *pfn, i32 *node, u32 order, u64 nr_frames, u32 flags,
		      int to, nb_ctx ctx)
{
	u64 bytes = nr_frames * kFrame, fresh = 0;
	int from = *node;
	int rc;
	{
		Guard g(&lock_);
		rc = ChargeLocked(to, bytes);
	}
	if (rc)
		return rc;
	bool by_core = order != kContig && !(flags & NB_SPACE_LOW4G);
	if (by_core) {
		rc = nb_buddy_migrate(core_, *pfn, order, from, to, ctx, &fresh);
	} else {
		nb_policy bind{NB_POLICY_BIND, to, 1ull << to, 0, 0};
		unsigned af = flags & NB_SPACE_LOW4G ? NB_AF_LOW4G : 0;
		rc = order == kContig ? nb_alloc_contig(core_, nr_frames, &bind, af, ctx, &fresh, nullptr)
				      : nb_alloc(core_, order, &bind, af, ctx, &fresh, nullptr);
		if (!rc)
			CopyFrames(fresh, *pfn, nr_frames, ctx);
	}
	if (!rc) {
		Guard g(&lock_);
		rc = table_.Remap(virt, bytes, fresh);
		if (!rc) {
			u64 old = *pfn;
			*pfn = fresh;
			*node = to;
			fresh = old; // what to free below
			UnchargeLocked(from, bytes);
		} else {
			NB_ASSERT(!by_core); // same order, same alignment: only a range can disagree
			UnchargeLocked(to, bytes);
		}
	} else {
		Guard g(&lock_);
		UnchargeLocked(to, bytes);
		return rc;
	}
	if (!by_core)
		order == kContig ? (void)nb_free_range(core_, fresh, nr_frames)
				 : (void)nb_buddy_free(core_, fresh, order);
	return rc;
}

int Space::MigrateBlock(Range *r, nb_ctx ctx, u64 *moved)
{
	u64 pos = r->offset;
	for (u32 i = 0; i < r->nr_extents; i++) {
		Extent &e = r->extents[i];
		u64 bytes = e.nr_frames * kFrame;
		if (e.node != r->target) {
			int rc = MoveFrames(pos, &e.pfn, &e.node, e.order, e.nr_frames, r->flags,
					    r->target, ctx);
			if (rc)
				return rc;
			*moved += bytes;
			if (ctx == NB_CTX_SLEEP)
				nb_env_resched();
		}
		pos += bytes;
	}
	return 0;
}

int Space::MigrateReserved(Range *r, nb_ctx ctx, u64 *moved)
{
	u64 end = r->offset + r->size;
	for (u64 cursor = r->offset; cursor < end;) {
		PageTable::Leaf leaf;
		{
			Guard g(&lock_);
			if (table_.FirstLeaf(cursor, end - cursor, &leaf))
				return 0;
		}
		i32 node = nb_pfn_node(core_, leaf.pfn);
		if (node != r->target) {
			int rc = MoveFrames(leaf.virt, &leaf.pfn, &node, leaf.order,
					    1ull << leaf.order, r->flags, r->target, ctx);
			if (rc)
				return rc;
			*moved += LeafBytes(leaf.order);
			if (ctx == NB_CTX_SLEEP)
				nb_env_resched();
		}
		cursor = leaf.virt + LeafBytes(leaf.order);
	}
	return 0;
}

int Space::MigrateFinish(u64 offset, nb_ctx ctx, u64 *bytes_moved)
{
	*bytes_moved = 0;
	Range *r;
	{
		Guard g(&lock_);
		r = FindStartLocked(offset);
		if (!r || r->state != kMigrating)
			return -NB_EINVAL;
	}
	// kMigrating keeps faults, frees and other migrations off r: its frames are ours.
	int rc = r->kind == NB_SPACE_KIND_BLOCK ? MigrateBlock(r, ctx, bytes_moved)
						: MigrateReserved(r, ctx, bytes_moved);
	{
		Guard g(&lock_);
		r->state = kLive;
	}
	TrimStash();
	return rc;
}

} // namespace nb
