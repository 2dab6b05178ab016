// SPDX-License-Identifier: GPL-2.0
//
// space_fault.cpp - reserved ranges (nbc_space_reserve) and what every user fault gets
// (nbc_space_fault): a mapped leaf, or for a first touch of a reserved range a frame chosen,
// zeroed and installed here.
#include "leaf_orders.h"
#include "space.h"

namespace nb {

int Space::Reserve(u64 bytes, const nbc_policy *pol, unsigned flags, unsigned cpu, nb_ctx ctx,
		   u64 *offset_out)
{
	if (!bytes || bytes > PageTable::kVirtLimit / 2 || (flags & ~NBC_SPACE_FLAGS_ALL) ||
	    (flags & NBC_SPACE_CONTIG))
		return -NB_EINVAL;
	nbc_policy p;
	int rc = TakePolicy(pol, &p);
	if (rc)
		return rc;
	u64 size = AlignUp(bytes, kFrame);
	// Aligned so that the huge chunks the flags ask for start on a leaf boundary.
	u64 align = kFrame;
	for (unsigned o : kHugeLeafOrders)
		if ((flags & HugeFlagsFor(o)) && size >= LeafBytes(o)) {
			align = LeafBytes(o);
			break;
		}
	if (flags & NBC_SPACE_POPULATE) { // a sparse range may be larger than the quota
		rc = CheckRoom(p, size);
		if (rc)
			return rc;
	}
	Range *r = static_cast<Range *>(nb_env_meta_alloc(sizeof(Range), node_, ctx,
							   NB_META_USER));
	if (!r)
		return -NB_ENOMEM;
	if (p.mode == NBC_POLICY_INTERLEAVE)
		p.il_next = AtomicAdd(&il_next_, 1u) - 1; // the node of the range's first frame
	*r = Range{0, size, flags, NBC_SPACE_KIND_RESERVED, kLive, -1, p, 0, 0, sizeof(Range),
		   nullptr};
	u64 off;
	rc = Publish(r, align, 0, ctx, &off);
	if (rc) {
		nb_env_meta_free(r, sizeof(Range));
		return rc;
	}
	u64 end = off + size; // r may be freed by a racing free from here on: never read it
	for (u64 pos = off; !rc && (flags & NBC_SPACE_POPULATE) && pos < end;) {
		nbc_space_fault_result res;
		rc = Fault(pos, true, cpu, kLeaf1G, ctx, &res);
		if (rc == -NB_EAGAIN && ctx == NB_CTX_SLEEP && !UserMigrating(off)) {
			// Compaction moves what is populated so far and gives the range back within
			// one range's copy (it may have done so already): not a user's doing, so
			// POPULATE still means all of it.
			rc = nb_env_should_abort() ? -NB_EINTR : 0;
			nb_env_resched();
			continue;
		}
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

// The range at `offset` is being moved by a user's MIGRATE (kMigrating to a target node),
// not by compaction (no target node), which ends by itself.
bool Space::UserMigrating(u64 offset)
{
	Guard g(&lock_);
	Range *r;
	return ranges_.Lookup(offset, RangeUse::kRead, &r) == 0 && r->state == kMigrating &&
	       r->target >= 0;
}

// The frame order a first touch at `offset` gets: the largest huge chunk the flags ask for
// that lies wholly inside the range and has nothing mapped yet (a chunk that already holds
// 4 KiB frames, because no huge frame was free at its first touch, stays 4 KiB). What is
// empty comes from the fault's own descent: `empty_level` as PageTable::Probe gives it.
unsigned Space::DemandOrderLocked(const Range &r, u64 offset, unsigned empty_level)
{
	for (unsigned o : kHugeLeafOrders) {
		u64 chunk = offset & ~(LeafBytes(o) - 1);
		if ((r.flags & HugeFlagsFor(o)) && o <= max_order_ && chunk >= r.offset &&
		    chunk + LeafBytes(o) <= r.offset + r.size && empty_level >= o / kLeaf2M + 1)
			return o;
	}
	return kLeaf4K;
}

// Where a first touch allocates. LOCAL means the faulting CPU's node (the fault carries it;
// the CPU running the fault path is only a hint). INTERLEAVE is by offset, as Linux
// interleaves a VMA: the k-th frame of the range goes to the ((base + k) mod n)-th node of
// the mask, whichever CPU touches it first and in whatever order; base is the file's turn
// when the range was reserved, so one-frame ranges still go round the mask.
int Space::PickFrame(const Range &r, u64 chunk, unsigned order, unsigned cpu, nb_ctx ctx,
		     u64 *pfn, int *node)
{
	nbc_policy p = r.policy;
	int cpu_node = nb_env_cpu_node(cpu);
	if ((p.mode == NBC_POLICY_LOCAL || (p.mode == NBC_POLICY_PREFERRED && p.node < 0)) &&
	    cpu_node >= 0) {
		p.mode = NBC_POLICY_PREFERRED;
		p.node = cpu_node;
	} else if (p.mode == NBC_POLICY_INTERLEAVE) {
		u64 k = (p.il_next + ((chunk - r.offset) >> (NBC_FRAME_SHIFT + order))) %
			PopCount64(p.nodemask);
		u64 mask = p.nodemask;
		for (; k; k--)
			mask &= mask - 1;
		int target = (int)Ctz64(mask);
		nbc_policy one{NBC_POLICY_BIND, target, 1ull << target, 0, 0};
		if (!TakeFrames(order, 1ull << order, one, r.flags, ctx, pfn, node))
			return 0;
		p.mode = NBC_POLICY_BIND; // that node is full: any node of the mask
	}
	return TakeFrames(order, 1ull << order, p, r.flags, ctx, pfn, node);
}

// First touch, after Fault's lock hold found `offset` unmapped (what it saw: `seen`, the
// range `snap`, the order): allocate and zero with lock_ dropped, then one more hold that
// re-validates the range in O(1), charges and installs in one descent, and answers the fault
// from the installed leaf. -NB_EEXIST: someone else populated `offset` first, look again.
int Space::Populate(u64 offset, const Range &snap, RangeSeen seen, unsigned order,
		    unsigned cpu, unsigned max_order, nb_ctx ctx, nbc_space_fault_result *out)
{
	u64 pfn = 0;
	int node = -1, rc;
	for (;;) { // a huge frame that is not there falls back to 2 MiB, then 4 KiB
		rc = PickFrame(snap, offset & ~(LeafBytes(order) - 1), order, cpu, ctx, &pfn, &node);
		if (rc != -NB_ENOMEM || order == kLeaf4K)
			break;
		order = LeafBelow(order);
	}
	if (rc)
		return rc;
	u64 chunk = offset & ~(LeafBytes(order) - 1);
	for (unsigned tries = 0;; tries++) {
		{
			Guard g(&lock_);
			Range *r = ranges_.Revalidate(seen);
			rc = r ? 0 : ranges_.Lookup(offset, RangeUse::kFault, &r, &seen);
			if (!rc) {
				rc = quotas_.Charge(node, LeafBytes(order));
				// At the quota, a racing fault that populated offset is not a refusal.
				if (rc == -NB_EDQUOT && !table_.Lookup(offset, nullptr))
					rc = -NB_EEXIST;
			}
			if (!rc) {
				PageTable::Leaf leaf;
				rc = table_.MapIfEmpty(chunk, pfn, PAGE_PRESENT | PAGE_WRITABLE, order,
						       &leaf);
				if (!rc) {
					FillResult(leaf, offset, max_order, false, out);
					return 0;
				}
				quotas_.Uncharge(node, LeafBytes(order));
			}
		}
		if (rc != -NB_ENOMEM || tries >= 4)
			break;
		// A racing fault took the spare table pages Fault saw: refill, retry.
		rc = FillStash(TableStash::kLeaf, ctx);
		if (rc)
			break;
	}
	GiveBack(pfn, order, 1ull << order);
	return rc;
}

// A leaf larger than the VMA allows is handed out as the sub-frame holding `offset`.
void Space::FillResult(const PageTable::Leaf &leaf, u64 offset, unsigned max_order,
		       bool block, nbc_space_fault_result *out)
{
	unsigned o = Min(leaf.order, LeafAtMost(max_order));
	out->offset = offset & ~(LeafBytes(o) - 1);
	out->pfn = leaf.pfn + ((out->offset - leaf.virt) >> NBC_FRAME_SHIFT);
	out->order = o;
	out->writable = (leaf.flags & PAGE_WRITABLE) ? 1 : 0;
	out->block = block ? 1 : 0;
	out->pad = 0;
}

// One hold of lock_ for a mapped offset; for a first touch two (this one, and Populate's
// install), plus the allocation's own, and one refill of the table stash when the new leaf
// needs table pages the stash does not hold (once per 2 MiB of 4 KiB first touches).
int Space::Fault(u64 offset, bool write, unsigned cpu, unsigned max_order, nb_ctx ctx,
		 nbc_space_fault_result *out)
{
	for (;;) {
		Range snap;
		RangeSeen seen;
		unsigned order, empty_level;
		bool stash_short;
		{
			Guard g(&lock_);
			Range *r;
			int rc = ranges_.Lookup(offset, RangeUse::kFault, &r, &seen);
			if (rc)
				return rc;
			PageTable::Leaf leaf;
			if (!table_.Probe(offset, &leaf, &empty_level)) {
				if (write && !(leaf.flags & PAGE_WRITABLE))
					return -NB_EFAULT;
				FillResult(leaf, offset, max_order,
					   r->kind == NBC_SPACE_KIND_BLOCK, out);
				return 0;
			}
			NB_ASSERT(r->kind == NBC_SPACE_KIND_RESERVED); // blocks are mapped whole
			if (r->kind != NBC_SPACE_KIND_RESERVED)
				return -NB_EFAULT;
			snap = *r;
			order = DemandOrderLocked(*r, offset, empty_level);
			// A fallback to a smaller leaf may need one more: Populate refills then.
			stash_short = stash_.count() < empty_level - (order / kLeaf2M + 1);
		}
		if (stash_short) {
			int rc = FillStash(TableStash::kLeaf, ctx);
			if (rc)
				return rc;
		}
		int rc = Populate(offset, snap, seen, order, cpu, max_order, ctx, out);
		if (rc != -NB_EEXIST)
			return rc;
	}
}

namespace {
// What FaultAround fills while the table walks the window's leaves.
struct AroundFill {
	u64 lo, hi;
	nbc_space_around *out;
};
} // namespace

int Space::FaultAround(u64 offset, u64 lo, u64 hi, nbc_space_around *out)
{
	if (offset < lo || offset >= hi || (lo | hi) % kFrame)
		return -NB_EINVAL;
	Guard g(&lock_);
	Range *r;
	int rc = ranges_.Lookup(offset, RangeUse::kFault, &r);
	if (rc)
		return rc;
	if (r->kind != NBC_SPACE_KIND_BLOCK)
		return -NB_ENOENT;
	const u64 win = NBC_SPACE_AROUND_PAGES * kFrame;
	u64 w = r->offset + ((offset - r->offset) & ~(win - 1));
	AroundFill f{Max(Max(lo, w), r->offset), Min(Min(hi, w + win), r->offset + r->size), out};
	out->offset = f.lo;
	out->nr_pages = (u32)((f.hi - f.lo) / kFrame);
	out->writable = 0;
	for (u64 &pfn : out->pfn)
		pfn = NBC_SPACE_NO_PFN;
	return table_.Walk(f.lo, f.hi - f.lo, [](void *arg, const PageTable::Leaf &l) {
		AroundFill &f = *static_cast<AroundFill *>(arg);
		u64 from = Max(l.virt, f.lo), to = Min(l.virt + LeafBytes(l.order), f.hi);
		for (u64 v = from; v < to; v += kFrame) {
			u64 i = (v - f.lo) / kFrame;
			f.out->pfn[i] = l.pfn + ((v - l.virt) >> NBC_FRAME_SHIFT);
			if (l.flags & PAGE_WRITABLE)
				f.out->writable |= 1u << i;
		}
		return 0;
	}, &f);
}

} // namespace nb
