// SPDX-License-Identifier: GPL-2.0
//
// table_stash.cpp - the spare table pages' free list.
#include "table_stash.h"

namespace nb {

int TableStash::Pop(u64 *pfn)
{
	if (!head_)
		return -NB_ENOMEM;
	*pfn = head_ - 1;
	head_ = *static_cast<u64 *>(nb_env_frame_addr(*pfn));
	count_--;
	return 0;
}

void TableStash::Push(u64 pfn)
{
	*static_cast<u64 *>(nb_env_frame_addr(pfn)) = head_;
	head_ = pfn + 1;
	count_++;
}

int TableStash::PopFor(void *stash, u64 *pfn) { return static_cast<TableStash *>(stash)->Pop(pfn); }

void TableStash::PushFor(void *stash, u64 pfn) { static_cast<TableStash *>(stash)->Push(pfn); }

} // namespace nb
