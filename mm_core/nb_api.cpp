// SPDX-License-Identifier: GPL-2.0
/*
 * nb_api.cpp - the extern "C" face of mm_core (nb_core.h): argument checks and one call each.
 * struct nb_core is an opaque handle for nb::Core.
 */
#include "core.h"

using nb::Core;

static Core *C(nb_core *c) { return reinterpret_cast<Core *>(c); }
static const Core *C(const nb_core *c) { return reinterpret_cast<const Core *>(c); }

extern "C" {

int nb_core_create(const struct nb_bootinfo *bi, struct nb_core **out)
{
	if (out == nullptr)
		return -NB_EINVAL;
	Core *c;
	int rc = Core::Create(bi, &c);
	if (rc == 0)
		*out = reinterpret_cast<nb_core *>(c);
	return rc;
}

int nb_core_destroy(struct nb_core *c)
{
	return c == nullptr ? 0 : C(c)->Destroy();
}

int nb_alloc(struct nb_core *c, unsigned order, const struct nb_policy *pol, unsigned flags,
	     enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out)
{
	return C(c)->Alloc(order, pol, flags, ctx, pfn_out, node_out);
}

int nb_buddy_alloc(struct nb_core *c, unsigned order, int node, unsigned flags, enum nb_ctx ctx,
		   nb_u64 *pfn_out)
{
	nb_policy pol = {};
	pol.mode = NB_POLICY_PREFERRED;
	pol.node = node;
	return C(c)->Alloc(order, &pol, flags, ctx, pfn_out, nullptr);
}

int nb_buddy_free(struct nb_core *c, nb_u64 pfn, unsigned order)
{
	return C(c)->Free(pfn, order);
}

int nb_alloc_contig(struct nb_core *c, nb_u64 nr_frames, const struct nb_policy *pol,
		    unsigned flags, enum nb_ctx ctx, nb_u64 *pfn_out, int *node_out)
{
	return C(c)->AllocContig(nr_frames, pol, flags, ctx, pfn_out, node_out);
}

int nb_free_range(struct nb_core *c, nb_u64 pfn, nb_u64 nr_frames)
{
	return C(c)->FreeRange(pfn, nr_frames);
}

int nb_buddy_migrate(struct nb_core *c, nb_u64 pfn, unsigned order, int old_node, int new_node,
		     enum nb_ctx ctx, nb_u64 *new_pfn)
{
	return C(c)->Migrate(pfn, order, old_node, new_node, ctx, new_pfn);
}

int nb_current_cpu_node(struct nb_core *c)
{
	return C(c)->CurrentNode();
}

int nb_pfn_node(const struct nb_core *c, nb_u64 pfn)
{
	return C(c)->PfnNode(pfn);
}

nb_u64 nb_nodes_with_memory(const struct nb_core *c)
{
	return C(c)->numa().mem_mask();
}

unsigned nb_fallback_order(const struct nb_core *c, int node, int *out, unsigned max)
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

void *nb_kalloc(struct nb_core *c, nb_size_t size, int node, enum nb_ctx ctx)
{
	return C(c)->KAlloc(size, node, ctx);
}

void nb_kfree(struct nb_core *c, void *p)
{
	C(c)->KFree(p);
}

void nb_pcp_drain(struct nb_core *c)
{
	C(c)->DrainAll();
}

int nb_node_stats(struct nb_core *c, int node, struct nb_node_stats *out)
{
	return C(c)->Stats(node, out);
}

int nb_check(struct nb_core *c)
{
	return C(c)->Check();
}

void nb_buddy_debug_print(struct nb_core *c, void (*emit)(void *arg, const char *line), void *arg)
{
	C(c)->DebugPrint(emit, arg);
}

} /* extern "C" */
