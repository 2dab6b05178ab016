// SPDX-License-Identifier: GPL-2.0
//
// space_c_api.cpp - the extern "C" layer of nbc_space.h, one call each; struct nbc_space is
// an opaque nb::Space. The two-phase conveniences (nbc_space_free, nbc_space_migrate) call
// the shim's zap between the phases.
#include "space.h"

namespace {
nb::Space *S(nbc_space *s) { return reinterpret_cast<nb::Space *>(s); }
} // namespace

extern "C" {

int nbc_space_create(nbc_core *core, int node, nb_ctx ctx, nbc_space **out)
{
	nb::Space *s;
	int rc = nb::Space::Create(core, node, ctx, &s);
	if (!rc)
		*out = reinterpret_cast<nbc_space *>(s);
	return rc;
}

void nbc_space_destroy(nbc_space *s, nb_ctx ctx) { S(s)->Destroy(ctx); }

int nbc_space_alloc(nbc_space *s, nb_u64 bytes, const nbc_policy *pol, unsigned flags, nb_ctx ctx,
		    nb_u64 *offset_out)
{
	return S(s)->Alloc(bytes, pol, flags, ctx, offset_out);
}

int nbc_space_reserve(nbc_space *s, nb_u64 bytes, const nbc_policy *pol, unsigned flags,
		      unsigned cpu, nb_ctx ctx, nb_u64 *offset_out)
{
	return S(s)->Reserve(bytes, pol, flags, cpu, ctx, offset_out);
}

int nbc_space_fault(nbc_space *s, nb_u64 offset, int write, unsigned cpu, unsigned max_order,
		    nb_ctx ctx, nbc_space_fault_result *out)
{
	return S(s)->Fault(offset, write != 0, cpu, max_order, ctx, out);
}

int nbc_space_fault_around(nbc_space *s, nb_u64 offset, nb_u64 lo, nb_u64 hi,
			   nbc_space_around *out)
{
	return S(s)->FaultAround(offset, lo, hi, out);
}

int nbc_space_free_begin(nbc_space *s, nb_u64 offset, nb_u64 *start, nb_u64 *len)
{
	return S(s)->FreeBegin(offset, start, len);
}

int nbc_space_free_finish(nbc_space *s, nb_u64 offset, nb_ctx ctx)
{
	return S(s)->FreeFinish(offset, ctx);
}

int nbc_space_free(nbc_space *s, nb_u64 offset, nb_ctx ctx,
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

int nbc_space_migrate_begin(nbc_space *s, nb_u64 offset, int node, nb_u64 *start, nb_u64 *len)
{
	return S(s)->MigrateBegin(offset, node, start, len);
}

int nbc_space_migrate_finish(nbc_space *s, nb_u64 offset, nb_ctx ctx, nb_u64 *bytes_moved)
{
	return S(s)->MigrateFinish(offset, ctx, nullptr, bytes_moved);
}

int nbc_space_migrate_finish_mapped(nbc_space *s, nb_u64 offset, nb_ctx ctx,
				    const nbc_space_mapper *m, nb_u64 *bytes_moved)
{
	return S(s)->MigrateFinish(offset, ctx, m, bytes_moved);
}

int nbc_space_migrate(nbc_space *s, nb_u64 offset, int node, nb_ctx ctx,
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
	return S(s)->MigrateFinish(offset, ctx, nullptr, bytes_moved);
}

int nbc_space_query(nbc_space *s, nb_u64 offset, nbc_space_info *out)
{
	return S(s)->Query(offset, out);
}

int nbc_space_query_full(nbc_space *s, nb_u64 offset, nbc_space_info *out)
{
	return S(s)->QueryFull(offset, out);
}

nb_u64 nbc_space_huge_align(nbc_space *s, nb_u64 offset, nb_u64 len)
{
	return S(s)->HugeAlign(offset, len);
}

int nbc_space_set_quota(nbc_space *s, int node, nb_u64 bytes) { return S(s)->SetQuota(node, bytes); }
nb_u64 nbc_space_quota(nbc_space *s, int node) { return S(s)->Quota(node); }
nb_u64 nbc_space_node_bytes(nbc_space *s, int node) { return S(s)->NodeBytes(node); }
nb_u64 nbc_space_table_pages(nbc_space *s) { return S(s)->TablePages(); }

} // extern "C"
