// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * pool.c - the preload's pool blocks: the device file (or the hosted tests' memfd), making,
 * mapping and freeing blocks, the region table's bookkeeping, and the counters that
 * NUMABUDDY_STATS prints. Everything here runs under nbp_lock unless it says otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/numabuddy.h>

#include "nbp.h"

struct nbp_config nbp_cfg;
/* Guards the region table, the device file and the counters. */
pthread_mutex_t nbp_lock = PTHREAD_MUTEX_INITIALIZER;
static int dev_fd = -1;
static uint64_t fake_end;
/* Bounds of every address ever served: free() of anything outside skips the lock. */
static _Atomic uintptr_t addr_lo = UINTPTR_MAX, addr_hi;

static struct {
	uint64_t node_bytes[NBP_MAX_NODES];
	uint64_t blocks, fallbacks, fallback_bytes, refused;
	int warned, printed;
} st;

/* ---- raw system calls: nothing here may recurse into our own mmap/munmap ---- */

void *nbp_sys_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, a, len, prot, flags, fd, off);
}

int nbp_sys_munmap(void *a, size_t len)
{
	return (int)syscall(SYS_munmap, a, len);
}

void nbp_say(const char *fmt, ...)
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

int nbp_maybe_ours(const void *p)
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
	if (nbp_cfg.fake) {
		dev_fd = memfd_create("numabuddy-fake", MFD_CLOEXEC);
		fake_end = 0;
	} else {
		dev_fd = open(nbp_cfg.device, O_RDWR | O_CLOEXEC);
	}
	return dev_fd >= 0 ? 0 : -errno;
}

static int block_alloc_locked(size_t len, uint32_t flags, uint64_t *off, int *node)
{
	struct nb_alloc a;

	if (nbp_cfg.fake) {
		if (nbp_cfg.fake_limit && fake_end + len > nbp_cfg.fake_limit)
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
	a.policy = nbp_cfg.policy;
	a.node = nbp_cfg.node;
	a.nodemask = nbp_cfg.nodemask;
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

	if (nbp_cfg.fake) {
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

	if (align <= NBP_PAGE)
		return nbp_sys_mmap(NULL, len, prot, MAP_SHARED, dev_fd, (off_t)off);
	r = (uintptr_t)nbp_sys_mmap(NULL, span, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if ((void *)r == MAP_FAILED)
		return MAP_FAILED;
	a = nbp_round_up(r, align);
	if (nbp_sys_mmap((void *)a, len, prot, MAP_SHARED | MAP_FIXED, dev_fd, (off_t)off) ==
	    MAP_FAILED) {
		nbp_sys_munmap((void *)r, span);
		return MAP_FAILED;
	}
	if (a > r)
		nbp_sys_munmap((void *)r, a - r);
	if (r + span > a + len)
		nbp_sys_munmap((void *)(a + len), r + span - (a + len));
	return (void *)a;
}

static void note_failure_locked(size_t len, int err)
{
	if (nbp_cfg.strict)
		st.refused++;
	else {
		st.fallbacks++;
		st.fallback_bytes += len;
	}
	if (st.warned++)
		return;
	nbp_say("numabuddy: no pool memory for %zu bytes (%s); %s\n", len, strerrordesc_np(-err),
	    nbp_cfg.strict ? "failing such allocations (--strict)"
		       : "using normal memory where the pool falls short");
}

/*
 * A pool region of at least @user bytes at an address aligned to @align, recorded in the
 * table; NULL (errno ENOMEM) when the pool, the quota or the device said no.
 */
void *nbp_pool_get(size_t user, size_t align, int prot, enum nbp_kind kind)
{
	size_t len = nbp_round_up(user ? user : 1, NBP_PAGE);
	uint32_t flags = 0;
	struct nbp_region r;
	uint64_t off = 0;
	int node = -1, err;
	void *p = MAP_FAILED;

	if (nbp_cfg.huge == NBP_1G && len >= NBP_1G) {
		flags = NB_ALLOC_HUGE_1G;
		len = nbp_round_up(len, NBP_2M);
		align = align > NBP_1G ? align : NBP_1G;
	} else if (nbp_cfg.huge && len >= NBP_2M) {
		flags = NB_ALLOC_HUGE_2M;
		len = nbp_round_up(len, NBP_2M);
		align = align > NBP_2M ? align : NBP_2M;
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
			nbp_sys_munmap(p, len);
			block_free_locked(off, len);
		}
	}
	if (err) {
		note_failure_locked(len, err);
		pthread_mutex_unlock(&nbp_lock);
		errno = ENOMEM;
		return NULL;
	}
	if (node >= 0 && node < NBP_MAX_NODES)
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
void nbp_region_release_locked(struct nbp_region *r)
{
	nbp_sys_munmap((void *)r->addr, r->len);
	if (r->offset != NBP_PRIVATE)
		block_free_locked(r->offset, r->len);
	nbp_regions_remove(r);
}

int nbp_overlaps_served(uintptr_t addr, size_t len)
{
	return addr + len > atomic_load(&addr_lo) && addr < atomic_load(&addr_hi);
}

/*
 * Bookkeeping once the kernel unmapped (or mapped over) [addr, addr+len): a region whose
 * every byte is gone frees its block. A range unmapped twice counts twice: see README.
 * The caller holds nbp_lock across the kernel call and this, so that no block mapped at
 * the same addresses in between can be mistaken for the old one.
 */
void nbp_forget_range_locked(uintptr_t addr, size_t len)
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

/* ---- statistics ---- */

void nbp_stats_print(void)
{
	char buf[1536];
	size_t n = 0;
	uint64_t served = 0;

	if (!nbp_cfg.stats || st.printed++)
		return;
	for (int i = 0; i < NBP_MAX_NODES; i++)
		served += st.node_bytes[i];
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			      "numabuddy-stats: pid=%d served=%llu blocks=%llu", (int)getpid(),
			      (unsigned long long)served, (unsigned long long)st.blocks);
	for (int i = 0; i < NBP_MAX_NODES && n < sizeof(buf) - 64; i++)
		if (st.node_bytes[i])
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " node%d=%llu", i,
					      (unsigned long long)st.node_bytes[i]);
	snprintf(buf + n, sizeof(buf) - n, " fallbacks=%llu fallback_bytes=%llu refused=%llu\n",
		 (unsigned long long)st.fallbacks, (unsigned long long)st.fallback_bytes,
		 (unsigned long long)st.refused);
	nbp_say("%s", buf);
}

/* In a forked child: the inherited file is the parent's; the child gets its own later. */
void nbp_pool_drop_file_locked(void)
{
	if (dev_fd >= 0)
		close(dev_fd);
	dev_fd = -1;
	memset(&st, 0, sizeof(st));
}
