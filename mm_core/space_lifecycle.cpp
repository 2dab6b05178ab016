// SPDX-License-Identifier: GPL-2.0
//
// space_lifecycle.cpp - a space comes and goes (create/destroy), and so do its ranges: a
// request's policy and room are checked, the range is published into the index and the
// table, and freed in two phases (nbc_space.h's zap protocol). Also the halves of the table
// stash and of the index that take or give memory with lock_ dropped.
#include "leaf_orders.h"
#include "space.h"

namespace nb {

// ---- the space ---------------------------------------------------------------------------

int Space::Create(nbc_core *core, int node, nb_ctx ctx, Space **out)
{
	if (node >= NBC_MAX_NODES)
		return -NB_EINVAL;
	if (node < 0)
		node = nbc_current_cpu_node(core);
	void *mem = nb_env_meta_alloc(sizeof(Space), node, ctx, NB_META_USER);
	if (!mem)
		return -NB_ENOMEM;
	Space *s = new (mem) Space(core, node);
	s->lock_.Init(NB_LOCK_SPACE);
	s->max_order_ = nbc_max_order(core);
	{
		Guard g(&s->lock_);
		s->quotas_.Init();
	}
	int rc = s->FillStash(1, ctx);
	if (!rc) {
		Guard g(&s->lock_);
		rc = s->table_.Init(s->stash_.Allocator());
	}
	if (rc) {
		s->Destroy(ctx);
		return rc;
	}
	*out = s;
	return 0;
}

void Space::Destroy(nb_ctx ctx)
{
	for (;;) {
		Range *r;
		{
			Guard g(&lock_);
			r = ranges_.Last();
			if (!r)
				break;
			r->state = kFreeing; // close: no fault, free or migration can run any more
		}
		ReleaseFrames(r, ctx);
		{
			Guard g(&lock_);
			ranges_.Remove(r);
		}
		nb_env_meta_free(r, r->meta_bytes);
	}
	Range **ranges;
	u32 cap;
	{
		Guard g(&lock_);
		table_.Teardown();
		ranges_.Release(&ranges, &cap);
	}
	TrimStash(0);
	// Give the per-CPU caches back. What this space freed last may sit parked there (a few
	// 2 MiB blocks and a batch of 4 KiB frames per CPU and node), kept from merging with
	// their buddies. nbc_alloc drains only when an allocation fails, which is too late: the
	// next user's small allocations take the split blocks first (smallest free block first)
	// and settle in them, and a large range that was free at close never forms again. A
	// close is rare and already costly; one pass over the caches is small beside it.
	// nbc_core.h drains every node; the nodes this space used would be enough.
	nbc_pcp_drain(core_);
	MetaFree(ranges, cap);
	lock_.Destroy();
	this->~Space();
	nb_env_meta_free(this, sizeof(Space));
}

// ---- memory taken and given with lock_ dropped -------------------------------------------

int Space::FillStash(unsigned want, nb_ctx ctx)
{
	for (;;) {
		{
			Guard g(&lock_);
			if (stash_.count() >= want)
				return 0;
		}
		u64 pfn;
		int rc = nbc_buddy_alloc(core_, 0, node_, 0, ctx, &pfn);
		if (rc)
			return rc;
		Guard g(&lock_);
		stash_.Push(pfn);
	}
}

// Gives spare table pages back to the core beyond `keep` (TableStash::kMax; 0 at close).
void Space::TrimStash(u32 keep)
{
	for (;;) {
		u64 pfn;
		{
			Guard g(&lock_);
			if (stash_.count() <= keep || stash_.Pop(&pfn))
				return;
		}
		nbc_buddy_free(core_, pfn, 0);
	}
}

// The index array grows with lock_ dropped; whoever loses the race frees its copy.
int Space::GrowIndex(nb_ctx ctx)
{
	u32 cap;
	{
		Guard g(&lock_);
		cap = ranges_.GrowTo();
	}
	if (!cap)
		return 0;
	if (cap == ~0u)
		return -NB_ENOSPC;
	Range **fresh = MetaAlloc<Range *>(cap, node_, ctx, NB_META_USER);
	if (!fresh)
		return -NB_ENOMEM;
	Range **old;
	u32 old_cap;
	{
		Guard g(&lock_);
		ranges_.Adopt(fresh, cap, &old, &old_cap);
	}
	MetaFree(old, old_cap);
	return 0;
}

// ---- a range comes -----------------------------------------------------------------------

// The caller's policy as the core reads it (nbc_policy_normalize says what an empty mask
// means); the interleave cursor is the space's (il_next_), not the caller's.
int Space::TakePolicy(const nbc_policy *in, nbc_policy *out)
{
	int rc = nbc_policy_normalize(core_, in, out);
	out->il_next = 0;
	return rc;
}

// Refuses, before anything is allocated for it, a request that the pools `p` allows cannot
// hold (-NB_ENOMEM) or that exceeds what is left of this file's quota on them (-NB_EDQUOT).
int Space::CheckRoom(const nbc_policy &p, u64 bytes)
{
	u64 mask = nbc_nodes_with_memory(core_);
	if (p.mode == NBC_POLICY_BIND)
		mask &= p.nodemask;
	// The pools' size now, not at create: a file opened before a grow may use the new memory.
	u64 pool = 0;
	for (u64 m = mask; m; m &= m - 1)
		pool += nbc_pool_frames(core_, static_cast<int>(Ctz64(m))) * kFrame;
	Guard g(&lock_);
	return quotas_.CheckRoom(mask, bytes, pool);
}

// Gives r an offset >= the cursor with offset % align == phase (range_index.h), inserts it
// and maps its extents there. The offset comes back through *offset_out, read under lock_:
// once lock_ drops, a caller who guessed the offset (they start at 0 and only grow) may free
// a live r, so the publisher must not read r again.
//
// A block is mapped kQueryBatch extents per hold of lock_ (a 64 GiB block of 4 KiB frames is
// 16M leaves), inserted meanwhile as kPublishing: faults, FREE and MIGRATE keep off it as if
// it did not exist yet, so it stays ours until it turns kLive. On error it is unmapped and
// removed again (its offset is not reused) and the caller frees its frames.
int Space::Publish(Range *r, u64 align, u64 phase, nb_ctx ctx, u64 *offset_out)
{
	const u32 n = r->nr_extents; // r is ours until it is published
	u64 off;
	for (;;) {
		int rc = GrowIndex(ctx);
		if (!rc)
			rc = FillStash(TableStash::kLeaf, ctx);
		if (rc)
			return rc;
		Guard g(&lock_);
		r->state = n ? kPublishing : kLive;
		rc = ranges_.Place(r, align, phase);
		if (rc == -NB_ENOMEM)
			continue; // another publisher took the slot we grew
		if (rc)
			return rc;
		off = r->offset;
		break;
	}
	*offset_out = off;
	u64 pos = off;
	unsigned want = TableStash::kLeaf;
	for (u32 i = 0; i < n;) {
		int rc = 0;
		{
			Guard g(&lock_);
			for (u32 stop = Min(n, i + kQueryBatch); !rc && i < stop;) {
				const Extent &e = r->extents[i];
				rc = table_.MapRange(pos, e.pfn, e.nr_frames, PAGE_PRESENT | PAGE_WRITABLE);
				if (!rc) { // MapRange maps all of an extent or nothing of it
					pos += e.nr_frames * kFrame;
					i++;
				}
			}
			if (!rc && i == n)
				r->state = kLive; // from here on, another caller may free it
			if (rc && (rc != -NB_ENOMEM || want >= (1u << 20))) {
				UnpublishLocked(r, pos);
				return rc;
			}
		}
		if (rc) {
			want *= 2; // out of spare table pages: refill with the lock dropped
			rc = FillStash(want, ctx);
			if (rc) {
				Guard g(&lock_);
				UnpublishLocked(r, pos);
				return rc;
			}
		} else if (ctx == NB_CTX_SLEEP && i < n) {
			nb_env_resched();
		}
	}
	return 0;
}

// Takes a block that failed to publish out again: whole leaves only, so the unmap needs no
// split and cannot fail.
void Space::UnpublishLocked(Range *r, u64 mapped_end)
{
	if (mapped_end > r->offset)
		NB_ASSERT(!table_.Unmap(r->offset, mapped_end - r->offset));
	ranges_.Remove(r);
}

// ---- a range goes ------------------------------------------------------------------------

int Space::FreeBegin(u64 offset, u64 *start, u64 *len)
{
	Guard g(&lock_);
	Range *r;
	int rc = ranges_.Lookup(offset, RangeUse::kFree, &r);
	if (rc)
		return rc;
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
		int rc = ranges_.Lookup(offset, RangeUse::kFreeFinish, &r);
		if (rc)
			return rc;
		r->state = kFreeing; // ours alone now: a second finish gets -EINVAL
	}
	u64 frames = r->size / kFrame;
	u64 blocks = ReleaseFrames(r, ctx);
	{
		Guard g(&lock_);
		ranges_.Remove(r);
	}
	nb_env_meta_free(r, r->meta_bytes);
	TrimStash(TableStash::kMax);
	// The blocks went to the freeing CPU's cache, where they cannot merge with their
	// buddies (see Destroy); the core knows when a free is worth draining the caches.
	nbc_pcp_drain_after_free(core_, frames, blocks);
	return 0;
}

} // namespace nb
