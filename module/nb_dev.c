// SPDX-License-Identifier: GPL-2.0
/*
 * nb_dev.c - /dev/numabuddy: open, ioctl, mmap and the fault handler.
 *
 * Each open file description owns the blocks it allocates (struct nb_file). A block has an
 * offset in a device-wide offset space that is never reused, so unmap_mapping_range() on the
 * device's mapping zaps exactly that block in every process that mapped it, and a stale
 * mapping can never reach a later block.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/maple_tree.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

/* nb_core.h before the uapi header: both spell the policies NB_POLICY_*, as an enum in the
 * core and as macros in the ABI; the values must agree. */
#include "nb_internal.h"
#include "nb_compat.h"
#include "numabuddy.h"

static_assert(NB_POLICY_LOCAL == 0 && NB_POLICY_PREFERRED == 1 && NB_POLICY_BIND == 2 &&
	      NB_POLICY_INTERLEAVE == 3);

struct nb_block {
	unsigned long pgoff;   /* first page of the block in the offset space */
	u64 pfn;
	u64 nr_frames;
	int node;
	u32 flags;
};

struct nb_file {
	struct rw_semaphore lock;   /* faults read, FREE/ALLOC write */
	struct maple_tree blocks;   /* pgoff range -> struct nb_block */
	u64 node_bytes[NB_MAX_NODES];
	struct file *file;
};

/* Device-wide offset cursor, in pages; 0 is never handed out. */
static atomic64_t nb_next_pgoff = ATOMIC64_INIT(1);

static bool nb_is_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

/* Zero a block before user space sees it: no data ever crosses between processes. */
static void nb_zero_frames(u64 pfn, u64 nr)
{
	const u64 step = 512; /* 2 MiB between reschedules */

	while (nr) {
		u64 n = min(nr, step);

		memset(pfn_to_kaddr(pfn), 0, n << PAGE_SHIFT);
		pfn += n;
		nr -= n;
		cond_resched();
	}
}

static int nb_open(struct inode *inode, struct file *file)
{
	struct nb_file *nf = kzalloc(sizeof(*nf), GFP_KERNEL);

	if (!nf)
		return -ENOMEM;
	init_rwsem(&nf->lock);
	mt_init(&nf->blocks);
	nf->file = file;
	file->private_data = nf;
	return 0;
}

static void nb_block_release(struct nb_file *nf, struct nb_block *b)
{
	int err = nb_free_range(nb_core, b->pfn, b->nr_frames);

	WARN_ON_ONCE(err);
	nf->node_bytes[b->node] -= b->nr_frames << PAGE_SHIFT;
	kfree(b);
}

/* Last reference gone: no mapping can exist any more (a VMA holds the file). */
static int nb_release(struct inode *inode, struct file *file)
{
	struct nb_file *nf = file->private_data;
	unsigned long index = 0;
	struct nb_block *b;

	mt_for_each(&nf->blocks, b, index, ULONG_MAX)
		nb_block_release(nf, b);
	mtree_destroy(&nf->blocks);
	kfree(nf);
	return 0;
}

static int nb_policy_from_user(const struct nb_alloc *a, struct nb_policy *pol)
{
	u64 valid_nodes = nb_nodes_with_memory(nb_core);

	if (a->policy > NB_POLICY_INTERLEAVE)
		return -EINVAL;
	if (a->node < -1 || a->node >= (int)nr_node_ids || a->node >= NB_MAX_NODES)
		return -EINVAL;
	if (nr_node_ids < 64 && (a->nodemask >> nr_node_ids))
		return -EINVAL;
	memset(pol, 0, sizeof(*pol));
	pol->mode = a->policy;
	pol->node = a->node;
	pol->nodemask = a->nodemask;
	if (pol->mode == NB_POLICY_BIND && !pol->nodemask)
		pol->nodemask = a->node >= 0 ? BIT_ULL(a->node) :
			BIT_ULL(nb_current_cpu_node(nb_core));
	if (pol->mode == NB_POLICY_INTERLEAVE && !pol->nodemask)
		pol->nodemask = valid_nodes;
	return 0;
}

static int nb_ioctl_version(struct nb_file *nf, void *data)
{
	struct nb_version *v = data;

	v->abi_major = NB_ABI_MAJOR;
	v->abi_minor = NB_ABI_MINOR;
	v->features = 0;
	v->nr_node_ids = nr_node_ids;
	v->max_order = NB_DEFAULT_MAX_ORDER;
	v->page_size = PAGE_SIZE;
	v->nodes_with_pool = nb_nodes_with_memory(nb_core);
	return 0;
}

static int nb_ioctl_alloc(struct nb_file *nf, void *data)
{
	struct nb_alloc *a = data;
	struct nb_policy pol;
	struct nb_block *b;
	nb_u64 pfn;
	u64 bytes;
	int node, err;

	if (a->pad || !nb_is_zero(a->reserved, sizeof(a->reserved)))
		return -EINVAL;
	if (a->flags & ~NB_ALLOC_FLAGS_ALL)
		return -EINVAL;
	if ((a->flags & NB_ALLOC_NOZERO) && !capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (a->size) {
		if (a->size > (1ULL << 46))
			return -EINVAL;
		bytes = PAGE_ALIGN(a->size);
	} else {
		if (a->order > NB_DEFAULT_MAX_ORDER)
			return -EINVAL;
		bytes = (u64)PAGE_SIZE << a->order;
	}
	err = nb_policy_from_user(a, &pol);
	if (err)
		return err;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	err = nb_alloc_contig(nb_core, bytes >> PAGE_SHIFT, &pol,
			      (a->flags & NB_ALLOC_LOW4G) ? NB_AF_LOW4G : 0, NB_CTX_SLEEP,
			      &pfn, &node);
	if (err) {
		kfree(b);
		return err;
	}
	if (!(a->flags & NB_ALLOC_NOZERO))
		nb_zero_frames(pfn, bytes >> PAGE_SHIFT);
	b->pfn = pfn;
	b->nr_frames = bytes >> PAGE_SHIFT;
	b->node = node;
	b->flags = a->flags;
	b->pgoff = atomic64_fetch_add(b->nr_frames, &nb_next_pgoff);

	down_write(&nf->lock);
	err = mtree_insert_range(&nf->blocks, b->pgoff, b->pgoff + b->nr_frames - 1, b,
				 GFP_KERNEL);
	if (!err)
		nf->node_bytes[node] += bytes;
	up_write(&nf->lock);
	if (err) {
		nb_free_range(nb_core, pfn, b->nr_frames);
		kfree(b);
		return err;
	}
	a->offset = (u64)b->pgoff << PAGE_SHIFT;
	a->alloc_size = bytes;
	a->node_out = page_to_nid(pfn_to_page(pfn));
	return 0;
}

/* Undo a successful ALLOC whose result could not be copied back to user space. */
static void nb_undo_alloc(struct nb_file *nf, void *data);

static int nb_free_offset(struct nb_file *nf, u64 offset)
{
	struct nb_block *b;

	if (offset & ~PAGE_MASK)
		return -EINVAL;
	down_write(&nf->lock);
	b = mtree_load(&nf->blocks, offset >> PAGE_SHIFT);
	if (!b || b->pgoff != offset >> PAGE_SHIFT) {
		up_write(&nf->lock);
		return -ENOENT;
	}
	mtree_erase(&nf->blocks, b->pgoff);
	up_write(&nf->lock);
	/* No fault can insert this block any more; remove what earlier faults inserted in every
	 * process, then give the frames back. */
	unmap_mapping_range(nf->file->f_mapping, (loff_t)b->pgoff << PAGE_SHIFT,
			    (loff_t)b->nr_frames << PAGE_SHIFT, 1);
	down_write(&nf->lock);
	nb_block_release(nf, b);
	up_write(&nf->lock);
	return 0;
}

static void nb_undo_alloc(struct nb_file *nf, void *data)
{
	nb_free_offset(nf, ((struct nb_alloc *)data)->offset);
}

static int nb_ioctl_free(struct nb_file *nf, void *data)
{
	struct nb_free *f = data;

	if (!nb_is_zero(f->reserved, sizeof(f->reserved)))
		return -EINVAL;
	return nb_free_offset(nf, f->offset);
}

static int nb_ioctl_query(struct nb_file *nf, void *data)
{
	struct nb_query *q = data;
	struct nb_block *b;
	int err = 0;

	if (q->pad || !nb_is_zero(q->reserved, sizeof(q->reserved)))
		return -EINVAL;
	if (q->offset & ~PAGE_MASK)
		return -EINVAL;
	down_read(&nf->lock);
	b = mtree_load(&nf->blocks, q->offset >> PAGE_SHIFT);
	if (!b || b->pgoff != q->offset >> PAGE_SHIFT) {
		err = -ENOENT;
		goto out;
	}
	q->size = b->nr_frames << PAGE_SHIFT;
	/* The node as the kernel's own page tables see it, not as mm_core says. */
	q->node = page_to_nid(pfn_to_page(b->pfn));
	q->order = ilog2(b->nr_frames);
	q->flags = b->flags;
	q->nr_frames_4k = b->nr_frames;
	if (q->node < ARRAY_SIZE(q->node_bytes))
		q->node_bytes[q->node] = q->size;
	q->phys_addr = capable(CAP_SYS_ADMIN) ? PFN_PHYS(b->pfn) : 0;
out:
	up_read(&nf->lock);
	return err;
}

static int nb_ioctl_stats(struct nb_file *nf, void *data)
{
	struct nb_stats *s = data;
	struct nb_node_stats ns;
	int err, o;

	if (!nb_is_zero(s->reserved, sizeof(s->reserved)))
		return -EINVAL;
	if (s->node < 0 || s->node >= NB_MAX_NODES || s->node >= nr_node_ids)
		return -EINVAL;
	err = nb_node_stats(nb_core, s->node, &ns);
	if (err)
		return err;
	s->nr_orders = ns.max_order + 1;
	s->total_bytes = ns.total_frames << PAGE_SHIFT;
	s->free_bytes = (ns.free_frames + ns.pcp_frames) << PAGE_SHIFT;
	s->low_total_bytes = ns.low_total_frames << PAGE_SHIFT;
	s->low_free_bytes = ns.low_free_frames << PAGE_SHIFT;
	for (o = 0; o <= ns.max_order && o < NB_STATS_ORDERS; o++)
		s->free_blocks[o] = ns.free_blocks[o];
	s->numa_hit = ns.numa_hit;
	s->numa_miss = ns.numa_miss;
	s->numa_foreign = ns.numa_foreign;
	s->interleave_hit = ns.interleave_hit;
	s->local_node = ns.local_node;
	s->other_node = ns.other_node;
	s->migrate_in = ns.migrate_in;
	s->migrate_out = ns.migrate_out;
	down_read(&nf->lock);
	s->fd_bytes = nf->node_bytes[s->node];
	up_read(&nf->lock);
	s->fd_quota_bytes = s->total_bytes;
	return 0;
}

struct nb_ioctl_desc {
	unsigned int cmd;
	int (*fn)(struct nb_file *nf, void *data);
	void (*undo)(struct nb_file *nf, void *data); /* if copying the result out fails */
};

#define NB_IOCTL(c, f, u) [_IOC_NR(c)] = { .cmd = (c), .fn = (f), .undo = (u) }
static const struct nb_ioctl_desc nb_ioctls[] = {
	NB_IOCTL(NB_IOC_VERSION, nb_ioctl_version, NULL),
	NB_IOCTL(NB_IOC_ALLOC, nb_ioctl_alloc, nb_undo_alloc),
	NB_IOCTL(NB_IOC_FREE, nb_ioctl_free, NULL),
	NB_IOCTL(NB_IOC_QUERY, nb_ioctl_query, NULL),
	NB_IOCTL(NB_IOC_STATS, nb_ioctl_stats, NULL),
};

union nb_ioctl_data {
	struct nb_version version;
	struct nb_alloc alloc;
	struct nb_free free;
	struct nb_alloc_batch batch;
	struct nb_query query;
	struct nb_migrate migrate;
	struct nb_stats stats;
	struct nb_bench bench;
};

/*
 * Table-driven dispatch (drivers/dma-buf/dma-heap.c): the size encoded in the command may be
 * older (shorter: zero-extended) or newer (longer: accepted only if the extra bytes are zero).
 */
static long nb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct nb_file *nf = file->private_data;
	void __user *uarg = (void __user *)arg;
	const struct nb_ioctl_desc *d;
	union nb_ioctl_data data;
	unsigned int nr = _IOC_NR(cmd), usize = _IOC_SIZE(cmd), ksize;
	int err;

	if (_IOC_TYPE(cmd) != NB_IOC_MAGIC || nr >= ARRAY_SIZE(nb_ioctls))
		return -ENOTTY;
	d = &nb_ioctls[array_index_nospec(nr, ARRAY_SIZE(nb_ioctls))];
	if (!d->fn || _IOC_DIR(cmd) != _IOC_DIR(d->cmd))
		return -ENOTTY;
	ksize = _IOC_SIZE(d->cmd);
	if (usize > ksize) {
		err = check_zeroed_user(uarg + ksize, usize - ksize);
		if (err <= 0)
			return err ? err : -E2BIG;
	}
	memset(&data, 0, sizeof(data));
	if (copy_from_user(&data, uarg, min(usize, ksize)))
		return -EFAULT;
	err = d->fn(nf, &data);
	if (err)
		return err;
	if (copy_to_user(uarg, &data, min(usize, ksize))) {
		if (d->undo)
			d->undo(nf, &data);
		return -EFAULT;
	}
	return 0;
}

static vm_fault_t nb_fault(struct vm_fault *vmf)
{
	struct nb_file *nf = vmf->vma->vm_file->private_data;
	struct nb_block *b;
	vm_fault_t ret;

	/* Lookup and insert under the lock: FREE removes the block under it before zapping, so
	 * no fault can insert a frame that is about to go back to the pool. */
	down_read(&nf->lock);
	b = mtree_load(&nf->blocks, vmf->pgoff);
	if (!b)
		ret = VM_FAULT_SIGBUS;
	else
		ret = vmf_insert_pfn(vmf->vma, vmf->address, b->pfn + (vmf->pgoff - b->pgoff));
	up_read(&nf->lock);
	return ret;
}

static const struct vm_operations_struct nb_vm_ops = {
	.fault = nb_fault,
};

static int nb_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct nb_file *nf = file->private_data;
	unsigned long pages = vma_pages(vma);
	struct nb_block *b;
	int err = 0;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL; /* a private copy-on-write view of pool memory makes no sense */
	down_read(&nf->lock);
	b = mtree_load(&nf->blocks, vma->vm_pgoff);
	if (!b || vma->vm_pgoff + pages > b->pgoff + b->nr_frames)
		err = -EINVAL;
	up_read(&nf->lock);
	if (err)
		return err;
	nb_vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &nb_vm_ops;
	return 0;
}

static const struct file_operations nb_fops = {
	.owner = THIS_MODULE,
	.open = nb_open,
	.release = nb_release,
	.unlocked_ioctl = nb_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = nb_mmap,
};

static struct miscdevice nb_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "numabuddy",
	.fops = &nb_fops,
	.mode = 0600,
};

int nb_dev_register(void)
{
	return misc_register(&nb_misc);
}

void nb_dev_unregister(void)
{
	misc_deregister(&nb_misc);
}
