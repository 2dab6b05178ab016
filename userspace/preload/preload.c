// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * preload.c - libnumabuddy-preload.so: serve an unmodified program's large anonymous memory
 * from numabuddy pool blocks. `numabuddy exec` sets the environment and LD_PRELOAD.
 *
 * What is served: malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc of at least NUMABUDDY_EXEC_MIN_SIZE bytes, and mmap(NULL, len, PROT_READ|
 * PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) of at least that size. Everything smaller goes to
 * glibc's own allocator (__libc_malloc & co.), every other mmap to the kernel. glibc 2.34
 * removed the __morecore hook, and its malloc calls mmap internally (not through the PLT),
 * so interposing the malloc family is the only door into a glibc heap. A served block is
 * one NB_IOC_ALLOC (zeroed, committed at once, like MAP_POPULATE) mapped MAP_SHARED from
 * the device, aligned to 2 MiB/1 GiB under --huge so the block's huge entries fit.
 *
 * fork: pool mappings are MAP_SHARED, so a child would see the parent's writes and the
 * parent the child's. The fork handlers give the child private memory instead: the child
 * copies every pool region into private anonymous memory and mremaps it over the same
 * addresses while the parent's forking thread waits on a pipe, so the child's copy is the
 * memory as it was at fork. The child then drops the inherited device file: the parent's
 * blocks are never freed by it, and its own large allocations come from a file of its own.
 * vfork/posix_spawn (CLONE_VM) need nothing; a raw clone() without fork handlers would
 * share pool memory with its parent.
 *
 * exec: the constructor removes this library from LD_PRELOAD, so programs the target execs
 * run on normal memory, unless NUMABUDDY_EXEC_FOLLOW=1 (`numabuddy exec --follow-exec`).
 *
 * Pool frames take no page references (GUP refuses them), so O_DIRECT, vmsplice or
 * process_vm_readv on served memory fail with EFAULT. NUMABUDDY_EXEC_SERVE=malloc|mmap and
 * the size threshold keep such buffers out of the pool.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/numabuddy.h>

#include "nbp.h"

#define EXPORT __attribute__((visibility("default")))

/* glibc's own allocator under the public names we take over. */
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

#define PAGE_SZ 4096UL
#define SZ_2M (2UL << 20)
#define SZ_1G (1UL << 30)
#define MAX_NODES 64

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static struct {
	int ready;        /* constructor done: before that every call goes to glibc */
	uint32_t policy;
	int32_t node;
	uint64_t nodemask;
	size_t huge;      /* 0, SZ_2M or SZ_1G */
	size_t min_size;
	int strict, stats, serve_malloc, serve_mmap;
	int fake;         /* test backend: a memfd stands in for the device */
	uint64_t fake_limit;
	char device[256];
} cfg;

/* Guards the region table, the device file and the counters. */
static pthread_mutex_t nbp_lock = PTHREAD_MUTEX_INITIALIZER;
static int dev_fd = -1;
static uint64_t fake_end;
/* Bounds of every address ever served: free() of anything outside skips the lock. */
static _Atomic uintptr_t addr_lo = UINTPTR_MAX, addr_hi;
static size_t (*libc_usable_size)(void *);

static struct {
	uint64_t node_bytes[MAX_NODES];
	uint64_t blocks, fallbacks, fallback_bytes, refused;
	int warned, printed;
} st;

/* ---- raw system calls: nothing here may recurse into our own mmap/munmap ---- */

static void *sys_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, a, len, prot, flags, fd, off);
}

static int sys_munmap(void *a, size_t len)
{
	return (int)syscall(SYS_munmap, a, len);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

static int maybe_ours(const void *p)
{
	uintptr_t a = (uintptr_t)p;

	return a >= atomic_load_explicit(&addr_lo, memory_order_relaxed) &&
	       a < atomic_load_explicit(&addr_hi, memory_order_relaxed);
}

/* ---- the backend: the device, or a memfd for the hosted tests ---- */

static int dev_open_locked(void)
{
	if (dev_fd >= 0)
		return 0;
	if (cfg.fake) {
		dev_fd = memfd_create("numabuddy-fake", MFD_CLOEXEC);
		fake_end = 0;
	} else {
		dev_fd = open(cfg.device, O_RDWR | O_CLOEXEC);
	}
	return dev_fd >= 0 ? 0 : -errno;
}

static int block_alloc_locked(size_t len, uint32_t flags, uint64_t *off, int *node)
{
	struct nb_alloc a;

	if (cfg.fake) {
		if (cfg.fake_limit && fake_end + len > cfg.fake_limit)
			return -ENOMEM;
		if (ftruncate(dev_fd, (off_t)(fake_end + len)))
			return -errno;
		*off = fake_end;
		*node = 0;
		fake_end += len;
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.size = len;
	a.policy = cfg.policy;
	a.node = cfg.node;
	a.nodemask = cfg.nodemask;
	a.flags = flags;
	if (ioctl(dev_fd, NB_IOC_ALLOC, &a))
		return -errno;
	*off = a.offset;
	*node = a.node_out;
	return 0;
}

static void block_free_locked(uint64_t off, size_t len)
{
	struct nb_free f;

	if (cfg.fake) {
		/* Fresh offsets read as zero anyway; punching only gives the memory back. */
		fallocate(dev_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
		return;
	}
	memset(&f, 0, sizeof(f));
	f.offset = off;
	ioctl(dev_fd, NB_IOC_FREE, &f);
}

/* Maps @len bytes of the block at @off at an address aligned to @align. */
static void *map_block_locked(size_t len, size_t align, int prot, uint64_t off)
{
	uintptr_t r, a;
	size_t span = len + align;

	if (align <= PAGE_SZ)
		return sys_mmap(NULL, len, prot, MAP_SHARED, dev_fd, (off_t)off);
	r = (uintptr_t)sys_mmap(NULL, span, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if ((void *)r == MAP_FAILED)
		return MAP_FAILED;
	a = round_up(r, align);
	if (sys_mmap((void *)a, len, prot, MAP_SHARED | MAP_FIXED, dev_fd, (off_t)off) ==
	    MAP_FAILED) {
		sys_munmap((void *)r, span);
		return MAP_FAILED;
	}
	if (a > r)
		sys_munmap((void *)r, a - r);
	if (r + span > a + len)
		sys_munmap((void *)(a + len), r + span - (a + len));
	return (void *)a;
}

static void note_failure_locked(size_t len, int err)
{
	if (cfg.strict)
		st.refused++;
	else {
		st.fallbacks++;
		st.fallback_bytes += len;
	}
	if (st.warned++)
		return;
	say("numabuddy: no pool memory for %zu bytes (%s); %s\n", len, strerrordesc_np(-err),
	    cfg.strict ? "failing such allocations (--strict)"
		       : "using normal memory where the pool falls short");
}

/*
 * A pool region of at least @user bytes at an address aligned to @align, recorded in the
 * table; NULL (errno ENOMEM) when the pool, the quota or the device said no.
 */
static void *pool_get(size_t user, size_t align, int prot, enum nbp_kind kind)
{
	size_t len = round_up(user ? user : 1, PAGE_SZ);
	uint32_t flags = 0;
	struct nbp_region r;
	uint64_t off = 0;
	int node = -1, err;
	void *p = MAP_FAILED;

	if (cfg.huge == SZ_1G && len >= SZ_1G) {
		flags = NB_ALLOC_HUGE_1G;
		len = round_up(len, SZ_2M);
		align = align > SZ_1G ? align : SZ_1G;
	} else if (cfg.huge && len >= SZ_2M) {
		flags = NB_ALLOC_HUGE_2M;
		len = round_up(len, SZ_2M);
		align = align > SZ_2M ? align : SZ_2M;
	}
	pthread_mutex_lock(&nbp_lock);
	err = dev_open_locked();
	if (!err)
		err = block_alloc_locked(len, flags, &off, &node);
	if (!err) {
		p = map_block_locked(len, align, prot, off);
		if (p == MAP_FAILED) {
			err = -errno;
			block_free_locked(off, len);
		}
	}
	if (!err) {
		r = (struct nbp_region){ .addr = (uintptr_t)p, .len = len, .user = user,
					 .offset = off, .node = node, .prot = prot, .kind = kind };
		err = nbp_regions_add(&r);
		if (err) {
			sys_munmap(p, len);
			block_free_locked(off, len);
		}
	}
	if (err) {
		note_failure_locked(len, err);
		pthread_mutex_unlock(&nbp_lock);
		errno = ENOMEM;
		return NULL;
	}
	if (node >= 0 && node < MAX_NODES)
		st.node_bytes[node] += len;
	st.blocks++;
	if ((uintptr_t)p < atomic_load(&addr_lo))
		atomic_store(&addr_lo, (uintptr_t)p);
	if ((uintptr_t)p + len > atomic_load(&addr_hi))
		atomic_store(&addr_hi, (uintptr_t)p + len);
	pthread_mutex_unlock(&nbp_lock);
	return p;
}

/* Unmaps all of @r (a malloc region) and frees its block. */
static void region_release_locked(struct nbp_region *r)
{
	sys_munmap((void *)r->addr, r->len);
	if (r->offset != NBP_PRIVATE)
		block_free_locked(r->offset, r->len);
	nbp_regions_remove(r);
}

static int overlaps_served(uintptr_t addr, size_t len)
{
	return addr + len > atomic_load(&addr_lo) && addr < atomic_load(&addr_hi);
}

/*
 * Bookkeeping once the kernel unmapped (or mapped over) [addr, addr+len): a region whose
 * every byte is gone frees its block. A range unmapped twice counts twice: see README.
 * The caller holds nbp_lock across the kernel call and this, so that no block mapped at
 * the same addresses in between can be mistaken for the old one.
 */
static void forget_range_locked(uintptr_t addr, size_t len)
{
	size_t i = nbp_regions_index(addr);

	for (struct nbp_region *r; (r = nbp_regions_at(i)) && r->addr < addr + len;) {
		uintptr_t lo = r->addr > addr ? r->addr : addr;
		uintptr_t hi = r->addr + r->len < addr + len ? r->addr + r->len : addr + len;

		r->gone += hi - lo;
		if (r->gone < r->len) {
			i++;
			continue;
		}
		if (r->offset != NBP_PRIVATE)
			block_free_locked(r->offset, r->len);
		nbp_regions_remove(r);
	}
}

/* The malloc region starting exactly at @p, or NULL; takes nbp_lock when non-NULL. */
static struct nbp_region *malloc_region_lock(const void *p)
{
	struct nbp_region *r;

	if (((uintptr_t)p & (PAGE_SZ - 1)) || !maybe_ours(p))
		return NULL;
	pthread_mutex_lock(&nbp_lock);
	r = nbp_regions_find((uintptr_t)p);
	if (r && r->addr == (uintptr_t)p && r->kind == NBP_MALLOC)
		return r;
	pthread_mutex_unlock(&nbp_lock);
	return NULL;
}

/* ---- the malloc family ---- */

static int serve_malloc(size_t n)
{
	return cfg.ready && cfg.serve_malloc && n >= cfg.min_size;
}

EXPORT void *malloc(size_t n)
{
	if (serve_malloc(n)) {
		void *p = pool_get(n, PAGE_SZ, PROT_READ | PROT_WRITE, NBP_MALLOC);

		if (p || cfg.strict)
			return p;
	}
	return __libc_malloc(n);
}

EXPORT void free(void *p)
{
	struct nbp_region *r;

	if (!p)
		return;
	r = malloc_region_lock(p);
	if (!r) {
		__libc_free(p);
		return;
	}
	region_release_locked(r);
	pthread_mutex_unlock(&nbp_lock);
}

EXPORT void *calloc(size_t n, size_t m)
{
	size_t total;

	if (__builtin_mul_overflow(n, m, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (serve_malloc(total)) {
		/* Pool blocks are zeroed by the kernel before anyone sees them. */
		void *p = pool_get(total, PAGE_SZ, PROT_READ | PROT_WRITE, NBP_MALLOC);

		if (p || cfg.strict)
			return p;
	}
	return __libc_calloc(n, m);
}

EXPORT void *realloc(void *p, size_t n)
{
	struct nbp_region *r;
	void *q;

	if (!p)
		return malloc(n);
	r = malloc_region_lock(p);
	if (r) {
		size_t old = r->user;

		if (n == 0) {
			region_release_locked(r);
			pthread_mutex_unlock(&nbp_lock);
			return NULL;
		}
		if (n <= r->len && serve_malloc(n)) {
			r->user = n;
			pthread_mutex_unlock(&nbp_lock);
			return p;
		}
		pthread_mutex_unlock(&nbp_lock);
		q = malloc(n);
		if (!q)
			return NULL;
		memcpy(q, p, old < n ? old : n);
		free(p);
		return q;
	}
	if (serve_malloc(n) && libc_usable_size) {
		q = pool_get(n, PAGE_SZ, PROT_READ | PROT_WRITE, NBP_MALLOC);
		if (q) {
			size_t old = libc_usable_size(p);

			memcpy(q, p, old < n ? old : n);
			__libc_free(p);
			return q;
		}
		if (cfg.strict)
			return NULL;
	}
	return __libc_realloc(p, n);
}

EXPORT void *reallocarray(void *p, size_t n, size_t m)
{
	size_t total;

	if (__builtin_mul_overflow(n, m, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

static void *aligned_get(size_t align, size_t n)
{
	if (serve_malloc(n) && align <= SZ_1G) {
		void *p = pool_get(n, align > PAGE_SZ ? align : PAGE_SZ, PROT_READ | PROT_WRITE,
				   NBP_MALLOC);

		if (p || cfg.strict)
			return p;
	}
	return __libc_memalign(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	p = aligned_get(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (!align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return aligned_get(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
	return aligned_alloc(align, n);
}

EXPORT void *valloc(size_t n)
{
	return aligned_get(PAGE_SZ, n);
}

EXPORT void *pvalloc(size_t n)
{
	return aligned_get(PAGE_SZ, round_up(n ? n : 1, PAGE_SZ));
}

EXPORT size_t malloc_usable_size(void *p)
{
	struct nbp_region *r;
	size_t len;

	if (!p)
		return 0;
	r = malloc_region_lock(p);
	if (!r)
		return libc_usable_size ? libc_usable_size(p) : 0;
	len = r->len;
	pthread_mutex_unlock(&nbp_lock);
	return len;
}

/* ---- anonymous mmap and its companions ---- */

static int serve_mmap(void *addr, size_t len, int prot, int flags, int fd)
{
	return cfg.ready && cfg.serve_mmap && !addr && len >= cfg.min_size && fd == -1 &&
	       (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	       !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_GROWSDOWN | MAP_STACK |
			  MAP_HUGETLB | MAP_NORESERVE)) &&
	       prot == (PROT_READ | PROT_WRITE);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	if (serve_mmap(addr, len, prot, flags, fd)) {
		p = pool_get(len, PAGE_SZ, prot, NBP_MMAP);
		if (p)
			return p;
		if (cfg.strict)
			return MAP_FAILED;
	}
	if (!(flags & MAP_FIXED) || !overlaps_served((uintptr_t)addr, len))
		return sys_mmap(addr, len, prot, flags, fd, off);
	pthread_mutex_lock(&nbp_lock);
	p = sys_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		forget_range_locked((uintptr_t)p, round_up(len, PAGE_SZ));
	pthread_mutex_unlock(&nbp_lock);
	return p;
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
	int ret;

	if (!overlaps_served((uintptr_t)addr, len))
		return sys_munmap(addr, len);
	pthread_mutex_lock(&nbp_lock);
	ret = sys_munmap(addr, len);
	if (!ret)
		forget_range_locked((uintptr_t)addr, round_up(len, PAGE_SZ));
	pthread_mutex_unlock(&nbp_lock);
	return ret;
}

EXPORT void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...)
{
	void *new_addr = NULL, *p;
	struct nbp_region *r, moved;
	va_list ap;
	int prot;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (!maybe_ours(old))
		goto kernel;
	pthread_mutex_lock(&nbp_lock);
	r = nbp_regions_find((uintptr_t)old);
	if (!r || r->kind != NBP_MMAP || r->addr != (uintptr_t)old || r->len != old_size ||
	    r->gone) {
		/* Part of a region: the kernel moves it; the block stays until exit (README). */
		pthread_mutex_unlock(&nbp_lock);
		goto kernel;
	}
	prot = r->prot;
	if (new_size == old_size) {
		p = (void *)syscall(SYS_mremap, old, old_size, new_size, flags, new_addr);
		if (p != MAP_FAILED && p != old) {
			moved = *r;
			moved.addr = (uintptr_t)p;
			nbp_regions_remove(r);
			nbp_regions_add(&moved);
		}
		pthread_mutex_unlock(&nbp_lock);
		return p;
	}
	pthread_mutex_unlock(&nbp_lock);
	if (new_size < old_size && !(flags & MREMAP_FIXED)) {
		munmap((char *)old + round_up(new_size, PAGE_SZ),
		       old_size - round_up(new_size, PAGE_SZ));
		return old;
	}
	/* A block cannot grow in place: move to a new one when allowed, as the kernel would. */
	if (!(flags & MREMAP_MAYMOVE) || (flags & MREMAP_FIXED)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = mmap(NULL, new_size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return p;
	memcpy(p, old, old_size);
	munmap(old, old_size);
	return p;
kernel:
	return (void *)syscall(SYS_mremap, old, old_size, new_size, flags, new_addr);
}

/*
 * MADV_DONTNEED on anonymous memory means "reads return zeroes from now on"; the kernel
 * refuses it on pool mappings (EINVAL, VM_PFNMAP), so it is done here, with memset. Other
 * advice the kernel refuses there is harmless to drop.
 */
EXPORT int madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr;
	int ret, pool = 0;
	size_t i;

	if (overlaps_served(a, len)) {
		pthread_mutex_lock(&nbp_lock);
		i = nbp_regions_index(a);
		for (struct nbp_region *r; (r = nbp_regions_at(i)) && r->addr < a + len; i++) {
			uintptr_t lo = r->addr > a ? r->addr : a;
			uintptr_t hi = r->addr + r->len < a + len ? r->addr + r->len : a + len;

			pool = 1;
			if ((advice == MADV_DONTNEED || advice == MADV_REMOVE) &&
			    (r->prot & PROT_WRITE) && r->offset != NBP_PRIVATE)
				memset((void *)lo, 0, hi - lo);
		}
		pthread_mutex_unlock(&nbp_lock);
	}
	ret = (int)syscall(SYS_madvise, addr, len, advice);
	if (ret && errno == EINVAL && pool)
		ret = 0;
	return ret;
}

EXPORT int mprotect(void *addr, size_t len, int prot)
{
	struct nbp_region *r;
	int ret = (int)syscall(SYS_mprotect, addr, len, prot);

	if (ret || !maybe_ours(addr))
		return ret;
	pthread_mutex_lock(&nbp_lock);
	r = nbp_regions_find((uintptr_t)addr);
	if (r && r->addr == (uintptr_t)addr && len >= r->len)
		r->prot = prot;
	pthread_mutex_unlock(&nbp_lock);
	return ret;
}

/* ---- fork ---- */

static int fork_pipe[2] = { -1, -1 };

/* Replaces [a, a+len) of a shared pool mapping with a private copy, in the child. */
static int privatize(uintptr_t a, size_t len, int prot)
{
	void *tmp = sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (tmp == MAP_FAILED)
		return -errno;
	if (!(prot & PROT_READ))
		syscall(SYS_mprotect, a, len, PROT_READ); /* the child's own mapping only */
	memcpy(tmp, (void *)a, len);
	if (prot != (PROT_READ | PROT_WRITE))
		syscall(SYS_mprotect, tmp, len, prot);
	if ((void *)syscall(SYS_mremap, tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, a) ==
	    MAP_FAILED)
		return -errno;
	return 0;
}

/* A region some of which was munmap()ed: privatize each run of pages still mapped. */
static int privatize_region(const struct nbp_region *r)
{
	uintptr_t a = r->addr, end = r->addr + r->len, run = 0;
	unsigned char v;
	int err = 0;

	if (!r->gone)
		return privatize(r->addr, r->len, r->prot);
	for (; !err && a <= end; a += PAGE_SZ) {
		/* mincore says ENOMEM for an unmapped page. */
		int mapped = a < end && syscall(SYS_mincore, a, PAGE_SZ, &v) == 0;

		if (mapped && !run)
			run = a;
		else if (!mapped && run) {
			err = privatize(run, a - run, r->prot);
			run = 0;
		}
	}
	return err;
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&nbp_lock);
	fork_pipe[0] = fork_pipe[1] = -1;
	if (nbp_regions_count() && pipe2(fork_pipe, O_CLOEXEC))
		fork_pipe[0] = fork_pipe[1] = -1;
}

static void atfork_parent(void)
{
	char c;

	if (fork_pipe[0] >= 0) {
		/* EOF once the child has its private copy (or died, or never existed). */
		close(fork_pipe[1]);
		while (read(fork_pipe[0], &c, 1) < 0 && errno == EINTR)
			;
		close(fork_pipe[0]);
	}
	pthread_mutex_unlock(&nbp_lock);
}

static void atfork_child(void)
{
	struct nbp_region *r;
	int err;

	if (fork_pipe[0] >= 0)
		close(fork_pipe[0]);
	for (size_t i = 0; (r = nbp_regions_at(i)); i++) {
		if (r->offset == NBP_PRIVATE)
			continue;
		err = privatize_region(r);
		if (err) {
			say("numabuddy: cannot copy %zu bytes of pool memory into the forked child "
			    "(%s); the child exits\n", r->len, strerrordesc_np(-err));
			syscall(SYS_exit_group, 127);
		}
		r->offset = NBP_PRIVATE;
	}
	if (fork_pipe[1] >= 0)
		close(fork_pipe[1]);
	if (dev_fd >= 0)
		close(dev_fd);
	dev_fd = -1;
	memset(&st, 0, sizeof(st));
	pthread_mutex_unlock(&nbp_lock);
}

/* ---- statistics at exit ---- */

static void print_stats(void)
{
	char buf[1536];
	size_t n = 0;
	uint64_t served = 0;

	if (!cfg.stats || st.printed++)
		return;
	for (int i = 0; i < MAX_NODES; i++)
		served += st.node_bytes[i];
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			      "numabuddy-stats: pid=%d served=%llu blocks=%llu", (int)getpid(),
			      (unsigned long long)served, (unsigned long long)st.blocks);
	for (int i = 0; i < MAX_NODES && n < sizeof(buf) - 64; i++)
		if (st.node_bytes[i])
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " node%d=%llu", i,
					      (unsigned long long)st.node_bytes[i]);
	snprintf(buf + n, sizeof(buf) - n, " fallbacks=%llu fallback_bytes=%llu refused=%llu\n",
		 (unsigned long long)st.fallbacks, (unsigned long long)st.fallback_bytes,
		 (unsigned long long)st.refused);
	say("%s", buf);
}

/* Worker processes (stress-ng's among them) leave through _exit: report there too. */
EXPORT void _exit(int status)
{
	print_stats();
	for (;;)
		syscall(SYS_exit_group, status);
}

EXPORT void _Exit(int status) __attribute__((alias("_exit")));

__attribute__((destructor)) static void nbp_fini(void)
{
	print_stats();
}

/* ---- configuration ---- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return dflt;
	errno = 0;
	n = strtoull(v, &end, 0);
	return (errno || *end) ? dflt : n;
}

static int env_is(const char *name, const char *value)
{
	const char *v = getenv(name);

	return v && !strcmp(v, value);
}

/* Takes this library out of LD_PRELOAD, so that exec'd programs run without it. */
static void drop_from_ld_preload(void)
{
	static char buf[4096];
	const char *v = getenv("LD_PRELOAD");
	size_t n = 0;

	if (!v || strlen(v) >= sizeof(buf))
		return;
	for (const char *s = v; *s;) {
		size_t len = strcspn(s, ": ");

		if (len && !memmem(s, len, "libnumabuddy-preload", 20)) {
			if (n)
				buf[n++] = ':';
			memcpy(buf + n, s, len);
			n += len;
		}
		s += len;
		s += strspn(s, ": ");
	}
	buf[n] = '\0';
	if (n)
		setenv("LD_PRELOAD", buf, 1);
	else
		unsetenv("LD_PRELOAD");
}

__attribute__((constructor)) static void nbp_init(void)
{
	const char *v;

	libc_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
	v = getenv("NUMABUDDY_DEVICE");
	snprintf(cfg.device, sizeof(cfg.device), "%s", v && *v ? v : NB_DEVICE_PATH);
	v = getenv("NUMABUDDY_EXEC_POLICY");
	cfg.policy = !v || !strcmp(v, "local") ? NB_POLICY_LOCAL
		     : !strcmp(v, "preferred")  ? NB_POLICY_PREFERRED
		     : !strcmp(v, "bind")       ? NB_POLICY_BIND
		     : !strcmp(v, "interleave") ? NB_POLICY_INTERLEAVE
						: NB_POLICY_LOCAL;
	cfg.node = (int32_t)env_u64("NUMABUDDY_EXEC_NODE", (uint64_t)-1);
	cfg.nodemask = env_u64("NUMABUDDY_EXEC_NODEMASK", 0);
	v = getenv("NUMABUDDY_EXEC_HUGE");
	cfg.huge = v && !strcasecmp(v, "1G") ? SZ_1G : v && !strcasecmp(v, "2M") ? SZ_2M : 0;
	cfg.min_size = env_u64("NUMABUDDY_EXEC_MIN_SIZE", 1UL << 20);
	if (cfg.min_size < 1)
		cfg.min_size = 1;
	cfg.strict = env_is("NUMABUDDY_EXEC_STRICT", "1");
	cfg.stats = env_is("NUMABUDDY_STATS", "1");
	v = getenv("NUMABUDDY_EXEC_SERVE");
	cfg.serve_malloc = !v || !strcmp(v, "all") || !strcmp(v, "malloc");
	cfg.serve_mmap = !v || !strcmp(v, "all") || !strcmp(v, "mmap");
	cfg.fake = env_is("NUMABUDDY_EXEC_FAKE", "memfd");
	cfg.fake_limit = env_u64("NUMABUDDY_EXEC_FAKE_LIMIT", 0);
	if (!env_is("NUMABUDDY_EXEC_FOLLOW", "1"))
		drop_from_ld_preload();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	cfg.ready = 1;
}
