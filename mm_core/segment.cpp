// SPDX-License-Identifier: GPL-2.0
/*
 * segment.cpp - buddy split/merge over per-frame descriptors.
 *
 * Buddy math, worked (as Linux's __find_buddy_pfn explains it): a block of order k starts at a
 * pfn that is a multiple of 2^k; its buddy differs in bit k only.
 *   pfn 0x1234, order 2: buddy = 0x1234 ^ 0x4 = 0x1230; merged block = 0x1230, order 3.
 *   pfn 0x1230, order 3: buddy = 0x1230 ^ 0x8 = 0x1238; merged block = 0x1230, order 4.
 * Indices are pfn - base; we do the xor on the pfn, never on the index, because base need not
 * be aligned (a region may start at any frame).
 */
#include "segment.h"

namespace nb {

void Segment::Init(u64 base_pfn, u64 nr_frames, int node, FrameDesc *desc, unsigned max_order)
{
	NB_ASSERT(nr_frames > 0 && nr_frames <= kSegmentMaxFrames);
	base_ = base_pfn;
	frames_ = nr_frames;
	node_ = node;
	desc_ = desc;
	max_order_ = max_order;
	mask_ = 0;
	free_frames_ = 0;
	zeroed_frames_ = 0;
	zeroed_huge_frames_ = 0;
	mixed_ = false;
	for (unsigned k = 0; k <= NBC_ORDER_LIMIT; k++) {
		head_[k] = 0;
		tail_[k] = 0;
		free_blocks_[k] = 0;
	}
}

unsigned Segment::FitOrder(u64 idx, u64 limit) const
{
	u64 pfn = base_ + idx;
	unsigned k = pfn == 0 ? max_order_ : Min(max_order_, Ctz64(pfn));
	while (idx + (1ull << k) > limit)
		k--;
	return k;
}

void Segment::AddAllFree()
{
	/* Greedy: at each frame the largest aligned block that fits. A segment of N frames
	 * becomes O(N / 2^max_order + max_order) blocks, and only their heads are written, so a
	 * 1 TiB segment touches a few thousand descriptors. */
	u64 idx = 0;
	while (idx < frames_) {
		unsigned k = FitOrder(idx, frames_);
		PushFree(idx, k, false); /* a new region's contents are unknown */
		idx += 1ull << k;
	}
}

void Segment::PushFree(u64 idx, unsigned order, bool zeroed)
{
	u32 i = static_cast<u32>(idx);
	u32 bit = 1u << order;
	if (!(mask_ & bit)) {
		Store(i, DescPack(FrameState::kFree, order, i, i, zeroed));
		head_[order] = tail_[order] = i;
	} else if (zeroed) {
		u32 next = head_[order];
		u64 d = Load(next);
		Store(next, DescPack(FrameState::kFree, order, DescNext(d), i, DescZeroed(d)));
		Store(i, DescPack(FrameState::kFree, order, next, i, true));
		head_[order] = i;
	} else {
		u32 prev = tail_[order];
		u64 d = Load(prev);
		Store(prev, DescPack(FrameState::kFree, order, i, DescPrev(d), DescZeroed(d)));
		Store(i, DescPack(FrameState::kFree, order, i, prev, false));
		tail_[order] = i;
	}
	mask_ |= bit;
	free_blocks_[order]++;
	free_frames_ += 1ull << order;
	if (zeroed)
		CountZeroed(order, 1);
}

void Segment::RemoveFree(u64 idx, unsigned order)
{
	u32 i = static_cast<u32>(idx);
	u64 d = Load(i);
	u32 next = DescNext(d), prev = DescPrev(d);
	bool has_next = next != i, has_prev = prev != i;
	if (has_prev) {
		u64 pd = Load(prev);
		/* prev inherits our next; if we were last, prev becomes last (links to itself). */
		Store(prev, DescPack(FrameState::kFree, order, has_next ? next : prev, DescPrev(pd),
				     DescZeroed(pd)));
	} else {
		head_[order] = next;
		if (!has_next)
			mask_ &= ~(1u << order);
	}
	if (has_next) {
		u64 nd = Load(next);
		Store(next, DescPack(FrameState::kFree, order, DescNext(nd), has_prev ? prev : next,
				     DescZeroed(nd)));
	} else if (has_prev) {
		tail_[order] = prev;
	}
	Store(i, 0);
	free_blocks_[order]--;
	free_frames_ -= 1ull << order;
	if (DescZeroed(d))
		CountZeroed(order, -1);
}

void Segment::SplitTake(u64 idx, unsigned k, unsigned order, FrameState as, bool zeroed)
{
	/* Split: keep the lower half, free the upper half, until the order fits. */
	while (k > order) {
		k--;
		PushFree(idx + (1ull << k), k, zeroed);
	}
	Store(idx, DescPack(as, order, 0, 0));
}

bool Segment::Alloc(unsigned order, FrameState as, u64 *pfn, bool *zeroed)
{
	u32 avail = mask_ >> order;
	if (avail == 0)
		return false;
	unsigned k = order + Ctz64(avail);
	u64 idx = tail_[k];
	bool z = DescZeroed(Load(idx)); /* the tail is zeroed only when the whole list is */
	RemoveFree(idx, k);
	SplitTake(idx, k, order, as, z);
	*pfn = base_ + idx;
	if (zeroed != nullptr)
		*zeroed = z;
	return true;
}

bool Segment::AllocZeroed(unsigned order, FrameState as, u64 *pfn)
{
	for (u32 avail = mask_ >> order; avail != 0; avail &= avail - 1) {
		unsigned k = order + Ctz64(avail);
		if (order < kZeroedSplitFloor && k >= kZeroedSplitFloor)
			break; /* a small request does not break up a zeroed 2 MiB block */
		u64 idx = head_[k];
		if (!DescZeroed(Load(idx)))
			continue;
		RemoveFree(idx, k);
		SplitTake(idx, k, order, as, true);
		*pfn = base_ + idx;
		return true;
	}
	return false;
}

int Segment::TakeDirty(unsigned cap, u64 *pfn)
{
	cap = Min(cap, max_order_);
	/* A dirty block of the cap or above first (split: its other pieces stay dirty and the
	 * next calls find them at the tails), else the largest smaller one. */
	int found = -1;
	for (unsigned k = 0; k <= max_order_; k++) {
		if (!((mask_ >> k) & 1) || DescZeroed(Load(tail_[k])))
			continue;
		found = static_cast<int>(k);
		if (k >= cap)
			break;
	}
	if (found < 0)
		return -1;
	unsigned k = static_cast<unsigned>(found), order = Min(k, cap);
	u64 idx = tail_[k];
	RemoveFree(idx, k);
	SplitTake(idx, k, order, FrameState::kAlloc, false);
	*pfn = base_ + idx;
	return static_cast<int>(order);
}

int Segment::TakeFree(u64 pfn)
{
	if (!Contains(pfn))
		return -1;
	u64 idx = pfn - base_, d = Load(idx);
	if (DescState(d) != FrameState::kFree)
		return -1;
	unsigned order = DescOrder(d);
	RemoveFree(idx, order);
	Store(idx, DescPack(FrameState::kAlloc, order, 0, 0));
	return static_cast<int>(order);
}

bool Segment::IsHead(u64 pfn, unsigned order, FrameState expect) const
{
	if (!Contains(pfn) || order > max_order_ || (pfn & ((1ull << order) - 1)) != 0 ||
	    pfn + (1ull << order) > end())
		return false;
	u64 d = Load(pfn - base_);
	return DescState(d) == expect && DescOrder(d) == order;
}

int Segment::Free(u64 pfn, unsigned order, FrameState expect, bool zeroed)
{
	if (!IsHead(pfn, order, expect))
		return -NB_EINVAL;
	u64 idx = pfn - base_;
	/* Claim with a CAS: a racing double free through a per-CPU cache (which changes
	 * kAlloc -> kCached without our lock) must lose cleanly, not corrupt a list. */
	if (!AtomicCas(&desc_[idx].bits, DescPack(expect, order, 0, 0), u64{0}))
		return -NB_EINVAL;
	Coalesce(pfn, order, zeroed, false);
	return 0;
}

void Segment::Coalesce(u64 pfn, unsigned k, bool zeroed, bool force)
{
	while (k < max_order_) {
		u64 bpfn = pfn ^ (1ull << k);
		if (bpfn < base_ || bpfn + (1ull << k) > end())
			break;
		u64 bd = Load(bpfn - base_);
		if (DescState(bd) != FrameState::kFree || DescOrder(bd) != k)
			break;
		if (DescZeroed(bd) != zeroed && !force) {
			/* Merging would make the zeroed half dirty (one bit per block): keep the
			 * pair apart until the zeroer cleans the dirty half, or MergeMixed. */
			mixed_ = true;
			break;
		}
		zeroed = zeroed && DescZeroed(bd);
		RemoveFree(bpfn - base_, k); /* leaves the buddy's head zero: a tail now */
		pfn &= ~(1ull << k);
		k++;
	}
	PushFree(pfn - base_, k, zeroed);
}

bool Segment::MergeMixed()
{
	if (!mixed_)
		return false;
	mixed_ = false;
	bool merged = false;
	for (unsigned k = 0; k < max_order_; k++) {
		/* One walk per order: after a merge the walk goes on from the block before the
		 * pair (the buddy is never before it: that block would have merged first). */
		u64 i = head_[k], prev = ~0ull;
		while ((mask_ >> k) & 1) {
			u64 d = Load(i), pfn = base_ + i, bpfn = pfn ^ (1ull << k);
			u64 bd = bpfn >= base_ && bpfn + (1ull << k) <= end() ? Load(bpfn - base_) : 0;
			if (DescState(bd) == FrameState::kFree && DescOrder(bd) == k) {
				RemoveFree(i, k);
				Coalesce(pfn, k, DescZeroed(d), true);
				merged = true;
				if (!((mask_ >> k) & 1))
					break;
				i = prev == ~0ull ? head_[k] : DescNext(Load(prev));
				if (prev != ~0ull && i == prev)
					break; /* prev is last now */
				continue;
			}
			if (DescNext(d) == i)
				break;
			prev = i;
			i = DescNext(d);
		}
	}
	return merged;
}

void Segment::TrimAlloc(u64 pfn, unsigned from, u64 nr, bool zeroed)
{
	NB_ASSERT(nr > 0 && nr <= (1ull << from) && IsHead(pfn, from, FrameState::kAlloc));
	u64 end_pfn = pfn + (1ull << from);
	/* Kept part [pfn, pfn+nr): the binary digits of nr, largest first, each an aligned
	 * block. nr = 5 at pfn 0x40: order 2 at 0x40, order 0 at 0x44. */
	u64 p = pfn;
	for (int b = static_cast<int>(from); b >= 0; b--) {
		if (nr & (1ull << b)) {
			Store(p - base_, DescPack(FrameState::kAlloc, static_cast<unsigned>(b), 0, 0));
			p += 1ull << b;
		}
	}
	/* Tail [pfn+nr, end): mark as allocated pieces, then free each; frees coalesce. */
	u64 q = p;
	while (q < end_pfn) {
		unsigned k = FitOrder(q - base_, end_pfn - base_);
		Store(q - base_, DescPack(FrameState::kAlloc, k, 0, 0));
		q += 1ull << k;
	}
	q = p;
	while (q < end_pfn) {
		unsigned k = DescOrder(Load(q - base_));
		int rc = Free(q, k, FrameState::kAlloc, zeroed); /* the tail was never handed out */
		NB_ASSERT(rc == 0);
		q += 1ull << k;
	}
}

bool Segment::Check() const
{
	/* Lists: every entry free, of its order, aligned, links symmetric, counts exact; zeroed
	 * blocks before dirty ones, the tail where the walk ends. */
	u64 frames = 0, zeroed = 0, zeroed_huge = 0;
	for (unsigned k = 0; k <= NBC_ORDER_LIMIT; k++) {
		bool listed = (mask_ >> k) & 1;
		if (!listed) {
			if (free_blocks_[k] != 0) {
				nb_env_log(NB_LOG_ERR, "nb: seg %llx order %u: count %llu, mask clear\n",
					   (unsigned long long)base_, k, (unsigned long long)free_blocks_[k]);
				return false;
			}
			continue;
		}
		u64 n = 0;
		u64 i = head_[k], prev = i;
		bool seen_dirty = false;
		for (;;) {
			u64 d = Load(i);
			u64 pfn = base_ + i;
			if (i >= frames_ || DescState(d) != FrameState::kFree || DescOrder(d) != k ||
			    (pfn & ((1ull << k) - 1)) != 0 || i + (1ull << k) > frames_ ||
			    DescPrev(d) != prev || ++n > free_blocks_[k] ||
			    (DescZeroed(d) && seen_dirty)) {
				nb_env_log(NB_LOG_ERR, "nb: seg %llx order %u: bad list entry %llu\n",
					   (unsigned long long)base_, k, (unsigned long long)i);
				return false;
			}
			seen_dirty = !DescZeroed(d);
			if (DescZeroed(d)) {
				zeroed += 1ull << k;
				if (k >= kZeroedSplitFloor)
					zeroed_huge += 1ull << k;
			}
			if (DescNext(d) == i)
				break;
			prev = i;
			i = DescNext(d);
		}
		if (i != tail_[k]) {
			nb_env_log(NB_LOG_ERR, "nb: seg %llx order %u: list ends at %llu, tail %u\n",
				   (unsigned long long)base_, k, (unsigned long long)i, tail_[k]);
			return false;
		}
		if (n != free_blocks_[k]) {
			nb_env_log(NB_LOG_ERR, "nb: seg %llx order %u: %llu listed, %llu counted\n",
				   (unsigned long long)base_, k, (unsigned long long)n,
				   (unsigned long long)free_blocks_[k]);
			return false;
		}
		frames += n << k;
	}
	if (frames != free_frames_ || zeroed != zeroed_frames_ ||
	    zeroed_huge != zeroed_huge_frames_) {
		nb_env_log(NB_LOG_ERR,
			   "nb: seg %llx: free frames %llu (zeroed %llu, %llu in 2 MiB+ blocks), "
			   "lists hold %llu (%llu, %llu)\n",
			   (unsigned long long)base_, (unsigned long long)free_frames_,
			   (unsigned long long)zeroed_frames_, (unsigned long long)zeroed_huge_frames_,
			   (unsigned long long)frames, (unsigned long long)zeroed,
			   (unsigned long long)zeroed_huge);
		return false;
	}
	/* Tiling: every frame is covered by exactly one block; tails are zero; no two free
	 * buddies of the same order are left unmerged. */
	u64 idx = 0;
	while (idx < frames_) {
		u64 d = Load(idx);
		unsigned k = DescOrder(d);
		u64 pfn = base_ + idx;
		if (DescState(d) == FrameState::kTail || k > max_order_ ||
		    (pfn & ((1ull << k) - 1)) != 0 || idx + (1ull << k) > frames_ ||
		    (DescZeroed(d) && DescState(d) != FrameState::kFree)) {
			nb_env_log(NB_LOG_ERR, "nb: seg %llx: frame %llu heads no valid block\n",
				   (unsigned long long)base_, (unsigned long long)idx);
			return false;
		}
		for (u64 t = 1; t < (1ull << k); t++) {
			if (Load(idx + t) != 0) {
				nb_env_log(NB_LOG_ERR, "nb: seg %llx: tail %llu of block %llu not zero\n",
					   (unsigned long long)base_, (unsigned long long)(idx + t),
					   (unsigned long long)idx);
				return false;
			}
		}
		if (DescState(d) == FrameState::kFree && k < max_order_) {
			u64 b = pfn ^ (1ull << k);
			if (b >= base_ && b + (1ull << k) <= end()) {
				u64 bd = Load(b - base_);
				/* Allowed apart only as a zeroed/dirty pair (Coalesce). */
				if (DescState(bd) == FrameState::kFree && DescOrder(bd) == k &&
				    (DescZeroed(bd) == DescZeroed(d) || !mixed_)) {
					nb_env_log(NB_LOG_ERR, "nb: seg %llx: free buddies %llx/%llx order %u\n",
						   (unsigned long long)base_, (unsigned long long)pfn,
						   (unsigned long long)b, k);
					return false;
				}
			}
		}
		idx += 1ull << k;
	}
	return true;
}

} /* namespace nb */
