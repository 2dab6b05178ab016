// SPDX-License-Identifier: GPL-2.0
/*
 * kpaths.c - the kernel's own ways into a mapped block, mixed into the run: vmsplice,
 * process_vm_readv, O_DIRECT (from a RAM disk, when /dev/ram0 exists) and move_pages. Each may
 * refuse pool memory (EFAULT) or work; whatever it returns must be the block's own bytes, and
 * a move must never move a pool frame (the VM harness fails on any WARN the kernel prints).
 * A pinnable block may also be exported as a dma-buf: its mmap must show the same bytes.
 */
#include "fuzz.h"

#include <sys/syscall.h>
#include <sys/uio.h>

/* The page at a random mapped offset of b, or NULL. */
static char *pick_page(struct block *b)
{
	if (!b || !b->map || b->map_len < PAGE)
		return NULL;
	return b->map + rnd_below(b->map_len / PAGE) * PAGE;
}

/* Whether what a path delivered equals the page now (a concurrent fault may SIGBUS it). */
static void check_same(const char *path, const char *page, const char *got)
{
	int sig, same = 0;

	TOUCH(sig, same = !memcmp(page, got, PAGE));
	if (!sig && !same)
		fail(path, "delivered bytes that are not the block's at %p", (void *)page);
}

static void kpath_vmsplice(char *page)
{
	static __thread char buf[PAGE];
	struct iovec iov = { page, PAGE };
	int pfd[2];

	if (pipe(pfd))
		return;
	ssize_t n = vmsplice(pfd[1], &iov, 1, SPLICE_F_NONBLOCK);

	count(OP_KPATH, n < 0 ? errno : 0);
	if (n < 0 && errno != EFAULT)
		fail("vmsplice", "%s (%d), want EFAULT or success", strerror(errno), errno);
	if (n == PAGE && read(pfd[0], buf, PAGE) == PAGE)
		check_same("vmsplice", page, buf);
	close(pfd[0]);
	close(pfd[1]);
}

static void kpath_process_vm_readv(char *page)
{
	static __thread char buf[PAGE];
	struct iovec local = { buf, PAGE }, remote = { page, PAGE };
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);

	count(OP_KPATH, n < 0 ? errno : 0);
	if (n < 0 && errno != EFAULT)
		fail("process_vm_readv", "%s (%d), want EFAULT or success", strerror(errno), errno);
	if (n == PAGE)
		check_same("process_vm_readv", page, buf);
}

/* O_DIRECT write of the page to the disk reads it through the kernel's page references. */
static void kpath_odirect(char *page)
{
	static __thread char buf[PAGE] __attribute__((aligned(PAGE)));
	int disk = open("/dev/ram0", O_RDWR | O_DIRECT);
	off_t at = (off_t)(self->proc * 64 + self->idx) * PAGE; /* one page per thread */

	if (disk < 0)
		return;
	ssize_t n = pwrite(disk, page, PAGE, at);

	count(OP_KPATH, n < 0 ? errno : 0);
	if (n < 0 && errno != EFAULT)
		fail("odirect", "%s (%d), want EFAULT or success", strerror(errno), errno);
	if (n == PAGE && pread(disk, buf, PAGE, at) == PAGE)
		check_same("odirect", page, buf);
	close(disk);
}

static void kpath_move_pages(char *page)
{
	int status = 1000, node = (int)rnd_below(nr_nodes);
	void *pages[1] = { page };
	long r = syscall(__NR_move_pages, 0, 1, pages, chance(50) ? &node : NULL, &status, 0);

	count(OP_KPATH, r < 0 ? errno : 0);
	if (r < 0 && errno != EFAULT && errno != ENOENT && errno != EINVAL)
		fail("move_pages", "%s (%d)", strerror(errno), errno);
	if (r == 0 && status >= 0 && status != 1000 && status >= nr_nodes)
		fail("move_pages", "status %d for %p", status, (void *)page);
}

/* Export a pinnable block as a dma-buf and read the page through the dma-buf's own mmap. */
static void kpath_dmabuf(struct block *b, char *page)
{
	struct nb_export_dmabuf e = { .offset = b->offset, .flags = O_RDWR | O_CLOEXEC };
	uint64_t at = b->map_off + (uint64_t)(page - b->map);
	int err = dev_ioctl(self->fd, NB_IOC_EXPORT_DMABUF, &e);

	count(OP_KPATH, err);
	if (err) {
		/* Only pinnable blocks export; a racing FREE/MIGRATE/close may win. */
		if (err != ENOENT && err != EBUSY && err != ENOMEM && err != EMFILE &&
		    !(err == EINVAL && !(b->flags & NB_ALLOC_PINNABLE)))
			fail("dmabuf", "EXPORT_DMABUF of block %#llx flags %#x: %s",
			     (unsigned long long)b->offset, b->flags, strerror(err));
		return;
	}
	if (!(b->flags & NB_ALLOC_PINNABLE))
		fail("dmabuf", "EXPORT_DMABUF of an ordinary block %#llx worked",
		     (unsigned long long)b->offset);
	char *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, e.fd, (off_t)at);

	if (m != MAP_FAILED) {
		check_same("dmabuf", page, m);
		munmap(m, PAGE);
	}
	close(e.fd);
}

void op_kpath(void)
{
	struct block *b = pick_live();
	char *page = pick_page(b);

	if (!page)
		return;
	if (chance(20)) {
		kpath_dmabuf(b, page);
		return;
	}
	switch (rnd_below(4)) {
	case 0: kpath_vmsplice(page); break;
	case 1: kpath_process_vm_readv(page); break;
	case 2: kpath_odirect(page); break;
	default: kpath_move_pages(page); break;
	}
}
