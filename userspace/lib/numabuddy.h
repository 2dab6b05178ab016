/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * numabuddy.h - libnumabuddy, the C API over /dev/numabuddy.
 *
 * A handle is one open file description of the device. Blocks belong to the handle that
 * allocated them: the kernel frees them all when the handle is closed (and every mapping of
 * them is gone), so a block can never outlive its handle or cross into another process
 * except through fork()ed mappings.
 *
 * Every function returns 0 or a negative errno (Linux values); nb_strerror() explains it in
 * terms of what the user should do. Nothing here prints, exits or aborts. The library is not
 * thread-safe per handle for nb_close() racing other calls; everything else is a thin ioctl
 * and may be called concurrently on one handle.
 *
 * Node ids are the kernel's, as numactl and libnuma number them.
 */
#ifndef NUMABUDDY_LIB_H
#define NUMABUDDY_LIB_H

#include <stddef.h>
#include <stdint.h>

#include <linux/numabuddy.h>

#ifdef __cplusplus
extern "C" {
/*
 * nb_alloc(), nb_free(), nb_query()... share their names with the uapi structs, as stat()
 * does with struct stat: legal in C and C++, but C++ then needs the elaborated `struct
 * nb_query`, and GCC's -Wshadow says so for every includer. Keep that warning out of users'
 * builds.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif

typedef struct nb_handle nb_handle;

/* nodemask meaning "every node with a pool"; nb_parse_nodelist("all") returns it. */
#define NB_NODES_ALL UINT64_MAX

/* nb_alloc_opts.lib_flags: what the library does around the ioctl. */
#define NB_LIB_NOMAP (1U << 0) /* allocate only; the caller maps with nb_map() if at all */

/*
 * What to allocate. Start from nb_alloc_opts_init(): node -1 (calling CPU's node), local
 * policy, no flags. @size wins over @order when both are set (the kernel refuses both).
 */
typedef struct nb_alloc_opts {
	uint64_t size;     /* bytes, rounded up to pages by the kernel; 0 = use @order */
	uint32_t order;    /* 2^order pages when @size is 0 */
	uint32_t policy;   /* NB_POLICY_* */
	int32_t node;      /* PREFERRED/BIND node; -1 = the calling CPU's node */
	uint32_t flags;    /* NB_ALLOC_* */
	uint64_t nodemask; /* BIND/INTERLEAVE node set, bit n = node n; or NB_NODES_ALL */
	uint32_t lib_flags; /* NB_LIB_* */
} nb_alloc_opts;

/* One block as the library tracks it. Plain data: copying it does not copy ownership. */
typedef struct nb_block {
	void *addr;      /* MAP_SHARED mapping of the whole block, NULL if unmapped */
	uint64_t offset; /* the kernel's handle and mmap(2) offset */
	uint64_t size;   /* bytes reserved (alloc_size) */
	int32_t node;    /* node of the first frame; -1 for an untouched RESERVE range */
	uint32_t flags;  /* NB_ALLOC_* it was made with */
} nb_block;

void nb_alloc_opts_init(nb_alloc_opts *opts);

/*
 * Open the device (@path NULL = NB_DEVICE_PATH) and check the module's ABI. With read but
 * no write permission the handle is read-only: version, stats and query work, allocating,
 * freeing and migrating return -EBADF.
 * -ENOENT: no device node (module not loaded); -EACCES: not in the device's group;
 * -ENOTTY: @path is not a numabuddy device; -EPROTO: the module's ABI major differs.
 */
int nb_open(const char *path, nb_handle **out);
/* Unmaps nothing: blocks the caller still has mapped keep the file alive until munmap. */
void nb_close(nb_handle *h);
int nb_fd(const nb_handle *h);
/* The module's answer to NB_IOC_VERSION, read once at nb_open(). */
const struct nb_version *nb_version_info(const nb_handle *h);

/* NB_IOC_ALLOC, then mmap(MAP_SHARED) of the whole block unless NB_LIB_NOMAP. */
int nb_alloc(nb_handle *h, const nb_alloc_opts *opts, nb_block *out);
/* NB_IOC_RESERVE: a demand-paged range, mapped like nb_alloc(); frames arrive at first touch. */
int nb_reserve(nb_handle *h, const nb_alloc_opts *opts, nb_block *out);
/*
 * NB_IOC_ALLOC_BATCH for @count (at most 4096) blocks, then map each. All or nothing: on
 * failure every block the kernel did allocate is freed again, @out is left zeroed, the
 * failing request's errno is returned and *@failed_index (if not NULL) names it (@count when
 * mapping failed). -EAGAIN: that request failed in the batch but fits when retried alone.
 */
int nb_alloc_batch(nb_handle *h, const nb_alloc_opts *opts, size_t count, nb_block *out,
		   size_t *failed_index);
/* munmap (if mapped) then NB_IOC_FREE; @b is zeroed whatever the result. */
int nb_free(nb_handle *h, nb_block *b);
/* Map or unmap an allocated block (for NB_LIB_NOMAP users). */
int nb_map(nb_handle *h, nb_block *b);
int nb_unmap(nb_handle *h, nb_block *b);

int nb_query(nb_handle *h, uint64_t offset, struct nb_query *out);
/* NB_IOC_MIGRATE; on success b->node is @node. *@bytes_moved (if not NULL) is set on success
 * and on failure (a migration stopped part-way by EINTR/ENOMEM/EDQUOT moved that much). */
int nb_migrate(nb_handle *h, nb_block *b, int node, uint64_t *bytes_moved);
int nb_stats(nb_handle *h, int node, struct nb_stats *out);
/* NB_IOC_BENCH (CAP_SYS_ADMIN): @io carries the inputs in and elapsed_ns/failures out. */
int nb_bench(nb_handle *h, struct nb_bench *io);

/* Explains a negative (or positive) errno from this library; never NULL. */
const char *nb_strerror(int err);

/* Node discovery through libnuma, numbered as numactl does. Without NUMA: one node, 0. */
int nb_numa_available(void);      /* 1 when the kernel has NUMA support */
int nb_node_count(void);          /* numa_num_configured_nodes(), at least 1 */
int nb_max_node(void);            /* highest possible node id */
int nb_node_of_cpu(int cpu);      /* -EINVAL for an unknown cpu */
int nb_current_node(void);        /* node of the CPU we run on right now */

/* Parsing and formatting shared by the CLI and callers that take user input. */

/* "4096", "4K", "2M", "1G", "64MiB", "3T": binary units, case-insensitive. -EINVAL/-ERANGE. */
int nb_parse_size(const char *s, uint64_t *out);
/* "local" (or "localalloc", "default"), "preferred", "bind" ("membind"), "interleave". */
int nb_parse_policy(const char *s, uint32_t *out);
const char *nb_policy_name(uint32_t policy);
/* numactl node lists: "all", "0", "0,2", "0-3", "0-3,6". Nodes 0..63. -EINVAL. */
int nb_parse_nodelist(const char *s, uint64_t *mask);
/* "512 B", "4 KiB", "1.5 GiB": one decimal unless exact. Returns @buf. */
char *nb_format_bytes(uint64_t bytes, char *buf, size_t len);

/*
 * Test seam: replace the syscalls under a handle. The hosted tests run the whole library
 * over an in-memory fake device with it; the real backend is ioctl/mmap/munmap on the fd.
 * Each function returns 0 or -errno (mmap_fn: the address, or NULL with -errno in *err).
 */
struct nb_backend {
	int (*ioctl_fn)(void *ctx, unsigned long cmd, void *arg);
	void *(*mmap_fn)(void *ctx, size_t len, uint64_t offset, int *err);
	int (*munmap_fn)(void *ctx, void *addr, size_t len);
	void (*close_fn)(void *ctx);
	void *ctx;
};
int nb_open_backend(const struct nb_backend *be, nb_handle **out);

#ifdef __cplusplus
#pragma GCC diagnostic pop
}
#endif

#endif /* NUMABUDDY_LIB_H */
