// SPDX-License-Identifier: GPL-2.0
//
// space.cpp - nb::Space: blocks, demand-paged ranges, two-phase free and migration.
//
// The rule every path follows: decide under lock_, drop it for anything long or anything that
// enters nb_core (allocate, zero, copy, free), retake it and re-validate before publishing.
// A range is re-found by its start offset, never by a saved pointer: offsets are never
// reused, so "the range that starts at X" cannot silently become another range.
#include "space.h"

namespace nb {

namespace {

constexpr u64 kFrame = NB_FRAME_SIZE;
constexpr u64 k2M = 2ull << 20;
constexpr u64 k1G = 1ull << 30;
constexpr u64 kZeroChunk = 512;   // frames (2 MiB) between reschedules in SLEEP context
constexpr u32 kStashMax = 8;      // spare table pages a space keeps between calls
constexpr u32 kStashLeaf = 3;     // one leaf needs at most a level-3, -2 and -1 table
constexpr unsigned kBatch = 32;   // demand frames released per lock hold

constexpr u64 AlignUp(u64 x, u64 a) { return (x + a - 1) & ~(a - 1); }
constexpr u64 LeafBytes(unsigned order) { return kFrame << order; }

// User memory is zeroed before it can reach user space. In SLEEP context a 1 GiB frame is
// zeroed 2 MiB at a time with a reschedule between chunks; `abortable` work stops early for a
// fatal signal. The address is taken per chunk: frame_addr is only promised per region.
int ZeroFrames(u64 pfn, u64 nr, nb_ctx ctx, bool abortable)
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

void CopyFrames(u64 dst, u64 src, u64 nr, nb_ctx ctx)
{
	for (u64 done = 0; done < nr;) {
		u64 n = Min(nr - done, kZeroChunk);
		MemCopy(nb_env_frame_addr(dst + done), nb_env_frame_addr(src + done), n * kFrame);
		done += n;
		if (ctx == NB_CTX_SLEEP && done < nr)
			nb_env_resched();
	}
}

// NULL means local; BIND/INTERLEAVE with an empty mask take `node` alone (the uapi's rule).
int NormalizePolicy(const nb_policy *in, nb_policy *out)
{
	*out = in ? *in : nb_policy{NB_POLICY_LOCAL, -1, 0, 0, 0};
	if (out->mode > NB_POLICY_INTERLEAVE || out->node >= NB_MAX_NODES)
		return -NB_EINVAL;
	if ((out->mode == NB_POLICY_BIND || out->mode == NB_POLICY_INTERLEAVE) && !out->nodemask) {
		if (out->node < 0)
			return -NB_EINVAL;
		out->nodemask = 1ull << out->node;
	}
	return 0;
}

} // namespace

// ---- table pages -------------------------------------------------------------------------

int Space::TableAlloc(void *arg, u64 *pfn)
{
	Space *s = static_cast<Space *>(arg);
	if (!s->stash_head_)
		return -NB_ENOMEM; // the caller refills the stash with lock_ dropped and retries
	*pfn = s->stash_head_ - 1;
	s->stash_head_ = *static_cast<u64 *>(nb_env_frame_addr(*pfn));
	s->stash_count_--;
	return 0;
}

void Space::TableFree(void *arg, u64 pfn) { static_cast<Space *>(arg)->StashPushLocked(pfn); }

void Space::StashPushLocked(u64 pfn)
{
	*static_cast<u64 *>(nb_env_frame_addr(pfn)) = stash_head_;
	stash_head_ = pfn + 1;
	stash_count_++;
}

int Space::FillStash(unsigned want, nb_ctx ctx)
{
	for (;;) {
		{
			Guard g(&lock_);
			if (stash_count_ >= want)
				return 0;
		}
		u64 pfn;
		int rc = nb_buddy_alloc(core_, 0, node_, 0, ctx, &pfn);
		if (rc)
			return rc;
		Guard g(&lock_);
		StashPushLocked(pfn);
	}
}

void Space::TrimStash()
{
	for (;;) {
		u64 pfn;
		{
			Guard g(&lock_);
			if (stash_count_ <= kStashMax || TableAlloc(this, &pfn))
				return;
		}
		nb_buddy_free(core_, pfn, 0);
	}
}

// ---- the range index ---------------------------------------------------------------------

Space::Range *Space::FindLocked(u64 offset)
{
	u32 lo = 0, hi = nr_ranges_;
	while (lo < hi) { // first range starting above offset
		u32 mid = (lo + hi) / 2;
		if (ranges_[mid]->offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return nullptr;
	Range *r = ranges_[lo - 1];
	return offset - r->offset < r->size ? r : nullptr;
}

Space::Range *Space::FindStartLocked(u64 offset)
{
	Range *r = FindLocked(offset);
	return r && r->offset == offset ? r : nullptr;
}

int Space::InsertLocked(Range *r)
{
	if (nr_ranges_ == cap_ranges_)
		return -NB_ENOMEM;
	NB_ASSERT(!nr_ranges_ || ranges_[nr_ranges_ - 1]->offset < r->offset);
	ranges_[nr_ranges_++] = r;
	return 0;
}

void Space::RemoveLocked(Range *r)
{
	u32 i = 0;
	while (i < nr_ranges_ && ranges_[i] != r)
		i++;
	NB_ASSERT(i < nr_ranges_);
	for (; i + 1 < nr_ranges_; i++)
		ranges_[i] = ranges_[i + 1];
	nr_ranges_--;
}

// The index array grows with lock_ dropped; whoever loses the race frees its copy.
int Space::GrowRanges(nb_ctx ctx)
{
	u32 cap;
	{
		Guard g(&lock_);
		if (nr_ranges_ < cap_ranges_)
			return 0;
		cap = cap_ranges_ ? cap_ranges_ * 2 : 16;
	}
	Range **fresh = MetaAlloc<Range *>(cap, node_, ctx);
	if (!fresh)
		return -NB_ENOMEM;
	Range **old = fresh;
	u32 old_cap = cap;
	{
		Guard g(&lock_);
		if (cap_ranges_ < cap) {
			for (u32 i = 0; i < nr_ranges_; i++)
				fresh[i] = ranges_[i];
			old = ranges_;
			old_cap = cap_ranges_;
			ranges_ = fresh;
			cap_ranges_ = cap;
		}
	}
	MetaFree(old, old_cap);
	return 0;
}

// ---- accounting --------------------------------------------------------------------------

int Space::ChargeLocked(int node, u64 bytes)
{
	NB_ASSERT(node >= 0 && node < NB_MAX_NODES);
	if (node < 0 || node >= NB_MAX_NODES)
		return -NB_EINVAL;
	if (bytes > quota_[node] || node_bytes_[node] > quota_[node] - bytes)
		return -NB_EDQUOT;
	node_bytes_[node] += bytes;
	return 0;
}

void Space::UnchargeLocked(int node, u64 bytes)
{
	NB_ASSERT(node >= 0 && node < NB_MAX_NODES && node_bytes_[node] >= bytes);
	if (node >= 0 && node < NB_MAX_NODES)
		node_bytes_[node] -= bytes;
}

// ---- create / destroy --------------------------------------------------------------------

int Space::Create(nb_core *core, int node, nb_ctx ctx, Space **out)
{
	if (node >= NB_MAX_NODES)
		return -NB_EINVAL;
	if (node < 0)
		node = nb_current_cpu_node(core);
	void *mem = nb_env_meta_alloc(sizeof(Space), node, ctx);
	if (!mem)
		return -NB_ENOMEM;
	Space *s = new (mem) Space(core, node);
	s->lock_.Init();
	u64 nodes = nb_nodes_with_memory(core);
	struct nb_node_stats st;
	if (nodes && !nb_node_stats(core, (int)Ctz64(nodes), &st))
		s->max_order_ = st.max_order;
	int rc = s->FillStash(1, ctx);
	if (!rc) {
		Guard g(&s->lock_);
		for (u64 &q : s->quota_)
			q = NB_SPACE_NO_QUOTA;
		rc = s->table_.Init(PageTableAllocator{TableAlloc, TableFree, s});
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
			if (!nr_ranges_)
				break;
			r = ranges_[nr_ranges_ - 1];
			r->state = kFreeing; // close: no fault, free or migration can run any more
		}
		ReleaseFrames(r, ctx);
		{
			Guard g(&lock_);
			RemoveLocked(r);
		}
		nb_env_meta_free(r, r->meta_bytes);
	}
	Range **ranges;
	u32 cap;
	{
		Guard g(&lock_);
		table_.Teardown();
		ranges = ranges_;
		cap = cap_ranges_;
		ranges_ = nullptr;
		cap_ranges_ = 0;
	}
	for (;;) {
		u64 pfn;
		{
			Guard g(&lock_);
			if (TableAlloc(this, &pfn))
				break;
		}
		nb_buddy_free(core_, pfn, 0);
	}
	MetaFree(ranges, cap);
	lock_.Destroy();
	this->~Space();
	nb_env_meta_free(this, sizeof(Space));
}

// ---- publishing a range ------------------------------------------------------------------

// Gives r an offset >= the cursor with offset % align == phase, maps its extents there and
// inserts it. `phase` lets a contiguous range whose first frame is not `align`-aligned still
// map huge: frame address and offset must agree modulo the leaf size.
int Space::Publish(Range *r, u64 align, u64 phase, nb_ctx ctx)
{
	unsigned want = kStashLeaf;
	for (;;) {
		int rc = GrowRanges(ctx);
		if (!rc)
			rc = FillStash(want, ctx);
		if (rc)
			return rc;
		Guard g(&lock_);
		if (nr_ranges_ == cap_ranges_)
			continue; // another publisher took the slot we grew
		u64 off = AlignUp(cursor_, align) + phase;
		if (off < cursor_ || off >= PageTable::kVirtLimit ||
		    r->size > PageTable::kVirtLimit - off)
			return -NB_ENOSPC;
		u64 pos = off;
		for (u32 i = 0; !rc && i < r->nr_extents; i++) {
			const Extent &e = r->extents[i];
			rc = table_.MapRange(pos, e.pfn, e.nr_frames, PAGE_PRESENT | PAGE_WRITABLE);
			if (!rc)
				pos += e.nr_frames * kFrame;
		}
		if (rc) {
			// Whole leaves only, so this unmap needs no split and cannot fail.
			if (pos > off)
				NB_ASSERT(!table_.Unmap(off, pos - off));
			if (rc != -NB_ENOMEM || want >= (1u << 20))
				return rc;
			want *= 2; // out of spare table pages: refill with the lock dropped
			continue;
		}
		r->offset = off;
		NB_ASSERT(!InsertLocked(r));
		cursor_ = off + r->size;
		return 0;
	}
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

int Space::AllocExtents(Range *r, nb_ctx ctx)
{
	unsigned af = r->flags & NB_SPACE_LOW4G ? NB_AF_LOW4G : 0;
	for (u32 i = 0; i < r->nr_extents; i++) {
		Extent &e = r->extents[i];
		u64 pfn = 0;
		int node = -1;
		int rc = e.order == kContig
				 ? nb_alloc_contig(core_, e.nr_frames, &r->policy, af, ctx, &pfn, &node)
				 : nb_alloc(core_, e.order, &r->policy, af, ctx, &pfn, &node);
		if (rc) {
			FreeExtents(r, i);
			return rc;
		}
		{
			Guard g(&lock_);
			rc = ChargeLocked(node, e.nr_frames * kFrame);
		}
		if (!rc && !(r->flags & NB_SPACE_NOZERO)) {
			rc = ZeroFrames(pfn, e.nr_frames, ctx, true);
			if (rc) {
				Guard g(&lock_);
				UnchargeLocked(node, e.nr_frames * kFrame);
			}
		}
		if (rc) {
			if (e.order == kContig)
				nb_free_range(core_, pfn, e.nr_frames);
			else
				nb_buddy_free(core_, pfn, e.order);
			FreeExtents(r, i);
			return rc;
		}
		e.pfn = pfn;
		e.node = node;
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
	// Largest leaf-sized blocks first: every frame is then a whole leaf and stays one when it
	// migrates. 1 GiB + 6 MiB + 12 KiB = 262144 + 1536 + 3 frames -> orders 18, 9, 9, 9, 0, 0, 0.
	unsigned orders[3];
	u64 counts[3];
	unsigned n_orders = 0;
	u64 n = 0, left = frames;
	static constexpr unsigned kLeafOrders[] = {18, 9, 0};
	for (unsigned o : kLeafOrders) {
		if (o > max_order_)
			continue;
		orders[n_orders] = o;
		counts[n_orders] = left >> o;
		left -= counts[n_orders] << o;
		n += counts[n_orders++];
	}
	if (flags & NB_SPACE_CONTIG)
		n = 1;
	if (n > (1u << 24))
		return -NB_EINVAL;
	usize meta = sizeof(Range) + n * sizeof(Extent);
	Range *r = static_cast<Range *>(nb_env_meta_alloc(meta, node_, ctx));
	if (!r)
		return -NB_ENOMEM;
	*r = Range{0, size, flags & ~NB_SPACE_POPULATE, NB_SPACE_KIND_BLOCK, kLive, -1, p,
		   (u32)n, meta, reinterpret_cast<Extent *>(r + 1)};
	if (flags & NB_SPACE_CONTIG) {
		r->extents[0] = Extent{~0ull, frames, kContig, -1};
	} else {
		u32 k = 0;
		for (unsigned j = 0; j < n_orders; j++)
			for (u64 c = 0; c < counts[j]; c++)
				r->extents[k++] = Extent{~0ull, 1ull << orders[j], orders[j], -1};
	}
	rc = AllocExtents(r, ctx);
	if (rc) {
		nb_env_meta_free(r, meta);
		return rc;
	}
	u64 align = kFrame, phase = 0;
	if (flags & NB_SPACE_CONTIG) {
		align = size >= k1G ? k1G : size >= k2M ? k2M : kFrame;
		phase = (r->extents[0].pfn * kFrame) % align;
	} else {
		align = LeafBytes(r->extents[0].order);
	}
	rc = Publish(r, align, phase, ctx);
	TrimStash();
	if (rc) {
		FreeExtents(r, r->nr_extents);
		nb_env_meta_free(r, meta);
		return rc;
	}
	*offset_out = r->offset;
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
	*r = Range{0, size, flags, NB_SPACE_KIND_RESERVED, kLive, -1, p, 0, sizeof(Range), nullptr};
	rc = Publish(r, align, 0, ctx);
	if (rc) {
		nb_env_meta_free(r, sizeof(Range));
		return rc;
	}
	u64 off = r->offset, end = r->offset + size; // r may be freed by a racing free from here on
	for (u64 pos = off; !rc && (flags & NB_SPACE_POPULATE) && pos < end;) {
		nb_space_fault_result res;
		rc = Fault(pos, true, cpu, 18, ctx, &res);
		if (rc)
			break;
		pos = res.offset + LeafBytes(res.order);
		if (ctx == NB_CTX_SLEEP)
			nb_env_resched();
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
// interleaves a VMA: the k-th frame of the range goes to the (k mod n)-th node of the mask,
// whichever CPU touches it first and in whatever order.
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
		u64 k = ((chunk - r.offset) >> (NB_FRAME_SHIFT + order)) % PopCount64(p.nodemask);
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

// ---- free --------------------------------------------------------------------------------

int Space::FreeBegin(u64 offset, u64 *start, u64 *len)
{
	Guard g(&lock_);
	Range *r = FindStartLocked(offset);
	if (!r || r->state == kDying || r->state == kFreeing)
		return -NB_ENOENT;
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
	ReleaseFrames(r, ctx);
	{
		Guard g(&lock_);
		RemoveLocked(r);
	}
	nb_env_meta_free(r, r->meta_bytes);
	TrimStash();
	return 0;
}

// Unmaps a freeing range and returns its frames. A block's frames are its extents. A
// reserved range's frames are its leaves (each first touch maps exactly one frame as one
// leaf, and nothing splits or merges them), taken kBatch at a time so lock_ is never held
// for the whole of a large range.
void Space::ReleaseFrames(Range *r, nb_ctx ctx)
{
	if (r->kind == NB_SPACE_KIND_BLOCK) {
		{
			Guard g(&lock_);
			NB_ASSERT(!table_.Unmap(r->offset, r->size)); // ends are leaf boundaries
		}
		FreeExtents(r, r->nr_extents);
		return;
	}
	u64 end = r->offset + r->size;
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
			return;
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
		if (ctx == NB_CTX_SLEEP)
			nb_env_resched();
		if (cursor >= end)
			return;
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

// ---- queries -----------------------------------------------------------------------------

namespace {
struct QueryWalk {
	nb_space_info *out;
	nb_core *core;
	bool frames; // reserved range: leaves are the frames
};
} // namespace

int Space::Query(u64 offset, nb_space_info *out)
{
	MemZero(out, sizeof(*out));
	Guard g(&lock_);
	Range *r = FindLocked(offset);
	if (!r)
		return -NB_ENOENT;
	out->offset = r->offset;
	out->size = r->size;
	out->flags = r->flags;
	out->kind = r->kind;
	out->state = r->state;
	out->node = -1;
	out->first_pfn = ~0ull;
	for (u32 i = 0; i < r->nr_extents; i++) {
		const Extent &e = r->extents[i];
		unsigned order = e.order == kContig ? Log2Floor(e.nr_frames) : e.order;
		if (!i) {
			out->node = e.node;
			out->first_pfn = e.pfn;
		}
		out->max_frame_order = Max(out->max_frame_order, order);
		out->populated_bytes += e.nr_frames * kFrame;
		out->node_bytes[e.node] += e.nr_frames * kFrame;
		if (e.order != kContig)
			out->frames_by_order[e.order]++;
	}
	QueryWalk w{out, core_, r->kind == NB_SPACE_KIND_RESERVED};
	table_.Walk(r->offset, r->size,
		    [](void *arg, const PageTable::Leaf &l) {
			    QueryWalk *q = static_cast<QueryWalk *>(arg);
			    q->out->leaf_bytes[l.order / 9] += LeafBytes(l.order);
			    if (!q->frames)
				    return 0;
			    int node = nb_pfn_node(q->core, l.pfn);
			    if (q->out->first_pfn == ~0ull) {
				    q->out->first_pfn = l.pfn;
				    q->out->node = node;
			    }
			    q->out->max_frame_order = Max(q->out->max_frame_order, l.order);
			    q->out->populated_bytes += LeafBytes(l.order);
			    q->out->frames_by_order[l.order]++;
			    if (node >= 0 && node < NB_MAX_NODES)
				    q->out->node_bytes[node] += LeafBytes(l.order);
			    return 0;
		    },
		    &w);
	return 0;
}

u64 Space::HugeAlign(u64 offset, u64 len)
{
	Guard g(&lock_);
	Range *r = FindLocked(offset);
	if (!r || !len)
		return kFrame;
	u64 lo = offset, hi = Min(offset + len, r->offset + r->size);
	static constexpr unsigned kHugeOrders[] = {18, 9};
	for (unsigned o : kHugeOrders) {
		u64 c = AlignUp(lo, LeafBytes(o));
		if (c < lo || c + LeafBytes(o) > hi)
			continue;
		if (r->kind == NB_SPACE_KIND_RESERVED) {
			if (DemandOrderLocked(*r, c) >= o ||
			    (r->flags & (o == 18 ? NB_SPACE_HUGE_1G : NB_SPACE_HUGE_2M | NB_SPACE_HUGE_1G)))
				return LeafBytes(o);
		} else {
			PageTable::Leaf l;
			for (; c + LeafBytes(o) <= hi; c += LeafBytes(o))
				if (!table_.Lookup(c, &l) && l.order >= o)
					return LeafBytes(o);
		}
	}
	return kFrame;
}

int Space::SetQuota(int node, u64 bytes)
{
	if (node < 0 || node >= NB_MAX_NODES)
		return -NB_EINVAL;
	Guard g(&lock_);
	quota_[node] = bytes;
	return 0;
}

u64 Space::Quota(int node)
{
	if (node < 0 || node >= NB_MAX_NODES)
		return 0;
	Guard g(&lock_);
	return quota_[node];
}

u64 Space::NodeBytes(int node)
{
	if (node < 0 || node >= NB_MAX_NODES)
		return 0;
	Guard g(&lock_);
	return node_bytes_[node];
}

u64 Space::TablePages()
{
	Guard g(&lock_);
	return table_.table_pages();
}

} // namespace nb

// ---- C API -------------------------------------------------------------------------------

namespace {
nb::Space *S(nb_space *s) { return reinterpret_cast<nb::Space *>(s); }
} // namespace

extern "C" {

int nb_space_create(nb_core *core, int node, nb_ctx ctx, nb_space **out)
{
	nb::Space *s;
	int rc = nb::Space::Create(core, node, ctx, &s);
	if (!rc)
		*out = reinterpret_cast<nb_space *>(s);
	return rc;
}

void nb_space_destroy(nb_space *s, nb_ctx ctx) { S(s)->Destroy(ctx); }

int nb_space_alloc(nb_space *s, nb_u64 bytes, const nb_policy *pol, unsigned flags, nb_ctx ctx,
		   nb_u64 *offset_out)
{
	return S(s)->Alloc(bytes, pol, flags, ctx, offset_out);
}

int nb_space_reserve(nb_space *s, nb_u64 bytes, const nb_policy *pol, unsigned flags,
		     unsigned cpu, nb_ctx ctx, nb_u64 *offset_out)
{
	return S(s)->Reserve(bytes, pol, flags, cpu, ctx, offset_out);
}

int nb_space_fault(nb_space *s, nb_u64 offset, int write, unsigned cpu, unsigned max_order,
		   nb_ctx ctx, nb_space_fault_result *out)
{
	return S(s)->Fault(offset, write != 0, cpu, max_order, ctx, out);
}

int nb_space_free_begin(nb_space *s, nb_u64 offset, nb_u64 *start, nb_u64 *len)
{
	return S(s)->FreeBegin(offset, start, len);
}

int nb_space_free_finish(nb_space *s, nb_u64 offset, nb_ctx ctx)
{
	return S(s)->FreeFinish(offset, ctx);
}

int nb_space_free(nb_space *s, nb_u64 offset, nb_ctx ctx,
		  void (*zap)(void *arg, nb_u64 start, nb_u64 len), void *arg)
{
	nb_u64 start, len;
	int rc = S(s)->FreeBegin(offset, &start, &len);
	if (rc)
		return rc;
	if (zap)
		zap(arg, start, len);
	return S(s)->FreeFinish(offset, ctx);
}

int nb_space_migrate_begin(nb_space *s, nb_u64 offset, int node, nb_u64 *start, nb_u64 *len)
{
	return S(s)->MigrateBegin(offset, node, start, len);
}

int nb_space_migrate_finish(nb_space *s, nb_u64 offset, nb_ctx ctx, nb_u64 *bytes_moved)
{
	return S(s)->MigrateFinish(offset, ctx, bytes_moved);
}

int nb_space_migrate(nb_space *s, nb_u64 offset, int node, nb_ctx ctx,
		     void (*zap)(void *arg, nb_u64 start, nb_u64 len), void *arg,
		     nb_u64 *bytes_moved)
{
	nb_u64 start, len;
	*bytes_moved = 0;
	int rc = S(s)->MigrateBegin(offset, node, &start, &len);
	if (rc)
		return rc;
	if (zap)
		zap(arg, start, len);
	return S(s)->MigrateFinish(offset, ctx, bytes_moved);
}

int nb_space_query(nb_space *s, nb_u64 offset, nb_space_info *out)
{
	return S(s)->Query(offset, out);
}

nb_u64 nb_space_huge_align(nb_space *s, nb_u64 offset, nb_u64 len)
{
	return S(s)->HugeAlign(offset, len);
}

int nb_space_set_quota(nb_space *s, int node, nb_u64 bytes) { return S(s)->SetQuota(node, bytes); }
nb_u64 nb_space_quota(nb_space *s, int node) { return S(s)->Quota(node); }
nb_u64 nb_space_node_bytes(nb_space *s, int node) { return S(s)->NodeBytes(node); }
nb_u64 nb_space_table_pages(nb_space *s) { return S(s)->TablePages(); }

} // extern "C"
