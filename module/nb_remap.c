// SPDX-License-Identifier: GPL-2.0
/*
 * nb_remap.c - MIGRATE without re-faults: the mapper of nbc_space_migrate_finish_mapped.
 *
 * What we would like is move_pages' way: switch every entry from the old frame to the new
 * one in place (PTE, PMD or PUD at its size) and flush each mm's TLB once per batch. A
 * module cannot do that on Debian's 6.1 or 6.12 (checked in their Module.symvers): nothing
 * that flushes a user mm's TLB is exported (flush_tlb_mm_range, flush_tlb_range,
 * ptep_clear_flush, pmdp_huge_clear_flush), nor the secondary-MMU notifier that a changed
 * entry needs (__mmu_notifier_invalidate_range_start); 6.12 does not export
 * __pte_offset_map_lock either, and apply_to_existing_page_range WARNs on PMD/PUD leaves
 * (apply_to_pmd_range/apply_to_pud_range) and flushes nothing. Rewriting an entry without a
 * flush leaves other CPUs writing to the old frame through their TLB after it was copied.
 *
 * So each batch (at most 2 MiB, or one larger frame) is unmapped the kernel's way,
 * unmap_mapping_range (cleared, flushed, notifiers told, in every mapping: fork children and
 * mremap'd copies are all in the file's i_mmap tree), the core copies it, and then the new
 * frames go straight back into every VMA of the file here, before anyone faults:
 *   - each VMA of the i_mmap tree that overlaps the batch, under i_mmap_rwsem for read (what
 *     keeps the VMA and its page tables from being freed: free_pgtables unlinks a VMA from
 *     the tree, under the rwsem for write, before it frees its tables);
 *   - with its mm's mmap_lock taken for read by trylock: the lock a fault holds, which keeps
 *     munmap, mremap, mprotect and fork (all writers) away while we insert. The rwsem is
 *     taken before mmap_lock here, the reverse of the fault path's order, so only a trylock
 *     is allowed; a busy mm is skipped and faults back in, as before. mm_users is held
 *     (mmget_not_zero) so exit_mmap cannot run meanwhile; mmput_async, since the last put
 *     would take i_mmap_rwsem for write under our read hold;
 *   - with the fault path's own inserts (vmf_insert_pfn, vmf_insert_pfn_pmd/pud, the
 *     protection the VMA has now): a PUD where the slot is empty and the VMA, offset and
 *     frame allow one; a PMD likewise under an existing PMD table; PTEs only under an
 *     existing PTE table. The zap leaves tables in place, so the size an entry had is the
 *     size it gets again, and nothing allocates page tables in a foreign mm. Where no table
 *     reaches a frame (nothing near it was ever mapped in that VMA) it stays unmapped;
 *     within tables that exist, every frame of the batch is mapped, as if touched;
 *   - pinnable blocks (VM_MIXEDMAP) are left to fault: their MIGRATE zaps the whole block
 *     first to check page references (nb_pin.c).
 * A fault that arrives meanwhile waits for the migration (nb_fault_lookup) and then finds
 * the entry there; the range is MIGRATING throughout, so no fault can insert an old frame.
 * Compaction (nb_compact.c) moves frames with the same two calls.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/percpu.h>
#include <linux/rbtree.h>
#include <linux/sched/mm.h>

#include "nb_internal.h"
#include "nbc_space.h"
#include "nb_compat.h"
#include "nb_file.h"

atomic64_t nb_stat_remap_entries, nb_stat_remap_busy_mms;

/* Entries inserted into one VMA for frames [pfn, pfn + nr) at offsets [off, ...). */
static void nb_remap_vma(struct vm_area_struct *vma, u64 off, unsigned long pfn, u64 nr)
{
	struct mm_struct *mm = vma->vm_mm;
	u64 vstart = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 from = max(off, vstart);
	u64 to = min(off + (nr << PAGE_SHIFT), vstart + (vma->vm_end - vma->vm_start));
	u64 o = from, inserted = 0;

	while (o < to) {
		unsigned long addr = vma->vm_start + (o - vstart);
		unsigned long p = pfn + ((o - off) >> PAGE_SHIFT);
		pgd_t *pgd = pgd_offset(mm, addr);
		p4d_t *p4d;
		pud_t *pud;
		pmd_t *pmd;
		unsigned long next;

		/* No table down to the level: nothing was mapped in this whole stretch. */
		if (pgd_none(*pgd) || pgd_bad(*pgd)) {
			o += pgd_addr_end(addr, addr + (to - o)) - addr;
			continue;
		}
		p4d = p4d_offset(pgd, addr);
		if (p4d_none(*p4d) || p4d_bad(*p4d)) {
			o += p4d_addr_end(addr, addr + (to - o)) - addr;
			continue;
		}
		pud = pud_offset(p4d, addr);
		next = pud_addr_end(addr, addr + (to - o));
#if NB_HAVE_HUGE_PUD
		if (pud_none(READ_ONCE(*pud)) && IS_ALIGNED(addr, PUD_SIZE) &&
		    IS_ALIGNED(o, PUD_SIZE) && IS_ALIGNED(p, PUD_SIZE >> PAGE_SHIFT) &&
		    to - o >= PUD_SIZE && addr + PUD_SIZE <= vma->vm_end) {
			struct vm_fault vmf = { .vma = vma, .address = addr, .pud = pud };

			if (vmf_insert_pfn_pud(&vmf, nb_pud_pfn(p), false) == VM_FAULT_NOPAGE)
				inserted++;
			o += PUD_SIZE;
			continue;
		}
#endif
		if (pud_none(READ_ONCE(*pud)) || pud_leaf(READ_ONCE(*pud)) || pud_bad(*pud)) {
			o += next - addr;
			continue;
		}
		pmd = pmd_offset(pud, addr);
		next = pmd_addr_end(addr, addr + (to - o));
#if NB_HAVE_HUGE_PMD
		if (pmd_none(READ_ONCE(*pmd)) && IS_ALIGNED(addr, PMD_SIZE) &&
		    IS_ALIGNED(o, PMD_SIZE) && IS_ALIGNED(p, PMD_SIZE >> PAGE_SHIFT) &&
		    to - o >= PMD_SIZE && addr + PMD_SIZE <= vma->vm_end) {
			struct vm_fault vmf = { .vma = vma, .address = addr, .pmd = pmd };

			if (vmf_insert_pfn_pmd(&vmf, nb_pmd_pfn(p), false) == VM_FAULT_NOPAGE)
				inserted++;
			o += PMD_SIZE;
			continue;
		}
#endif
		if (pmd_none(READ_ONCE(*pmd)) || pmd_leaf(READ_ONCE(*pmd)) || pmd_bad(*pmd)) {
			o += next - addr;
			continue;
		}
		/* A PTE table: vmf_insert_pfn finds it (get_locked_pte allocates nothing). */
		for (; addr < next; addr += PAGE_SIZE, o += PAGE_SIZE, p++)
			if (vmf_insert_pfn(vma, addr, p) == VM_FAULT_NOPAGE)
				inserted++;
	}
	atomic64_add(inserted, &nb_stat_remap_entries);
}

void nb_remap_unmap(void *arg, nb_u64 offset, nb_u64 len)
{
	nb_zap_range(arg, offset, len);
}

void nb_remap_map(void *arg, nb_u64 offset, nb_u64 pfn, nb_u64 nr_frames)
{
	struct nb_file *nf = arg;
	struct address_space *mapping = nf->inode->i_mapping;
	u64 end = offset + (nr_frames << PAGE_SHIFT);
	struct rb_node *nd;

	i_mmap_lock_read(mapping);
	/* In tree order, as rmap walks: a VMA that fork or mremap is adding sits after its
	 * source, and both are skipped anyway, their mm being write-locked. */
	for (nd = rb_first(&mapping->i_mmap.rb_root); nd; nd = rb_next(nd)) {
		struct vm_area_struct *vma = rb_entry(nd, struct vm_area_struct, shared.rb);
		u64 vstart = (u64)vma->vm_pgoff << PAGE_SHIFT;
		u64 vend = vstart + (vma->vm_end - vma->vm_start);
		struct mm_struct *mm = vma->vm_mm;

		if (vend <= offset || vstart >= end || !(vma->vm_flags & VM_PFNMAP))
			continue;
		if (!mmget_not_zero(mm))
			continue;
		if (mmap_read_trylock(mm)) {
			nb_remap_vma(vma, offset, pfn, nr_frames);
			mmap_read_unlock(mm);
		} else {
			atomic64_inc(&nb_stat_remap_busy_mms);
		}
		mmput_async(mm);
	}
	i_mmap_unlock_read(mapping);
	cond_resched();
}

int nb_remap_migrate(struct nb_file *nf, u64 offset, nb_u64 *bytes_moved)
{
	struct nbc_space_mapper m = {
		.unmap = nb_remap_unmap,
		.map = nb_remap_map,
		.arg = nf,
	};

	return nbc_space_migrate_finish_mapped(nf->space, offset, NB_CTX_SLEEP, &m, bytes_moved);
}
