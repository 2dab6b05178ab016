// SPDX-License-Identifier: GPL-2.0
/*
 * nb_dmabuf.c - NB_IOC_EXPORT_DMABUF: a pinnable block as a dma-buf, for devices and
 * drivers that import dma-bufs (DRM PRIME, V4L2 DMABUF, RDMA). Model:
 * drivers/dma-buf/udmabuf.c.
 *
 * The dma-buf holds a page reference on every page of the block from export to release
 * (nb_pin_hold), so the block's own rule does the rest: FREE or close while it lives defers
 * the frames' return until it is released (nb_pin.c), MIGRATE gets -EBUSY. Only pinnable
 * blocks: theirs is the FREE that looks at references. Static exporter: the pages never move,
 * so importers need no move_notify and the reservation lock protects nothing of ours.
 */
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "nb_internal.h"
#include "nb_compat.h"
#include "nb_file.h"
#include "nb_pin.h"
#include "nb_dmabuf.h"

NB_MODULE_IMPORT_NS_DMA_BUF;

/* Largest sg entry: the bound (below 4 GiB), or the device's if smaller. */
#define NB_DMABUF_MAX_SEGMENT SZ_1G

struct nb_dmabuf {
	struct page **pages;
	unsigned long nr_pages;
	int node;
	struct mutex lock;           /* attachments, vmap */
	struct list_head attachments;
	unsigned int vmap_count;
	void *vaddr;
};

struct nb_dmabuf_attachment {
	struct list_head link;
	struct device *dev;
	struct sg_table *sgt;        /* while mapped */
	enum dma_data_direction dir;
};

static int nb_dmabuf_attach(struct dma_buf *dmabuf, struct dma_buf_attachment *attach)
{
	struct nb_dmabuf *buf = dmabuf->priv;
	struct nb_dmabuf_attachment *a = kzalloc(sizeof(*a), GFP_KERNEL);

	if (!a)
		return -ENOMEM;
	a->dev = attach->dev;
	attach->priv = a;
	mutex_lock(&buf->lock);
	list_add(&a->link, &buf->attachments);
	mutex_unlock(&buf->lock);
	return 0;
}

static void nb_dmabuf_detach(struct dma_buf *dmabuf, struct dma_buf_attachment *attach)
{
	struct nb_dmabuf *buf = dmabuf->priv;
	struct nb_dmabuf_attachment *a = attach->priv;

	mutex_lock(&buf->lock);
	list_del(&a->link);
	mutex_unlock(&buf->lock);
	kfree(a);
}

static struct sg_table *nb_dmabuf_map(struct dma_buf_attachment *attach,
				      enum dma_data_direction dir)
{
	struct nb_dmabuf *buf = attach->dmabuf->priv;
	struct nb_dmabuf_attachment *a = attach->priv;
	unsigned int max_seg = min_t(unsigned int, NB_DMABUF_MAX_SEGMENT,
				     dma_get_max_seg_size(attach->dev)) & PAGE_MASK;
	struct sg_table *sgt;
	int err;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	err = sg_alloc_table_from_pages_segment(sgt, buf->pages, buf->nr_pages, 0,
						buf->nr_pages << PAGE_SHIFT,
						max_seg ? max_seg : PAGE_SIZE, GFP_KERNEL);
	if (err)
		goto err_free;
	err = dma_map_sgtable(attach->dev, sgt, dir, 0);
	if (err)
		goto err_table;
	mutex_lock(&buf->lock);
	a->sgt = sgt;
	a->dir = dir;
	mutex_unlock(&buf->lock);
	return sgt;

err_table:
	sg_free_table(sgt);
err_free:
	kfree(sgt);
	return ERR_PTR(err);
}

static void nb_dmabuf_unmap(struct dma_buf_attachment *attach, struct sg_table *sgt,
			    enum dma_data_direction dir)
{
	struct nb_dmabuf *buf = attach->dmabuf->priv;
	struct nb_dmabuf_attachment *a = attach->priv;

	mutex_lock(&buf->lock);
	if (a->sgt == sgt)
		a->sgt = NULL;
	mutex_unlock(&buf->lock);
	dma_unmap_sgtable(attach->dev, sgt, dir, 0);
	sg_free_table(sgt);
	kfree(sgt);
}

static void nb_dmabuf_release(struct dma_buf *dmabuf)
{
	struct nb_dmabuf *buf = dmabuf->priv;

	WARN_ON(buf->vmap_count || !list_empty(&buf->attachments));
	/* The block, if freed meanwhile, goes back to the pool on the deferred list's next look. */
	nb_pin_unhold(buf->pages, buf->nr_pages);
	kfree(buf);
}

/* Refcounted page entries, as the block's own mappings: a mapping also keeps them. */
static int nb_dmabuf_mmap(struct dma_buf *dmabuf, struct vm_area_struct *vma)
{
	struct nb_dmabuf *buf = dmabuf->priv;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	nb_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return vm_map_pages(vma, buf->pages, buf->nr_pages);
}

static int nb_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct nb_dmabuf *buf = dmabuf->priv;
	int err = 0;

	mutex_lock(&buf->lock);
	if (!buf->vmap_count) {
		buf->vaddr = vmap(buf->pages, buf->nr_pages, VM_MAP, PAGE_KERNEL);
		if (!buf->vaddr)
			err = -ENOMEM;
	}
	if (!err) {
		buf->vmap_count++;
		iosys_map_set_vaddr(map, buf->vaddr);
	}
	mutex_unlock(&buf->lock);
	return err;
}

static void nb_dmabuf_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct nb_dmabuf *buf = dmabuf->priv;

	mutex_lock(&buf->lock);
	if (!WARN_ON(!buf->vmap_count) && !--buf->vmap_count) {
		vunmap(buf->vaddr);
		buf->vaddr = NULL;
	}
	mutex_unlock(&buf->lock);
}

/* CPU access brackets: hand the mapped attachments' caches over (no-ops where DMA is coherent). */
static int nb_dmabuf_begin_cpu_access(struct dma_buf *dmabuf, enum dma_data_direction dir)
{
	struct nb_dmabuf *buf = dmabuf->priv;
	struct nb_dmabuf_attachment *a;

	mutex_lock(&buf->lock);
	list_for_each_entry(a, &buf->attachments, link)
		if (a->sgt)
			dma_sync_sgtable_for_cpu(a->dev, a->sgt, dir);
	mutex_unlock(&buf->lock);
	return 0;
}

static int nb_dmabuf_end_cpu_access(struct dma_buf *dmabuf, enum dma_data_direction dir)
{
	struct nb_dmabuf *buf = dmabuf->priv;
	struct nb_dmabuf_attachment *a;

	mutex_lock(&buf->lock);
	list_for_each_entry(a, &buf->attachments, link)
		if (a->sgt)
			dma_sync_sgtable_for_device(a->dev, a->sgt, dir);
	mutex_unlock(&buf->lock);
	return 0;
}

static const struct dma_buf_ops nb_dmabuf_ops = {
	.attach = nb_dmabuf_attach,
	.detach = nb_dmabuf_detach,
	.map_dma_buf = nb_dmabuf_map,
	.unmap_dma_buf = nb_dmabuf_unmap,
	.release = nb_dmabuf_release,
	.mmap = nb_dmabuf_mmap,
	.vmap = nb_dmabuf_vmap,
	.vunmap = nb_dmabuf_vunmap,
	.begin_cpu_access = nb_dmabuf_begin_cpu_access,
	.end_cpu_access = nb_dmabuf_end_cpu_access,
};

int nb_dmabuf_export(struct nb_file *nf, u64 offset, u32 flags, int *fd_out,
		     struct dma_buf **dmabuf_out)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp);
	struct nb_dmabuf *buf;
	struct dma_buf *dmabuf;
	char *name;
	int err, fd;

	if ((flags & ~(O_CLOEXEC | O_ACCMODE)) ||
	    ((flags & O_ACCMODE) != O_RDWR && (flags & O_ACCMODE) != O_RDONLY))
		return -EINVAL;
	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	mutex_init(&buf->lock);
	INIT_LIST_HEAD(&buf->attachments);
	err = nb_pin_hold(nf, offset, &buf->pages, &buf->nr_pages, &buf->node);
	if (err) {
		kfree(buf);
		return err;
	}
	exp.ops = &nb_dmabuf_ops;
	exp.size = buf->nr_pages << PAGE_SHIFT;
	exp.flags = flags & O_ACCMODE;
	exp.priv = buf;
	dmabuf = dma_buf_export(&exp);
	if (IS_ERR(dmabuf)) {
		nb_pin_unhold(buf->pages, buf->nr_pages);
		kfree(buf);
		return PTR_ERR(dmabuf);
	}
	/* The node, where fdinfo and debugfs' bufinfo show it (dma_buf_release frees it). */
	name = kasprintf(GFP_KERNEL, "numabuddy-node%d", buf->node);
	if (name) {
		spin_lock(&dmabuf->name_lock);
		dmabuf->name = name;
		spin_unlock(&dmabuf->name_lock);
	}
	fd = get_unused_fd_flags(flags & O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf); /* release undoes the hold */
		return fd;
	}
	*fd_out = fd;
	*dmabuf_out = dmabuf;
	return 0;
}

/* What dma_buf_fd() does after reserving the fd: from here on the fd owns the reference. */
void nb_dmabuf_install(int fd, struct dma_buf *dmabuf)
{
	fd_install(fd, dmabuf->file);
}

void nb_dmabuf_discard(int fd, struct dma_buf *dmabuf)
{
	put_unused_fd(fd);
	dma_buf_put(dmabuf);
}
