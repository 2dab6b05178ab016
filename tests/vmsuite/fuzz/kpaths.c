// SPDX-License-Identifier: GPL-2.0
/*
 * kpaths.c - the kernel's own ways into a mapped block, mixed into the run: vmsplice,
 * process_vm_readv, O_DIRECT (from a RAM disk, when /dev/ram0 exists) and move_pages. Each may
 * refuse pool memory (EFAULT) or work; whatever it returns must be the block's own bytes, and
 * a move must never move a pool frame (the VM harness fails on any WARN the kernel prints).
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

void op_kpath(void)
{
	char *page = pick_page(pick_live());

	if (!page)
		return;
	switch (rnd_below(4)) {
	case 0: kpath_vmsplice(page); break;
	case 1: kpath_process_vm_readv(page); break;
	case 2: kpath_odirect(page); break;
	default: kpath_move_pages(page); break;
	}
}
