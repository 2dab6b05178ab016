// SPDX-License-Identifier: GPL-2.0
//
// compact.cpp - compaction of one node (nbc_compact.h): the run choice, its isolation, and
// the driver that walks the spaces through the owner's callbacks.
//
// Why runs are aligned: a buddy block of order k lies at a multiple of 2^k, so the only
// places a free block of `order` can form are the aligned runs of 2^order frames, and every
// allocated block lies wholly inside one run or covers whole runs. Worked example, order 14
// (64 MiB) on a node of segments [0x40000, 0x60000) and [0x61000, 0x80000): runs at 0x40000,
// 0x44000, ... 0x5c000 in the first (8 runs), 0x64000 ... 0x7c000 in the second (7 runs;
// 0x61000-0x64000 is no whole run).
#include "compact.h"

#include "space.h"

namespace nb {

u64 Compactor::RunsIn(const Segment *s) const
{
	u64 first = FirstRun(s);
	return first >= s->end() ? 0 : (s->end() - first) >> order_;
}

int Compactor::Create(Core *core, int node, unsigned order, nb_ctx ctx, Compactor **out)
{
	Node *n = core->nodes_[node];
	const SegTable *table = n->table();
	u64 runs = 0;
	usize segs = table->n;
	Compactor probe{};
	probe.order_ = order;
	for (u32 i = 0; i < table->n; i++)
		runs += probe.RunsIn(table->seg[i]);
	usize meta = sizeof(Compactor) + runs * sizeof(u64) + segs * sizeof(u32) + (1ull << order);
	auto *c = static_cast<Compactor *>(nb_env_meta_alloc(meta, node, ctx, NB_META_CORE));
	if (c == nullptr)
		return -NB_ENOMEM;
	*c = Compactor{};
	c->core_ = core;
	c->node_ = n;
	c->segs_ = table;
	c->nid_ = node;
	c->order_ = order;
	c->nr_runs_ = runs;
	c->owned_ = reinterpret_cast<u64 *>(c + 1);
	c->seg_first_ = reinterpret_cast<u32 *>(c->owned_ + runs);
	c->held_ = reinterpret_cast<u8 *>(c->seg_first_ + segs);
	c->meta_bytes_ = meta;
	u64 at = 0;
	for (u32 i = 0; i < table->n; i++) {
		c->seg_first_[i] = static_cast<u32>(at);
		at += c->RunsIn(table->seg[i]);
	}
	*out = c;
	return 0;
}

void Compactor::Destroy() { nb_env_meta_free(this, meta_bytes_); }

i64 Compactor::SegIndex(u64 pfn) const
{
	return FindSegmentIndex(segs_->n, pfn, [this](u32 i) { return segs_->seg[i]; });
}

i64 Compactor::RunIndex(u64 pfn) const
{
	i64 i = SegIndex(pfn);
	if (i < 0)
		return -1;
	const Segment *s = segs_->seg[i];
	if (pfn < FirstRun(s))
		return -1;
	u64 r = (pfn - FirstRun(s)) >> order_;
	if (r >= RunsIn(s))
		return -1;
	return static_cast<i64>(seg_first_[i] + r);
}

void Compactor::Note(u64 pfn, u64 nr)
{
	i64 first = RunIndex(pfn);
	if (first < 0)
		return; // another node, or frames outside every whole run
	if (((pfn + nr - 1) >> order_) == (pfn >> order_)) {
		if (owned_[first] != kPoison)
			owned_[first] += nr;
		return;
	}
	// Larger than a run: moving it would need a free hole larger than the one we make.
	for (u64 p = pfn & ~(RunFrames() - 1); p < pfn + nr; p += RunFrames()) {
		i64 r = RunIndex(p);
		if (r >= 0)
			owned_[r] = kPoison;
	}
}

int Compactor::Choose(nbc_compact_result *out)
{
	core_->DrainNode(nid_);
	u64 best_cost = kPoison;
	out->runs = static_cast<u32>(Min(nr_runs_, u64{~0u}));
	for (u32 i = 0; i < segs_->n; i++) {
		Segment *s = segs_->seg[i];
		u64 base = FirstRun(s);
		for (u64 r = 0; r < RunsIn(s); r++) {
			u64 start = base + (r << order_), end = start + RunFrames();
			u64 idx = seg_first_[i] + r;
			u64 allocated = 0;
			bool movable = owned_[idx] != kPoison;
			{
				Guard g(node_->lock());
				for (u64 p = start; movable && p < end;) {
					u64 d = s->DescAt(p);
					FrameState st = DescState(d);
					// A tail at a head's place: inside a block larger than the run.
					if (st == FrameState::kTail || st == FrameState::kCached) {
						movable = false;
						break;
					}
					u64 n = 1ull << DescOrder(d);
					if (st == FrameState::kAlloc)
						allocated += n;
					p += n;
				}
			}
			// Every allocated frame must be one a space reported. A space's frame freed
			// and reused by the kernel since could still pass: relocation then finds
			// nothing to move for it and Finish reports -EAGAIN.
			if (!movable || allocated > owned_[idx])
				continue;
			out->runs_movable++;
			if (allocated < best_cost) {
				best_cost = allocated;
				run_ = start;
				run_seg_ = s;
			}
		}
	}
	if (best_cost == kPoison)
		return -NB_EBUSY;
	chosen_ = true;
	out->run_pfn = run_;
	Reclaim();
	return 0;
}

// Takes every free block of the run off the free lists. Blocks lie wholly in the run (it is
// not wholly free), so each head found by stepping over block sizes is inside it.
void Compactor::IsolateLocked(Segment *s)
{
	for (u64 p = run_; p < run_ + RunFrames();) {
		u64 d = s->DescAt(p);
		if (DescState(d) == FrameState::kTail) {
			p++; // a merge of our own frees: cannot happen before Finish; step safely
			continue;
		}
		unsigned k = DescOrder(d);
		if (DescState(d) == FrameState::kFree && k > order_) {
			covered_ = true; // its owners freed the whole run meanwhile: done
			return;
		}
		if (DescState(d) == FrameState::kFree && s->TakeFree(p) >= 0) {
			held_[p - run_] = static_cast<u8>(k + 1);
			held_frames_ += 1ull << k;
		}
		p += 1ull << k;
	}
}

void Compactor::Reclaim()
{
	core_->DrainNode(nid_);
	Guard g(node_->lock());
	IsolateLocked(run_seg_);
}

// The binary pieces of [pfn, pfn + nr), as nbc_alloc_contig leaves them allocated.
void Compactor::HoldPieces(u64 pfn, u64 nr)
{
	for (u64 p = pfn, end = pfn + nr; p < end;) {
		unsigned k = Min(Ctz64(p | (1ull << 63)), order_);
		while (p + (1ull << k) > end)
			k--;
		held_[p - run_] = static_cast<u8>(k + 1);
		held_frames_ += 1ull << k;
		p += 1ull << k;
	}
}

void Compactor::Adopt(u64 pfn, u64 nr)
{
	NB_ASSERT(WhollyInRun(pfn, nr));
	HoldPieces(pfn, nr);
}

int Compactor::TakeDest(u32 order, u64 nr, bool low, nb_ctx ctx, u64 *pfn)
{
	nbc_policy bind{NBC_POLICY_BIND, nid_, 1ull << nid_, 0, 0};
	unsigned flags = NBC_AF_NOCACHE | (low ? NBC_AF_LOW4G : 0);
	// A block freed into the run after it was isolated may be handed to us: keep it (it is
	// the run's) and ask again. Each retry holds more of the run, so this ends.
	for (;;) {
		u64 p;
		int rc = order == kContig ? core_->AllocContig(nr, &bind, flags, ctx, &p, nullptr)
					  : core_->Alloc(order, &bind, flags, ctx, &p, nullptr);
		if (rc)
			return rc;
		u64 n = order == kContig ? nr : 1ull << order;
		if (!InRun(p, n)) {
			*pfn = p;
			return 0;
		}
		Adopt(p, n);
	}
}

void Compactor::DropDest(u32 order, u64 nr, u64 pfn)
{
	if (order == kContig)
		core_->FreeRange(pfn, nr);
	else
		core_->Free(pfn, order);
}

int Compactor::Finish(nbc_compact_result *out)
{
	if (!chosen_)
		return -NB_EBUSY;
	Reclaim();
	bool whole = held_frames_ == RunFrames() || (held_frames_ == 0 && covered_);
	{
		Guard g(node_->lock());
		for (u64 i = 0; i < RunFrames(); i++)
			if (held_[i])
				NB_ASSERT(!node_->FreeLocked(run_seg_, run_ + i, held_[i] - 1u,
							     FrameState::kAlloc));
	}
	if (!whole)
		out->run_pfn = ~0ull;
	return whole ? 0 : -NB_EAGAIN;
}

// ---- the driver --------------------------------------------------------------------------

namespace {

struct Pass {
	Compactor *c;
	const nbc_compact_ops *ops;
	nb_ctx ctx;
	nbc_compact_result *out;
	int rc;
};

void NoteSpace(void *farg, nbc_space *s, void *owner)
{
	auto *p = static_cast<Pass *>(farg);
	reinterpret_cast<Space *>(s)->CompactNote(p->c, p->ops->pinned, owner);
}

void RelocateSpace(void *farg, nbc_space *s, void *owner)
{
	auto *p = static_cast<Pass *>(farg);
	auto *sp = reinterpret_cast<Space *>(s);
	if (p->rc == 0) {
		int rc = sp->RelocateTables(p->c, p->ctx, &p->out->frames_moved);
		if (rc && rc != -NB_EAGAIN)
			p->rc = rc;
	}
	for (u64 from = 0; p->rc == 0;) {
		u64 offset, len;
		p->ops->lock(owner);
		int rc = sp->RelocateBegin(p->c, from, p->ops->pinned, owner, &offset, &len);
		p->ops->unlock(owner);
		if (rc)
			return; // -NB_ENOENT: no more ranges with a frame in the run
		const nbc_space_mapper m{p->ops->unmap, p->ops->map, owner};
		rc = sp->RelocateFinish(p->c, offset, &m, p->ctx, &p->out->frames_moved,
					&p->out->blocks_moved);
		p->ops->done(owner);
		if (rc) {
			p->rc = rc;
			return;
		}
		p->c->Reclaim();
		from = offset + len;
	}
}

bool HasFreeBlock(nbc_core *c, int node, unsigned order)
{
	struct nbc_node_stats st{};
	return nbc_node_stats(c, node, &st) == 0 && st.largest_free_order >= (int)order;
}

} // namespace

} // namespace nb

extern "C" int nbc_compact_node(nbc_core *c, int node, unsigned order, const nbc_compact_ops *ops,
				void *arg, nb_ctx ctx, nbc_compact_result *out)
{
	using namespace nb;
	*out = nbc_compact_result{~0ull, 0, 0, 0, 0};
	if (ctx != NB_CTX_SLEEP || node < 0 || node >= NBC_MAX_NODES || order == 0 ||
	    order > nbc_max_order(c) || !((nbc_nodes_with_memory(c) >> node) & 1))
		return -NB_EINVAL;
	nbc_pcp_drain(c);
	if (HasFreeBlock(c, node, order))
		return 0;
	Compactor *comp;
	int rc = Compactor::Create(reinterpret_cast<Core *>(c), node, order, ctx, &comp);
	if (rc)
		return rc;
	Pass pass{comp, ops, ctx, out, 0};
	ops->for_each(arg, NoteSpace, &pass);
	rc = comp->Choose(out);
	if (!rc) {
		ops->for_each(arg, RelocateSpace, &pass);
		int fin = comp->Finish(out);
		rc = pass.rc ? pass.rc : fin;
		if (pass.rc)
			out->run_pfn = ~0ull;
	}
	comp->Destroy();
	return rc;
}
