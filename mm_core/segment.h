/* SPDX-License-Identifier: GPL-2.0 */
/*
 * segment.h - the buddy allocator proper, over one run of at most 2^28 frames.
 *
 * A region is cut into segments at every 2^28-frame (1 TiB) boundary and at the 4 GiB line,
 * so a segment is wholly low or wholly high and its frame indices fit in 28 bits. Both cut
 * points are multiples of 2^NB_ORDER_LIMIT frames, so no buddy block ever straddles a cut.
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
#include "nb_core.h"

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
 * A link equal to the frame's own index means "none": a block never links to itself, so no
 * sentinel value is needed and indices can use all 28 bits.
 */
struct FrameDesc {
	u64 bits;
};
static_assert(sizeof(FrameDesc) == 8, "metadata budget: 8 bytes per 4 KiB frame (0.195%)");

constexpr unsigned kIndexBits = 28;
constexpr u64 kSegmentMaxFrames = 1ull << kIndexBits;
constexpr u64 kIndexMask = kSegmentMaxFrames - 1;

constexpr u64 DescPack(FrameState s, unsigned order, u64 next, u64 prev) {
	return static_cast<u64>(s) | (static_cast<u64>(order) << 2) | ((next & kIndexMask) << 7) |
	       ((prev & kIndexMask) << 35);
}
constexpr FrameState DescState(u64 d) { return static_cast<FrameState>(d & 3); }
constexpr unsigned DescOrder(u64 d) { return static_cast<unsigned>((d >> 2) & 31); }
constexpr u32 DescNext(u64 d) { return static_cast<u32>((d >> 7) & kIndexMask); }
constexpr u32 DescPrev(u64 d) { return static_cast<u32>((d >> 35) & kIndexMask); }

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
	bool low() const { return base_ < NB_LOW_LIMIT_PFN; }
	bool Contains(u64 pfn) const { return pfn >= base_ && pfn < base_ + frames_; }
	FrameDesc *desc() const { return desc_; }

	/* Node lock held for everything below. */
	bool CanServe(unsigned order) const { return (mask_ >> order) != 0; }
	/* Take a free block of exactly `order`, splitting a larger one; its head becomes `as`. */
	bool Alloc(unsigned order, FrameState as, u64 *pfn);
	/* Return a block whose head is in state `expect` with `order`; -EINVAL (and no change) if
	 * the descriptor says otherwise. Coalesces with free buddies. */
	int Free(u64 pfn, unsigned order, FrameState expect);
	/* Only check, do not free (for multi-block frees that must be all-or-nothing). */
	bool IsHead(u64 pfn, unsigned order, FrameState expect) const;

	/* Turn the head of an allocated block of order `from` into heads of the binary pieces of
	 * [pfn, pfn + nr) (all kAlloc) and return the rest of the block to the free lists. */
	void TrimAlloc(u64 pfn, unsigned from, u64 nr);

	/* Per-CPU cache transitions, cache lock held (not the node lock). */
	bool ClaimCached(u64 pfn, unsigned order);  /* kAlloc -> kCached, CAS */
	void MarkAlloc(u64 pfn, unsigned order);     /* kCached -> kAlloc, cache owns it */

	u64 free_frames() const { return free_frames_; }
	u64 free_blocks(unsigned order) const { return free_blocks_[order]; }
	unsigned max_order() const { return max_order_; }
	/* Largest order with a free block, or -1. */
	int LargestFree() const { return mask_ == 0 ? -1 : static_cast<int>(Log2Floor(mask_)); }

	/* Walk lists and descriptors; returns false and logs on the first inconsistency. */
	bool Check() const;

private:
	u64 Load(u64 idx) const { return AtomicLoad(&desc_[idx].bits); }
	void Store(u64 idx, u64 v) { AtomicStore(&desc_[idx].bits, v); }
	void PushFree(u64 idx, unsigned order);
	void RemoveFree(u64 idx, unsigned order);
	/* Largest order a block at idx may have: alignment, segment end, max_order. */
	unsigned FitOrder(u64 idx, u64 limit) const;

	u64 base_;
	u64 frames_;
	FrameDesc *desc_;
	int node_;
	unsigned max_order_;
	u32 mask_;                                 /* bit k: free_blocks_[k] != 0 */
	u32 head_[NB_ORDER_LIMIT + 1];             /* valid when the mask bit is set */
	u64 free_blocks_[NB_ORDER_LIMIT + 1];
	u64 free_frames_;
};

// The segment holding pfn among n segments sorted by base and not overlapping, where at(i)
// is the i-th (a Segment *), or nullptr: one binary search for the core's index over all
// nodes and for a node's own segments.
template <typename At> Segment *FindSegment(u32 n, u64 pfn, At at)
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
			return s;
	}
	return nullptr;
}

} /* namespace nb */

#endif /* NB_SEGMENT_H */
