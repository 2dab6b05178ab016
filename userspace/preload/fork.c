// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fork.c - a forked child gets private memory where its parent has pool regions.
 *
 * Pool mappings are MAP_SHARED: left alone, a child would see the parent's writes and the
 * parent the child's. Around fork, the handlers here hold nbp_lock; the child copies every
 * region into private anonymous memory and mremaps it over the same addresses, while the
 * parent's forking thread waits on a pipe for the child to finish, so the copy is the
 * memory as it was at fork. The child then drops the inherited device file: it never frees
 * its parent's blocks, and serves its own allocations from a file of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nbp.h"

static int fork_pipe[2] = { -1, -1 };

/* Replaces [a, a+len) of a shared pool mapping with a private copy, in the child. */
static int privatize(uintptr_t a, size_t len, int prot)
{
	void *tmp = nbp_sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

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
	for (; !err && a <= end; a += NBP_PAGE) {
		/* mincore says ENOMEM for an unmapped page. */
		int mapped = a < end && syscall(SYS_mincore, a, NBP_PAGE, &v) == 0;

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
			nbp_say("numabuddy: cannot copy %zu bytes of pool memory into the forked child "
			    "(%s); the child exits\n", r->len, strerrordesc_np(-err));
			syscall(SYS_exit_group, 127);
		}
		r->offset = NBP_PRIVATE;
	}
	if (fork_pipe[1] >= 0)
		close(fork_pipe[1]);
	nbp_pool_drop_file_locked();
	pthread_mutex_unlock(&nbp_lock);
}

void nbp_fork_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
