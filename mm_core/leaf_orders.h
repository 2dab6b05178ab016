// SPDX-License-Identifier: GPL-2.0
//
// leaf_orders.h - the frame sizes a space maps: 4 KiB, 2 MiB and 1 GiB leaves (PTE, PMD,
// PUD), buddy orders 0, 9 and 18. Every order a space picks, falls back to, hands the shim or
// reports comes from here, so that a leaf is always a whole frame at an offset aligned to it.
#ifndef NB_LEAF_ORDERS_H
#define NB_LEAF_ORDERS_H

#include "base.h"
#include "nbc_space.h"

namespace nb {

constexpr unsigned kLeaf4K = 0;
constexpr unsigned kLeaf2M = 9;
constexpr unsigned kLeaf1G = 18;
// Largest first: the order a range tries first, then each fallback.
constexpr unsigned kLeafOrders[] = {kLeaf1G, kLeaf2M, kLeaf4K};
constexpr unsigned kHugeLeafOrders[] = {kLeaf1G, kLeaf2M};

constexpr u64 LeafBytes(unsigned order) { return NBC_FRAME_SIZE << order; }

// The largest leaf order <= order: for a pool's max order (which may be below 18, or even
// below 9) or the largest entry a VMA allows.
constexpr unsigned LeafAtMost(unsigned order)
{
	for (unsigned o : kLeafOrders)
		if (o <= order)
			return o;
	return kLeaf4K;
}

// The next leaf order down, when no frame of `order` is free: 18 -> 9 -> 0.
constexpr unsigned LeafBelow(unsigned order) { return order > kLeaf2M ? kLeaf2M : kLeaf4K; }

// Position of a leaf order in nbc_space_info.leaf_bytes[]: 0, 1, 2.
constexpr unsigned LeafIndex(unsigned order) { return order / kLeaf2M; }

// The range flags that ask for huge leaves of `order` (9 or 18): HUGE_1G asks for both.
constexpr u32 HugeFlagsFor(unsigned order)
{
	return order == kLeaf1G ? NBC_SPACE_HUGE_1G : NBC_SPACE_HUGE_2M | NBC_SPACE_HUGE_1G;
}

// The largest leaf order <= top that fits in `left` (> 0) frames.
constexpr unsigned FitOrder(u64 left, unsigned top)
{
	for (unsigned o : kLeafOrders)
		if (o <= top && (1ull << o) <= left)
			return o;
	return kLeaf4K;
}

// Blocks that `frames` decompose into with leaf orders <= top, largest first.
// 1 GiB + 6 MiB + 12 KiB = 262144 + 1536 + 3 frames: top 18 -> 1 + 3 + 3 = 7 blocks;
// top 9 -> 515 + 3 = 518 blocks; top 0 -> 263683 blocks.
constexpr u64 CountBlocks(u64 frames, unsigned top)
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
static_assert(CountBlocks(262144 + 1536 + 3, kLeaf1G) == 7);
static_assert(CountBlocks(262144 + 1536 + 3, kLeaf2M) == 518);

} // namespace nb

#endif // NB_LEAF_ORDERS_H
