// SPDX-License-Identifier: GPL-2.0
//
// paging.cpp - the software x86-64 page table; see paging.h for the layout and index math.
#include "paging.h"

namespace nb {

namespace {

constexpr nb_u64 kFrameSize = 4096;

constexpr nb_u64 Bytes(unsigned level) { return 1ull << PageTable::Shift(level); }
// Index, in a level-`level` table covering [base, base + 512 * Bytes(level)), of the entry
// that holds address a: the range walkers visit EntryIndex(start) .. EntryIndex(end - 1).
constexpr unsigned EntryIndex(unsigned level, nb_u64 base, nb_u64 a)
{
	return (unsigned)((a - base) >> PageTable::Shift(level));
}
constexpr nb_u64 FramesPerEntry(unsigned level) { return 1ull << (9 * (level - 1)); }
constexpr nb_u64 PfnOf(nb_u64 e) { return (e & PageTable::kAddrMask) >> 12; }
constexpr bool IsPresent(nb_u64 e) { return (e & PageTable::kPresent) != 0; }
// A level-1 entry is always a leaf; above, PS says so. Level 4 never holds a leaf.
constexpr bool IsLeaf(nb_u64 e, unsigned level)
{
	return level == 1 || (level <= 3 && (e & PageTable::kHuge));
}
constexpr nb_u64 Min(nb_u64 a, nb_u64 b) { return a < b ? a : b; }
constexpr nb_u64 Max(nb_u64 a, nb_u64 b) { return a > b ? a : b; }

nb_u64 MakeLeaf(nb_u64 pfn, nb_u64 flags, unsigned level)
{
	nb_u64 e = (pfn << 12) | PageTable::kPresent | (flags & PageTable::kPermMask);
	return level > 1 ? e | PageTable::kHuge : e;
}

// Intermediate entries are always present+writable, as Linux builds them: permissions live
// in the leaves only, so a protect() never has to touch a table entry.
nb_u64 MakeTableEntry(nb_u64 table_pfn)
{
	return (table_pfn << 12) | PageTable::kPresent | PageTable::kWritable;
}

PageTable::Leaf LeafOf(nb_u64 e, unsigned level, nb_u64 virt)
{
	return PageTable::Leaf{virt, PfnOf(e), 9 * (level - 1),
			       e & (PageTable::kPresent | PageTable::kWritable | PageTable::kHuge)};
}

bool TableEmpty(const nb_u64 *t)
{
	for (unsigned i = 0; i < PageTable::kEntries; i++)
		if (t[i])
			return false;
	return true;
}

} // namespace

// A leaf visitor: the walk hands it the entry itself so mutating passes (protect, remap)
// share the traversal with the read-only ones.
struct PageTable::Visitor {
	int (*fn)(Visitor &v, nb_u64 *entry, const Leaf &leaf);
	void *arg;
	WalkFn walk_fn;
	nb_u64 u0, u1, u2, u3;
};

nb_u64 *PageTable::TableOf(nb_u64 entry) const
{
	return static_cast<nb_u64 *>(nb_env_frame_addr(PfnOf(entry)));
}

int PageTable::AllocTable(nb_u64 *pfn_out)
{
	int rc = alloc_.alloc_page(alloc_.arg, pfn_out);
	if (rc)
		return rc;
	__builtin_memset(nb_env_frame_addr(*pfn_out), 0, kFrameSize);
	table_pages_++;
	return 0;
}

void PageTable::FreeTable(nb_u64 pfn)
{
	NB_ASSERT(table_pages_ > 0);
	table_pages_--;
	alloc_.free_page(alloc_.arg, pfn);
}

bool PageTable::RangeOk(nb_u64 virt, nb_u64 len)
{
	return len && !(virt % kFrameSize) && !(len % kFrameSize) && virt < kVirtLimit &&
	       len <= kVirtLimit - virt;
}

nb_u64 PageTable::leaves(unsigned order) const
{
	return order % 9 || order > 18 ? 0 : leaves_[order / 9];
}

int PageTable::Init(const PageTableAllocator &alloc)
{
	NB_ASSERT(root_pfn_ == kNoPfn);
	alloc_ = alloc;
	nb_u64 pfn;
	int rc = AllocTable(&pfn);
	if (rc)
		return rc;
	root_pfn_ = pfn;
	return 0;
}

void PageTable::FreeLevel(nb_u64 table_pfn, unsigned level)
{
	nb_u64 *t = static_cast<nb_u64 *>(nb_env_frame_addr(table_pfn));
	for (unsigned i = 0; level > 1 && i < kEntries; i++)
		if (IsPresent(t[i]) && !IsLeaf(t[i], level))
			FreeLevel(PfnOf(t[i]), level - 1);
	FreeTable(table_pfn);
}

void PageTable::Teardown()
{
	if (root_pfn_ == kNoPfn)
		return;
	FreeLevel(root_pfn_, kLevels);
	root_pfn_ = kNoPfn;
	for (nb_u64 &n : leaves_)
		n = 0;
	NB_ASSERT(table_pages_ == 0);
}

// Installs one leaf at `level`, creating the tables above it. The caller checked the slot is
// empty, so meeting a leaf on the way down is a broken invariant, not a user error.
int PageTable::MapLeaf(nb_u64 virt, nb_u64 pfn, unsigned level, nb_u64 flags)
{
	nb_u64 *t = static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_));
	for (unsigned l = kLevels; l > level; l--) {
		nb_u64 *e = &t[Index(virt, l)];
		if (!IsPresent(*e)) {
			nb_u64 tpfn;
			int rc = AllocTable(&tpfn);
			if (rc)
				return rc;
			*e = MakeTableEntry(tpfn);
		} else if (IsLeaf(*e, l)) {
			NB_ASSERT(!"MapLeaf over a huge leaf");
			return -NB_EEXIST;
		}
		t = TableOf(*e);
	}
	nb_u64 *e = &t[Index(virt, level)];
	NB_ASSERT(*e == 0);
	*e = MakeLeaf(pfn, flags, level);
	leaves_[level - 1]++;
	return 0;
}

int PageTable::Map(nb_u64 virt, nb_u64 pfn, nb_u64 flags, unsigned order)
{
	if (order > 36)
		return -NB_EINVAL;
	return MapRange(virt, pfn, 1ull << order, flags);
}

// Largest leaf first. Example: 1 GiB + 6 MiB + 12 KiB at virt 0 from pfn 0x40000 (1 GiB
// aligned) becomes one 1 GiB leaf, three 2 MiB leaves and three 4 KiB leaves. A leaf size is
// usable only where virt AND the frame address are aligned to it and enough remains; with
// virt 2 MiB-aligned but pfn only 4 KiB-aligned, every leaf is 4 KiB.
int PageTable::MapRange(nb_u64 virt, nb_u64 pfn, nb_u64 nr_frames, nb_u64 flags)
{
	if (root_pfn_ == kNoPfn || !nr_frames || nr_frames > kVirtLimit / kFrameSize ||
	    pfn >= kPfnLimit || nr_frames > kPfnLimit - pfn)
		return -NB_EINVAL;
	nb_u64 len = nr_frames * kFrameSize;
	if (!RangeOk(virt, len))
		return -NB_EINVAL;
	if (!IsEmpty(virt, len))
		return -NB_EEXIST;
	nb_u64 done = 0;
	while (done < len) {
		nb_u64 v = virt + done, p = pfn + done / kFrameSize;
		unsigned level = 3;
		while (level > 1 && ((v | (p << 12)) % Bytes(level) || len - done < Bytes(level)))
			level--;
		int rc = MapLeaf(v, p, level, flags);
		if (rc) {
			// Undo the whole leaves installed so far (no split needed) and free the
			// tables the failed leaf had already created on its way down.
			UnmapLevel(static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_)), kLevels, 0,
				   virt, v + Bytes(level));
			return rc;
		}
		done += Bytes(level);
	}
	return 0;
}

// Turns the huge leaf *entry at `level` into a table of 512 leaves one size down that map the
// same frames with the same flags. Translation is unchanged, so failing here is harmless.
int PageTable::SplitEntry(nb_u64 *entry, unsigned level)
{
	nb_u64 tpfn;
	int rc = AllocTable(&tpfn);
	if (rc)
		return rc;
	nb_u64 *child = static_cast<nb_u64 *>(nb_env_frame_addr(tpfn));
	nb_u64 pfn = PfnOf(*entry);
	for (unsigned i = 0; i < kEntries; i++)
		child[i] = MakeLeaf(pfn + i * FramesPerEntry(level - 1), *entry, level - 1);
	*entry = MakeTableEntry(tpfn);
	leaves_[level - 1]--;
	leaves_[level - 2] += kEntries;
	return 0;
}

// Makes `virt` a leaf boundary: no leaf may start before it and end after it. Example: for
// virt = 1 GiB + 2 MiB + 4 KiB inside a 1 GiB leaf, the 1 GiB leaf is split into 512 2 MiB
// leaves, then the 2 MiB leaf at 1 GiB + 2 MiB into 512 4 KiB leaves: two table pages.
int PageTable::SplitAt(nb_u64 virt)
{
	if (!virt || virt >= kVirtLimit)
		return 0;
	nb_u64 *t = static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_));
	for (unsigned l = kLevels; l > 1; l--) {
		nb_u64 *e = &t[Index(virt, l)];
		if (!IsPresent(*e))
			return 0;
		if (IsLeaf(*e, l)) {
			if (virt % Bytes(l) == 0)
				return 0;
			int rc = SplitEntry(e, l);
			if (rc)
				return rc;
		}
		t = TableOf(*e);
	}
	return 0;
}

int PageTable::VisitLevel(nb_u64 *t, unsigned level, nb_u64 base, nb_u64 start, nb_u64 end,
			  Visitor &v) const
{
	const unsigned last = EntryIndex(level, base, end - 1);
	for (unsigned i = EntryIndex(level, base, start); i <= last; i++) {
		nb_u64 ebase = base + i * Bytes(level);
		if (!IsPresent(t[i]))
			continue;
		int rc;
		if (IsLeaf(t[i], level))
			rc = v.fn(v, &t[i], LeafOf(t[i], level, ebase));
		else
			rc = VisitLevel(TableOf(t[i]), level - 1, ebase, Max(start, ebase),
					Min(end, ebase + Bytes(level)), v);
		if (rc)
			return rc;
	}
	return 0;
}

void PageTable::UnmapLevel(nb_u64 *t, unsigned level, nb_u64 base, nb_u64 start, nb_u64 end)
{
	const unsigned last = EntryIndex(level, base, end - 1);
	for (unsigned i = EntryIndex(level, base, start); i <= last; i++) {
		nb_u64 ebase = base + i * Bytes(level);
		if (!IsPresent(t[i]))
			continue;
		if (IsLeaf(t[i], level)) {
			// SplitAt() made both ends leaf boundaries.
			NB_ASSERT(ebase >= start && ebase + Bytes(level) <= end);
			t[i] = 0;
			leaves_[level - 1]--;
			continue;
		}
		nb_u64 *child = TableOf(t[i]);
		UnmapLevel(child, level - 1, ebase, Max(start, ebase), Min(end, ebase + Bytes(level)));
		if (TableEmpty(child)) {
			nb_u64 pfn = PfnOf(t[i]);
			t[i] = 0;
			FreeTable(pfn);
		}
	}
}

// Split the leaves straddling both ends of a range before changing anything inside it: a
// failed split then leaves the table as it was, not a range half unmapped or half protected.
int PageTable::SplitEnds(nb_u64 virt, nb_u64 len)
{
	int rc = SplitAt(virt);
	return rc ? rc : SplitAt(virt + len);
}

int PageTable::Unmap(nb_u64 virt, nb_u64 len)
{
	if (root_pfn_ == kNoPfn || !RangeOk(virt, len))
		return -NB_EINVAL;
	int rc = SplitEnds(virt, len);
	if (rc)
		return rc;
	UnmapLevel(static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_)), kLevels, 0, virt,
		   virt + len);
	return 0;
}

int PageTable::Protect(nb_u64 virt, nb_u64 len, nb_u64 flags)
{
	if (root_pfn_ == kNoPfn || !RangeOk(virt, len))
		return -NB_EINVAL;
	int rc = SplitEnds(virt, len);
	if (rc)
		return rc;
	Visitor v{};
	v.u0 = flags & kPermMask;
	v.fn = [](Visitor &self, nb_u64 *e, const Leaf &) {
		*e = (*e & ~kPermMask) | self.u0;
		return 0;
	};
	return VisitLevel(static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_)), kLevels, 0, virt,
			  virt + len, v);
}

int PageTable::Remap(nb_u64 virt, nb_u64 len, nb_u64 new_pfn)
{
	if (root_pfn_ == kNoPfn || !RangeOk(virt, len) || new_pfn >= kPfnLimit ||
	    len / kFrameSize > kPfnLimit - new_pfn)
		return -NB_EINVAL;
	nb_u64 *root = static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_));
	// Pass 1 checks every leaf, pass 2 rewrites: the table never holds a half-remapped range.
	Visitor check{};
	check.u0 = virt;
	check.u1 = virt + len;
	check.u2 = new_pfn;
	check.u3 = 0; // bytes covered by leaves: less than len means a hole
	check.fn = [](Visitor &self, nb_u64 *, const Leaf &l) {
		nb_u64 bytes = kFrameSize << l.order;
		nb_u64 p = self.u2 + (l.virt - self.u0) / kFrameSize;
		if (l.virt < self.u0 || l.virt + bytes > self.u1 || (p << 12) % bytes)
			return -NB_EINVAL;
		self.u3 += bytes;
		return 0;
	};
	int rc = VisitLevel(root, kLevels, 0, virt, virt + len, check);
	if (rc)
		return rc;
	if (check.u3 != len)
		return -NB_ENOENT;
	Visitor set = check;
	set.fn = [](Visitor &self, nb_u64 *e, const Leaf &l) {
		nb_u64 p = self.u2 + (l.virt - self.u0) / kFrameSize;
		*e = (*e & ~kAddrMask) | (p << 12);
		return 0;
	};
	return VisitLevel(root, kLevels, 0, virt, virt + len, set);
}

// Example: a 2 MiB leaf split by Protect() of its first 4 KiB and protected back. Its level-1
// table then holds 512 leaves with pfns p, p+1, ..., p+511 (p 2 MiB-aligned) and equal flags:
// it becomes the one 2 MiB leaf again and the table page is freed.
void PageTable::MergeLevel(nb_u64 *t, unsigned level, nb_u64 base, nb_u64 start, nb_u64 end)
{
	const unsigned last = EntryIndex(level, base, end - 1);
	for (unsigned i = EntryIndex(level, base, start); i <= last; i++) {
		nb_u64 ebase = base + i * Bytes(level);
		if (!IsPresent(t[i]) || IsLeaf(t[i], level))
			continue;
		nb_u64 *child = TableOf(t[i]);
		if (level > 2)
			MergeLevel(child, level - 1, ebase, Max(start, ebase),
				   Min(end, ebase + Bytes(level)));
		if (level > 3 || ebase < start || ebase + Bytes(level) > end)
			continue;
		nb_u64 p0 = PfnOf(child[0]);
		bool ok = IsPresent(child[0]) && IsLeaf(child[0], level - 1) &&
			  (p0 << 12) % Bytes(level) == 0;
		for (unsigned j = 1; ok && j < kEntries; j++)
			ok = child[j] == child[0] + ((j * FramesPerEntry(level - 1)) << 12);
		if (!ok)
			continue;
		nb_u64 tpfn = PfnOf(t[i]);
		t[i] = MakeLeaf(p0, child[0], level);
		FreeTable(tpfn);
		leaves_[level - 2] -= kEntries;
		leaves_[level - 1]++;
	}
}

void PageTable::Merge(nb_u64 virt, nb_u64 len)
{
	if (root_pfn_ == kNoPfn || !RangeOk(virt, len))
		return;
	MergeLevel(static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_)), kLevels, 0, virt,
		   virt + len);
}

int PageTable::Lookup(nb_u64 virt, Leaf *out) const
{
	if (root_pfn_ == kNoPfn || virt >= kVirtLimit)
		return -NB_ENOENT;
	const nb_u64 *t = static_cast<const nb_u64 *>(nb_env_frame_addr(root_pfn_));
	for (unsigned l = kLevels; l >= 1; l--) {
		nb_u64 e = t[Index(virt, l)];
		if (!IsPresent(e))
			return -NB_ENOENT;
		if (IsLeaf(e, l)) {
			if (out)
				*out = LeafOf(e, l, virt & ~(Bytes(l) - 1));
			return 0;
		}
		t = TableOf(e);
	}
	return -NB_ENOENT;
}

int PageTable::Probe(nb_u64 virt, Leaf *out, unsigned *empty_level) const
{
	*empty_level = kLevels;
	if (root_pfn_ == kNoPfn || virt >= kVirtLimit)
		return -NB_ENOENT;
	const nb_u64 *t = static_cast<const nb_u64 *>(nb_env_frame_addr(root_pfn_));
	for (unsigned l = kLevels; l >= 1; l--) {
		nb_u64 e = t[Index(virt, l)];
		if (!IsPresent(e)) {
			*empty_level = l;
			return -NB_ENOENT;
		}
		if (IsLeaf(e, l)) {
			*empty_level = 0;
			if (out)
				*out = LeafOf(e, l, virt & ~(Bytes(l) - 1));
			return 0;
		}
		t = TableOf(e);
	}
	return -NB_ENOENT; // not reached: level 1 entries are leaves
}

// Tables are created on the way down only below an empty entry, so everything under the
// first one created is empty and the target slot cannot be taken; a failed allocation
// frees the ones this call created, deepest first.
int PageTable::MapIfEmpty(nb_u64 virt, nb_u64 pfn, nb_u64 flags, unsigned order, Leaf *out)
{
	if (order % 9 || order > 18)
		return -NB_EINVAL;
	const unsigned level = order / 9 + 1;
	if (root_pfn_ == kNoPfn || virt >= kVirtLimit || virt % Bytes(level) ||
	    pfn >= kPfnLimit || (pfn << 12) % Bytes(level))
		return -NB_EINVAL;
	nb_u64 *t = static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_));
	nb_u64 *made[kLevels];
	unsigned nmade = 0;
	for (unsigned l = kLevels; l > level; l--) {
		nb_u64 *e = &t[Index(virt, l)];
		if (!IsPresent(*e)) {
			nb_u64 tpfn;
			int rc = AllocTable(&tpfn);
			if (rc) {
				while (nmade) {
					nb_u64 *m = made[--nmade];
					nb_u64 mpfn = PfnOf(*m);
					*m = 0;
					FreeTable(mpfn);
				}
				return rc;
			}
			*e = MakeTableEntry(tpfn);
			made[nmade++] = e;
		} else if (IsLeaf(*e, l)) {
			return -NB_EEXIST; // a larger leaf covers virt
		}
		t = TableOf(*e);
	}
	nb_u64 *e = &t[Index(virt, level)];
	if (IsPresent(*e))
		return -NB_EEXIST; // a leaf, or a table that holds at least one (see Probe)
	*e = MakeLeaf(pfn, flags, level);
	leaves_[level - 1]++;
	if (out)
		*out = LeafOf(*e, level, virt);
	return 0;
}

int PageTable::Walk(nb_u64 virt, nb_u64 len, WalkFn fn, void *arg) const
{
	if (root_pfn_ == kNoPfn || !RangeOk(virt, len))
		return -NB_EINVAL;
	Visitor v{};
	v.walk_fn = fn;
	v.arg = arg;
	v.fn = [](Visitor &self, nb_u64 *, const Leaf &l) { return self.walk_fn(self.arg, l); };
	return VisitLevel(static_cast<nb_u64 *>(nb_env_frame_addr(root_pfn_)), kLevels, 0, virt,
			  virt + len, v);
}

int PageTable::FirstLeaf(nb_u64 virt, nb_u64 len, Leaf *out) const
{
	Leaf found;
	int rc = Walk(virt, len,
		      [](void *arg, const Leaf &l) {
			      *static_cast<Leaf *>(arg) = l;
			      return 1;
		      },
		      &found);
	if (rc != 1)
		return rc ? rc : -NB_ENOENT;
	if (out)
		*out = found;
	return 0;
}

} // namespace nb
