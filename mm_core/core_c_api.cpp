// SPDX-License-Identifier: GPL-2.0
/*
 * core_c_api.cpp - the extern "C" face of mm_core (nbc_core.h): argument checks and one call each.
 * struct nbc_core is an opaque handle for nb::Core.
 */
#include "core.h"

using nb::Core;

static Core *C(nbc_core *c) { return reinterpret_cast<Core *>(c); }
static const Core *C(const nbc_core *c) { return reinterpret_cast<const Core *>(c); }

extern "C" {

int nbc_core_create(const struct nbc_bootinfo *bi, struct nbc_core **out)
{
	if (out == nullptr)
		return -NB_EINVAL;
	Core *c;
	int rc = Core::Create(bi, &c);
	if (rc == 0)
		*out = reinterpret_cast<nbc_core *>(c);
	return rc;
}

int nbc_core_destroy(struct nbc_core *c)
{
	return c == nullptr ? 0 : C(c)->Destroy();
}

int nbc_core_add_region(struct nbc_core *c, const struct nbc_region *r)
{
	return C(c)->AddRegion(r);
}

int nbc_core_remove_region(struct nbc_core *c, nb_u64 start_pfn, nb_u64 nr_frames)
{
	return C(c)->RemoveRegion(start_pfn, nr_frames);
}

int nbc_alloc(struct nbc_core *c, unsigned order, const struct nbc_policy *pol, unsigned flags,
	      enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out)
{
	return C(c)->Alloc(order, pol, flags, ctx, pfn_out, node_out);
}

int nbc_alloc_zeroed(struct nbc_core *c, unsigned order, const struct nbc_policy *pol,
		     unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out,
		     int *zeroed_out)
{
	bool z = false;
	int rc = C(c)->Alloc(order, pol, flags, ctx, pfn_out, node_out, &z);
	if (zeroed_out != nullptr)
		*zeroed_out = rc == 0 && z;
	return rc;
}

int nbc_buddy_alloc(struct nbc_core *c, unsigned order, int node, unsigned flags, enum nb_ctx ctx,
		    nb_u64 *pfn_out)
{
	nbc_policy pol = {};
	pol.mode = NBC_POLICY_PREFERRED;
	pol.node = node;
	return C(c)->Alloc(order, &pol, flags, ctx, pfn_out, nullptr);
}

int nbc_buddy_free(struct nbc_core *c, nb_u64 pfn, unsigned order)
{
	return C(c)->Free(pfn, order);
}

int nbc_alloc_contig(struct nbc_core *c, nb_u64 nr_frames, const struct nbc_policy *pol,
		     unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out)
{
	return C(c)->AllocContig(nr_frames, pol, flags, ctx, pfn_out, node_out);
}

int nbc_free_range(struct nbc_core *c, nb_u64 pfn, nb_u64 nr_frames)
{
	return C(c)->FreeRange(pfn, nr_frames);
}

int nbc_alloc_contig_zeroed(struct nbc_core *c, nb_u64 nr_frames, const struct nbc_policy *pol,
			    unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out,
			    int *zeroed_out)
{
	bool z = false;
	int rc = C(c)->AllocContig(nr_frames, pol, flags, ctx, pfn_out, node_out, &z);
	if (zeroed_out != nullptr)
		*zeroed_out = rc == 0 && z;
	return rc;
}

nb_i64 nbc_core_prezero(struct nbc_core *c, int node, nb_u64 max_frames, enum nb_ctx ctx)
{
	return C(c)->Prezero(node, max_frames, ctx);
}

int nbc_buddy_migrate(struct nbc_core *c, nb_u64 pfn, unsigned order, int old_node, int new_node,
		      enum nb_ctx ctx, nb_u64 *new_pfn)
{
	return C(c)->Migrate(pfn, order, old_node, new_node, ctx, new_pfn);
}

int nbc_current_cpu_node(struct nbc_core *c)
{
	return C(c)->CurrentNode();
}

int nbc_pfn_node(const struct nbc_core *c, nb_u64 pfn)
{
	return C(c)->PfnNode(pfn);
}

nb_u64 nbc_nodes_with_memory(const struct nbc_core *c)
{
	return C(c)->numa().mem_mask();
}

unsigned nbc_fallback_order(const struct nbc_core *c, int node, int *out, unsigned max)
{
	const nb::Numa &numa = C(c)->numa();
	if (node < 0 || static_cast<unsigned>(node) >= numa.node_ids() || out == nullptr)
		return 0;
	unsigned n;
	const nb::u8 *fb = numa.Fallback(node, &n);
	n = nb::Min(n, max);
	for (unsigned i = 0; i < n; i++)
		out[i] = fb[i];
	return n;
}

void *nbc_kalloc(struct nbc_core *c, nb_size_t size, int node, enum nb_ctx ctx)
{
	return C(c)->KAlloc(size, node, ctx);
}

void nbc_kfree(struct nbc_core *c, void *p)
{
	C(c)->KFree(p);
}

void nbc_pcp_drain(struct nbc_core *c)
{
	C(c)->DrainAll();
}

void nbc_pcp_drain_after_free(struct nbc_core *c, nb_u64 frames, nb_u64 blocks)
{
	C(c)->DrainAfterFree(frames, blocks);
}

int nbc_policy_normalize(struct nbc_core *c, const struct nbc_policy *in, struct nbc_policy *out)
{
	return C(c)->numa().Normalize(in, nb_env_cpu_current(), out);
}

unsigned nbc_max_order(const struct nbc_core *c)
{
	return C(c)->max_order();
}

nb_u64 nbc_pool_frames(const struct nbc_core *c, int node)
{
	return C(c)->PoolFrames(node);
}

int nbc_node_stats(struct nbc_core *c, int node, struct nbc_node_stats *out)
{
	return C(c)->Stats(node, out);
}

int nbc_check(struct nbc_core *c)
{
	return C(c)->Check();
}

void nbc_buddy_debug_print(struct nbc_core *c, void (*emit)(void *arg, const char *line), void *arg)
{
	C(c)->DebugPrint(emit, arg);
}

} /* extern "C" */
