// SPDX-License-Identifier: GPL-2.0
/*
 * nb_vma.c - mmap of /dev/numabuddy and the fault handlers: the guide's page-fault entry on
 * the Linux side. mm_core says which frame backs an offset; this file inserts the PTE, PMD
 * or PUD, and places mappings so that huge entries fit. Locking: nb_file.h.
 */
#include <linux/fs.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/wait.h>

#include "nb_internal.h"
#include "nbc_space.h"
#include "nb_compat.h"
#include "nb_file.h"
#include "nb_pin.h"

/* Fault handler calls, for debugfs: per CPU, so counting costs faults no shared line. */
static DEFINE_PER_CPU(u64, nb_faults);

u64 nb_stat_faults(void)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(nb_faults, cpu);
	return sum;
}

/* SIGBUS answers by errno, for debugfs: why a process got one is otherwise invisible. */
static atomic64_t nb_sigbus_by_errno[NB_SIGBUS_ERRNOS];

static void nb_count_sigbus(int err)
{
	atomic64_inc(&nb_sigbus_by_errno[clamp(-err, 0, NB_SIGBUS_ERRNOS - 1)]);
}

u64 nb_stat_sigbus(int errno_value)
{
	return atomic64_read(&nb_sigbus_by_errno[errno_value]);
}

/*
 * A fault mm_core cannot serve is SIGBUS, as for tmpfs or hugetlbfs at their limits: out of
 * frames or over quota included. VM_FAULT_OOM would not reach the OOM killer from a device
 * fault; since 5.16 the #PF handler just logs it and retries, spinning forever.
 */
static vm_fault_t nb_errno_to_fault(int err)
{
	nb_count_error(err);
	nb_count_sigbus(err);
	return VM_FAULT_SIGBUS;
}

/*
 * mm_core's answer for a fault at offset: 0 with zap_lock held for read (the caller inserts
 * the entry, then drops it), or a VM_FAULT_* code.
 */
static vm_fault_t nb_fault_lookup(struct vm_fault *vmf, struct nb_file *nf, u64 offset,
				  unsigned int order, struct nbc_space_fault_result *r)
{
	int gen, err;

	this_cpu_inc(nb_faults);
	for (;;) {
		gen = atomic_read(&nf->migrate_gen);
		down_read(&nf->zap_lock);
		err = nbc_space_fault(nf->space, offset, !!(vmf->flags & FAULT_FLAG_WRITE),
				     raw_smp_processor_id(), order, NB_CTX_SLEEP, r);
		if (err != -EAGAIN)
			break;
		up_read(&nf->zap_lock);
		/* Migrating: sleep until that migration ends, then ask again. */
		if (wait_event_killable(nf->migrate_wq, atomic_read(&nf->migrate_gen) != gen))
			return nb_errno_to_fault(-EINTR);
	}
	if (err) {
		up_read(&nf->zap_lock);
		return nb_errno_to_fault(err);
	}
	return 0;
}

/*
 * Fault-around for blocks (r.block), which are populated whole at ALLOC: after the faulting
 * entry, the block's other pages in the same 64 KiB window (NBC_SPACE_AROUND_PAGES) are
 * inserted too, as filemap_map_pages does for the page cache, so reading a 64 KiB block is
 * one fault, not 16 (a reserved range's first touch pays nothing for it). Called with zap_lock still held for read, so no FREE or MIGRATE can take the frames
 * before they are in. Bounds: the VMA (never an address outside it) and the 2 MiB the fault
 * address lies in, whose PMD is a page table (this is a PTE fault): a neighbour across a PMD
 * boundary could sit under a huge PMD entry, which get_locked_pte() would misread on 6.1.
 * Both inserts leave an entry that is already there alone (6.1 and 6.12: vmf_insert_pfn's
 * insert_pfn() returns without touching a present PTE when !mkwrite, vm_insert_page's
 * insert_page_into_pte_locked() returns -EBUSY), and both take vma->vm_page_prot, so a
 * read-only VMA gets read-only entries; a page mm_core holds read-only is left to its own
 * fault in a writable VMA. Best effort: a page that fails to go in faults on its own later.
 */
static void nb_fault_around(struct vm_fault *vmf, struct nb_file *nf, u64 offset, bool pin)
{
	struct vm_area_struct *vma = vmf->vma;
	u64 vma_off = (u64)vma->vm_pgoff << PAGE_SHIFT; /* the offset vm_start maps */
	unsigned long lo = max(vma->vm_start, vmf->address & PMD_MASK);
	unsigned long hi = min(vma->vm_end, (vmf->address & PMD_MASK) + PMD_SIZE);
	struct nbc_space_around ar;
	unsigned int i;

	if (nbc_space_fault_around(nf->space, offset, vma_off + (lo - vma->vm_start),
				   vma_off + (hi - vma->vm_start), &ar))
		return;
	for (i = 0; i < ar.nr_pages; i++) {
		u64 off = ar.offset + (u64)i * PAGE_SIZE;
		unsigned long addr = vma->vm_start + (unsigned long)(off - vma_off);

		if (off == offset || ar.pfn[i] == NBC_SPACE_NO_PFN)
			continue;
		if (!(ar.writable & (1u << i)) && (vma->vm_flags & VM_WRITE))
			continue;
		if (pin)
			vm_insert_page(vma, addr, pfn_to_page(ar.pfn[i]));
		else
			vmf_insert_pfn(vma, addr, ar.pfn[i]);
	}
}

/*
 * The guide's paging_handle_fault, Linux side: ask mm_core what backs this offset (at most
 * 2^order frames as one entry), insert it. The huge path falls back when the VMA cannot hold
 * an aligned entry here or mm_core has only a smaller frame.
 *
 * mm_core is asked about the page that faulted, not the start of the aligned entry: in a
 * reserved range a first touch populates the offset it is given, and a huge fault asking
 * for the aligned start would populate a page nobody touched (once per 4 KiB-populated
 * chunk) and, with the pools empty, turn a read of a page that is there into a SIGBUS.
 */
static vm_fault_t nb_handle_fault(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct nb_file *nf = vma->vm_file->private_data;
	unsigned long size = PAGE_SIZE << order;
	unsigned long addr = vmf->address & ~(size - 1);
	u64 vma_off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 offset = vma_off + (addr - vma->vm_start);
	struct nbc_space_fault_result r;
	vm_fault_t ret;

	if (order && (addr < vma->vm_start || addr + size > vma->vm_end || (offset & (size - 1))))
		return VM_FAULT_FALLBACK;
	ret = nb_fault_lookup(vmf, nf, vma_off + ((vmf->address & PAGE_MASK) - vma->vm_start),
			      order, &r);
	if (ret)
		return ret;
	if (r.order != order) {
		up_read(&nf->zap_lock);
		return VM_FAULT_FALLBACK; /* only a smaller frame here: the PTE path maps it */
	}
	switch (order) {
	case 0:
		ret = vmf_insert_pfn(vma, addr, r.pfn);
		if (ret == VM_FAULT_NOPAGE && r.block)
			nb_fault_around(vmf, nf, offset, false);
		break;
#if NB_HAVE_HUGE_PMD
	case PMD_SHIFT - PAGE_SHIFT:
		ret = vmf_insert_pfn_pmd(vmf, nb_pmd_pfn(r.pfn), r.writable);
		break;
#endif
#if NB_HAVE_HUGE_PUD
	case PUD_SHIFT - PAGE_SHIFT:
		ret = vmf_insert_pfn_pud(vmf, nb_pud_pfn(r.pfn), r.writable);
		break;
#endif
	default:
		ret = VM_FAULT_FALLBACK;
		break;
	}
	up_read(&nf->zap_lock);
	return ret;
}

static vm_fault_t nb_fault(struct vm_fault *vmf)
{
	return nb_handle_fault(vmf, 0);
}

#if NB_HAVE_HUGE_PMD
NB_DEFINE_HUGE_FAULT(nb_huge_fault, nb_handle_fault)
#endif

#if NB_HAVE_HUGE_PUD
/*
 * 1 GiB entries and the kernel's VMA surgery. Neither 6.1 nor 6.12 expects a PFN PUD leaf in
 * a VMA that is split, moved or (6.1) mprotected: __split_vma never splits a PUD leaf, so one
 * entry would span two VMAs; mremap's get_old_pud() and 6.1's change_pud_range() take a leaf
 * for a corrupt table ("bad pud") and clear it without a TLB flush, so a thread that has the
 * translation cached keeps access after a later FREE. So the GiB windows such an operation
 * touches are zapped first, the proper way (cleared, then flushed); later faults map them
 * again, with a 1 GiB entry only where a whole aligned GiB still lies in one VMA.
 *   - split (munmap, mprotect or madvise of part of a VMA, mremap of part), mremap move and
 *     fork call vm_ops->open on the new VMA first, with the VMAs involved write-locked. A VMA
 *     with a close op is never merged (is_mergeable_vma), so mremap's copy_vma always makes a
 *     new VMA and calls open; the empty nb_vma_close is there for that.
 *   - mprotect calls vm_ops->mprotect before it changes any entry.
 * Windows without a 1 GiB frame behind them are left alone (nbc_space_huge_align).
 */
static bool nb_gib_window_mappable(struct nb_file *nf, u64 off)
{
	return nbc_space_huge_align(nf->space, off, PUD_SIZE) >= PUD_SIZE;
}

static void nb_vma_open(struct vm_area_struct *vma)
{
	struct nb_file *nf = vma->vm_file->private_data;
	u64 start = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 end = start + (vma->vm_end - vma->vm_start);
	u64 off;

	/* Every mapping of the file: the VMA this one was split or copied from included. */
	for (off = round_down(start, PUD_SIZE); off < end; off += PUD_SIZE)
		if (nb_gib_window_mappable(nf, off))
			unmap_mapping_range(vma->vm_file->f_mapping, off, PUD_SIZE, 1);
}

static void nb_vma_close(struct vm_area_struct *vma)
{
}

static int nb_vma_mprotect(struct vm_area_struct *vma, unsigned long start, unsigned long end,
			   unsigned long newflags)
{
	struct nb_file *nf = vma->vm_file->private_data;
	/* A leaf needs a GiB-aligned address mapping a GiB-aligned offset. */
	u64 delta = ((u64)vma->vm_pgoff << PAGE_SHIFT) - vma->vm_start;
	unsigned long addr;

	if (delta & (PUD_SIZE - 1))
		return 0;
	for (addr = round_down(start, PUD_SIZE); addr < end; addr += PUD_SIZE)
		if (addr >= vma->vm_start && addr + PUD_SIZE <= vma->vm_end &&
		    nb_gib_window_mappable(nf, addr + delta))
			nb_zap_special_range(vma, addr, PUD_SIZE);
	return 0;
}
#endif

/*
 * A pinnable block's page (nb_pin.c): a refcounted 4 KiB entry, as for any file page, so
 * get_user_pages can take references on it. A racing fault that mapped it first: -EBUSY.
 */
static vm_fault_t nb_pin_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct nb_file *nf = vma->vm_file->private_data;
	unsigned long addr = vmf->address & PAGE_MASK;
	u64 offset = ((u64)vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start);
	struct nbc_space_fault_result r;
	vm_fault_t ret;
	int err;

	ret = nb_fault_lookup(vmf, nf, offset, 0, &r);
	if (ret)
		return ret;
	err = vm_insert_page(vma, addr, pfn_to_page(r.pfn));
	if ((!err || err == -EBUSY) && r.block)
		nb_fault_around(vmf, nf, offset, true);
	up_read(&nf->zap_lock);
	if (!err || err == -EBUSY)
		return VM_FAULT_NOPAGE;
	if (err == -ENOMEM)
		return VM_FAULT_OOM;
	nb_count_sigbus(err);
	return VM_FAULT_SIGBUS;
}

static const struct vm_operations_struct nb_pin_vm_ops = {
	.fault = nb_pin_fault,
};

static const struct vm_operations_struct nb_vm_ops = {
	.fault = nb_fault,
#if NB_HAVE_HUGE_PMD
	.huge_fault = nb_huge_fault,
#endif
#if NB_HAVE_HUGE_PUD
	.open = nb_vma_open,
	.close = nb_vma_close,
	.mprotect = nb_vma_mprotect,
#endif
};

int nb_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct nb_file *nf = file->private_data;
	u64 offset = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	struct nbc_space_info info;
	int err;

	/* A private copy-on-write view of pool memory makes no sense. VM_MAYSHARE, not
	 * VM_SHARED: the kernel clears VM_SHARED for MAP_SHARED mappings of read-only files. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	err = nbc_space_query(nf->space, offset, &info);
	if (err)
		return -EINVAL;
	if (info.state != NBC_SPACE_STATE_LIVE && info.state != NBC_SPACE_STATE_MIGRATING)
		return -EINVAL;
	if (offset + len > info.offset + info.size || offset + len < offset)
		return -EINVAL;
	/* A VMA maps one block: pinnable blocks get page entries, VM_MIXEDMAP without VM_IO
	 * (get_user_pages refuses VM_IO | VM_PFNMAP VMAs); others special PFN entries. */
	if (nb_pin_is_tracked(nf, info.offset)) {
		nb_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
		vma->vm_ops = &nb_pin_vm_ops;
		return 0;
	}
	nb_vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &nb_vm_ops;
	return 0;
}

/* Place mappings so that 2 MiB / 1 GiB entries fit (drivers/dax/device.c does the same). */
unsigned long nb_get_unmapped_area(struct file *file, unsigned long addr, unsigned long len,
				   unsigned long pgoff, unsigned long flags)
{
	struct nb_file *nf = file->private_data;
	u64 off = (u64)pgoff << PAGE_SHIFT;
	unsigned long align, len_align, res;

	align = nbc_space_huge_align(nf->space, off, len);
	if (align <= PAGE_SIZE || (flags & MAP_FIXED))
		goto plain;
	len_align = len + align;
	if (len_align < len)
		goto plain;
	res = nb_mm_get_unmapped_area(file, addr, len_align, pgoff, flags);
	if (IS_ERR_VALUE(res))
		goto plain;
	return res + ((off - res) & (align - 1));
plain:
	return nb_mm_get_unmapped_area(file, addr, len, pgoff, flags);
}
