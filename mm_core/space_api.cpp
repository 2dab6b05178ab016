// SPDX-License-Identifier: GPL-2.0
//
// space_api.cpp - what a space reports (query, huge alignment, quotas, usage) and the
// extern "C" layer of nb_space.h, one call each; struct nb_space is an opaque nb::Space.
#include "space.h"

namespace nb {

// ---- queries -----------------------------------------------------------------------------

// The range's identity and first frame: O(log n) in the ranges plus one descent of the
// table, whatever the range's size. What nb_mmap and an ALLOC's reply need.
void Space::FillBriefLocked(const Range &r, nb_space_info *out)
{
	MemZero(out, sizeof(*out));
	out->offset = r.offset;
	out->size = r.size;
	out->flags = r.flags;
	out->kind = r.kind;
	out->state = r.state;
	out->node = -1;
	out->first_pfn = ~0ull;
	PageTable::Leaf l;
	if (r.nr_extents) {
		out->node = r.extents[0].node;
		out->first_pfn = r.extents[0].pfn;
	} else if (r.kind == NB_SPACE_KIND_RESERVED && !table_.FirstLeaf(r.offset, r.size, &l)) {
		out->first_pfn = l.pfn;
		out->node = nb_pfn_node(core_, l.pfn);
	}
}

int Space::Query(u64 offset, nb_space_info *out)
{
	Guard g(&lock_);
	Range *r = FindLocked(offset);
	if (!r) {
		MemZero(out, sizeof(*out));
		return -NB_ENOENT;
	}
	FillBriefLocked(*r, out);
	return 0;
}

// Counts every extent and leaf, kQueryBatch per hold of lock_: a 64 GiB block of 4 KiB
// frames is 16M of each, seconds under a spinlock in one go. Between holds the range is
// found again by its start (offsets are never reused); if it is gone, -NB_ENOENT. A migration
// or first touch running meanwhile may be seen half-way: the counts are a snapshot per batch.
int Space::QueryFull(u64 offset, nb_space_info *out)
{
	u64 start, end;
	u32 nr_extents;
	u32 kind;
	{
		Guard g(&lock_);
		Range *r = FindLocked(offset);
		if (!r) {
			MemZero(out, sizeof(*out));
			return -NB_ENOENT;
		}
		FillBriefLocked(*r, out);
		start = r->offset;
		end = r->offset + r->size;
		nr_extents = r->nr_extents;
		kind = r->kind;
	}
	for (u32 i = 0; i < nr_extents;) {
		Guard g(&lock_);
		Range *r = FindStartLocked(start);
		if (!r)
			return -NB_ENOENT;
		for (u32 stop = Min(nr_extents, i + kQueryBatch); i < stop; i++) {
			const Extent &e = r->extents[i];
			unsigned order = e.order == kContig ? Log2Floor(e.nr_frames) : e.order;
			out->max_frame_order = Max(out->max_frame_order, order);
			out->populated_bytes += e.nr_frames * kFrame;
			if (e.node >= 0 && e.node < NB_MAX_NODES)
				out->node_bytes[e.node] += e.nr_frames * kFrame;
			if (e.order != kContig)
				out->frames_by_order[e.order]++;
		}
	}
	bool frames = kind == NB_SPACE_KIND_RESERVED; // a reserved range's leaves are its frames
	for (u64 cursor = start; cursor < end;) {
		Guard g(&lock_);
		if (!FindStartLocked(start))
			return -NB_ENOENT;
		for (unsigned n = 0; n < kQueryBatch && cursor < end; n++) {
			PageTable::Leaf l;
			if (table_.FirstLeaf(cursor, end - cursor, &l))
				return 0;
			cursor = l.virt + LeafBytes(l.order);
			out->leaf_bytes[l.order / 9] += LeafBytes(l.order);
			if (!frames)
				continue;
			int node = nb_pfn_node(core_, l.pfn);
			out->max_frame_order = Max(out->max_frame_order, l.order);
			out->populated_bytes += LeafBytes(l.order);
			out->frames_by_order[l.order]++;
			if (node >= 0 && node < NB_MAX_NODES)
				out->node_bytes[node] += LeafBytes(l.order);
		}
	}
	return 0;
}

u64 Space::HugeAlign(u64 offset, u64 len)
{
	Guard g(&lock_);
	Range *r = FindLocked(offset);
	if (!r || !len)
		return kFrame;
	u64 lo = offset, hi = Min(offset + len, r->offset + r->size);
	static constexpr unsigned kHugeOrders[] = {18, 9};
	for (unsigned o : kHugeOrders) {
		u64 c = AlignUp(lo, LeafBytes(o));
		if (c < lo || c + LeafBytes(o) > hi)
			continue;
		if (r->kind == NB_SPACE_KIND_RESERVED) {
			if (DemandOrderLocked(*r, c) >= o ||
			    (r->flags & (o == 18 ? NB_SPACE_HUGE_1G : NB_SPACE_HUGE_2M | NB_SPACE_HUGE_1G)))
				return LeafBytes(o);
		} else {
			PageTable::Leaf l;
			for (; c + LeafBytes(o) <= hi; c += LeafBytes(o))
				if (!table_.Lookup(c, &l) && l.order >= o)
					return LeafBytes(o);
		}
	}
	return kFrame;
}

int Space::SetQuota(int node, u64 bytes)
{
	if (node < 0 || node >= NB_MAX_NODES)
		return -NB_EINVAL;
	Guard g(&lock_);
	quota_[node] = bytes;
	return 0;
}

u64 Space::Quota(int node)
{
	if (node < 0 || node >= NB_MAX_NODES)
		return 0;
	Guard g(&lock_);
	return quota_[node];
}

u64 Space::NodeBytes(int node)
{
	if (node < 0 || node >= NB_MAX_NODES)
		return 0;
	Guard g(&lock_);
	return node_bytes_[node];
}

u64 Space::TablePages()
{
	Guard g(&lock_);
	return table_.table_pages();
}

} // namespace nb

// ---- C API -------------------------------------------------------------------------------

namespace {
nb::Space *S(nb_space *s) { return reinterpret_cast<nb::Space *>(s); }
} // namespace

extern "C" {

int nb_space_create(nb_core *core, int node, nb_ctx ctx, nb_space **out)
{
	nb::Space *s;
	int rc = nb::Space::Create(core, node, ctx, &s);
	if (!rc)
		*out = reinterpret_cast<nb_space *>(s);
	return rc;
}

void nb_space_destroy(nb_space *s, nb_ctx ctx) { S(s)->Destroy(ctx); }

int nb_space_alloc(nb_space *s, nb_u64 bytes, const nb_policy *pol, unsigned flags, nb_ctx ctx,
		   nb_u64 *offset_out)
{
	return S(s)->Alloc(bytes, pol, flags, ctx, offset_out);
}

int nb_space_reserve(nb_space *s, nb_u64 bytes, const nb_policy *pol, unsigned flags,
		     unsigned cpu, nb_ctx ctx, nb_u64 *offset_out)
{
	return S(s)->Reserve(bytes, pol, flags, cpu, ctx, offset_out);
}

int nb_space_fault(nb_space *s, nb_u64 offset, int write, unsigned cpu, unsigned max_order,
		   nb_ctx ctx, nb_space_fault_result *out)
{
	return S(s)->Fault(offset, write != 0, cpu, max_order, ctx, out);
}

int nb_space_free_begin(nb_space *s, nb_u64 offset, nb_u64 *start, nb_u64 *len)
{
	return S(s)->FreeBegin(offset, start, len);
}

int nb_space_free_finish(nb_space *s, nb_u64 offset, nb_ctx ctx)
{
	return S(s)->FreeFinish(offset, ctx);
}

int nb_space_free(nb_space *s, nb_u64 offset, nb_ctx ctx,
		  void (*zap)(void *arg, nb_u64 start, nb_u64 len), void *arg)
{
	nb_u64 start, len;
	int rc = S(s)->FreeBegin(offset, &start, &len);
	if (rc)
		return rc;
	if (zap)
		zap(arg, start, len);
	return S(s)->FreeFinish(offset, ctx);
}

int nb_space_migrate_begin(nb_space *s, nb_u64 offset, int node, nb_u64 *start, nb_u64 *len)
{
	return S(s)->MigrateBegin(offset, node, start, len);
}

int nb_space_migrate_finish(nb_space *s, nb_u64 offset, nb_ctx ctx, nb_u64 *bytes_moved)
{
	return S(s)->MigrateFinish(offset, ctx, bytes_moved);
}

int nb_space_migrate(nb_space *s, nb_u64 offset, int node, nb_ctx ctx,
		     void (*zap)(void *arg, nb_u64 start, nb_u64 len), void *arg,
		     nb_u64 *bytes_moved)
{
	nb_u64 start, len;
	*bytes_moved = 0;
	int rc = S(s)->MigrateBegin(offset, node, &start, &len);
	if (rc)
		return rc;
	if (zap)
		zap(arg, start, len);
	return S(s)->MigrateFinish(offset, ctx, bytes_moved);
}

int nb_space_query(nb_space *s, nb_u64 offset, nb_space_info *out)
{
	return S(s)->Query(offset, out);
}

int nb_space_query_full(nb_space *s, nb_u64 offset, nb_space_info *out)
{
	return S(s)->QueryFull(offset, out);
}

nb_u64 nb_space_huge_align(nb_space *s, nb_u64 offset, nb_u64 len)
{
	return S(s)->HugeAlign(offset, len);
}

int nb_space_set_quota(nb_space *s, int node, nb_u64 bytes) { return S(s)->SetQuota(node, bytes); }
nb_u64 nb_space_quota(nb_space *s, int node) { return S(s)->Quota(node); }
nb_u64 nb_space_node_bytes(nb_space *s, int node) { return S(s)->NodeBytes(node); }
nb_u64 nb_space_table_pages(nb_space *s) { return S(s)->TablePages(); }

} // extern "C"
