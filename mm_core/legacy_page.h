/* SPDX-License-Identifier: GPL-2.0 */
/*
 * legacy_page.h - the integration guide's legacy alloc_page()/free_page(), for code being ported.
 *
 * Named nbc_legacy_* so they never clash with Linux's alloc_page/free_page. One frame, the
 * calling CPU's node with fallback, returned as a pfn (0 is a valid pfn, so failure is
 * reported through the return code, not a NULL page). New code calls nbc_alloc directly.
 */
#ifndef NBC_LEGACY_PAGE_H
#define NBC_LEGACY_PAGE_H

#include "nbc_core.h"

/* Legacy: void *page = alloc_page();  Now: nbc_legacy_alloc_page(core, ctx, &pfn). */
static inline int nbc_legacy_alloc_page(struct nbc_core *c, enum nb_ctx ctx, nb_u64 *pfn)
{
	return nbc_buddy_alloc(c, 0, -1, 0, ctx, pfn);
}

/* Legacy: free_page(page). */
static inline int nbc_legacy_free_page(struct nbc_core *c, nb_u64 pfn)
{
	return nbc_buddy_free(c, pfn, 0);
}

/* The guide's direct-pointer flavour: the frame's address, or NULL when the pool is empty. */
static inline void *nbc_legacy_alloc_page_addr(struct nbc_core *c, enum nb_ctx ctx)
{
	nb_u64 pfn;
	return nbc_legacy_alloc_page(c, ctx, &pfn) == 0 ? nb_env_frame_addr(pfn) : (void *)0;
}

#endif /* NBC_LEGACY_PAGE_H */
