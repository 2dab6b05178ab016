/* SPDX-License-Identifier: GPL-2.0 */
/*
 * seg_table.h - a set of segments sorted by base pfn, replaced whole when the pool is resized.
 *
 * Segments are looked up without a lock (a free finds its segment before it takes any lock),
 * so a resize never edits a table in place: it builds a new one, publishes it with a release
 * store, and keeps the old one (and any segment it removed) until the core is destroyed,
 * because a lookup that loaded the old pointer may still be reading it. The environment has
 * no grace period (RCU) to know when the last such reader is gone. What is kept is metadata:
 * a pointer per segment per resize, and 8 bytes per removed frame.
 */
#ifndef NB_SEG_TABLE_H
#define NB_SEG_TABLE_H

#include "base.h"
#include "segment.h"

namespace nb {

/*
 * The O(1) pfn -> segment map of a table (the core's index has one; frees and the per-CPU
 * caches look a frame up on every operation). [lo, hi) of the table's pfns is cut into
 * granules of 2^shift frames, at most Max(256, 16 n) of them, whatever the span: 4 bytes
 * per granule, so a table of n segments costs at most 64 n + 1 KiB more, even for a pool
 * with frames near 0 and near 2^52. Each granule says which segment touches it: 0 none,
 * 1 + index when exactly one does, kGranuleShared when several do (segments that meet
 * inside a granule, as when a sparse span makes granules coarse); only those fall back to
 * the binary search. Segments cut at 2^28 frames and at the 4 GiB line meet on granule
 * boundaries as long as shift <= 20.
 *   2 segments [0x100000, 0x140000) and [0x140000, 0x180000), n = 2: span 2^19 frames,
 *   256 granules of 2^11 frames; granule 127 -> segment 0, granule 128 -> segment 1.
 */
constexpr u32 kGranuleShared = ~0u;
constexpr u64 kGranulesMin = 256;
constexpr u64 kGranulesPerSegment = 16;

struct SegTable {
	Segment **seg;     /* n entries (room for cap), sorted by base, not overlapping */
	u32 n;
	u32 cap;
	u32 first_high;    /* for a node's table: seg[first_high..] are above 4 GiB */
	bool owns_segs;    /* retired entry for removed segments: frees them at destroy */
	SegTable *retired; /* the next older retired entry, all freed at destroy */
	u32 *granule;      /* the map above, or null (not built: binary search only) */
	u64 granules;
	u64 granule_base;
	unsigned granule_shift;

	Segment *Find(u64 pfn) const
	{
		if (granule != nullptr) {
			u64 g = (pfn - granule_base) >> granule_shift; /* below base: wraps, too big */
			if (g >= granules)
				return nullptr;
			u32 e = granule[g];
			if (e == 0)
				return nullptr;
			if (e != kGranuleShared) {
				Segment *s = seg[e - 1];
				return s->Contains(pfn) ? s : nullptr;
			}
		}
		return FindSegment(n, pfn, [this](u32 i) { return seg[i]; });
	}
	/* Granules the map of this table needs, and their shift (n > 0). */
	u64 GranuleCount(unsigned *shift) const
	{
		u64 span = seg[n - 1]->end() - seg[0]->base();
		u64 most = Max(kGranulesMin, kGranulesPerSegment * n);
		unsigned k = 0;
		while (((span - 1) >> k) + 1 > most)
			k++;
		*shift = k;
		return ((span - 1) >> k) + 1;
	}
	/* Fill a map of GranuleCount() zeroed entries and attach it (before publishing). */
	void SetGranules(u32 *map, u64 count, unsigned shift)
	{
		granule_base = seg[0]->base();
		granule_shift = shift;
		for (u32 i = 0; i < n; i++) {
			u64 g0 = (seg[i]->base() - granule_base) >> shift;
			u64 g1 = (seg[i]->end() - 1 - granule_base) >> shift;
			for (u64 g = g0; g <= g1; g++)
				map[g] = map[g] == 0 ? i + 1 : kGranuleShared;
		}
		granules = count;
		granule = map;
	}
	/* Index of the first segment at or above the 4 GiB line (segments are wholly one side). */
	void SetFirstHigh()
	{
		first_high = n;
		for (u32 i = 0; i < n; i++) {
			if (!seg[i]->low()) {
				first_high = i;
				break;
			}
		}
	}
};

/*
 * Where a region is cut into segments: every multiple of 2^28 frames (so indices fit the
 * descriptor's 28-bit links) and the 4 GiB line (so a segment is all low or all high).
 * Region [0x0ff000, 0x101000) -> [0x0ff000, 0x100000) low + [0x100000, 0x101000) high.
 */
inline u64 SegmentEnd(u64 p, u64 end)
{
	u64 next = ((p >> kIndexBits) + 1) << kIndexBits;
	if (p < NBC_LOW_LIMIT_PFN && next > NBC_LOW_LIMIT_PFN)
		next = NBC_LOW_LIMIT_PFN;
	return Min(next, end);
}

inline u32 CountSegments(const nbc_region &r)
{
	u32 n = 0;
	for (u64 p = r.start_pfn, e = p + r.nr_frames; p < e; p = SegmentEnd(p, e))
		n++;
	return n;
}

} /* namespace nb */

#endif /* NB_SEG_TABLE_H */
