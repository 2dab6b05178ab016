// SPDX-License-Identifier: GPL-2.0
//
// table_stash.h - a space's spare page-table pages.
//
// PageTable allocates and frees table pages while the space's spinlock is held, where the
// core may not be called (an allocation may drain every per-CPU cache). So the space keeps a
// few spare pages here, taken from the core with the lock dropped before a map (the owner's
// FillStash) and given back beyond kMax after it (TrimStash). The free list is threaded
// through the spare pages themselves: the first u64 of each holds the next pfn + 1.
//
// Not thread-safe: the owner (nb::Space) serialises every call with its lock.
#ifndef NB_TABLE_STASH_H
#define NB_TABLE_STASH_H

#include "base.h"
#include "paging.h"

namespace nb {

class TableStash {
public:
	static constexpr u32 kMax = 8;  // spare pages kept between calls
	static constexpr u32 kLeaf = 3; // one leaf needs at most a level-3, -2 and -1 table

	constexpr TableStash() = default;
	TableStash(const TableStash &) = delete;
	TableStash &operator=(const TableStash &) = delete;

	// What the PageTable allocates from and frees to.
	PageTableAllocator Allocator() { return PageTableAllocator{PopFor, PushFor, this}; }
	// 0 and a spare page, or -ENOMEM when there is none (refill with the lock dropped).
	int Pop(u64 *pfn);
	void Push(u64 pfn);
	u32 count() const { return count_; }

private:
	static int PopFor(void *stash, u64 *pfn);
	static void PushFor(void *stash, u64 pfn);

	u64 head_ = 0; // pfn + 1 of the first spare page; 0: none
	u32 count_ = 0;
};

} // namespace nb

#endif // NB_TABLE_STASH_H
