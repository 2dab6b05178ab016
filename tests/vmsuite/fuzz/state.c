// SPDX-License-Identifier: GPL-2.0
/*
 * state.c - nb_fuzz's operations (names, weights, the errno each ioctl may return), the state
 * shared by all its processes, threads and files, and reporting: fail(), count(), dev_ioctl().
 */
#include "fuzz.h"

/* ---- operations and the errno each may return ------------------------------------------ */

const char *const op_name[NR_OPS] = {
	"alloc", "reserve", "free", "free-random", "query", "migrate", "stats", "version",
	"batch", "raw-ioctl", "bad-pointer", "copyout-undo", "bench", "walk", "mmap", "mmap-bad",
	"munmap-part", "mremap", "mprotect", "madvise", "verify", "reopen", "dup", "scm-rights",
	"fork", "shared-create", "shared-touch", "shared-migrate", "shared-free",
	"shared-retire", "chaos-ioctl", "kernel-path", "compact",
};

/* Relative weights of the operations. */
const unsigned op_weight[NR_OPS] = {
	[OP_ALLOC] = 10, [OP_RESERVE] = 5, [OP_FREE] = 6, [OP_FREE_RANDOM] = 2, [OP_QUERY] = 4,
	[OP_MIGRATE] = 5, [OP_STATS] = 2, [OP_VERSION] = 1, [OP_BATCH] = 3, [OP_RAW_IOCTL] = 10,
	[OP_BAD_PTR] = 3, [OP_UNDO] = 2, [OP_BENCH] = 1, [OP_WALK] = 2, [OP_MAP] = 8,
	[OP_MAP_BAD] = 3, [OP_UNMAP_PART] = 3, [OP_MREMAP] = 3, [OP_MPROTECT] = 3,
	[OP_MADVISE] = 3, [OP_VERIFY] = 6, [OP_REOPEN] = 1, [OP_DUP] = 2, [OP_SCM] = 2,
	[OP_FORK] = 1, [OP_SH_CREATE] = 4, [OP_SH_TOUCH] = 10, [OP_SH_MIGRATE] = 6,
	[OP_SH_FREE] = 3, [OP_SH_RETIRE] = 2, [OP_CHAOS_IOCTL] = 8, [OP_KPATH] = 4,
	[OP_COMPACT] = 1,
};

/* What an ioctl of each command may fail with (besides EFAULT for a bad pointer, E2BIG for a
 * longer struct with non-zero tail, ENOTTY for a command that is not ours). EINTR: a fatal
 * signal; only seen by processes being killed, which report nothing. EBADF: a command that
 * changes pool memory on a chaos slot that holds an O_RDONLY file (op_dup). */
uint64_t cmd_errnos(unsigned nr)
{
	const uint64_t common = E(EFAULT) | E(E2BIG) | E(ENOTTY) | E(EINVAL);
	const uint64_t writes = E(EBADF);

	switch (nr) {
	case 0x00: return common;                                                  /* VERSION */
	case 0x01: case 0x05:                                                      /* ALLOC, RESERVE */
	case 0x03:                                                                 /* BATCH */
		return common | writes | E(ENOMEM) | E(EDQUOT) | E(ENOSPC) | E(EPERM) | E(EINTR);
	case 0x02: return common | writes | E(ENOENT) | E(EBUSY);                  /* FREE */
	case 0x04: return common | E(ENOENT);                                      /* QUERY */
	case 0x06:                                                                 /* MIGRATE */
		return common | writes | E(ENOENT) | E(EBUSY) | E(ENOMEM) | E(EDQUOT) | E(EINTR);
	case 0x07: return common | E(ENOENT) | E(ENODEV);                          /* STATS */
	case 0x08: return common | writes | E(EPERM) | E(EINTR);                   /* BENCH */
	case 0x09: return common | E(EPERM);                                       /* WALK */
	case 0x0a:                                                                 /* EXPORT_DMABUF */
		return common | writes | E(ENOENT) | E(EBUSY) | E(ENOMEM) | E(EMFILE);
	case 0x0b:                                                                 /* COMPACT */
		return common | writes | E(EPERM) | E(EBUSY) | E(EAGAIN) | E(ENOMEM) | E(EINTR);
	default: return E(ENOTTY);
	}
}

/* ---- shared (MAP_SHARED anonymous) state across all processes --------------------------- */

struct global *G;

uint64_t opt_ops = 20000, opt_seed, opt_seconds = 60, opt_max_block = 8 * MiB;
int opt_procs = 3, opt_threads = 3, opt_quiet;
struct timespec t_start;
int nr_nodes = 1, max_order = 18;
uint64_t pool_nodes;

double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t_start.tv_sec) + (t.tv_nsec - t_start.tv_nsec) / 1e9;
}

/* ---- per-thread state ------------------------------------------------------------------- */

__thread struct thread *self;

/* ---- per-process state ------------------------------------------------------------------ */

int chaos_fd[CHAOS_FDS];
struct shared_range shared[SHARED_MAX];
pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
int sock_next = -1, sock_prev = -1; /* ring of processes for SCM_RIGHTS */
int my_proc;
int in_child; /* forked child: other threads' locks may be held forever */

/* ---- reporting -------------------------------------------------------------------------- */

void fail(const char *what, const char *fmt, ...)
{
	char buf[1024];
	int n;
	va_list ap;

	atomic_fetch_add(&G->failures, 1);
	if (atomic_fetch_add(&G->fail_lines, 1) >= MAX_FAIL_LINES)
		return;
	n = snprintf(buf, sizeof(buf), "NB-TEST-FAIL fuzz-%s seed=%llu proc=%d thread=%d op#%lu(%s) ",
		     what, (unsigned long long)opt_seed, self ? self->proc : my_proc,
		     self ? self->idx : -1, self ? self->op_no : 0,
		     self ? op_name[self->cur] : "-");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, n) < 0)
		_exit(9);
}

void count(enum op op, int err)
{
	atomic_fetch_add(&G->hist[op][err >= 0 && err < 135 ? err : 135], 1);
}

/* ioctl returning 0 or errno; checks the return convention and the command's errno set. */
int dev_ioctl(int fd, unsigned long cmd, void *arg)
{
	long rc = ioctl(fd, cmd, arg);
	int err = rc == 0 ? 0 : errno;

	if (rc != 0 && rc != -1)
		fail("ioctl-return", "cmd=0x%lx returned %ld", cmd, rc);
	if (err && _IOC_TYPE(cmd) == NB_IOC_MAGIC && !(cmd_errnos(_IOC_NR(cmd)) & E(err)))
		fail("ioctl-errno", "cmd=0x%lx (nr %lu size %lu dir %lu) failed with %s (%d)", cmd,
		     (unsigned long)_IOC_NR(cmd), (unsigned long)_IOC_SIZE(cmd),
		     (unsigned long)_IOC_DIR(cmd), strerror(err), err);
	/* Other magics: the VFS answers a few generic commands itself (FIOCLEX, FIGETBSZ...);
	 * whatever it says is not numabuddy's to check. */
	count(self->cur, err);
	return err;
}
