// SPDX-License-Identifier: GPL-2.0
//
// compact.h - nb::Compactor, one compaction of one node for one order (nbc_compact.h).
//
// Frames of the chosen run end up in one of three states: free and isolated (taken off the
// free lists by the compactor), moved out (the old frame is the compactor's, still marked
// allocated), or not yet moved (a space's). held_ records the heads the compactor holds, with
// their orders, so Finish can free exactly those and nothing of anyone else's.
#ifndef NB_COMPACT_H
#define NB_COMPACT_H

#include "core.h"
#include "nbc_compact.h"

namespace nb {

class Compactor {
public:
	static int Create(Core *core, int node, unsigned order, nb_ctx ctx, Compactor **out);
	void Destroy();

	// Step 2: frames [pfn, pfn + nr) belong to a space and may move.
	void Note(u64 pfn, u64 nr);
	// Steps 3 and 4: the run to empty; -NB_EBUSY if none qualifies.
	int Choose(nbc_compact_result *out);
	// Does [pfn, pfn + nr) lie in the chosen run? (A frame lies wholly in or out of it.)
	bool InRun(u64 pfn, u64 nr) const { return chosen_ && pfn < run_ + RunFrames() && pfn + nr > run_; }
	bool WhollyInRun(u64 pfn, u64 nr) const
	{
		return chosen_ && pfn >= run_ && pfn + nr <= run_ + RunFrames();
	}
	// A frame of the same shape on the node, outside the run: order `order` or, for kContig,
	// nr contiguous frames.
	int TakeDest(u32 order, u64 nr, bool low, nb_ctx ctx, u64 *pfn);
	void DropDest(u32 order, u64 nr, u64 pfn);
	// The old frame of a relocated range (still allocated) is the compactor's now.
	void Adopt(u64 pfn, u64 nr);
	// Take what became free in the run since the last look (frees by the spaces' owners).
	void Reclaim();
	// Step 6: 0 if the run is free now; frees everything held either way.
	int Finish(nbc_compact_result *out);

private:
	u64 RunFrames() const { return 1ull << order_; }
	// Runs of segment i: its aligned run starts, and their index in counts_.
	u64 FirstRun(const Segment *s) const { return (s->base() + RunFrames() - 1) & ~(RunFrames() - 1); }
	u64 RunsIn(const Segment *s) const;
	// Index of the run holding pfn in counts_, or -1 if no whole run holds it.
	i64 RunIndex(u64 pfn) const;
	// Index in segs_ of the segment holding pfn, or -1.
	i64 SegIndex(u64 pfn) const;
	void HoldPieces(u64 pfn, u64 nr);
	void IsolateLocked(Segment *s) TA_REQ(node_->lock());

	static constexpr u64 kPoison = ~0ull;

	Core *core_;
	Node *node_;
	// The node's segments when the compactor was made: the shim keeps resizes out while a
	// compactor lives, and seg_first_ is indexed like this table.
	const SegTable *segs_;
	int nid_;
	unsigned order_;
	u64 nr_runs_;
	u64 *owned_;      // per run: frames spaces reported movable; kPoison: an unmovable one
	u32 *seg_first_;  // per segment of the node: index of its first run
	u8 *held_;        // per frame of the chosen run: 1 + order of a head we hold, or 0
	bool chosen_;
	bool covered_;    // the run became part of a larger free block without us
	u64 run_;
	Segment *run_seg_;
	u64 held_frames_;
	usize meta_bytes_;
};

} // namespace nb

#endif // NB_COMPACT_H
