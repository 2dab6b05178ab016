// SPDX-License-Identifier: GPL-2.0
//
// space_query.cpp - what a space reports: a range's identity and counters (nbc_space_query,
// _query_full), the huge alignment a mapping should get, quotas and usage per node.
#include "leaf_orders.h"
#include "space.h"

namespace nb {

// The range's identity and first frame: O(log n) in the ranges plus one descent of the
// table, whatever the range's size. What nb_mmap and an ALLOC's reply need.
void Space::FillBriefLocked(const Range &r, nbc_space_info *out)
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
	} else if (r.kind == NBC_SPACE_KIND_RESERVED && !table_.FirstLeaf(r.offset, r.size, &l)) {
		out->first_pfn = l.pfn;
		out->node = nbc_pfn_node(core_, l.pfn);
	}
}

// The range holding offset, with the brief answer filled (zeroed on error), in one hold.
int Space::QueryBriefLocked(u64 offset, nbc_space_info *out, Range **r)
{
	int rc = ranges_.Lookup(offset, RangeUse::kRead, r);
	if (rc) {
		MemZero(out, sizeof(*out));
		return rc;
	}
	FillBriefLocked(**r, out);
	return 0;
}

int Space::Query(u64 offset, nbc_space_info *out)
{
	Guard g(&lock_);
	Range *r;
	return QueryBriefLocked(offset, out, &r);
}

// Counts every extent and leaf, kQueryBatch per hold of lock_: a 64 GiB block of 4 KiB
// frames is 16M of each, seconds under a spinlock in one go. Between holds the range is
// found again by its start (offsets are never reused); if it is gone, -NB_ENOENT. A migration
// or first touch running meanwhile may be seen half-way: the counts are a snapshot per batch.
int Space::QueryFull(u64 offset, nbc_space_info *out)
{
	u64 start, end;
	u32 nr_extents;
	u32 kind;
	{
		Guard g(&lock_);
		Range *r;
		int rc = QueryBriefLocked(offset, out, &r);
		if (rc)
			return rc;
		start = r->offset;
		end = r->offset + r->size;
		nr_extents = r->nr_extents;
		kind = r->kind;
	}
	for (u32 i = 0; i < nr_extents;) {
		Guard g(&lock_);
		Range *r;
		int rc = ranges_.Lookup(start, RangeUse::kRead, &r);
		if (rc)
			return rc;
		for (u32 stop = Min(nr_extents, i + kQueryBatch); i < stop; i++) {
			const Extent &e = r->extents[i];
			unsigned order = e.order == kContig ? Log2Floor(e.nr_frames) : e.order;
			out->max_frame_order = Max(out->max_frame_order, order);
			out->populated_bytes += e.nr_frames * kFrame;
			if (e.node >= 0 && e.node < NBC_MAX_NODES)
				out->node_bytes[e.node] += e.nr_frames * kFrame;
			if (e.order != kContig)
				out->frames_by_order[e.order]++;
		}
	}
	bool frames = kind == NBC_SPACE_KIND_RESERVED; // a reserved range's leaves are its frames
	for (u64 cursor = start; cursor < end;) {
		Guard g(&lock_);
		Range *r;
		int rc = ranges_.Lookup(start, RangeUse::kRead, &r);
		if (rc)
			return rc;
		for (unsigned n = 0; n < kQueryBatch && cursor < end; n++) {
			PageTable::Leaf l;
			if (table_.FirstLeaf(cursor, end - cursor, &l))
				return 0;
			cursor = l.virt + LeafBytes(l.order);
			out->leaf_bytes[LeafIndex(l.order)] += LeafBytes(l.order);
			if (!frames)
				continue;
			int node = nbc_pfn_node(core_, l.pfn);
			out->max_frame_order = Max(out->max_frame_order, l.order);
			out->populated_bytes += LeafBytes(l.order);
			out->frames_by_order[l.order]++;
			if (node >= 0 && node < NBC_MAX_NODES)
				out->node_bytes[node] += LeafBytes(l.order);
		}
	}
	return 0;
}

// A reserved range gets a huge alignment where a huge first touch could happen; a block where
// a huge leaf is mapped.
u64 Space::HugeAlign(u64 offset, u64 len)
{
	Guard g(&lock_);
	Range *r;
	if (ranges_.Lookup(offset, RangeUse::kRead, &r) || !len)
		return kFrame;
	u64 lo = offset, hi = Min(offset + len, r->offset + r->size);
	for (unsigned o : kHugeLeafOrders) {
		u64 c = AlignUp(lo, LeafBytes(o));
		if (c < lo || c + LeafBytes(o) > hi)
			continue;
		if (r->kind == NBC_SPACE_KIND_RESERVED) {
			unsigned empty_level;
			table_.Probe(c, nullptr, &empty_level);
			if (DemandOrderLocked(*r, c, empty_level) >= o || (r->flags & HugeFlagsFor(o)))
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
	Guard g(&lock_);
	return quotas_.Set(node, bytes);
}

u64 Space::Quota(int node)
{
	Guard g(&lock_);
	return quotas_.Get(node);
}

u64 Space::NodeBytes(int node)
{
	Guard g(&lock_);
	return quotas_.Used(node);
}

u64 Space::TablePages()
{
	Guard g(&lock_);
	return table_.table_pages();
}

} // namespace nb
