/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nb_compat.h - every kernel-version difference the shim depends on, in one place.
 * mm_core is unaffected: it never sees a kernel header.
 */
#ifndef NB_COMPAT_H
#define NB_COMPAT_H

#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/version.h>

/* pfn_t went away with devmap (6.17): vmf_insert_pfn_pmd/pud take a plain pfn since. Tested
 * for by its header rather than a version: the two go together in every kernel. */
#if __has_include(<linux/pfn_t.h>)
#include <linux/pfn_t.h>
#define NB_HAVE_PFN_T 1
#else
#define NB_HAVE_PFN_T 0
#endif

/* Largest order the page allocator hands out: MAX_ORDER was exclusive until 6.4 renamed the
 * inclusive limit MAX_PAGE_ORDER (6.8). */
#if defined(MAX_PAGE_ORDER)
#define NB_KERNEL_MAX_ORDER MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define NB_KERNEL_MAX_ORDER MAX_ORDER
#else
#define NB_KERNEL_MAX_ORDER (MAX_ORDER - 1)
#endif

/* vm_flags became read-only outside helpers in 6.3. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define nb_vm_flags_set(vma, flags) vm_flags_set(vma, flags)
#define nb_vm_flags_clear(vma, flags) vm_flags_clear(vma, flags)
#else
static inline void nb_vm_flags_set(struct vm_area_struct *vma, unsigned long flags)
{
	vma->vm_flags |= flags;
}
static inline void nb_vm_flags_clear(struct vm_area_struct *vma, unsigned long flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * How a VMA gets huge_fault calls, and what the kernel then believes about its huge entries.
 *   < 6.15: huge_fault is called only for DAX VMAs (vma_is_dax: the host inode has S_DAX),
 *           and a DAX VMA's huge entries are special to zap and split (vma_is_special_huge):
 *           numabuddy's files are S_DAX inodes (nb_fs.c).
 *   6.15+:  fs/dax refcounts its pages (vmf_insert_folio_pmd/pud came with that), so a DAX
 *           VMA's huge entries are folios to zap and split: unmapping one would drop a
 *           reference and a mapcount that were never taken, freeing a pool frame to the page
 *           allocator (seen on 7.3: "Bad rss-counter", "Bad page state" at rmmod). A
 *           VM_PFNMAP VMA that has a huge_fault op gets huge faults without S_DAX (7.3: even
 *           with THP's sysfs switch off, vma_file_bypass_thp_tuneables), and zap and split
 *           treat its entries as special. So no S_DAX there.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 15, 0)
#define NB_INODE_S_DAX 0
#else
#define NB_INODE_S_DAX 1
#endif

/* Huge entries need THP (PREEMPT_RT kernels have none, 7.x's neither) and, where huge_fault
 * needs a DAX VMA, DAX; 1 GiB entries need the architecture's PUD support on top. Each size
 * also needs a way to make its entry unreachable for page references (below): special
 * (ARCH_SUPPORTS_*_PFNMAP) or devmap. Without one, that size is not mapped at all. */
#if IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE) && (IS_ENABLED(CONFIG_FS_DAX) || !NB_INODE_S_DAX) && \
	(IS_ENABLED(CONFIG_ARCH_SUPPORTS_PMD_PFNMAP) || IS_ENABLED(CONFIG_ARCH_HAS_PTE_DEVMAP))
#define NB_HAVE_HUGE_PMD 1
#else
#define NB_HAVE_HUGE_PMD 0
#endif
#if NB_HAVE_HUGE_PMD && IS_ENABLED(CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD) && \
	(IS_ENABLED(CONFIG_ARCH_SUPPORTS_PUD_PFNMAP) || IS_ENABLED(CONFIG_ARCH_HAS_PTE_DEVMAP))
#define NB_HAVE_HUGE_PUD 1
#else
#define NB_HAVE_HUGE_PUD 0
#endif

/*
 * Huge entries that the kernel's page-reference paths refuse, as they refuse our special PTEs.
 * Pool frames are plain page-allocator chunks (head refcount 1, tails 0) that numabuddy owns:
 * a reference taken through a mapping (get_user_pages from vmsplice, O_DIRECT, io_uring,
 * process_vm_readv, move_pages) would outlive FREE and reach the frame's next owner.
 *   6.12+: PFN PMDs/PUDs of a VM_PFNMAP VMA are special (ARCH_SUPPORTS_{PMD,PUD}_PFNMAP);
 *          GUP skips them.
 *   6.1:   no special huge entries: a plain PFN PMD looks like a transparent huge page and
 *          GUP grabs its struct page. Mark it devmap instead: GUP then wants the frame's
 *          dev_pagemap, which RAM never has, and fails with EFAULT (follow_devmap_pmd,
 *          __gup_device_huge). Unmap, split and mprotect treat devmap entries of a DAX VMA
 *          as special (vma_is_special_huge), so nothing else changes.
 *   6.17+: no pfn_t and no devmap: a PFN inserted by vmf_insert_pfn_pmd/pud is always
 *          special (insert_pmd/insert_pud: pmd_mkspecial, pud_mkspecial); only folios
 *          inserted with vmf_insert_folio_pmd/pud are refcounted, and we insert none.
 */
#if !NB_HAVE_PFN_T
#define nb_pmd_pfn(pfn) (pfn)
#define nb_pud_pfn(pfn) (pfn)
#else
#if IS_ENABLED(CONFIG_ARCH_SUPPORTS_PMD_PFNMAP)
#define nb_pmd_pfn(pfn) pfn_to_pfn_t(pfn)
#else
#define nb_pmd_pfn(pfn) __pfn_to_pfn_t(pfn, PFN_DEV | PFN_MAP)
#endif
#if IS_ENABLED(CONFIG_ARCH_SUPPORTS_PUD_PFNMAP)
#define nb_pud_pfn(pfn) pfn_to_pfn_t(pfn)
#else
#define nb_pud_pfn(pfn) __pfn_to_pfn_t(pfn, PFN_DEV | PFN_MAP)
#endif
#endif /* NB_HAVE_PFN_T */

/* huge_fault took an enum page_entry_size until 6.6, then the mapping order. NB_HUGE_FAULT
 * declares a handler `fn(struct vm_fault *vmf, unsigned int order)` with the right shape. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
#define NB_DEFINE_HUGE_FAULT(name, impl) \
	static vm_fault_t name(struct vm_fault *vmf, unsigned int order) \
	{ \
		return impl(vmf, order); \
	}
#else
#define NB_DEFINE_HUGE_FAULT(name, impl) \
	static vm_fault_t name(struct vm_fault *vmf, enum page_entry_size pe) \
	{ \
		return impl(vmf, pe == PE_SIZE_PUD ? PUD_SHIFT - PAGE_SHIFT : \
				 pe == PE_SIZE_PMD ? PMD_SHIFT - PAGE_SHIFT : 0); \
	}
#endif

/* The mm's own unmapped-area search: a hook in the mm_struct until 6.10, a function of the
 * mm until 6.19, which made it always search current->mm. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 19, 0)
#include <linux/sched/mm.h>
#define nb_mm_get_unmapped_area(file, addr, len, pgoff, flags) \
	mm_get_unmapped_area(file, addr, len, pgoff, flags)
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
#include <linux/sched/mm.h>
#define nb_mm_get_unmapped_area(file, addr, len, pgoff, flags) \
	mm_get_unmapped_area(current->mm, file, addr, len, pgoff, flags)
#else
#define nb_mm_get_unmapped_area(file, addr, len, pgoff, flags) \
	current->mm->get_unmapped_area(file, addr, len, pgoff, flags)
#endif

/* Zap the entries of part of a VM_PFNMAP VMA: zap_vma_ptes() was renamed in 7.1, same
 * contract (does nothing outside the VMA or for a VMA without PFN mappings). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 1, 0)
#define nb_zap_special_range(vma, addr, size) zap_special_vma_range(vma, addr, size)
#else
#define nb_zap_special_range(vma, addr, size) zap_vma_ptes(vma, addr, size)
#endif

/* Importing the DMA_BUF symbol namespace: a string literal since 6.13. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
#define NB_MODULE_IMPORT_NS_DMA_BUF MODULE_IMPORT_NS("DMA_BUF")
#else
#define NB_MODULE_IMPORT_NS_DMA_BUF MODULE_IMPORT_NS(DMA_BUF)
#endif

#endif /* NB_COMPAT_H */
