/* SPDX-License-Identifier: GPL-2.0 */
/*
 * segment.h - the buddy allocator proper, over one run of at most 2^28 frames.
 *
 * A region is cut into segments at every 2^28-frame (1 TiB) boundary and at the 4 GiB line,
 * so a segment is wholly low or wholly high and its frame indices fit in 28 bits. Both cut
 * points are multiples of 2^NBC_ORDER_LIMIT frames, so no buddy block ever straddles a cut.
 *
 * Free-list state lives in one u64 descriptor per frame, in metadata memory: the allocator
 * never writes to a frame it manages (8 bytes per 4 KiB frame = 0.195% of the pool).
 *
 * Locking: a segment belongs to one Node; every method that changes state runs with that
 * node's lock held (the Node's methods carry the annotations). Descriptors of blocks parked in
 * a per-CPU cache change ALLOC <-> CACHED under the cache lock only, so every descriptor access
 * is a relaxed atomic, and frees claim a block with a compare-and-swap.
 */
#ifndef NB_SEGMENT_H
#define NB_SEGMENT_H

#include "base.h"
#include "nbc_core.h"

namespace nb {

/* What a descriptor says about its frame. Only the first frame of a block (its head) has a
 * nonzero descriptor; every other frame of the block reads kTail (all-zero). */
enum class FrameState : u64 {
	kTail = 0,   /* inside a block, not its head (or the all-zero state of fresh metadata) */
	kFree = 1,   /* head of a block on a free list */
	kAlloc = 2,  /* head of a block handed out */
	kCached = 3, /* head of a block parked in a per-CPU cache */
};

/*
 * Descriptor layout, one u64:
 *   bits  0..1   state (FrameState)
 *   bits  2..6   order
 *   bits  7..34  next free block of the same order (segment-local frame index)
 *   bits 35..62  prev free block
 *   bit  63      zeroed (kFree heads only): every frame of the free block is known to be zero
 * A link equal to the frame's own index means "none": a block never links to itself, so no
 * sentinel value is needed and indices can use all 28 bits.
 *
 * Pre-zeroing (nbc_core_prezero): each free list holds its zeroed blocks first and its dirty
 * ones after them, so a caller that wants zeroed memory pops the head, one that does not (a
 * copy target, a per-CPU refill) and the zeroer take the tail. Splitting a zeroed block gives
 * zeroed halves; a merge is zeroed only if both halves were; a block that was handed out comes
 * back dirty, whatever its owner did with it.
 */
struct FrameDesc {
	u64 bits;
};
static_assert(sizeof(FrameDesc) == 8, "metadata budget: 8 bytes per 4 KiB frame (0.195%)");

constexpr unsigned kIndexBits = 28;
constexpr u64 kSegmentMaxFrames = 1ull << kIndexBits;
constexpr u64 kIndexMask = kSegmentMaxFrames - 1;

constexpr u64 kDescZeroed = 1ull << 63;
/* Zeroed blocks of this order and above (2 MiB) are kept for requests of that size. */
constexpr unsigned kZeroedSplitFloor = 9;

constexpr u64 DescPack(FrameState s, unsigned order, u64 next, u64 prev, bool zeroed = false) {
	return static_cast<u64>(s) | (static_cast<u64>(order) << 2) | ((next & kIndexMask) << 7) |
	       ((prev & kIndexMask) << 35) | (zeroed ? kDescZeroed : 0);
}
constexpr FrameState DescState(u64 d) { return static_cast<FrameState>(d & 3); }
constexpr unsigned DescOrder(u64 d) { return static_cast<unsigned>((d >> 2) & 31); }
constexpr u32 DescNext(u64 d) { return static_cast<u32>((d >> 7) & kIndexMask); }
constexpr u32 DescPrev(u64 d) { return static_cast<u32>((d >> 35) & kIndexMask); }
constexpr bool DescZeroed(u64 d) { return (d & kDescZeroed) != 0; }

class Segment {
public:
	/* On zeroed memory; `desc` holds nr_frames zeroed descriptors. */
	void Init(u64 base_pfn, u64 nr_frames, int node, FrameDesc *desc, unsigned max_order);
	/* Put every frame on the free lists as the largest aligned blocks that fit. */
	void AddAllFree();

	u64 base() const { return base_; }
	u64 end() const { return base_ + frames_; }
	u64 frames() const { return frames_; }
	int node() const { return node_; }
	bool low() const { return base_ < NBC_LOW_LIMIT_PFN; }
	bool Contains(u64 pfn) const { return pfn >= base_ && pfn < base_ + frames_; }
	FrameDesc *desc() const { return desc_; }

	/* Node lock held for everything below. */
	bool CanServe(unsigned order) const { return (mask_ >> order) != 0; }
	/* Take a free block of exactly `order`, splitting a larger one; its head becomes `as`.
	 * A dirty block first (the tail of the smallest list that can serve); *zeroed (may be
	 * null) says whether the block taken is known zero. */
	bool Alloc(unsigned order, FrameState as, u64 *pfn, bool *zeroed = nullptr);
	/* Take a zeroed free block of `order` (the head of any list from `order` up that has
	 * one, split; below 2 MiB only from lists below 2 MiB); false, and no change, when none
	 * is zeroed. */
	bool AllocZeroed(unsigned order, FrameState as, u64 *pfn);
	/* Return a block whose head is in state `expect` with `order`; -EINVAL (and no change) if
	 * the descriptor says otherwise. Coalesces with free buddies. `zeroed`: the caller
	 * zeroed every frame itself (the prezeroer), never for memory that was handed out. */
	int Free(u64 pfn, unsigned order, FrameState expect, bool zeroed = false);
	/* Merge every pair of free buddies left apart because one was zeroed and the other not
	 * (the result is dirty); true if any merged. The allocation path calls it before
	 * failing, so kept-apart halves never make a larger block unavailable. */
	bool MergeMixed();
	/* The prezeroer: take a dirty free block of at most `cap` (a larger dirty block is split,
	 * its other pieces stay dirty and free) as kAlloc; its order, or -1 if nothing is dirty. */
	int TakeDirty(unsigned cap, u64 *pfn);
	/* Only check, do not free (for multi-block frees that must be all-or-nothing). */
	bool IsHead(u64 pfn, unsigned order, FrameState expect) const;

	/* Turn the head of an allocated block of order `from` into heads of the binary pieces of
	 * [pfn, pfn + nr) (all kAlloc) and return the rest of the block to the free lists. */
	void TrimAlloc(u64 pfn, unsigned from, u64 nr, bool zeroed = false);

	/* Compaction (compact.cpp): take the free block whose head is pfn off its list as an
	 * allocated block; its order, or -1 if pfn is not the head of a free block. */
	int TakeFree(u64 pfn);
	/* The descriptor of frame pfn (which must lie in the segment). */
	u64 DescAt(u64 pfn) const { return Load(pfn - base_); }

	/* Per-CPU cache transitions, by the cache's owner (not under the node lock). */
	bool ClaimCached(u64 pfn, unsigned order) /* kAlloc -> kCached, CAS; pfn in here */
	{
		if ((pfn & ((1ull << order) - 1)) != 0 || pfn + (1ull << order) > end())
			return false;
		return AtomicCas(&desc_[pfn - base_].bits, DescPack(FrameState::kAlloc, order, 0, 0),
				 DescPack(FrameState::kCached, order, 0, 0));
	}
	void MarkAlloc(u64 pfn, unsigned order) /* kCached -> kAlloc, the cache owns it */
	{
		Store(pfn - base_, DescPack(FrameState::kAlloc, order, 0, 0));
	}

	u64 free_frames() const { return free_frames_; }
	/* Frames of zeroed free blocks; also read without the node lock (a relaxed count). */
	u64 zeroed_frames() const { return AtomicLoad(&zeroed_frames_); }
	/* Of those, the frames of zeroed blocks of kZeroedSplitFloor (2 MiB) or more: what a
	 * huge request can take without a memset (small zeroed pieces count above only). */
	u64 zeroed_huge_frames() const { return AtomicLoad(&zeroed_huge_frames_); }
	u64 free_blocks(unsigned order) const { return free_blocks_[order]; }
	unsigned max_order() const { return max_order_; }
	/* Largest order with a free block, or -1. */
	int LargestFree() const { return mask_ == 0 ? -1 : static_cast<int>(Log2Floor(mask_)); }

	/* Walk lists and descriptors; returns false and logs on the first inconsistency. */
	bool Check() const;

private:
	u64 Load(u64 idx) const { return AtomicLoad(&desc_[idx].bits); }
	void Store(u64 idx, u64 v) { AtomicStore(&desc_[idx].bits, v); }
	/* Zeroed blocks go to the head of their list, dirty ones to its tail. */
	void PushFree(u64 idx, unsigned order, bool zeroed);
	void RemoveFree(u64 idx, unsigned order);
	/* Split the block at idx (off its list) down to `order`; the upper halves go back free
	 * with the block's zeroed state; the head becomes `as`. */
	void SplitTake(u64 idx, unsigned k, unsigned order, FrameState as, bool zeroed);
	/* Push the free block (pfn, k), merged with free buddies of the same zeroed state (of
	 * any, when `force`). */
	void Coalesce(u64 pfn, unsigned k, bool zeroed, bool force);
	/* A zeroed free block of `order` listed (+1) or unlisted (-1). */
	void CountZeroed(unsigned order, int sign)
	{
		u64 d = static_cast<u64>(static_cast<i64>(sign) << order);
		AtomicStore(&zeroed_frames_, zeroed_frames_ + d);
		if (order >= kZeroedSplitFloor)
			AtomicStore(&zeroed_huge_frames_, zeroed_huge_frames_ + d);
	}
	/* Largest order a block at idx may have: alignment, segment end, max_order. */
	unsigned FitOrder(u64 idx, u64 limit) const;

	u64 base_;
	u64 frames_;
	FrameDesc *desc_;
	int node_;
	unsigned max_order_;
	u32 mask_;                                 /* bit k: free_blocks_[k] != 0 */
	u32 head_[NBC_ORDER_LIMIT + 1];             /* valid when the mask bit is set */
	u32 tail_[NBC_ORDER_LIMIT + 1];             /* likewise: the last block of the list */
	u64 free_blocks_[NBC_ORDER_LIMIT + 1];
	u64 free_frames_;
	u64 zeroed_frames_; /* written under the node lock; relaxed atomic */
	u64 zeroed_huge_frames_; /* likewise */
	bool mixed_;        /* a zeroed and a dirty free buddy may be left apart */
};

// The index of the segment holding pfn among n segments sorted by base and not overlapping,
// where at(i) is the i-th (a Segment *), or -1: one binary search for the core's index over
// all nodes, a node's own segments and the compactor's table.
template <typename At> i64 FindSegmentIndex(u32 n, u64 pfn, At at)
{
	u32 lo = 0, hi = n;
	while (lo < hi) {
		u32 mid = (lo + hi) / 2;
		Segment *s = at(mid);
		if (pfn < s->base())
			hi = mid;
		else if (pfn >= s->end())
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

template <typename At> Segment *FindSegment(u32 n, u64 pfn, At at)
{
	i64 i = FindSegmentIndex(n, pfn, at);
	return i < 0 ? nullptr : at(static_cast<u32>(i));
}

} /* namespace nb */

#endif /* NB_SEGMENT_H */
