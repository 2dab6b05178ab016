// SPDX-License-Identifier: GPL-2.0
/*
 * nb_walk.c - NB_IOC_WALK: walk the calling process's real page tables at one address.
 *
 * A diagnostic for tests (CAP_SYS_ADMIN): the mapping size and frame come from the hardware
 * page tables, not from mm_core's software table, so a test can prove that a 2 MiB block is
 * really PMD-mapped and on the node it claims.
 */
#include <linux/mm.h>
#include <linux/pgtable.h>

#include "nb_internal.h"
#include "numabuddy.h"

static int nb_kernel_pfn_node(unsigned long pfn)
{
	return pfn_valid(pfn) ? page_to_nid(pfn_to_page(pfn)) : -1;
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
		goto out;
	}
	pmd = pmd_offset(pud, addr);
	pmdv = READ_ONCE(*pmd);
	if (pmd_none(pmdv))
		goto out;
	if (pmd_leaf(pmdv)) {
		w->level = NB_WALK_PMD;
		w->pfn = pmd_pfn(pmdv) + ((addr & ~PMD_MASK) >> PAGE_SHIFT);
		goto out;
	}
	if (pmd_bad(pmdv))
		goto out;
	/* x86-64 has no highmem: the PTE table is in the direct map. pte_offset_map() would
	 * need __pte_offset_map, which 6.12 no longer exports. */
	pte = (pte_t *)pmd_page_vaddr(pmdv) + pte_index(addr);
	ptev = READ_ONCE(*pte);
	if (pte_present(ptev)) {
		w->level = NB_WALK_PTE;
		w->pfn = pte_pfn(ptev);
	}
out:
	mmap_read_unlock(mm);
	if (w->level != NB_WALK_NONE)
		w->node = nb_kernel_pfn_node(w->pfn);
	return 0;
}
