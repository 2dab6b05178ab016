// SPDX-License-Identifier: GPL-2.0
//
// paging_relocate.cpp - the table's own pages as frames that can move (compact.cpp).
//
// A table page is named by pfn in its parent's entry (or root_pfn_) and reached through
// nb_env_frame_addr only, and nothing outside the table holds its address: the kernel's page
// tables map the leaves' frames, never these. So moving one is a copy and one entry update,
// with the owner's lock held as for any table change.
#include "paging.h"

namespace nb {

namespace {
constexpr nb_u64 kTableFrame = 4096;
nb_u64 *Frame(nb_u64 pfn) { return static_cast<nb_u64 *>(nb_env_frame_addr(pfn)); }
bool IsTableEntry(nb_u64 e, unsigned level)
{
	return level > 1 && (e & PageTable::kPresent) && !(e & PageTable::kHuge);
}
} // namespace

void PageTable::ForEachTableIn(nb_u64 table_pfn, unsigned level, void (*fn)(void *, nb_u64),
			       void *arg) const
{
	fn(arg, table_pfn);
	const nb_u64 *t = Frame(table_pfn);
	for (unsigned i = 0; i < kEntries; i++)
		if (IsTableEntry(t[i], level))
			ForEachTableIn((t[i] & kAddrMask) >> 12, level - 1, fn, arg);
}

void PageTable::ForEachTablePage(void (*fn)(void *arg, nb_u64 pfn), void *arg) const
{
	if (root_pfn_ != kNoPfn)
		ForEachTableIn(root_pfn_, kLevels, fn, arg);
}

struct PageTable::TableMove {
	bool (*pick)(void *arg, nb_u64 pfn);
	void *arg;
	const nb_u64 *fresh;
	nb_u64 nr, used;
	nb_u64 *old;

	// The page to use instead of pfn, or pfn itself.
	nb_u64 Move(nb_u64 pfn)
	{
		if (used == nr || !pick(arg, pfn))
			return pfn;
		nb_u64 to = fresh[used];
		__builtin_memcpy(Frame(to), Frame(pfn), kTableFrame);
		old[used++] = pfn;
		return to;
	}
};

void PageTable::MoveTablesIn(nb_u64 table_pfn, unsigned level, TableMove &m)
{
	nb_u64 *t = Frame(table_pfn);
	for (unsigned i = 0; i < kEntries && m.used < m.nr; i++) {
		if (!IsTableEntry(t[i], level))
			continue;
		nb_u64 child = (t[i] & kAddrMask) >> 12, to = m.Move(child);
		if (to != child)
			t[i] = (t[i] & ~kAddrMask) | (to << 12);
		MoveTablesIn(to, level - 1, m);
	}
}

nb_u64 PageTable::MoveTablePages(bool (*pick)(void *arg, nb_u64 pfn), void *arg,
				 const nb_u64 *fresh, nb_u64 nr, nb_u64 *old)
{
	TableMove m{pick, arg, fresh, nr, 0, old};
	if (root_pfn_ == kNoPfn)
		return 0;
	root_pfn_ = m.Move(root_pfn_);
	MoveTablesIn(root_pfn_, kLevels, m);
	return m.used;
}

} // namespace nb
