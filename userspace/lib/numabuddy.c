// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * numabuddy.c - the device side of libnumabuddy: open, version check, the ioctls, mmap.
 *
 * Every syscall goes through a struct nbl_backend so the hosted tests can run this file over
 * an in-memory fake device. The real backend is the four one-liners below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "numabuddy.h"

struct nbl_handle {
	struct nbl_backend be;
	int fd; /* -1 for a test backend */
	struct nb_version version;
};

/* ---- the real backend: an fd on /dev/numabuddy ---- */

static int fd_ioctl(void *ctx, unsigned long cmd, void *arg)
{
	int fd = (int)(intptr_t)ctx;

	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static void *fd_mmap(void *ctx, size_t len, uint64_t offset, int *err)
{
	int fd = (int)(intptr_t)ctx;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);

	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	return p;
}

static int fd_munmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return munmap(addr, len) < 0 ? -errno : 0;
}

static void fd_close(void *ctx)
{
	close((int)(intptr_t)ctx);
}

/* ---- open / close ---- */

static int check_version(nbl_handle *h)
{
	struct nb_version v;
	int ret;

	memset(&v, 0, sizeof(v));
	ret = h->be.ioctl_fn(h->be.ctx, NB_IOC_VERSION, &v);
	if (ret == -EINVAL || ret == -ENOTTY)
		return -ENOTTY; /* something else answered: not our device */
	if (ret)
		return ret;
	if (v.abi_major != NB_ABI_MAJOR)
		return -EPROTO;
	h->version = v;
	return 0;
}

int nbl_open_backend(const struct nbl_backend *be, nbl_handle **out)
{
	nbl_handle *h;
	int ret;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->be = *be;
	h->fd = -1;
	ret = check_version(h);
	if (ret) {
		/* The caller still owns @be's context on failure. */
		free(h);
		return ret;
	}
	*out = h;
	return 0;
}

int nbl_open(const char *path, nbl_handle **out)
{
	struct nbl_backend be = {
		.ioctl_fn = fd_ioctl, .mmap_fn = fd_mmap, .munmap_fn = fd_munmap,
		.close_fn = fd_close,
	};
	int fd, ret;

	*out = NULL;
	path = path ? path : NB_DEVICE_PATH;
	fd = open(path, O_RDWR | O_CLOEXEC);
	/* Read access alone is enough to watch (version, stats, query); the module answers
	 * EBADF to anything that takes or changes pool memory through such a handle. */
	if (fd < 0 && errno == EACCES)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	be.ctx = (void *)(intptr_t)fd;
	ret = nbl_open_backend(&be, out);
	if (ret) {
		close(fd);
		return ret;
	}
	(*out)->fd = fd;
	return 0;
}

void nbl_close(nbl_handle *h)
{
	if (!h)
		return;
	if (h->be.close_fn)
		h->be.close_fn(h->be.ctx);
	free(h);
}

int nbl_fd(const nbl_handle *h)
{
	return h->fd;
}

const struct nb_version *nbl_version_info(const nbl_handle *h)
{
	return &h->version;
}

/* ---- blocks ---- */

void nbl_alloc_opts_init(nbl_alloc_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->policy = NB_POLICY_LOCAL;
	opts->node = -1;
}

static void to_uapi(const nbl_handle *h, const nbl_alloc_opts *o, struct nb_alloc *a)
{
	memset(a, 0, sizeof(*a));
	a->size = o->size;
	a->order = o->size ? 0 : o->order; /* the kernel refuses both at once */
	a->policy = o->policy;
	a->node = o->node;
	a->flags = o->flags;
	a->nodemask = o->nodemask;
	if (o->nodemask == NBL_NODES_ALL)
		a->nodemask = h->version.nodes_with_pool;
}

static void from_uapi(const struct nb_alloc *a, nbl_block *b)
{
	memset(b, 0, sizeof(*b));
	b->offset = a->offset;
	b->size = a->alloc_size;
	b->node = a->node_out;
	b->flags = a->flags;
}

int nbl_map(nbl_handle *h, nbl_block *b)
{
	int err = 0;
	void *p;

	if (b->addr)
		return 0;
	p = h->be.mmap_fn(h->be.ctx, b->size, b->offset, &err);
	if (!p)
		return err ? err : -ENOMEM;
	b->addr = p;
	return 0;
}

int nbl_unmap(nbl_handle *h, nbl_block *b)
{
	int ret;

	if (!b->addr)
		return 0;
	ret = h->be.munmap_fn(h->be.ctx, b->addr, b->size);
	b->addr = NULL;
	return ret;
}

static int kfree_offset(nbl_handle *h, uint64_t offset)
{
	struct nb_free f;

	memset(&f, 0, sizeof(f));
	f.offset = offset;
	return h->be.ioctl_fn(h->be.ctx, NB_IOC_FREE, &f);
}

static int alloc_common(nbl_handle *h, unsigned long cmd, const nbl_alloc_opts *opts,
			nbl_block *out)
{
	struct nb_alloc a;
	int ret;

	memset(out, 0, sizeof(*out));
	to_uapi(h, opts, &a);
	ret = h->be.ioctl_fn(h->be.ctx, cmd, &a);
	if (ret)
		return ret;
	from_uapi(&a, out);
	if (opts->lib_flags & NBL_NOMAP)
		return 0;
	ret = nbl_map(h, out);
	if (ret) {
		kfree_offset(h, out->offset);
		memset(out, 0, sizeof(*out));
	}
	return ret;
}

int nbl_alloc(nbl_handle *h, const nbl_alloc_opts *opts, nbl_block *out)
{
	return alloc_common(h, NB_IOC_ALLOC, opts, out);
}

int nbl_reserve(nbl_handle *h, const nbl_alloc_opts *opts, nbl_block *out)
{
	return alloc_common(h, NB_IOC_RESERVE, opts, out);
}

int nbl_alloc_batch(nbl_handle *h, const nbl_alloc_opts *opts, size_t count, nbl_block *out,
		   size_t *failed_index)
{
	struct nb_alloc_batch batch;
	struct nb_alloc *reqs;
	size_t i, done;
	int ret = 0;

	if (failed_index)
		*failed_index = 0;
	if (count == 0)
		return 0;
	if (count > 4096)
		return -E2BIG;
	reqs = calloc(count, sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	for (i = 0; i < count; i++)
		to_uapi(h, &opts[i], &reqs[i]);
	memset(&batch, 0, sizeof(batch));
	batch.reqs = (uint64_t)(uintptr_t)reqs;
	batch.count = (uint32_t)count;
	batch.entry_size = sizeof(*reqs);
	memset(out, 0, count * sizeof(*out));

	ret = h->be.ioctl_fn(h->be.ctx, NB_IOC_ALLOC_BATCH, &batch);
	done = ret ? 0 : batch.done;
	if (done > count)
		done = count; /* never trust a count to index our arrays */
	for (i = 0; i < done; i++)
		from_uapi(&reqs[i], &out[i]);
	if (!ret && done < count) {
		/*
		 * The kernel reports a partial batch as success with done < count and drops the
		 * failing entry's errno; asking for that entry alone recovers it.
		 */
		struct nb_alloc one;

		to_uapi(h, &opts[done], &one);
		ret = h->be.ioctl_fn(h->be.ctx, NB_IOC_ALLOC, &one);
		if (!ret) {
			kfree_offset(h, one.offset);
			ret = -EAGAIN; /* it fits now: something was freed meanwhile */
		}
	}
	if (ret) {
		if (failed_index)
			*failed_index = done;
		goto undo;
	}
	for (i = 0; i < count; i++) {
		if (opts[i].lib_flags & NBL_NOMAP)
			continue;
		ret = nbl_map(h, &out[i]);
		if (ret) {
			if (failed_index)
				*failed_index = count;
			goto undo;
		}
	}
	free(reqs);
	return 0;

undo:
	for (i = 0; i < done; i++)
		nbl_free(h, &out[i]);
	memset(out, 0, count * sizeof(*out));
	free(reqs);
	return ret;
}

int nbl_free(nbl_handle *h, nbl_block *b)
{
	int ret, ret2;

	if (!b->size && !b->addr && !b->offset)
		return 0; /* an empty block: freeing it is a no-op, like free(NULL) */
	ret = nbl_unmap(h, b);
	ret2 = kfree_offset(h, b->offset);
	memset(b, 0, sizeof(*b));
	return ret2 ? ret2 : ret;
}

int nbl_query(nbl_handle *h, uint64_t offset, struct nb_query *out)
{
	memset(out, 0, sizeof(*out));
	out->offset = offset;
	return h->be.ioctl_fn(h->be.ctx, NB_IOC_QUERY, out);
}

int nbl_migrate(nbl_handle *h, nbl_block *b, int node, uint64_t *bytes_moved)
{
	struct nb_migrate m;
	int ret;

	memset(&m, 0, sizeof(m));
	m.offset = b->offset;
	m.node = node;
	ret = h->be.ioctl_fn(h->be.ctx, NB_IOC_MIGRATE, &m);
	if (bytes_moved)
		*bytes_moved = m.bytes_moved; /* also when cut short: how far it got */
	if (ret)
		return ret;
	b->node = node;
	return 0;
}

int nbl_export_dmabuf(nbl_handle *h, const nbl_block *b, uint32_t flags, int *fd_out)
{
	struct nb_export_dmabuf e;
	int ret;

	memset(&e, 0, sizeof(e));
	e.offset = b->offset;
	e.flags = flags;
	ret = h->be.ioctl_fn(h->be.ctx, NB_IOC_EXPORT_DMABUF, &e);
	if (!ret)
		*fd_out = e.fd;
	return ret;
}

int nbl_stats(nbl_handle *h, int node, struct nb_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->node = node;
	return h->be.ioctl_fn(h->be.ctx, NB_IOC_STATS, out);
}

int nbl_compact(nbl_handle *h, int node, unsigned order, struct nb_compact *out)
{
	struct nb_compact c;
	int err;

	if (!(h->version.features & NB_FEAT_COMPACT))
		return -EOPNOTSUPP;
	memset(&c, 0, sizeof(c));
	c.node = node;
	c.order = order;
	err = h->be.ioctl_fn(h->be.ctx, NB_IOC_COMPACT, &c);
	if (out)
		*out = c;
	return err;
}

int nbl_bench(nbl_handle *h, struct nb_bench *io)
{
	io->pad = 0;
	memset(io->reserved, 0, sizeof(io->reserved));
	io->elapsed_ns = 0;
	io->failures = 0;
	return h->be.ioctl_fn(h->be.ctx, NB_IOC_BENCH, io);
}
