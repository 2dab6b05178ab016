// SPDX-License-Identifier: GPL-2.0
/*
 * nb_walk.c - NB_IOC_WALK: walk the calling process's real page tables at one address.
 *
 * A diagnostic for tests (CAP_SYS_ADMIN): the mapping size and frame come from the hardware
 * page tables, not from mm_core's software table, so a test can prove that a 2 MiB block is
 * really PMD-mapped, on the node it claims and cached write-back.
 */
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/rcupdate.h>

#include "nb_internal.h"
#include "numabuddy.h"

static int nb_kernel_pfn_node(unsigned long pfn)
{
	return pfn_valid(pfn) ? page_to_nid(pfn_to_page(pfn)) : -1;
}

/*
 * The memory type of an entry with these flags (a 4 KiB entry's layout: PMD/PUD flags go
 * through protval_large_2_4k first). x86 does not export pgprot2cachemode(), so each type's
 * bits (cachemode2protval(), which reflects how this CPU's PAT is programmed) are compared
 * in turn; WB first, as types that PAT cannot tell apart share WB's or UC-'s bits.
 */
static u32 nb_cache_mode(pgprotval_t flags)
{
	static const enum page_cache_mode modes[] = {
		_PAGE_CACHE_MODE_WB, _PAGE_CACHE_MODE_UC_MINUS, _PAGE_CACHE_MODE_WC,
		_PAGE_CACHE_MODE_UC, _PAGE_CACHE_MODE_WT,	_PAGE_CACHE_MODE_WP,
	};
	const pgprotval_t mask = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT;
	unsigned int i;

	BUILD_BUG_ON(NB_CACHE_WB != _PAGE_CACHE_MODE_WB || NB_CACHE_WC != _PAGE_CACHE_MODE_WC ||
		     NB_CACHE_UC_MINUS != _PAGE_CACHE_MODE_UC_MINUS ||
		     NB_CACHE_UC != _PAGE_CACHE_MODE_UC || NB_CACHE_WT != _PAGE_CACHE_MODE_WT ||
		     NB_CACHE_WP != _PAGE_CACHE_MODE_WP);
	for (i = 0; i < ARRAY_SIZE(modes); i++)
		if ((flags & mask) == (cachemode2protval(modes[i]) & mask))
			return modes[i];
	return NB_CACHE_UNKNOWN;
}

int nb_walk_user(struct nb_walk *w)
{
	struct mm_struct *mm = current->mm;
	unsigned long addr = w->addr;
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud, pudv;
	pmd_t *pmd, pmdv;
	pte_t *pte, ptev;

	w->level = NB_WALK_NONE;
	w->cache = 0;
	w->pfn = 0;
	w->node = -1;
	if (addr >= TASK_SIZE)
		return -EINVAL;
	mmap_read_lock(mm);
	pgd = pgd_offset(mm, addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		goto out;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		goto out;
	pud = pud_offset(p4d, addr);
	pudv = READ_ONCE(*pud);
	if (pud_none(pudv))
		goto out;
	if (pud_leaf(pudv)) {
		w->level = NB_WALK_PUD;
		w->pfn = pud_pfn(pudv) + ((addr & ~PUD_MASK) >> PAGE_SHIFT);
		w->cache = nb_cache_mode(protval_large_2_4k(pud_flags(pudv)));
		goto out;
	}
	pmd = pmd_offset(pud, addr);
	pmdv = READ_ONCE(*pmd);
	if (pmd_none(pmdv))
		goto out;
	if (pmd_leaf(pmdv)) {
		w->level = NB_WALK_PMD;
		w->pfn = pmd_pfn(pmdv) + ((addr & ~PMD_MASK) >> PAGE_SHIFT);
		w->cache = nb_cache_mode(protval_large_2_4k(pmd_flags(pmdv)));
		goto out;
	}
	/*
	 * The PTE table, as pte_offset_map() reads it (its __pte_offset_map is not exported to
	 * modules on 6.12). Since 6.5 a PTE table can be freed with only mmap_read_lock held
	 * (khugepaged's retract_page_tables), but only after an RCU grace period
	 * (pte_free_defer): so under rcu_read_lock, re-read the PMD and take the table from
	 * that value, never from the one read before. x86-64 has no highmem: the table is in
	 * the direct map. On 6.1 the mmap lock alone suffices; RCU costs nothing there.
	 */
	rcu_read_lock();
	pmdv = READ_ONCE(*pmd); /* pmdp_get_lockless() on x86-64; 6.1 lacks the helper */
	if (!pmd_none(pmdv) && !pmd_leaf(pmdv) && !pmd_bad(pmdv)) {
		pte = pte_offset_kernel(&pmdv, addr);
		ptev = READ_ONCE(*pte);
		if (pte_present(ptev)) {
			w->level = NB_WALK_PTE;
			w->pfn = pte_pfn(ptev);
			w->cache = nb_cache_mode(pte_flags(ptev));
		}
	}
	rcu_read_unlock();
out:
	mmap_read_unlock(mm);
	if (w->level != NB_WALK_NONE)
		w->node = nb_kernel_pfn_node(w->pfn);
	return 0;
}
