// SPDX-License-Identifier: GPL-2.0
//
// space_alloc.cpp - how frames get into a space: blocks allocated whole (nb_space_alloc) and
// reserved ranges populated on first touch (nb_space_reserve, nb_space_fault).
#include "space.h"

namespace nb {

namespace {

// NULL means local; BIND/INTERLEAVE with an empty mask take `node` alone (the uapi's rule).
int NormalizePolicy(const nb_policy *in, nb_policy *out)
{
	*out = in ? *in : nb_policy{NB_POLICY_LOCAL, -1, 0, 0, 0};
	out->il_next = 0; // the space keeps the interleave cursor, not the caller
	if (out->mode > NB_POLICY_INTERLEAVE || out->node >= NB_MAX_NODES)
		return -NB_EINVAL;
	if ((out->mode == NB_POLICY_BIND || out->mode == NB_POLICY_INTERLEAVE) && !out->nodemask) {
		if (out->node < 0)
			return -NB_EINVAL;
		out->nodemask = 1ull << out->node;
	}
	return 0;
}

constexpr unsigned kLeafOrders[] = {18, 9, 0};

// The largest leaf order the pool has (its max order may be below 18, or even below 9).
unsigned TopLeafOrder(unsigned max_order)
{
	for (unsigned o : kLeafOrders)
		if (o <= max_order)
			return o;
	return 0;
}

// Blocks that `frames` decompose into with leaf orders <= top, largest first.
// 1 GiB + 6 MiB + 12 KiB = 262144 + 1536 + 3 frames: top 18 -> 1 + 3 + 3 = 7 blocks;
// top 9 -> 515 + 3 = 518 blocks; top 0 -> 263683 blocks.
u64 CountBlocks(u64 frames, unsigned top)
{
	u64 n = 0;
	for (unsigned o : kLeafOrders) {
		if (o > top)
			continue;
		n += frames >> o;
		frames &= (1ull << o) - 1;
	}
	return n;
}

// The largest leaf order <= top that fits in `left` (> 0) frames.
unsigned FitOrder(u64 left, unsigned top)
{
	for (unsigned o : kLeafOrders)
		if (o <= top && (1ull << o) <= left)
			return o;
	return 0;
}

} // namespace

// User memory is zeroed before it can reach user space. In SLEEP context a 1 GiB frame is
// zeroed 2 MiB at a time with a reschedule between chunks; `abortable` work stops early for a
// fatal signal. The address is taken per chunk: frame_addr is only promised per region.
int Space::ZeroFrames(u64 pfn, u64 nr, nb_ctx ctx, bool abortable)
{
	for (u64 done = 0; done < nr;) {
		u64 n = Min(nr - done, kZeroChunk);
		MemZero(nb_env_frame_addr(pfn + done), n * kFrame);
		done += n;
		if (ctx == NB_CTX_SLEEP && done < nr) {
			if (abortable && nb_env_should_abort())
				return -NB_EINTR;
			nb_env_resched();
		}
	}
	return 0;
}

// ---- blocks ------------------------------------------------------------------------------

void Space::FreeExtents(Range *r, u32 count)
{
	for (u32 i = 0; i < count; i++) {
		const Extent &e = r->extents[i];
		{
			Guard g(&lock_);
			UnchargeLocked(e.node, e.nr_frames * kFrame);
		}
		if (e.order == kContig)
			nb_free_range(core_, e.pfn, e.nr_frames);
		else
			nb_buddy_free(core_, e.pfn, e.order);
	}
}

// One frame of a block: allocate, charge, zero. On error nothing is held and e->pfn is unset.
// INTERLEAVE takes the file's next turn for every frame (nb_alloc starts at il_next).
int Space::AllocExtent(const Range &r, Extent *e, nb_ctx ctx)
{
	unsigned af = r.flags & NB_SPACE_LOW4G ? NB_AF_LOW4G : 0;
	nb_policy p = r.policy;
	if (p.mode == NB_POLICY_INTERLEAVE)
		p.il_next = AtomicAdd(&il_next_, 1u) - 1;
	u64 pfn = 0;
	int node = -1;
	int rc = e->order == kContig ? nb_alloc_contig(core_, e->nr_frames, &p, af, ctx, &pfn, &node)
				     : nb_alloc(core_, e->order, &p, af, ctx, &pfn, &node);
	if (rc)
		return rc;
	{
		Guard g(&lock_);
		rc = ChargeLocked(node, e->nr_frames * kFrame);
	}
	if (!rc && !(r.flags & NB_SPACE_NOZERO)) {
		rc = ZeroFrames(pfn, e->nr_frames, ctx, true);
		if (rc) {
			Guard g(&lock_);
			UnchargeLocked(node, e->nr_frames * kFrame);
		}
	}
	if (rc) {
		if (e->order == kContig)
			nb_free_range(core_, pfn, e->nr_frames);
		else
			nb_buddy_free(core_, pfn, e->order);
		return rc;
	}
	e->pfn = pfn;
	e->node = node;
	return 0;
}

// Room for `cap` extents: the range is not published yet, so it can move to a larger copy.
int Space::GrowExtents(Range **rp, u64 cap, nb_ctx ctx)
{
	if (cap > kMaxExtents)
		return -NB_ENOMEM; // the memory is there only in frames too small to describe
	usize meta = sizeof(Range) + cap * sizeof(Extent);
	Range *fresh = static_cast<Range *>(nb_env_meta_alloc(meta, node_, ctx));
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

// A block's frames: buddy blocks of the leaf orders 18, 9, 0, each the largest that fits what
// is left, so every frame is a whole leaf at an offset aligned to it and stays one when it
// migrates. When no block of an order is free anywhere the policy allows (nb_alloc has
// drained the caches by then), the rest of the range is built from the next order down, as a
// demand fault falls back 18 -> 9 -> 0: a 1 GiB chunk becomes 512 2 MiB frames, a 2 MiB chunk
// 512 4 KiB frames. The order never goes back up within a range -- one failed nb_alloc per
// order, not one per chunk -- so the extents stay sorted largest first, which is what keeps
// each aligned. All or nothing: on error every frame taken so far goes back.
int Space::AllocBlocks(Range **rp, u64 frames, nb_ctx ctx)
{
	unsigned top = TopLeafOrder(max_order_);
	u64 since_break = 0; // frames allocated since the last reschedule
	for (u64 left = frames; left;) {
		Range *r = *rp;
		unsigned o = FitOrder(left, top);
		int rc = 0;
		// Fallback makes many small blocks: break between them as ZeroFrames does within
		// a large one, and let a fatal signal interrupt the zeroing here too.
		if (ctx == NB_CTX_SLEEP && since_break >= kZeroChunk) {
			since_break = 0;
			if (!(r->flags & NB_SPACE_NOZERO) && nb_env_should_abort())
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
			if (rc == -NB_ENOMEM && o) {
				top = o == 18 ? 9 : 0;
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

int Space::Alloc(u64 bytes, const nb_policy *pol, unsigned flags, nb_ctx ctx, u64 *offset_out)
{
	if (!bytes || bytes > PageTable::kVirtLimit / 2 || (flags & ~NB_SPACE_FLAGS_ALL))
		return -NB_EINVAL;
	nb_policy p;
	int rc = NormalizePolicy(pol, &p);
	if (rc)
		return rc;
	u64 size = AlignUp(bytes, flags & NB_SPACE_HUGE_1G	 ? k1G
				  : flags & NB_SPACE_HUGE_2M ? k2M
							     : kFrame);
	u64 frames = size / kFrame;
	// Room for the blocks the range takes when every order is free; fallback grows it.
	u64 n = flags & NB_SPACE_CONTIG ? 1 : CountBlocks(frames, TopLeafOrder(max_order_));
	if (n > kMaxExtents)
		return -NB_EINVAL;
	usize meta = sizeof(Range) + n * sizeof(Extent);
	Range *r = static_cast<Range *>(nb_env_meta_alloc(meta, node_, ctx));
	if (!r)
		return -NB_ENOMEM;
	*r = Range{0, size, flags & ~NB_SPACE_POPULATE, NB_SPACE_KIND_BLOCK, kLive, -1, p,
		   0, (u32)n, meta, reinterpret_cast<Extent *>(r + 1)};
	if (flags & NB_SPACE_CONTIG) {
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
	if (flags & NB_SPACE_CONTIG) {
		align = size >= k1G ? k1G : size >= k2M ? k2M : kFrame;
		phase = (r->extents[0].pfn * kFrame) % align;
	} else {
		align = LeafBytes(r->extents[0].order);
	}
	u64 off;
	rc = Publish(r, align, phase, ctx, &off);
	TrimStash();
	if (rc) {
		FreeExtents(r, r->nr_extents);
		nb_env_meta_free(r, r->meta_bytes);
		return rc;
	}
	*offset_out = off; // not r->offset: r may already be freed by a racing FREE
	return 0;
}

// ---- demand-paged ranges -----------------------------------------------------------------

int Space::Reserve(u64 bytes, const nb_policy *pol, unsigned flags, unsigned cpu, nb_ctx ctx,
		   u64 *offset_out)
{
	if (!bytes || bytes > PageTable::kVirtLimit / 2 || (flags & ~NB_SPACE_FLAGS_ALL) ||
	    (flags & NB_SPACE_CONTIG))
		return -NB_EINVAL;
	nb_policy p;
	int rc = NormalizePolicy(pol, &p);
	if (rc)
		return rc;
	u64 size = AlignUp(bytes, kFrame);
	// Aligned so that the huge chunks the flags ask for start on a leaf boundary.
	u64 align = (flags & NB_SPACE_HUGE_1G) && size >= k1G		      ? k1G
		    : (flags & (NB_SPACE_HUGE_2M | NB_SPACE_HUGE_1G)) && size >= k2M ? k2M
										     : kFrame;
	Range *r = static_cast<Range *>(nb_env_meta_alloc(sizeof(Range), node_, ctx));
	if (!r)
		return -NB_ENOMEM;
	if (p.mode == NB_POLICY_INTERLEAVE)
		p.il_next = AtomicAdd(&il_next_, 1u) - 1; // the node of the range's first frame
	*r = Range{0, size, flags, NB_SPACE_KIND_RESERVED, kLive, -1, p, 0, 0, sizeof(Range),
		   nullptr};
	u64 off;
	rc = Publish(r, align, 0, ctx, &off);
	if (rc) {
		nb_env_meta_free(r, sizeof(Range));
		return rc;
	}
	u64 end = off + size; // r may be freed by a racing free from here on: never read it
	for (u64 pos = off; !rc && (flags & NB_SPACE_POPULATE) && pos < end;) {
		nb_space_fault_result res;
		rc = Fault(pos, true, cpu, 18, ctx, &res);
		if (rc == -NB_EAGAIN || rc == -NB_EFAULT) {
			// Another caller guessed the offset and is migrating or freeing the range: as
			// if that came after RESERVE. The rest arrives at first touch (or never).
			rc = 0;
			break;
		}
		if (rc)
			break;
		pos = res.offset + LeafBytes(res.order);
		if (ctx == NB_CTX_SLEEP && pos < end) {
			// As ALLOC: a fatal signal stops populating between frames (a 1 GiB frame's
			// zeroing is not cut short) and RESERVE keeps nothing -- NOZERO too, since
			// taking gigabytes of 4 KiB frames is long without zeroing them.
			if (nb_env_should_abort())
				rc = -NB_EINTR;
			else
				nb_env_resched();
		}
	}
	if (rc) {
		u64 s0, l0;
		if (!FreeBegin(off, &s0, &l0))
			FreeFinish(off, ctx);
		return rc;
	}
	*offset_out = off;
	return 0;
}

// The frame order a first touch at `offset` gets: the largest huge chunk the flags ask for
// that lies wholly inside the range and has nothing mapped yet (a chunk that already holds
// 4 KiB frames, because no huge frame was free at its first touch, stays 4 KiB).
unsigned Space::DemandOrderLocked(const Range &r, u64 offset)
{
	static constexpr unsigned kOrders[] = {18, 9};
	for (unsigned o : kOrders) {
		unsigned want = o == 18 ? NB_SPACE_HUGE_1G : NB_SPACE_HUGE_2M | NB_SPACE_HUGE_1G;
		u64 chunk = offset & ~(LeafBytes(o) - 1);
		if ((r.flags & want) && o <= max_order_ && chunk >= r.offset &&
		    chunk + LeafBytes(o) <= r.offset + r.size && table_.IsEmpty(chunk, LeafBytes(o)))
			return o;
	}
	return 0;
}

// Where a first touch allocates. LOCAL means the faulting CPU's node (the fault carries it;
// the CPU running the fault path is only a hint). INTERLEAVE is by offset, as Linux
// interleaves a VMA: the k-th frame of the range goes to the ((base + k) mod n)-th node of
// the mask, whichever CPU touches it first and in whatever order; base is the file's turn
// when the range was reserved, so one-frame ranges still go round the mask.
int Space::PickFrame(const Range &r, u64 chunk, unsigned order, unsigned cpu, nb_ctx ctx,
		     u64 *pfn, int *node)
{
	unsigned af = r.flags & NB_SPACE_LOW4G ? NB_AF_LOW4G : 0;
	nb_policy p = r.policy;
	int cpu_node = nb_env_cpu_node(cpu);
	if ((p.mode == NB_POLICY_LOCAL || (p.mode == NB_POLICY_PREFERRED && p.node < 0)) &&
	    cpu_node >= 0) {
		p.mode = NB_POLICY_PREFERRED;
		p.node = cpu_node;
	} else if (p.mode == NB_POLICY_INTERLEAVE) {
		u64 k = (p.il_next + ((chunk - r.offset) >> (NB_FRAME_SHIFT + order))) %
			PopCount64(p.nodemask);
		u64 mask = p.nodemask;
		for (; k; k--)
			mask &= mask - 1;
		int target = (int)Ctz64(mask);
		nb_policy one{NB_POLICY_BIND, target, 1ull << target, 0, 0};
		if (!nb_alloc(core_, order, &one, af, ctx, pfn, node))
			return 0;
		p.mode = NB_POLICY_BIND; // that node is full: any node of the mask
	}
	return nb_alloc(core_, order, &p, af, ctx, pfn, node);
}

// First touch: allocate and zero with lock_ dropped, then install if the chunk is still
// empty and the range still live. -NB_EEXIST: someone else populated it first, look again.
int Space::Populate(u64 range_start, u64 offset, unsigned cpu, nb_ctx ctx)
{
	Range snap;
	unsigned order;
	{
		Guard g(&lock_);
		Range *r = FindStartLocked(range_start);
		if (!r || r->state == kDying || r->state == kFreeing)
			return -NB_EFAULT;
		if (r->state == kMigrating)
			return -NB_EAGAIN;
		snap = *r;
		order = DemandOrderLocked(*r, offset);
	}
	u64 pfn = 0;
	int node = -1, rc;
	for (;;) { // a huge frame that is not there falls back to 2 MiB, then 4 KiB
		rc = PickFrame(snap, offset & ~(LeafBytes(order) - 1), order, cpu, ctx, &pfn, &node);
		if (rc != -NB_ENOMEM || !order)
			break;
		order = order == 18 ? 9 : 0;
	}
	if (rc)
		return rc;
	u64 chunk = offset & ~(LeafBytes(order) - 1);
	if (!(snap.flags & NB_SPACE_NOZERO))
		ZeroFrames(pfn, 1ull << order, ctx, false);
	for (unsigned tries = 0;; tries++) {
		rc = FillStash(kStashLeaf, ctx);
		if (rc)
			break;
		Guard g(&lock_);
		Range *r = FindStartLocked(range_start);
		if (!r || r->state == kDying || r->state == kFreeing)
			rc = -NB_EFAULT;
		else if (r->state == kMigrating)
			rc = -NB_EAGAIN;
		else if (!table_.IsEmpty(chunk, LeafBytes(order)))
			rc = -NB_EEXIST;
		else
			rc = ChargeLocked(node, LeafBytes(order));
		if (rc)
			break;
		rc = table_.Map(chunk, pfn, PAGE_PRESENT | PAGE_WRITABLE, order);
		if (!rc)
			return 0;
		UnchargeLocked(node, LeafBytes(order));
		if (rc != -NB_ENOMEM || tries >= 4)
			break; // else a racing fault took our spare table pages: refill, retry
	}
	nb_buddy_free(core_, pfn, order);
	return rc;
}

void Space::FillResult(const PageTable::Leaf &leaf, u64 offset, unsigned max_order,
		       nb_space_fault_result *out)
{
	unsigned mo = max_order >= 18 ? 18 : max_order >= 9 ? 9 : 0;
	unsigned o = Min(leaf.order, mo);
	out->offset = offset & ~(LeafBytes(o) - 1);
	out->pfn = leaf.pfn + ((out->offset - leaf.virt) >> NB_FRAME_SHIFT);
	out->order = o;
	out->writable = (leaf.flags & PAGE_WRITABLE) ? 1 : 0;
}

int Space::Fault(u64 offset, bool write, unsigned cpu, unsigned max_order, nb_ctx ctx,
		 nb_space_fault_result *out)
{
	for (;;) {
		u64 start;
		{
			Guard g(&lock_);
			Range *r = FindLocked(offset);
			if (!r || r->state == kDying || r->state == kFreeing)
				return -NB_EFAULT;
			if (r->state == kMigrating)
				return -NB_EAGAIN;
			PageTable::Leaf leaf;
			if (!table_.Lookup(offset, &leaf)) {
				if (write && !(leaf.flags & PAGE_WRITABLE))
					return -NB_EFAULT;
				FillResult(leaf, offset, max_order, out);
				return 0;
			}
			NB_ASSERT(r->kind == NB_SPACE_KIND_RESERVED); // blocks are mapped whole
			if (r->kind != NB_SPACE_KIND_RESERVED)
				return -NB_EFAULT;
			start = r->offset;
		}
		int rc = Populate(start, offset, cpu, ctx);
		if (rc && rc != -NB_EEXIST)
			return rc;
	}
}

} // namespace nb
