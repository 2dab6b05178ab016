/* SPDX-License-Identifier: GPL-2.0 */
/* nb_dmabuf.h - NB_IOC_EXPORT_DMABUF (nb_dmabuf.c). */
#ifndef NB_DMABUF_H
#define NB_DMABUF_H

#include <linux/types.h>

struct nb_file;
struct dma_buf;

/*
 * A dma-buf of the pinnable block at offset; flags: O_CLOEXEC | O_RDWR or O_RDONLY.
 * The fd is only reserved: the caller installs it once the reply reached user space
 * (nb_dmabuf_install), or gives both back (nb_dmabuf_discard), so a caller whose reply
 * cannot be written gets EFAULT and no fd it does not know of.
 */
int nb_dmabuf_export(struct nb_file *nf, u64 offset, u32 flags, int *fd_out,
		     struct dma_buf **dmabuf_out);
void nb_dmabuf_install(int fd, struct dma_buf *dmabuf);
void nb_dmabuf_discard(int fd, struct dma_buf *dmabuf);

#endif /* NB_DMABUF_H */
