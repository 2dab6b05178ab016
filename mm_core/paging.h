// SPDX-License-Identifier: GPL-2.0
//
// paging.h - a software page table in the x86-64 4-level layout (the guide's paging_adv).
//
// One PageTable maps one open file's offset space (48 bits, "virtual" below) to pool frames.
// It is the record of what every user fault of that file gets; the kernel's own page tables
// are filled from it by the shim. The layout is the hardware's so that a leaf's size, flags
// and frame read the same way a PTE/PMD/PUD does, and so the index math can be checked
// against any x86 walker:
//
//   level 4 (root, "PML4")  index = virt[47:39]   entry -> level-3 table
//   level 3 ("PDPT")        index = virt[38:30]   entry -> level-2 table, or a 1 GiB leaf (PS)
//   level 2 ("PD")          index = virt[29:21]   entry -> level-1 table, or a 2 MiB leaf (PS)
//   level 1 ("PT")          index = virt[20:12]   entry =  4 KiB leaf
//
// Worked example: virt 0x4_0060_3000 (16 GiB + 6 MiB + 12 KiB)
//   L4 index = 0x400603000 >> 39         = 0
//   L3 index = (0x400603000 >> 30) & 511 = 16   (the 17th GiB)
//   L2 index = (0x400603000 >> 21) & 511 = 3    (6 MiB into that GiB)
//   L1 index = (0x400603000 >> 12) & 511 = 3    (12 KiB into that 2 MiB)
//
// An entry is a u64: bit 0 present, bit 1 writable, bit 7 PS (huge leaf, levels 2 and 3),
// bits 12..51 the frame number shifted by 12 -- for a table entry the frame that holds the
// next-level table, exactly as on hardware. That is why table pages are pool frames named by
// pfn (not heap pointers): a kernel pointer does not fit in bits 12..51, a frame number does,
// and nb_env_frame_addr() is the direct map that turns it back into memory.
//
// Not thread-safe: the owner (nb::Space) serialises every call with its lock. Nothing here
// sleeps; table pages come from the caller-supplied allocator, which must be atomic-safe.
#ifndef NB_PAGING_H
#define NB_PAGING_H

#include "env.h"

// The guide's flag spelling. PAGE_HUGE_2MB is accepted on input and otherwise ignored: the
// leaf level decides PS, so a flag that disagrees with the order cannot corrupt the table.
#define PAGE_PRESENT (1ull << 0)
#define PAGE_WRITABLE (1ull << 1)
#define PAGE_HUGE_2MB (1ull << 7)

namespace nb {

// Where table pages come from: one zero-able 4 KiB frame per call, reachable through
// nb_env_frame_addr(pfn). The table zeroes it itself. Called with the owner's lock held, so
// alloc_page must not sleep.
struct PageTableAllocator {
	int (*alloc_page)(void *arg, nb_u64 *pfn_out); // 0, or -NB_ENOMEM
	void (*free_page)(void *arg, nb_u64 pfn);
	void *arg;
};

class PageTable {
public:
	static constexpr unsigned kLevels = 4;
	static constexpr unsigned kEntries = 512;
	static constexpr unsigned kVirtBits = 48;
	static constexpr nb_u64 kVirtLimit = 1ull << kVirtBits;
	static constexpr nb_u64 kPfnLimit = 1ull << (52 - 12); // bits 12..51
	static constexpr nb_u64 kPresent = PAGE_PRESENT;
	static constexpr nb_u64 kWritable = PAGE_WRITABLE;
	static constexpr nb_u64 kHuge = PAGE_HUGE_2MB; // PS, bit 7
	static constexpr nb_u64 kAddrMask = ((1ull << 52) - 1) & ~0xfffull;
	static constexpr nb_u64 kPermMask = kWritable; // what protect() may change

	// One leaf as the walker sees it: it starts at `virt`, covers 2^order frames from `pfn`.
	struct Leaf {
		nb_u64 virt;
		nb_u64 pfn;
		unsigned order; // 0, 9 or 18
		nb_u64 flags;   // PAGE_PRESENT | PAGE_WRITABLE (| PAGE_HUGE_2MB for order 9 and 18)
	};
	// Called per leaf in address order; a nonzero return stops the walk and is returned.
	using WalkFn = int (*)(void *arg, const Leaf &leaf);

	constexpr PageTable() = default;
	PageTable(const PageTable &) = delete;
	PageTable &operator=(const PageTable &) = delete;
	~PageTable() { NB_ASSERT(root_pfn_ == kNoPfn); }

	// Allocates the root table. 0 or -NB_ENOMEM.
	int Init(const PageTableAllocator &alloc);
	// Frees every table page, root included. Frames the leaves point at are the caller's.
	void Teardown();

	// The guide's paging_map_adv(virt, phys, flags, order): map 2^order frames from pfn at
	// virt. Orders 0/9/18 with matching alignment become one leaf; any other order is
	// decomposed into the largest leaves that virt and pfn alignment allow.
	int Map(nb_u64 virt, nb_u64 pfn, nb_u64 flags, unsigned order);
	// Map nr_frames contiguous frames (any count) the same way. The whole range must be
	// unmapped (-NB_EEXIST otherwise, nothing changed); -NB_ENOMEM undoes the partial work.
	int MapRange(nb_u64 virt, nb_u64 pfn, nb_u64 nr_frames, nb_u64 flags);
	// The guide's paging_unmap_adv over [virt, virt+len): a huge leaf straddling either end
	// is split first. Splitting needs table pages: -NB_ENOMEM then, with nothing unmapped.
	// Empty tables are freed. Unmapping holes is not an error.
	int Unmap(nb_u64 virt, nb_u64 len);
	// Set the permission bits (PAGE_WRITABLE) of every leaf in the range; splits like Unmap.
	int Protect(nb_u64 virt, nb_u64 len, nb_u64 flags);
	// Point the leaves of [virt, virt+len) at new_pfn.. without changing their shapes (after a
	// migration copied the frames). Needs no memory, so it cannot fail halfway: -NB_EINVAL if
	// a leaf straddles the range or the new frames are not aligned for it, -NB_ENOENT if a
	// page of the range is unmapped; nothing changed in either case.
	int Remap(nb_u64 virt, nb_u64 len, nb_u64 new_pfn);
	// Replace 512 contiguous, equally-flagged leaves of one table by one leaf of the next
	// size, where the range holds such tables: the reverse of a split. Frees the tables.
	void Merge(nb_u64 virt, nb_u64 len);

	// The leaf that maps virt: 0, or -NB_ENOENT if unmapped.
	int Lookup(nb_u64 virt, Leaf *out) const;
	// A fault's one descent: Lookup, and when virt is unmapped, *empty_level = the level
	// (1..4) whose entry for virt was empty, so the aligned 2^Shift(level) bytes around virt
	// map nothing (a table is freed when its last leaf goes, so a present table entry never
	// stands for an empty subtree) and a leaf at level L <= *empty_level needs
	// *empty_level - L new tables. 0 when virt is mapped.
	int Probe(nb_u64 virt, Leaf *out, unsigned *empty_level) const;
	// The emptiness check and the map of a first touch in one descent: one leaf of 2^order
	// frames (order 0, 9 or 18; virt and pfn aligned to it) at virt, if nothing maps any of
	// its bytes. 0 and *out the new leaf; -NB_EEXIST if something does, -NB_ENOMEM without
	// table pages; nothing changed on error.
	int MapIfEmpty(nb_u64 virt, nb_u64 pfn, nb_u64 flags, unsigned order, Leaf *out);
	// Every leaf intersecting [virt, virt+len), whole, in address order.
	int Walk(nb_u64 virt, nb_u64 len, WalkFn fn, void *arg) const;
	// The first leaf intersecting [virt, virt+len): 0, or -NB_ENOENT if there is none.
	int FirstLeaf(nb_u64 virt, nb_u64 len, Leaf *out) const;
	bool IsEmpty(nb_u64 virt, nb_u64 len) const { return FirstLeaf(virt, len, nullptr) != 0; }

	nb_u64 table_pages() const { return table_pages_; }

	// paging_relocate.cpp: table pages are the table's own, so they can move (compaction):
	// fn(arg, pfn) for every table page, root first; and the move of the ones `pick`
	// selects into the frames of `fresh` (at most nr of them, each already allocated), every
	// moved page's entries copied and its parent (or the root) repointed. Returns how many
	// of `fresh` it used; the old pages are written to `old` in the same order.
	void ForEachTablePage(void (*fn)(void *arg, nb_u64 pfn), void *arg) const;
	nb_u64 MoveTablePages(bool (*pick)(void *arg, nb_u64 pfn), void *arg, const nb_u64 *fresh,
			      nb_u64 nr, nb_u64 *old);
	// Leaves currently present at a size: order 0, 9 or 18.
	nb_u64 leaves(unsigned order) const;

	// Index of virt in a table at `level` (1..4): see the worked example above.
	static constexpr unsigned Index(nb_u64 virt, unsigned level)
	{
		return (unsigned)(virt >> Shift(level)) & (kEntries - 1);
	}
	// log2 of the bytes one entry at `level` covers: 12, 21, 30, 39.
	static constexpr unsigned Shift(unsigned level) { return 12 + 9 * (level - 1); }

private:
	static constexpr nb_u64 kNoPfn = ~0ull;
	struct Visitor;

	nb_u64 *TableOf(nb_u64 entry) const;
	int AllocTable(nb_u64 *pfn_out);
	void FreeTable(nb_u64 pfn);
	int MapLeaf(nb_u64 virt, nb_u64 pfn, unsigned level, nb_u64 flags);
	int SplitAt(nb_u64 virt);
	int SplitEnds(nb_u64 virt, nb_u64 len);
	int SplitEntry(nb_u64 *entry, unsigned level);
	int VisitLevel(nb_u64 *table, unsigned level, nb_u64 base, nb_u64 start, nb_u64 end,
		       Visitor &v) const;
	void UnmapLevel(nb_u64 *table, unsigned level, nb_u64 base, nb_u64 start, nb_u64 end);
	void MergeLevel(nb_u64 *table, unsigned level, nb_u64 base, nb_u64 start, nb_u64 end);
	void FreeLevel(nb_u64 table_pfn, unsigned level);
	static bool RangeOk(nb_u64 virt, nb_u64 len);
	void ForEachTableIn(nb_u64 table_pfn, unsigned level, void (*fn)(void *, nb_u64),
			    void *arg) const;
	struct TableMove;
	void MoveTablesIn(nb_u64 table_pfn, unsigned level, TableMove &m);

	PageTableAllocator alloc_ = {};
	nb_u64 root_pfn_ = kNoPfn;
	nb_u64 table_pages_ = 0;
	nb_u64 leaves_[kLevels] = {}; // by level - 1: 4 KiB, 2 MiB, 1 GiB (level 4 never holds one)
};

} // namespace nb

#endif // NB_PAGING_H
