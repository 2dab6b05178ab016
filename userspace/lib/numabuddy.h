/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * numabuddy.h - libnumabuddy, the C API over /dev/numabuddy.
 *
 * A handle is one open file description of the device. Blocks belong to the handle that
 * allocated them: the kernel frees them all when the handle is closed (and every mapping of
 * them is gone), so a block can never outlive its handle or cross into another process
 * except through fork()ed mappings.
 *
 * Every function returns 0 or a negative errno (Linux values); nbl_strerror() explains it in
 * terms of what the user should do. Nothing here prints, exits or aborts. The library is not
 * thread-safe per handle for nbl_close() racing other calls; everything else is a thin ioctl
 * and may be called concurrently on one handle.
 *
 * Node ids are the kernel's, as numactl and libnuma number them.
 *
 * Everything here is spelled nbl_/NBL_; nb_/NB_ names come from the ioctl ABI
 * (<linux/numabuddy.h>). Before 0.2.0 (soname 1) the library used nb_ too.
 */
#ifndef NUMABUDDY_LIB_H
#define NUMABUDDY_LIB_H

#include <stddef.h>
#include <stdint.h>

#include <linux/numabuddy.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nbl_handle nbl_handle;

/* nodemask meaning "every node with a pool"; nbl_parse_nodelist("all") returns it. */
#define NBL_NODES_ALL UINT64_MAX

/* nbl_alloc_opts.lib_flags: what the library does around the ioctl. */
#define NBL_NOMAP (1U << 0) /* allocate only; the caller maps with nbl_map() if at all */

/*
 * What to allocate. Start from nbl_alloc_opts_init(): node -1 (calling CPU's node), local
 * policy, no flags. @size wins over @order when both are set (the kernel refuses both).
 */
typedef struct nbl_alloc_opts {
	uint64_t size;     /* bytes, rounded up to pages by the kernel; 0 = use @order */
	uint32_t order;    /* 2^order pages when @size is 0 */
	uint32_t policy;   /* NB_POLICY_* */
	int32_t node;      /* PREFERRED/BIND node; -1 = the calling CPU's node */
	uint32_t flags;    /* NB_ALLOC_* */
	uint64_t nodemask; /* BIND/INTERLEAVE node set, bit n = node n; or NBL_NODES_ALL */
	uint32_t lib_flags; /* NBL_* */
} nbl_alloc_opts;

/* One block as the library tracks it. Plain data: copying it does not copy ownership. */
typedef struct nbl_block {
	void *addr;      /* MAP_SHARED mapping of the whole block, NULL if unmapped */
	uint64_t offset; /* the kernel's handle and mmap(2) offset */
	uint64_t size;   /* bytes reserved (alloc_size) */
	int32_t node;    /* node of the first frame; -1 for an untouched RESERVE range */
	uint32_t flags;  /* NB_ALLOC_* it was made with */
} nbl_block;

void nbl_alloc_opts_init(nbl_alloc_opts *opts);

/*
 * Open the device (@path NULL = NB_DEVICE_PATH) and check the module's ABI. With read but
 * no write permission the handle is read-only: version, stats and query work, allocating,
 * freeing and migrating return -EBADF.
 * -ENOENT: no device node (module not loaded); -EACCES: not in the device's group;
 * -ENOTTY: @path is not a numabuddy device; -EPROTO: the module's ABI major differs.
 */
int nbl_open(const char *path, nbl_handle **out);
/* Unmaps nothing: blocks the caller still has mapped keep the file alive until munmap. */
void nbl_close(nbl_handle *h);
int nbl_fd(const nbl_handle *h);
/* The module's answer to NB_IOC_VERSION, read once at nbl_open(). */
const struct nb_version *nbl_version_info(const nbl_handle *h);

/* NB_IOC_ALLOC, then mmap(MAP_SHARED) of the whole block unless NBL_NOMAP. */
int nbl_alloc(nbl_handle *h, const nbl_alloc_opts *opts, nbl_block *out);
/* NB_IOC_RESERVE: a demand-paged range, mapped like nbl_alloc(); frames arrive at first touch. */
int nbl_reserve(nbl_handle *h, const nbl_alloc_opts *opts, nbl_block *out);
/*
 * NB_IOC_ALLOC_BATCH for @count (at most 4096) blocks, then map each. All or nothing: on
 * failure every block the kernel did allocate is freed again, @out is left zeroed, the
 * failing request's errno is returned and *@failed_index (if not NULL) names it (@count when
 * mapping failed). -EAGAIN: that request failed in the batch but fits when retried alone.
 */
int nbl_alloc_batch(nbl_handle *h, const nbl_alloc_opts *opts, size_t count, nbl_block *out,
		   size_t *failed_index);
/* munmap (if mapped) then NB_IOC_FREE; @b is zeroed whatever the result. */
int nbl_free(nbl_handle *h, nbl_block *b);
/* Map or unmap an allocated block (for NBL_NOMAP users). */
int nbl_map(nbl_handle *h, nbl_block *b);
int nbl_unmap(nbl_handle *h, nbl_block *b);

int nbl_query(nbl_handle *h, uint64_t offset, struct nb_query *out);
/* NB_IOC_MIGRATE; on success b->node is @node. *@bytes_moved (if not NULL) is how much moved,
 * also when the migration failed part-way (EINTR, ENOMEM, EDQUOT). */
int nbl_migrate(nbl_handle *h, nbl_block *b, int node, uint64_t *bytes_moved);
int nbl_stats(nbl_handle *h, int node, struct nb_stats *out);
/*
 * NB_IOC_EXPORT_DMABUF: a dma-buf file descriptor for @b, which must have been allocated with
 * NB_ALLOC_PINNABLE (else -EINVAL). @flags: open(2)'s O_CLOEXEC and O_RDWR or O_RDONLY. The
 * dma-buf keeps the block's frames until its last user closes it, also after nbl_free() of
 * @b; nbl_migrate() of @b meanwhile fails with -EBUSY. The caller closes *@fd_out.
 */
int nbl_export_dmabuf(nbl_handle *h, const nbl_block *b, uint32_t flags, int *fd_out);
/* NB_IOC_BENCH (CAP_SYS_ADMIN): @io carries the inputs in and elapsed_ns/failures out. */
int nbl_bench(nbl_handle *h, struct nb_bench *io);
/*
 * NB_IOC_COMPACT (CAP_SYS_ADMIN, NB_FEAT_COMPACT): make a free contiguous block of 2^@order
 * pages (0: the max order) on @node by moving blocks out of one run. @out (may be NULL) gets
 * the module's answer, also on failure (what moved stays moved). -EBUSY: every run holds an
 * unmovable frame; -EAGAIN: the run changed meanwhile; -EOPNOTSUPP: the module predates it.
 */
int nbl_compact(nbl_handle *h, int node, unsigned order, struct nb_compact *out);

/* Explains a negative (or positive) errno from this library; never NULL. */
const char *nbl_strerror(int err);

/* Node discovery through libnuma, numbered as numactl does. Without NUMA: one node, 0. */
int nbl_numa_available(void);      /* 1 when the kernel has NUMA support */
int nbl_node_count(void);          /* numa_num_configured_nodes(), at least 1 */
int nbl_max_node(void);            /* highest possible node id */
int nbl_node_of_cpu(int cpu);      /* -EINVAL for an unknown cpu */
int nbl_current_node(void);        /* node of the CPU we run on right now */

/* Parsing and formatting shared by the CLI and callers that take user input. */

/* "4096", "4K", "2M", "1G", "64MiB", "3T": binary units, case-insensitive. -EINVAL/-ERANGE. */
int nbl_parse_size(const char *s, uint64_t *out);
/* "local" (or "localalloc", "default"), "preferred", "bind" ("membind"), "interleave". */
int nbl_parse_policy(const char *s, uint32_t *out);
const char *nbl_policy_name(uint32_t policy);
/* numactl node lists: "all", "0", "0,2", "0-3", "0-3,6". Nodes 0..63. -EINVAL. */
int nbl_parse_nodelist(const char *s, uint64_t *mask);
/* "512 B", "4 KiB", "1.5 GiB": one decimal unless exact. Returns @buf. */
char *nbl_format_bytes(uint64_t bytes, char *buf, size_t len);

/*
 * Test seam: replace the syscalls under a handle. The hosted tests run the whole library
 * over an in-memory fake device with it; the real backend is ioctl/mmap/munmap on the fd.
 * Each function returns 0 or -errno (mmap_fn: the address, or NULL with -errno in *err).
 */
struct nbl_backend {
	int (*ioctl_fn)(void *ctx, unsigned long cmd, void *arg);
	void *(*mmap_fn)(void *ctx, size_t len, uint64_t offset, int *err);
	int (*munmap_fn)(void *ctx, void *addr, size_t len);
	void (*close_fn)(void *ctx);
	void *ctx;
};
int nbl_open_backend(const struct nbl_backend *be, nbl_handle **out);

#ifdef __cplusplus
}
#endif

#endif /* NUMABUDDY_LIB_H */
