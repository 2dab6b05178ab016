// SPDX-License-Identifier: GPL-2.0
/*
 * nb_fuzz.c - in-VM fuzzer of /dev/numabuddy: random ioctls (valid and invalid), device
 * mappings and their lifetime, from several processes and threads at once.
 *
 *   nb_fuzz [--ops N] [--seconds S] [--seed X] [--procs P] [--threads T] [--max-block BYTES]
 *           [--quiet]
 *
 * Stops after N operations in total or S seconds, whichever comes first. Thread t of process
 * p draws its operations from splitmix64(seed, p, t): the sequence of operations a thread
 * tries is reproducible from the seed (what each returns depends on the interleaving).
 *
 * Every thread owns one "private" file: nobody else issues ioctls on it, so the fuzzer knows
 * exactly which blocks are live there and checks strong invariants on them (a fresh block
 * reads as zero, data survives migration, madvise, mremap and mprotect, FREE of a live block
 * succeeds, an old mapping of a freed block gets SIGBUS, a failed copy-out leaves no block).
 * Each process also has CHAOS_FDS "chaos" files at fixed descriptor numbers that all its
 * threads, its forked children and its neighbour process (SCM_RIGHTS) hammer concurrently
 * with random commands, random structs, bad pointers, and concurrent migrate + fault + free
 * on the same shared ranges. A chaos slot is replaced with dup2(), never closed, so a number
 * never comes to name a private file. Invariants there: every ioctl returns 0 or an errno
 * from its documented set, and a word of a shared range reads as 0 or as the one value any
 * writer ever stores there (a stale mapping of a recycled frame would show another value).
 *
 * Prints "NB-TEST-FAIL fuzz-<what> ..." for anything that should never happen, and at the
 * end the seed, the operation count, an errno histogram per operation, and
 * NB-TEST-PASS/FAIL fuzz-run. Exit status 0 only when nothing failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../uapi/numabuddy.h"

#define PAGE 4096UL
#define MiB (1024UL * 1024)
#define CHAOS_FDS 4
#define SHARED_MAX 16
#define BLOCKS_MAX 24
#define MAX_FAIL_LINES 40

/* ---- operations and the errno each may return ------------------------------------------ */

enum op {
	OP_ALLOC, OP_RESERVE, OP_FREE, OP_FREE_RANDOM, OP_QUERY, OP_MIGRATE, OP_STATS, OP_VERSION,
	OP_BATCH, OP_RAW_IOCTL, OP_BAD_PTR, OP_UNDO, OP_BENCH, OP_WALK, OP_MAP, OP_MAP_BAD,
	OP_UNMAP_PART, OP_MREMAP, OP_MPROTECT, OP_MADVISE, OP_VERIFY, OP_REOPEN, OP_DUP,
	OP_SCM, OP_FORK, OP_SH_CREATE, OP_SH_TOUCH, OP_SH_MIGRATE, OP_SH_FREE, OP_SH_RETIRE,
	OP_CHAOS_IOCTL, NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"alloc", "reserve", "free", "free-random", "query", "migrate", "stats", "version",
	"batch", "raw-ioctl", "bad-pointer", "copyout-undo", "bench", "walk", "mmap", "mmap-bad",
	"munmap-part", "mremap", "mprotect", "madvise", "verify", "reopen", "dup", "scm-rights",
	"fork", "shared-create", "shared-touch", "shared-migrate", "shared-free",
	"shared-retire", "chaos-ioctl",
};

/* Relative weights of the operations. */
static const unsigned op_weight[NR_OPS] = {
	[OP_ALLOC] = 10, [OP_RESERVE] = 5, [OP_FREE] = 6, [OP_FREE_RANDOM] = 2, [OP_QUERY] = 4,
	[OP_MIGRATE] = 5, [OP_STATS] = 2, [OP_VERSION] = 1, [OP_BATCH] = 3, [OP_RAW_IOCTL] = 10,
	[OP_BAD_PTR] = 3, [OP_UNDO] = 2, [OP_BENCH] = 1, [OP_WALK] = 2, [OP_MAP] = 8,
	[OP_MAP_BAD] = 3, [OP_UNMAP_PART] = 3, [OP_MREMAP] = 3, [OP_MPROTECT] = 3,
	[OP_MADVISE] = 3, [OP_VERIFY] = 6, [OP_REOPEN] = 1, [OP_DUP] = 2, [OP_SCM] = 2,
	[OP_FORK] = 1, [OP_SH_CREATE] = 4, [OP_SH_TOUCH] = 10, [OP_SH_MIGRATE] = 6,
	[OP_SH_FREE] = 3, [OP_SH_RETIRE] = 2, [OP_CHAOS_IOCTL] = 8,
};

/* One bit per errno; EDQUOT (122) takes bit 63, any other errno >= 63 bit 62 (never allowed). */
#define E(x) ((x) == EDQUOT ? 1ULL << 63 : (x) < 62 ? 1ULL << (x) : 1ULL << 62)
/* What an ioctl of each command may fail with (besides EFAULT for a bad pointer, E2BIG for a
 * longer struct with non-zero tail, ENOTTY for a command that is not ours). EINTR: a fatal
 * signal; only seen by processes being killed, which report nothing. EBADF: a command that
 * changes pool memory on a chaos slot that holds an O_RDONLY file (op_dup). */
static uint64_t cmd_errnos(unsigned nr)
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
	default: return E(ENOTTY);
	}
}

/* ---- shared (MAP_SHARED anonymous) state across all processes --------------------------- */

struct global {
	atomic_ulong ops;
	atomic_ulong ops_limit;
	atomic_int fail_lines;
	atomic_int failures;
	atomic_ulong hist[NR_OPS][136]; /* [op][errno], slot 0 = success, 135 = other */
	atomic_ulong sigbus, sigsegv, forks, kills, scm_sent, scm_recv;
};
static struct global *G;

static uint64_t opt_ops = 20000, opt_seed, opt_seconds = 60, opt_max_block = 8 * MiB;
static int opt_procs = 3, opt_threads = 3, opt_quiet;
static struct timespec t_start;
static int nr_nodes = 1, max_order = 18;
static uint64_t pool_nodes;
static volatile sig_atomic_t stopping;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t_start.tv_sec) + (t.tv_nsec - t_start.tv_nsec) / 1e9;
}

/* ---- per-thread state ------------------------------------------------------------------- */

struct block {
	uint64_t offset, size, id;
	int node;       /* node_out at allocation */
	uint32_t flags;
	int reserve;    /* demand-paged: untouched pages are populated (and zeroed) at first touch */
	int orphan;     /* its file is closed: only the mapping keeps it alive */
	char *map;      /* mapping of [offset + map_off, + map_len), NULL if none */
	uint64_t map_off, map_len;
	int prot_ro;    /* mapping is read-only now */
	int written;    /* pattern written over the mapped window */
	int partial;    /* a first touch was refused (SIGBUS) part-way: contents now mixed */
	uint64_t wr_off, wr_len; /* window (block offsets) holding the pattern */
};

struct thread {
	int proc, idx;
	uint64_t rng;
	int fd;                 /* private file */
	struct block blocks[BLOCKS_MAX];
	int nblocks;
	uint64_t next_id;
	unsigned long op_no;
	enum op cur;
	sigjmp_buf jb;
	volatile int in_touch;
	int sig_code;        /* si_code and si_addr of the last signal TOUCH caught */
	void *sig_addr;
	char *ro_page;          /* a read-only page holding a valid nb_alloc (copy-out undo) */
};

static __thread struct thread *self;

/* ---- per-process state ------------------------------------------------------------------ */

struct shared_range {
	int used, dead;   /* dead: freed or being retired; last user unmaps */
	int users;
	int slot;         /* chaos slot whose file it was allocated from */
	int fd;           /* that slot's descriptor number */
	uint64_t offset, size, tag;
	char *map;
};

static int chaos_fd[CHAOS_FDS];
static struct shared_range shared[SHARED_MAX];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static int sock_next = -1, sock_prev = -1; /* ring of processes for SCM_RIGHTS */
static int my_proc;
static int in_child; /* forked child: other threads' locks may be held forever */

/* ---- random numbers --------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(void) { return splitmix64(&self->rng); }
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }
static int chance(unsigned pct) { return rnd_below(100) < pct; }

/* ---- reporting -------------------------------------------------------------------------- */

static void fail(const char *what, const char *fmt, ...)
{
	char buf[512];
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

static void count(enum op op, int err)
{
	atomic_fetch_add(&G->hist[op][err >= 0 && err < 135 ? err : 135], 1);
}

/* ioctl returning 0 or errno; checks the return convention and the command's errno set. */
static int nb_ioctl(int fd, unsigned long cmd, void *arg)
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

/* ---- touching memory that may legitimately vanish ---------------------------------------- */

/* The /proc/self/maps line covering addr, for failure messages ("none" if unmapped). */
static const char *maps_line(uintptr_t addr, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi;

	while (f && fgets(buf, (int)len, f)) {
		if (sscanf(buf, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) {
			buf[strcspn(buf, "\n")] = 0;
			fclose(f);
			return buf;
		}
	}
	if (f)
		fclose(f);
	snprintf(buf, len, "none");
	return buf;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (self && self->in_touch) {
		self->in_touch = 0;
		self->sig_code = si->si_code;
		self->sig_addr = si->si_addr;
		siglongjmp(self->jb, sig);
	}
	char buf[160];
	int n = snprintf(buf, sizeof(buf),
			 "NB-TEST-FAIL fuzz-unexpected-signal seed=%llu sig=%d addr=%p op=%s\n",
			 (unsigned long long)opt_seed, sig, si->si_addr,
			 self ? op_name[self->cur] : "-");
	if (write(1, buf, n) < 0)
		_exit(8);
	atomic_fetch_add(&G->failures, 1);
	_exit(7);
}

/* Runs fn(p, arg) with SIGBUS/SIGSEGV caught: returns 0, or the signal. */
#define TOUCH(sigvar, stmt)                                       \
	do {                                                      \
		int _s = sigsetjmp(self->jb, 1);                  \
		if (_s == 0) {                                    \
			self->in_touch = 1;                       \
			stmt;                                     \
			self->in_touch = 0;                       \
		}                                                 \
		(sigvar) = _s;                                    \
		if (_s == SIGBUS)                                 \
			atomic_fetch_add(&G->sigbus, 1);          \
		else if (_s == SIGSEGV)                           \
			atomic_fetch_add(&G->sigsegv, 1);         \
	} while (0)

/* ---- patterns --------------------------------------------------------------------------- */

static uint64_t pattern(uint64_t id, uint64_t boff)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ULL ^ boff;

	return splitmix64(&x) | 1; /* never zero */
}

/* Pattern words: every word of the first page of the filled window, the first and last word
 * of each other page. Sampling keeps large blocks affordable under TCG. */
static int sampled(uint64_t win_lo, uint64_t boff)
{
	uint64_t pg = boff & ~(PAGE - 1);

	return pg == win_lo || boff == pg || boff == pg + PAGE - 8;
}

/* Next sampled word after boff, for a window whose first page is win_lo. */
static uint64_t next_word(uint64_t win_lo, uint64_t boff)
{
	uint64_t pg = boff & ~(PAGE - 1);

	if (pg == win_lo)
		return boff + 8;
	return boff == pg ? pg + PAGE - 8 : pg + PAGE;
}

#define FOR_EACH_WORD(win_lo, lo, hi, boff) \
	for (uint64_t boff = (lo); boff < (hi); boff = next_word((win_lo), boff)) \
		if (sampled((win_lo), boff))

static volatile uint64_t *word_at(struct block *b, uint64_t boff)
{
	return (volatile uint64_t *)(b->map + (boff - b->map_off));
}

/* Check a freshly mapped block reads as zero, then write the pattern. Returns the signal. */
static int fill_block(struct block *b)
{
	int sig = 0;
	uint64_t lo = b->map_off, hi = b->map_off + b->map_len;

	TOUCH(sig, {
		if (!(b->flags & NB_ALLOC_NOZERO) && !b->written && !b->partial) {
			FOR_EACH_WORD(lo, lo, hi, boff) {
				uint64_t v = *word_at(b, boff);

				if (v) {
					fail("not-zero", "fresh block %#llx (+%#llx) reads %#llx",
					     (unsigned long long)b->offset,
					     (unsigned long long)boff, (unsigned long long)v);
					break;
				}
			}
		}
		FOR_EACH_WORD(lo, lo, hi, boff)
			*word_at(b, boff) = pattern(b->id, boff);
	});
	if (sig == SIGBUS && b->reserve && !(b->flags & NB_ALLOC_POPULATE)) {
		/* A demand-paged range whose first touch found no frame (pool or quota
		 * exhausted by the other threads) gets SIGBUS, like tmpfs at its limit. */
		b->written = 0;
		b->partial = 1;
		return sig;
	}
	if (sig) {
		char vma[160];

		fail("fill-signal", "signal %d code %d at %p filling live block %#llx; VMA: %s",
		     sig, self->sig_code, self->sig_addr, (unsigned long long)b->offset,
		     maps_line((uintptr_t)self->sig_addr, vma, sizeof(vma)));
		return sig;
	}
	b->written = 1;
	b->wr_off = lo;
	b->wr_len = hi - lo;
	return 0;
}

/* Verify the pattern over the part of the written window that is still mapped. */
static void verify_block(struct block *b, const char *when)
{
	uint64_t lo, hi;
	int sig = 0;

	if (!b->map || !b->written)
		return;
	lo = b->wr_off > b->map_off ? b->wr_off : b->map_off;
	hi = b->wr_off + b->wr_len;
	if (b->map_off + b->map_len < hi)
		hi = b->map_off + b->map_len;
	if (lo >= hi)
		return;
	TOUCH(sig, {
		/* The fill sampled from wr_off: check exactly those words still mapped. */
		for (uint64_t boff = b->wr_off; boff < hi; boff = next_word(b->wr_off, boff)) {
			if (boff < lo || !sampled(b->wr_off, boff))
				continue;
			uint64_t v = *word_at(b, boff);

			if (v != pattern(b->id, boff)) {
				fail("data", "%s: block %#llx (size %#llx flags %#x) +%#llx reads %#llx, want %#llx",
				     when, (unsigned long long)b->offset,
				     (unsigned long long)b->size, b->flags,
				     (unsigned long long)boff, (unsigned long long)v,
				     (unsigned long long)pattern(b->id, boff));
				break;
			}
		}
	});
	if (sig) {
		char vma[160];

		fail("verify-signal", "%s: signal %d code %d at %p reading live block %#llx; VMA: %s",
		     when, sig, self->sig_code, self->sig_addr, (unsigned long long)b->offset,
		     maps_line((uintptr_t)self->sig_addr, vma, sizeof(vma)));
	}
}

/* ---- private blocks --------------------------------------------------------------------- */

static uint64_t rand_size(void)
{
	static const uint64_t sizes[] = { PAGE, 2 * PAGE, 3 * PAGE, 16 * PAGE, 64 * 1024 + 100,
					  MiB, 2 * MiB, 2 * MiB + PAGE, 4 * MiB, 6 * MiB + 3 * PAGE };
	uint64_t s = sizes[rnd_below(sizeof(sizes) / sizeof(sizes[0]))];

	if (chance(20))
		s = 1 + rnd_below(opt_max_block);
	return s > opt_max_block ? opt_max_block : s;
}

static void rand_policy(struct nb_alloc *a)
{
	a->policy = rnd_below(4);
	a->node = chance(30) ? -1 : (int)rnd_below(nr_nodes);
	if (chance(40))
		a->nodemask = rnd() & ((1ULL << nr_nodes) - 1);
	if (a->policy == NB_POLICY_BIND && chance(50))
		a->nodemask = pool_nodes;
}

static uint32_t rand_flags(int reserve)
{
	uint32_t f = 0;

	if (!reserve && chance(15))
		f |= NB_ALLOC_CONTIG;
	if (chance(10))
		f |= NB_ALLOC_LOW4G;
	if (chance(15))
		f |= NB_ALLOC_HUGE_2M;
	if (reserve && chance(30))
		f |= NB_ALLOC_POPULATE;
	if (chance(3))
		f |= NB_ALLOC_NOZERO;
	return f;
}

static struct block *pick_block(void)
{
	return self->nblocks ? &self->blocks[rnd_below(self->nblocks)] : NULL;
}

static struct block *pick_live(void)
{
	for (int tries = 0; tries < 4; tries++) {
		struct block *b = pick_block();

		if (b && !b->orphan)
			return b;
	}
	return NULL;
}

static void drop_block(struct block *b)
{
	if (b->map)
		munmap(b->map, b->map_len);
	*b = self->blocks[--self->nblocks];
}

static uint64_t fd_bytes_total(int fd)
{
	uint64_t sum = 0;

	for (int n = 0; n < nr_nodes; n++) {
		struct nb_stats s = { .node = n };

		if (ioctl(fd, NB_IOC_STATS, &s) == 0)
			sum += s.fd_bytes;
	}
	return sum;
}

static int map_block(struct block *b, int whole);

static void add_block(const struct nb_alloc *a, int reserve)
{
	struct block *b;

	if (a->alloc_size < (a->size ? a->size : PAGE << a->order) || (a->offset & (PAGE - 1)) ||
	    (a->alloc_size & (PAGE - 1)) || a->node_out < -1 || a->node_out >= nr_nodes ||
	    (!reserve && a->node_out < 0))
		fail("alloc-result", "size %#llx order %u -> offset %#llx alloc_size %#llx node %d",
		     (unsigned long long)a->size, a->order, (unsigned long long)a->offset,
		     (unsigned long long)a->alloc_size, a->node_out);
	if (self->nblocks == BLOCKS_MAX) {
		struct nb_free f = { .offset = a->offset };

		if (nb_ioctl(self->fd, NB_IOC_FREE, &f))
			fail("free-live", "freeing surplus block %#llx: %s",
			     (unsigned long long)a->offset, strerror(errno));
		return;
	}
	b = &self->blocks[self->nblocks++];
	memset(b, 0, sizeof(*b));
	b->offset = a->offset;
	b->size = a->alloc_size;
	b->node = a->node_out;
	b->flags = a->flags;
	b->reserve = reserve;
	b->id = ((uint64_t)self->proc << 48) ^ ((uint64_t)self->idx << 40) ^ self->next_id++;
	if (chance(70) && !map_block(b, 1))
		fill_block(b);
}

static void op_alloc(int reserve)
{
	struct nb_alloc a = { 0 };
	int err;

	if (chance(85))
		a.size = rand_size();
	else
		a.order = rnd_below(max_order < 12 ? max_order + 1 : 12);
	rand_policy(&a);
	a.flags = rand_flags(reserve);
	err = nb_ioctl(self->fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, &a);
	if (!err) {
		add_block(&a, reserve);
		return;
	}
	/* A valid request may only be refused for lack of memory, quota or offset space. */
	if (err == EINVAL) {
		int valid_nodes = a.node < nr_nodes && !(a.nodemask >> nr_nodes);
		int ok_flags = !((a.flags & NB_ALLOC_CONTIG) && reserve);

		if (valid_nodes && ok_flags && a.policy <= 3)
			fail("alloc-einval", "valid %s size %#llx order %u policy %u node %d mask %#llx flags %#x refused with EINVAL",
			     reserve ? "reserve" : "alloc", (unsigned long long)a.size, a.order,
			     a.policy, a.node, (unsigned long long)a.nodemask, a.flags);
	}
}

static void free_block(struct block *b, const char *how)
{
	struct nb_free f = { .offset = b->offset };
	int err = nb_ioctl(self->fd, NB_IOC_FREE, &f), sig = 0;

	if (err) {
		fail("free-live", "%s: FREE of live block %#llx: %s", how,
		     (unsigned long long)b->offset, strerror(err));
		return;
	}
	/* The uapi: a later access through an old mapping gets SIGBUS. */
	if (b->map) {
		volatile char *p = b->map + rnd_below(b->map_len);

		TOUCH(sig, (void)*p);
		if (sig != SIGBUS)
			fail("stale-mapping", "%s: read of freed block %#llx through old mapping: %s",
			     how, (unsigned long long)b->offset,
			     sig ? "wrong signal" : "no SIGBUS");
	}
	drop_block(b);
}

static void op_free(void)
{
	struct block *b = pick_live();

	if (b) {
		verify_block(b, "before free");
		free_block(b, "free");
	}
}

static void op_free_random(void)
{
	struct nb_free f = { .offset = rnd_below(4) ? rnd_below(256) * PAGE : rnd() };
	int err;

	if (chance(20))
		f.reserved[rnd_below(3)] = rnd();
	for (int i = 0; i < self->nblocks; i++)
		if (!self->blocks[i].orphan && self->blocks[i].offset == f.offset && !f.reserved[0] &&
		    !f.reserved[1] && !f.reserved[2]) {
			free_block(&self->blocks[i], "free-random");
			return;
		}
	err = nb_ioctl(self->fd, NB_IOC_FREE, &f);
	if (!err)
		fail("free-random", "FREE of %#llx (no block of ours starts there) succeeded",
		     (unsigned long long)f.offset);
}

static void op_query(void)
{
	struct nb_query q = { 0 };
	struct block *b = pick_live();
	int err;

	if (b && chance(80)) {
		q.offset = b->offset;
		err = nb_ioctl(self->fd, NB_IOC_QUERY, &q);
		if (err || q.size != b->size ||
		    q.flags != (b->reserve ? b->flags : b->flags & ~NB_ALLOC_POPULATE))
			fail("query", "block %#llx size %#llx flags %#x: err %d size %#llx flags %#x",
			     (unsigned long long)b->offset, (unsigned long long)b->size, b->flags,
			     err, (unsigned long long)q.size, q.flags);
		return;
	}
	q.offset = chance(50) ? rnd_below(1024) * PAGE : rnd();
	nb_ioctl(self->fd, NB_IOC_QUERY, &q);
}

static void op_migrate(void)
{
	struct nb_migrate m = { 0 };
	struct block *b = pick_live();
	int err;

	m.node = chance(90) ? (int)rnd_below(nr_nodes) : (int)rnd();
	if (!b) {
		m.offset = rnd_below(64) * PAGE;
		nb_ioctl(self->fd, NB_IOC_MIGRATE, &m);
		return;
	}
	m.offset = b->offset;
	err = nb_ioctl(self->fd, NB_IOC_MIGRATE, &m);
	if (err && err != ENOMEM && err != EDQUOT &&
	    !(err == EINVAL && (m.node < 0 || m.node >= nr_nodes || !((pool_nodes >> m.node) & 1))))
		fail("migrate", "MIGRATE of live block %#llx to node %d: %s",
		     (unsigned long long)b->offset, m.node, strerror(err));
	if (m.bytes_moved > b->size)
		fail("migrate", "moved %llu bytes of a %llu byte block",
		     (unsigned long long)m.bytes_moved, (unsigned long long)b->size);
	verify_block(b, "after migrate");
}

static void op_stats(int fd)
{
	struct nb_stats s = { .node = chance(90) ? (int)rnd_below(nr_nodes) : (int)rnd() };
	int err = nb_ioctl(fd, NB_IOC_STATS, &s);

	if (!err && (s.free_bytes > s.total_bytes || s.low_free_bytes > s.low_total_bytes))
		fail("stats", "node %d free %llu > total %llu", s.node,
		     (unsigned long long)s.free_bytes, (unsigned long long)s.total_bytes);
}

static void op_version(int fd)
{
	struct nb_version v = { 0 };
	int err = nb_ioctl(fd, NB_IOC_VERSION, &v);

	if (err || v.abi_major != NB_ABI_MAJOR || v.page_size != PAGE)
		fail("version", "err %d major %u page %u", err, v.abi_major, v.page_size);
}

static void op_batch(int fd, int private)
{
	struct nb_alloc reqs[8];
	struct nb_alloc_batch bt = { 0 };
	unsigned n = 1 + rnd_below(8);
	int err;

	memset(reqs, 0, sizeof(reqs));
	for (unsigned i = 0; i < n; i++) {
		reqs[i].size = rand_size() / (1 + rnd_below(4));
		if (!reqs[i].size)
			reqs[i].order = rnd_below(4);
		rand_policy(&reqs[i]);
		reqs[i].flags = rand_flags(0) & ~NB_ALLOC_NOZERO;
	}
	bt.reqs = (uintptr_t)reqs;
	bt.count = n;
	bt.entry_size = sizeof(struct nb_alloc);
	if (!private && chance(40)) {
		switch (rnd_below(5)) {
		case 0: bt.count = chance(50) ? 0 : 4097 + rnd_below(10); break;
		case 1: bt.entry_size = rnd_below(2 * sizeof(struct nb_alloc)); break;
		case 2: bt.reqs = chance(50) ? 0 : rnd(); break;
		case 3: bt.pad = 1; break;
		default: bt.done = 1; break;
		}
	}
	err = nb_ioctl(fd, NB_IOC_ALLOC_BATCH, &bt);
	if (!private)
		return;
	if (!err && (bt.done == 0 || bt.done > n))
		fail("batch", "success with done=%u of %u", bt.done, n);
	for (unsigned i = 0; !err && i < bt.done; i++)
		add_block(&reqs[i], 0);
}

/* A random command: our magic or another, any number, direction and size; random contents. */
static void op_raw_ioctl(int fd)
{
	static __thread unsigned char buf[3 * PAGE];
	unsigned dir = rnd_below(4), nr = rnd_below(12), size, type = chance(85) ? NB_IOC_MAGIC : rnd_below(256);
	unsigned long cmd;
	void *arg = buf;

	size = chance(70) ? rnd_below(400) : rnd_below(_IOC_SIZEMASK + 1);
	if (size > sizeof(buf))
		size = rnd_below(sizeof(buf));
	if (chance(10))
		nr = rnd_below(256);
	cmd = _IOC(dir, type, nr, size);
	if (chance(50)) {
		memset(buf, 0, sizeof(buf));
		/* Mostly-zero structs with a few random fields get past the reserved checks. */
		for (int i = rnd_below(4); i > 0; i--)
			((uint32_t *)buf)[rnd_below(16)] = chance(50) ? (uint32_t)rnd() : rnd_below(8);
		if (nr == 1 || nr == 5) { /* keep allocation sizes small */
			((struct nb_alloc *)buf)->size &= 0xfffff;
			((struct nb_alloc *)buf)->order &= 7;
		}
		if (nr == 8)
			((struct nb_bench *)buf)->iterations &= 0x3ff;
	} else {
		for (unsigned i = 0; i < sizeof(buf) / 8; i++)
			((uint64_t *)buf)[i] = rnd();
	}
	if (chance(10))
		arg = chance(50) ? NULL : (void *)(uintptr_t)rnd();
	nb_ioctl(fd, cmd, arg);
}

/* Valid commands with pointers the kernel must refuse. */
static void op_bad_ptr(int fd)
{
	static const unsigned long cmds[] = { NB_IOC_VERSION, NB_IOC_ALLOC, NB_IOC_FREE,
					      NB_IOC_ALLOC_BATCH, NB_IOC_QUERY, NB_IOC_RESERVE,
					      NB_IOC_MIGRATE, NB_IOC_STATS, NB_IOC_WALK };
	void *ptrs[] = { NULL, (void *)1, (void *)(uintptr_t)0xffff888000000000ULL,
			 (void *)(uintptr_t)0xfffffffffffff000ULL, (void *)(uintptr_t)-1ULL,
			 (void *)(uintptr_t)0x00007ffffffff000ULL };
	unsigned long cmd = cmds[rnd_below(sizeof(cmds) / sizeof(cmds[0]))];
	int err = nb_ioctl(fd, cmd, ptrs[rnd_below(sizeof(ptrs) / sizeof(ptrs[0]))]);
	/* A read-only chaos file refuses pool-changing commands before reading the struct. */
	int rdonly_refusal = err == EBADF && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY &&
			     (E(EBADF) & cmd_errnos(_IOC_NR(cmd)));

	if (err != EFAULT && err != ENOTTY && !rdonly_refusal)
		fail("bad-pointer", "cmd %#lx with a bad pointer: %s", cmd, strerror(err));
}

/* ALLOC/RESERVE whose result cannot be copied out (read-only page): EFAULT, and no block may
 * stay behind on the file (the dispatcher's undo). Private file: nobody else changes it. */
static void op_undo(void)
{
	struct nb_alloc a = { .size = PAGE * (1 + rnd_below(64)), .policy = NB_POLICY_LOCAL,
			      .node = -1 };
	uint64_t before, after;
	int reserve = chance(30), err;

	if (!self->ro_page)
		return;
	if (reserve)
		a.flags = NB_ALLOC_POPULATE;
	if (mprotect(self->ro_page, PAGE, PROT_READ | PROT_WRITE))
		return;
	memcpy(self->ro_page, &a, sizeof(a));
	mprotect(self->ro_page, PAGE, PROT_READ);
	before = fd_bytes_total(self->fd);
	err = nb_ioctl(self->fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, self->ro_page);
	after = fd_bytes_total(self->fd);
	if (err != EFAULT && err != ENOMEM && err != EDQUOT)
		fail("copyout-undo", "%s into a read-only struct: %s", reserve ? "RESERVE" : "ALLOC",
		     err ? strerror(err) : "success");
	if (after != before)
		fail("copyout-undo", "file holds %llu bytes after a refused %s, %llu before",
		     (unsigned long long)after, reserve ? "RESERVE" : "ALLOC",
		     (unsigned long long)before);
}

static void op_bench(int fd)
{
	struct nb_bench b = { .allocator = rnd_below(3), .order = rnd_below(12),
			      .node = chance(90) ? (int)rnd_below(nr_nodes) : (int)rnd(),
			      .iterations = rnd_below(512) };

	nb_ioctl(fd, NB_IOC_BENCH, &b);
}

static void op_walk(int fd)
{
	struct nb_walk w = { 0 };
	struct block *b = pick_block();

	if (b && b->map && chance(70))
		w.addr = (uintptr_t)b->map + rnd_below(b->map_len);
	else
		w.addr = chance(50) ? rnd() : (uintptr_t)&w;
	nb_ioctl(fd, NB_IOC_WALK, &w);
}

/* ---- mappings of private blocks --------------------------------------------------------- */

/* Map the block (whole, or a random page-aligned window of it). Returns 0 on success. */
static int map_block(struct block *b, int whole)
{
	uint64_t off = 0, len = b->size;
	int prot = PROT_READ | PROT_WRITE;
	void *p;

	if (b->map || b->orphan)
		return -1;
	if (!whole && chance(40)) {
		off = rnd_below(b->size / PAGE) * PAGE;
		len = (1 + rnd_below((b->size - off) / PAGE)) * PAGE;
	}
	if (chance(10))
		prot |= PROT_EXEC;
	p = mmap(NULL, len, prot, MAP_SHARED, self->fd, b->offset + off);
	if (p == MAP_FAILED && prot & PROT_EXEC) {
		prot &= ~PROT_EXEC;
		p = mmap(NULL, len, prot, MAP_SHARED, self->fd, b->offset + off);
	}
	count(OP_MAP, p == MAP_FAILED ? errno : 0);
	if (p == MAP_FAILED) {
		if (errno != ENOMEM)
			fail("mmap", "mmap of live block %#llx +%#llx len %#llx: %s",
			     (unsigned long long)b->offset, (unsigned long long)off,
			     (unsigned long long)len, strerror(errno));
		return -1;
	}
	b->map = p;
	b->map_off = off;
	b->map_len = len;
	b->prot_ro = 0;
	return 0;
}

static void op_map(void)
{
	struct block *b = pick_live();

	if (!b)
		return;
	if (b->map) {
		verify_block(b, "before munmap");
		munmap(b->map, b->map_len);
		b->map = NULL;
		return;
	}
	if (!map_block(b, 0)) {
		if (!b->written)
			fill_block(b);
		else
			verify_block(b, "after remap");
	}
}

/* mmaps that must fail: offsets that are no block, past a block's end, private, unaligned. */
static void op_map_bad(void)
{
	struct block *b = pick_live();
	uint64_t off, len = PAGE;
	int flags = MAP_SHARED, kind = rnd_below(6);
	const char *what;
	void *p;

	switch (kind) {
	case 0: off = (1ULL << 40) + rnd_below(1 << 20) * PAGE; what = "offset past every block"; break;
	case 1:
		if (!b)
			return;
		off = b->offset; len = b->size + PAGE; what = "longer than the block"; break;
	case 2:
		if (!b)
			return;
		off = b->offset; flags = MAP_PRIVATE; what = "MAP_PRIVATE"; break;
	case 3:
		if (!b)
			return;
		off = b->offset + b->size - PAGE; len = 2 * PAGE; what = "across the block end"; break;
	case 4: off = b ? b->offset : 0; len = 0; what = "zero length"; break;
	default: off = b ? b->offset : 0; len = 1ULL << (47 + rnd_below(10)); what = "huge length"; break;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, self->fd, off);
	count(OP_MAP_BAD, p == MAP_FAILED ? errno : 0);
	if (p != MAP_FAILED) {
		fail("mmap-bad", "mmap %s (offset %#llx len %#llx) succeeded", what,
		     (unsigned long long)off, (unsigned long long)len);
		munmap(p, len);
	}
}

/* Unmap the head or tail of a mapping (partial munmap splits the VMA). */
static void op_unmap_part(void)
{
	struct block *b = pick_live();
	uint64_t cut;

	if (!b || !b->map || b->map_len < 2 * PAGE)
		return;
	cut = (1 + rnd_below(b->map_len / PAGE - 1)) * PAGE;
	if (chance(50)) {
		count(OP_UNMAP_PART, munmap(b->map, cut) ? errno : 0);
		b->map += cut;
		b->map_off += cut;
	} else {
		count(OP_UNMAP_PART, munmap(b->map + b->map_len - cut, cut) ? errno : 0);
	}
	b->map_len -= cut;
	verify_block(b, "after partial munmap");
}

static void op_mremap(void)
{
	struct block *b = pick_live();
	void *p, *dst, *dst_p;

	if (!b || !b->map)
		return;
	switch (rnd_below(3)) {
	case 0: /* grow: VM_DONTEXPAND refuses */
		p = mremap(b->map, b->map_len, b->map_len + PAGE, MREMAP_MAYMOVE);
		count(OP_MREMAP, p == MAP_FAILED ? errno : 0);
		if (p != MAP_FAILED) {
			fail("mremap", "growing a device mapping succeeded");
			b->map = p;
		}
		break;
	case 1: /* shrink */
		if (b->map_len < 2 * PAGE)
			return;
		p = mremap(b->map, b->map_len, b->map_len - PAGE, 0);
		count(OP_MREMAP, p == MAP_FAILED ? errno : 0);
		if (p != MAP_FAILED)
			b->map_len -= PAGE;
		break;
	default: /* move to a fresh address */
		dst = mmap(NULL, b->map_len + 2 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dst == MAP_FAILED)
			return;
		p = (char *)dst + (chance(50) ? 0 : PAGE * (1 + rnd_below(511)));
		dst_p = p;
		p = mremap(b->map, b->map_len, b->map_len, MREMAP_MAYMOVE | MREMAP_FIXED, dst_p);
		count(OP_MREMAP, p == MAP_FAILED ? errno : 0);
		/* Give back the reservation around the target. The target itself is ours only if
		 * the move worked: a failed MREMAP_FIXED may already have unmapped it (the kernel
		 * clears the target first, then finds e.g. that madvise split the mapping into
		 * several VMAs: EFAULT), and another thread's mmap may sit there by now. So it is
		 * left alone: at worst a PROT_NONE reservation stays. */
		if ((char *)dst_p > (char *)dst)
			munmap(dst, (char *)dst_p - (char *)dst);
		munmap((char *)dst_p + b->map_len,
		       (char *)dst + b->map_len + 2 * MiB - ((char *)dst_p + b->map_len));
		if (p == MAP_FAILED)
			return;
		b->map = p;
		break;
	}
	verify_block(b, "after mremap");
}

static void op_mprotect(void)
{
	struct block *b = pick_live();
	int sig = 0;

	if (!b || !b->map)
		return;
	if (!b->prot_ro && chance(60)) {
		if (mprotect(b->map, b->map_len, PROT_READ)) {
			count(OP_MPROTECT, errno);
			return;
		}
		count(OP_MPROTECT, 0);
		b->prot_ro = 1;
		verify_block(b, "after mprotect(PROT_READ)");
		/* Store to a word the fill wrote (the first of a page): its frame is there. The
		 * mapping's first word may be a page of a demand range nobody touched yet, whose
		 * first touch may legitimately SIGBUS when the pools or the quota are exhausted. */
		uint64_t lo = b->wr_off > b->map_off ? b->wr_off : b->map_off;

		if (b->written && lo < b->wr_off + b->wr_len && lo < b->map_off + b->map_len) {
			volatile uint64_t *w = word_at(b, lo);

			TOUCH(sig, *w = *w);
			if (sig != SIGSEGV) {
				char vma[160];

				fail("mprotect", "store to a PROT_READ device mapping %p (block "
				     "%#llx +%#llx): %s %d code %d addr %p; VMA: %s",
				     (void *)w, (unsigned long long)b->offset,
				     (unsigned long long)b->map_off, sig ? "signal" : "no SIGSEGV",
				     sig, self->sig_code, self->sig_addr,
				     maps_line((uintptr_t)w, vma, sizeof(vma)));
			}
		}
		return;
	}
	count(OP_MPROTECT, mprotect(b->map, b->map_len, PROT_READ | PROT_WRITE |
				    (chance(30) ? PROT_EXEC : 0)) ? errno : 0);
	b->prot_ro = 0;
	if (mprotect(b->map, b->map_len, PROT_READ | PROT_WRITE) == 0)
		b->prot_ro = 0;
	else
		b->prot_ro = 1;
	verify_block(b, "after mprotect(PROT_WRITE)");
}

static void op_madvise(void)
{
	static const int advice[] = { MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
				      MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK,
				      MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE,
				      MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP,
				      MADV_WIPEONFORK, MADV_KEEPONFORK, 20 /* COLD */,
				      21 /* PAGEOUT */, 22 /* POPULATE_READ */,
				      23 /* POPULATE_WRITE */, 25 /* COLLAPSE */, 77 };
	struct block *b = pick_live();
	uint64_t off, len;
	int adv = advice[rnd_below(sizeof(advice) / sizeof(advice[0]))];

	if (!b || !b->map)
		return;
	off = rnd_below(b->map_len / PAGE) * PAGE;
	len = (1 + rnd_below((b->map_len - off) / PAGE)) * PAGE;
	count(OP_MADVISE, madvise(b->map + off, len, adv) ? errno : 0);
	/* The mapping is of the file: whatever the advice, the data must still be there. */
	verify_block(b, "after madvise");
}

static void op_verify(void)
{
	struct block *b = pick_block();

	if (b && b->map && !b->written && !b->prot_ro)
		fill_block(b);
	else if (b)
		verify_block(b, "verify");
	if (b && b->orphan && chance(30))
		drop_block(b); /* its file's last reference goes with the mapping */
}

/* Close the private file: unmapped blocks die, mapped ones live on through their mapping. */
static void op_reopen(void)
{
	int fd;

	/* Open first: with every pool full, open() itself fails (ENOMEM: a file's page-table
	 * root comes from the pools), and this thread must keep a file. */
	fd = open(NB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	count(OP_REOPEN, fd < 0 ? errno : 0);
	if (fd < 0) {
		if (errno != ENOMEM)
			fail("reopen", "open: %s", strerror(errno));
		return;
	}
	if (close(self->fd))
		fail("close", "close: %s", strerror(errno));
	for (int i = self->nblocks - 1; i >= 0; i--) {
		struct block *b = &self->blocks[i];

		if (!b->map)
			*b = self->blocks[--self->nblocks];
		else
			b->orphan = 1;
	}
	for (int i = 0; i < self->nblocks; i++)
		verify_block(&self->blocks[i], "after close (mapping keeps the file)");
	self->fd = fd;
}

/* The same file through a second descriptor: it sees the same blocks. */
static void op_dup(void)
{
	struct block *b = pick_live();
	int d = dup(self->fd);
	struct nb_query q = { 0 };

	if (d < 0)
		return;
	if (b) {
		q.offset = b->offset;
		if (nb_ioctl(d, NB_IOC_QUERY, &q) || q.size != b->size)
			fail("dup", "QUERY through a dup of the file: size %#llx",
			     (unsigned long long)q.size);
	}
	close(d);
	/* And replace a chaos file by a new one: the old one's last ioctl user may still run.
	 * One in four is read-only: everything that changes pool memory through it is EBADF. */
	d = open(NB_DEVICE_PATH, (chance(25) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (d >= 0) {
		dup2(d, chaos_fd[rnd_below(CHAOS_FDS)]);
		close(d);
	}
}

/* ---- chaos files: shared ranges, fds passed between processes, forks ---------------------- */

static void op_scm(void)
{
	char c = 'x';
	struct iovec iov = { &c, 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd;

	if (sock_next >= 0 && chance(50)) {
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		fd = chaos_fd[rnd_below(CHAOS_FDS)];
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		if (sendmsg(sock_next, &msg, MSG_DONTWAIT) == 1)
			atomic_fetch_add(&G->scm_sent, 1);
		return;
	}
	if (sock_prev < 0)
		return;
	if (recvmsg(sock_prev, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	atomic_fetch_add(&G->scm_recv, 1);
	/* Use the neighbour's file a little, then keep it in one of our chaos slots. */
	op_stats(fd);
	dup2(fd, chaos_fd[rnd_below(CHAOS_FDS)]);
	close(fd);
}

static struct shared_range *shared_get(void)
{
	struct shared_range *s = NULL;

	if (in_child) { /* a snapshot of the table; the parent keeps its mappings alive */
		struct shared_range *c = &shared[rnd_below(SHARED_MAX)];

		return c->used && !c->dead && c->map ? c : NULL;
	}
	pthread_mutex_lock(&shared_lock);
	for (int tries = 0; tries < 4; tries++) {
		struct shared_range *c = &shared[rnd_below(SHARED_MAX)];

		if (c->used && !c->dead) {
			c->users++;
			s = c;
			break;
		}
	}
	pthread_mutex_unlock(&shared_lock);
	return s;
}

static void shared_put(struct shared_range *s)
{
	char *map = NULL;
	uint64_t size = 0;

	if (in_child)
		return;
	pthread_mutex_lock(&shared_lock);
	if (--s->users == 0 && s->dead) {
		map = s->map;
		size = s->size;
		s->used = 0;
	}
	pthread_mutex_unlock(&shared_lock);
	if (map)
		munmap(map, size);
}

static void op_sh_create(void)
{
	struct nb_alloc a = { 0 };
	int slot = rnd_below(CHAOS_FDS), reserve = chance(40);
	struct shared_range *s = NULL;
	void *p;

	/* ALLOC and mmap through one snapshot of the slot's file: another thread may dup2 a
	 * different file into the slot in between, and offsets are per file, so mapping the
	 * same offset of that other file would map someone else's block (seen in the long run
	 * as another block's 0x5a bytes). The mapping keeps the file alive once fd is closed. */
	int fd = dup(chaos_fd[slot]);

	if (fd < 0)
		return;
	a.size = rand_size();
	rand_policy(&a);
	a.flags = rand_flags(reserve) & ~NB_ALLOC_NOZERO;
	if (nb_ioctl(fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, &a)) {
		close(fd);
		return;
	}
	p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.offset);
	close(fd);
	count(OP_SH_CREATE, p == MAP_FAILED ? 1000 : 0);
	if (p == MAP_FAILED) /* the range was freed meanwhile */
		return;
	pthread_mutex_lock(&shared_lock);
	for (int i = 0; i < SHARED_MAX; i++)
		if (!shared[i].used) {
			s = &shared[i];
			*s = (struct shared_range){ .used = 1, .slot = slot, .fd = chaos_fd[slot],
						    .offset = a.offset, .size = a.alloc_size,
						    .tag = rnd() | 1, .map = p };
			break;
		}
	pthread_mutex_unlock(&shared_lock);
	if (!s)
		munmap(p, a.alloc_size); /* the file frees it at its last close */
}

/* Read/write tagged words of a shared range: each word holds 0 or tag ^ index, nothing else,
 * whatever migrations, faults and frees run concurrently. */
static void op_sh_touch(void)
{
	struct shared_range *s = shared_get();
	int sig = 0;

	if (!s)
		return;
	TOUCH(sig, {
		for (int i = 0; i < 16; i++) {
			uint64_t w = rnd_below(s->size / 8);
			volatile uint64_t *p = (volatile uint64_t *)s->map + w;
			uint64_t v = *p;

			if (v && v != (s->tag ^ w)) {
				fail("shared-data", "range %#llx word %llu reads %#llx, want 0 or %#llx",
				     (unsigned long long)s->offset, (unsigned long long)w,
				     (unsigned long long)v, (unsigned long long)(s->tag ^ w));
				break;
			}
			if (chance(50))
				*p = s->tag ^ w;
		}
	});
	(void)sig; /* SIGBUS after a concurrent FREE is legitimate */
	shared_put(s);
}

static void op_sh_migrate(void)
{
	struct shared_range *s = shared_get();
	struct nb_migrate m = { 0 };

	if (!s)
		return;
	m.offset = s->offset;
	m.node = rnd_below(nr_nodes);
	nb_ioctl(s->fd, NB_IOC_MIGRATE, &m);
	shared_put(s);
}

static void op_sh_free(void)
{
	struct shared_range *s = shared_get();
	struct nb_free f = { 0 };

	if (!s)
		return;
	f.offset = s->offset;
	nb_ioctl(s->fd, NB_IOC_FREE, &f); /* racing threads: 0, ENOENT or EBUSY */
	shared_put(s);
}

static void op_sh_retire(void)
{
	struct shared_range *s = shared_get();

	if (!s)
		return;
	pthread_mutex_lock(&shared_lock);
	s->dead = 1;
	pthread_mutex_unlock(&shared_lock);
	shared_put(s);
}

static void op_chaos_ioctl(void)
{
	int fd = chaos_fd[rnd_below(CHAOS_FDS)];

	switch (rnd_below(6)) {
	case 0: op_raw_ioctl(fd); break;
	case 1: op_batch(fd, 0); break;
	case 2: op_bad_ptr(fd); break;
	case 3: op_stats(fd); break;
	case 4: op_version(fd); break;
	default: {
		struct nb_free f = { .offset = rnd_below(512) * PAGE };

		nb_ioctl(fd, NB_IOC_FREE, &f);
		break;
	}
	}
}

/* Child of a fork: a few chaos operations (no malloc: other threads may hold its lock), then
 * exit with whatever it holds, or die to a SIGKILL from the parent half-way. */
static void child_ops(void)
{
	int n = 1 + rnd_below(6);

	for (int i = 0; i < n; i++) {
		switch (rnd_below(5)) {
		case 0: op_sh_touch(); break;
		case 1: op_sh_migrate(); break;
		case 2: op_chaos_ioctl(); break;
		case 3: {
			struct nb_alloc a = { .size = rand_size(), .node = -1 };
			int fd = chaos_fd[rnd_below(CHAOS_FDS)];

			if (!nb_ioctl(fd, NB_IOC_ALLOC, &a)) {
				char *p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE,
					       MAP_SHARED, fd, a.offset);

				if (p != MAP_FAILED)
					memset(p, 0x5a, PAGE); /* exits with a mapping and a block */
			}
			break;
		}
		default: op_sh_free(); break;
		}
	}
	if (chance(30))
		kill(getpid(), SIGKILL);
	_exit(0);
}

static void op_fork(void)
{
	pid_t pid;
	int st;

	if (stopping)
		return;
	self->rng ^= 0x5bd1e995;
	/* Fork under the table lock: another thread may be half-way through writing a
	 * shared-range entry, and the child must not inherit a torn one (new mapping, old
	 * tag), which its shared-touch would report as corrupt data. */
	pthread_mutex_lock(&shared_lock);
	pid = fork();
	pthread_mutex_unlock(&shared_lock);
	if (pid < 0)
		return;
	if (pid == 0) {
		in_child = 1;
		alarm(30);
		child_ops();
	}
	self->rng ^= 0x1234567;
	atomic_fetch_add(&G->forks, 1);
	if (chance(40)) {
		usleep(rnd_below(20000));
		kill(pid, SIGKILL);
		atomic_fetch_add(&G->kills, 1);
	}
	if (waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		fail("fork-child", "child still running after 30 s (a handful of operations), killed by its alarm");
	else if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
		fail("fork-child", "child died of signal %d", WTERMSIG(st));
	if (WIFEXITED(st) && WEXITSTATUS(st))
		fail("fork-child", "child exited %d", WEXITSTATUS(st));
}

/* ---- the loop --------------------------------------------------------------------------- */

static unsigned op_total;

static enum op pick_op(void)
{
	unsigned r = rnd_below(op_total);

	for (int i = 0; i < NR_OPS; i++) {
		if (r < op_weight[i])
			return i;
		r -= op_weight[i];
	}
	return OP_VERSION;
}

static void run_op(enum op op)
{
	switch (op) {
	case OP_ALLOC: op_alloc(0); break;
	case OP_RESERVE: op_alloc(1); break;
	case OP_FREE: op_free(); break;
	case OP_FREE_RANDOM: op_free_random(); break;
	case OP_QUERY: op_query(); break;
	case OP_MIGRATE: op_migrate(); break;
	case OP_STATS: op_stats(self->fd); break;
	case OP_VERSION: op_version(self->fd); break;
	case OP_BATCH: op_batch(self->fd, 1); break;
	case OP_RAW_IOCTL: op_raw_ioctl(chaos_fd[rnd_below(CHAOS_FDS)]); break;
	case OP_BAD_PTR: op_bad_ptr(self->fd); break;
	case OP_UNDO: op_undo(); break;
	case OP_BENCH: op_bench(chaos_fd[rnd_below(CHAOS_FDS)]); break;
	case OP_WALK: op_walk(self->fd); break;
	case OP_MAP: op_map(); break;
	case OP_MAP_BAD: op_map_bad(); break;
	case OP_UNMAP_PART: op_unmap_part(); break;
	case OP_MREMAP: op_mremap(); break;
	case OP_MPROTECT: op_mprotect(); break;
	case OP_MADVISE: op_madvise(); break;
	case OP_VERIFY: op_verify(); break;
	case OP_REOPEN: op_reopen(); break;
	case OP_DUP: op_dup(); break;
	case OP_SCM: op_scm(); break;
	case OP_FORK: op_fork(); break;
	case OP_SH_CREATE: op_sh_create(); break;
	case OP_SH_TOUCH: op_sh_touch(); break;
	case OP_SH_MIGRATE: op_sh_migrate(); break;
	case OP_SH_FREE: op_sh_free(); break;
	case OP_SH_RETIRE: op_sh_retire(); break;
	case OP_CHAOS_IOCTL: op_chaos_ioctl(); break;
	default: break;
	}
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;
	uint64_t x = opt_seed ^ ((uint64_t)t->proc << 32) ^ ((uint64_t)t->idx << 16);

	self = t;
	t->rng = splitmix64(&x);
	t->fd = open(NB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (t->fd < 0) {
		fail("open", "%s: %s", NB_DEVICE_PATH, strerror(errno));
		return NULL;
	}
	t->ro_page = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->ro_page == MAP_FAILED)
		t->ro_page = NULL;
	while (!stopping) {
		unsigned long k = atomic_fetch_add(&G->ops, 1);

		if (k >= opt_ops)
			break;
		if (opt_ops >= 100000 && k && k % (opt_ops / 20) == 0)
			printf("nb_fuzz: progress %lu ops, %.0f s\n", k, now_s());
		if (now_s() > opt_seconds)
			break;
		t->op_no++;
		t->cur = pick_op();
		run_op(t->cur);
	}
	/* Tear down: verify, then free some blocks explicitly and leave the rest to close. */
	t->cur = OP_FREE;
	while (t->nblocks) {
		struct block *b = &t->blocks[t->nblocks - 1];

		verify_block(b, "at exit");
		if (!b->orphan && chance(50))
			free_block(b, "at exit");
		else
			drop_block(b);
	}
	close(t->fd);
	return NULL;
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	for (;;) {
		sleep(1);
		if (now_s() > opt_seconds + 60) {
			char buf[128];
			int n = snprintf(buf, sizeof(buf),
					 "NB-TEST-FAIL fuzz-watchdog seed=%llu proc=%d: still running %ds past the deadline\n",
					 (unsigned long long)opt_seed, my_proc, 60);

			if (write(1, buf, n) < 0)
				_exit(6);
			atomic_fetch_add(&G->failures, 1);
			_exit(5);
		}
	}
	return NULL;
}

static int worker(int proc)
{
	pthread_t th[64], wd;
	struct thread *ts = calloc(opt_threads, sizeof(*ts));
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER };

	my_proc = proc;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	for (int i = 0; i < CHAOS_FDS; i++) {
		chaos_fd[i] = open(NB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		if (chaos_fd[i] < 0) {
			fprintf(stderr, "nb_fuzz: open: %s\n", strerror(errno));
			return 2;
		}
	}
	pthread_create(&wd, NULL, watchdog_main, NULL);
	for (int i = 0; i < opt_threads; i++) {
		ts[i].proc = proc;
		ts[i].idx = i;
		pthread_create(&th[i], NULL, thread_main, &ts[i]);
	}
	for (int i = 0; i < opt_threads; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SHARED_MAX; i++)
		if (shared[i].used)
			munmap(shared[i].map, shared[i].size);
	return 0;
}

static void read_version(void)
{
	struct nb_version v = { 0 };
	int fd = open(NB_DEVICE_PATH, O_RDWR);

	if (fd < 0 || ioctl(fd, NB_IOC_VERSION, &v)) {
		printf("NB-TEST-FAIL fuzz-setup cannot open %s or read its version: %s\n",
		       NB_DEVICE_PATH, strerror(errno));
		exit(1);
	}
	close(fd);
	nr_nodes = v.nr_node_ids > 64 ? 64 : v.nr_node_ids;
	max_order = v.max_order;
	pool_nodes = v.nodes_with_pool;
}

static void on_launcher_alarm(int sig)
{
	static const char msg[] = "NB-TEST-FAIL fuzz-hang workers still alive long after the deadline\n";

	(void)sig;
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(4);
	kill(0, SIGKILL);
	_exit(4);
}

/* --pool-check: every pool, seen from a fresh file, is wholly free. Exit 0 if so. */
static int pool_check(void)
{
	int fd = open(NB_DEVICE_PATH, O_RDWR), bad = 0;

	if (fd < 0) {
		printf("nb_fuzz: open %s: %s\n", NB_DEVICE_PATH, strerror(errno));
		return 1;
	}
	/* This file's own page-table pages come from the pools: the only frames in use. */
	uint64_t table_pages = 0, used = 0;
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "numabuddy-table-pages: %llu", (unsigned long long *)&table_pages);
	if (f)
		fclose(f);
	for (int n = 0; n < nr_nodes; n++) {
		struct nb_stats st = { .node = n };

		if (!((pool_nodes >> n) & 1))
			continue;
		if (ioctl(fd, NB_IOC_STATS, &st)) {
			printf("nb_fuzz: node %d: STATS: %s\n", n, strerror(errno));
			bad++;
			continue;
		}
		printf("nb_fuzz: node %d pool total %llu free %llu (low %llu/%llu) fd_bytes %llu\n", n,
		       (unsigned long long)st.total_bytes, (unsigned long long)st.free_bytes,
		       (unsigned long long)st.low_free_bytes, (unsigned long long)st.low_total_bytes,
		       (unsigned long long)st.fd_bytes);
		used += st.total_bytes - st.free_bytes;
		if (st.fd_bytes || st.free_bytes > st.total_bytes)
			bad++;
	}
	close(fd);
	printf("nb_fuzz: %llu bytes in use, this file's page table has %llu pages\n",
	       (unsigned long long)used, (unsigned long long)table_pages);
	if (used != table_pages * PAGE)
		bad++;
	return bad ? 1 : 0;
}

/*
 * --pool-shape: the buddy structure of every pool, measured by taking it apart: from a fresh
 * file pinned to a CPU of another node (its page-table pages then come from elsewhere),
 * allocate blocks BIND to the node, largest order first, until nothing is left (the first
 * failure drains the per-CPU caches, so parked frames coalesce), then free them. Prints one
 * line per node, "node N shape oK*count ...": two equal outputs mean the same free blocks.
 * Needs fd_quota_pct=100 (the suite sets it around the call).
 */
static int pool_shape(void)
{
	int bad = 0;

	for (int n = 0; n < nr_nodes; n++) {
		cpu_set_t cs;
		int cpu = -1, fd, pipefd[2];
		pid_t pid;

		if (!((pool_nodes >> n) & 1))
			continue;
		/* A CPU whose node is not n. */
		for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++) {
			char path[96];

			snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d", c);
			if (access(path, F_OK) != 0)
				break;
			snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/node%d", c, n);
			if (access(path, F_OK) != 0)
				cpu = c;
		}
		if (cpu < 0) {
			printf("nb_fuzz: node %d shape (every CPU is on it: skipped)\n", n);
			continue;
		}
		if (pipe(pipefd))
			return 1;
		pid = fork();
		if (pid == 0) {
			static uint64_t offs[1 << 16];
			unsigned got[32] = { 0 }, nr = 0;
			char out[512];
			int len;

			CPU_ZERO(&cs);
			CPU_SET(cpu, &cs);
			if (sched_setaffinity(0, sizeof(cs), &cs))
				_exit(3);
			fd = open(NB_DEVICE_PATH, O_RDWR);
			if (fd < 0)
				_exit(4);
			for (int o = max_order; o >= 0; o--) {
				for (;;) {
					struct nb_alloc a = { .order = o, .policy = NB_POLICY_BIND,
							      .node = n, .flags = NB_ALLOC_NOZERO };

					if (ioctl(fd, NB_IOC_ALLOC, &a) || nr == sizeof(offs) / 8)
						break;
					offs[nr++] = a.offset;
					got[o]++;
				}
			}
			len = snprintf(out, sizeof(out), "node %d shape", n);
			for (int o = max_order; o >= 0; o--)
				if (got[o])
					len += snprintf(out + len, sizeof(out) - len, " o%d*%u", o, got[o]);
			for (unsigned i = 0; i < nr; i++) {
				struct nb_free f = { .offset = offs[i] };

				ioctl(fd, NB_IOC_FREE, &f);
			}
			if (write(pipefd[1], out, len) != len)
				_exit(5);
			_exit(0);
		}
		close(pipefd[1]);
		char buf[512] = { 0 };
		int st, len = read(pipefd[0], buf, sizeof(buf) - 1);

		close(pipefd[0]);
		waitpid(pid, &st, 0);
		if (len <= 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("nb_fuzz: node %d: shape probe failed (status %#x)\n", n, st);
			bad++;
			continue;
		}
		printf("%s\n", buf);
	}
	return bad ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: nb_fuzz [--ops N] [--seconds S] [--seed X] [--procs P] [--threads T] [--max-block BYTES] [--quiet]\n"
			"       nb_fuzz --pool-check   (exit 0 when every pool is wholly free)\n"
			"       nb_fuzz --pool-shape   (print each pool's free blocks, taking it apart)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int socks[64][2];
	pid_t pids[64];
	int bad = 0;

	clock_gettime(CLOCK_MONOTONIC, &t_start);
	opt_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quiet")) { opt_quiet = 1; continue; }
		if (!strcmp(a, "--pool-check")) {
			read_version();
			return pool_check();
		}
		if (!strcmp(a, "--pool-shape")) {
			read_version();
			setvbuf(stdout, NULL, _IOLBF, 0);
			return pool_shape();
		}
		if (!v)
			usage();
		if (!strcmp(a, "--ops")) opt_ops = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seconds")) opt_seconds = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seed")) opt_seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--procs")) opt_procs = atoi(v);
		else if (!strcmp(a, "--threads")) opt_threads = atoi(v);
		else if (!strcmp(a, "--max-block")) opt_max_block = strtoull(v, NULL, 0);
		else usage();
		i++;
	}
	if (opt_procs < 1 || opt_procs > 64 || opt_threads < 1 || opt_threads > 64 ||
	    opt_max_block < PAGE)
		usage();
	read_version();
	for (int i = 0; i < NR_OPS; i++)
		op_total += op_weight[i];
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("nb_fuzz: seed=%llu ops=%llu seconds=%llu procs=%d threads=%d nodes=%d max_order=%d\n",
	       (unsigned long long)opt_seed, (unsigned long long)opt_ops,
	       (unsigned long long)opt_seconds, opt_procs, opt_threads, nr_nodes, max_order);
	G = mmap(NULL, sizeof(*G), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (G == MAP_FAILED)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	for (int p = 0; p < opt_procs; p++)
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, socks[p]))
			return 2;
	setpgid(0, 0);
	for (int p = 0; p < opt_procs; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			/* Process p sends to p+1 on socks[p][0]; receives from p-1 on socks[p-1][1]. */
			sock_next = opt_procs > 1 ? socks[p][0] : -1;
			sock_prev = opt_procs > 1 ? socks[(p + opt_procs - 1) % opt_procs][1] : -1;
			_exit(worker(p));
		}
	}
	for (int p = 0; p < opt_procs; p++) {
		close(socks[p][0]);
		close(socks[p][1]);
	}
	signal(SIGALRM, on_launcher_alarm);
	alarm(opt_seconds + 180);
	for (int p = 0; p < opt_procs; p++) {
		int st;

		if (waitpid(pids[p], &st, 0) != pids[p] || !WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("NB-TEST-FAIL fuzz-worker proc=%d seed=%llu status %#x\n", p,
			       (unsigned long long)opt_seed, st);
			bad++;
		}
	}
	alarm(0);
	unsigned long done = atomic_load(&G->ops);

	if (done > opt_ops)
		done = opt_ops;
	printf("nb_fuzz: seed=%llu ops=%lu elapsed=%.1fs sigbus=%lu sigsegv=%lu forks=%lu kills=%lu scm=%lu/%lu\n",
	       (unsigned long long)opt_seed, done, now_s(), atomic_load(&G->sigbus),
	       atomic_load(&G->sigsegv), atomic_load(&G->forks), atomic_load(&G->kills),
	       atomic_load(&G->scm_sent), atomic_load(&G->scm_recv));
	if (!opt_quiet) {
		for (int o = 0; o < NR_OPS; o++) {
			char line[1024];
			int n = snprintf(line, sizeof(line), "nb_fuzz: %-15s", op_name[o]);

			for (int e = 0; e < 136; e++) {
				unsigned long c = atomic_load(&G->hist[o][e]);

				if (c && n < (int)sizeof(line) - 40)
					n += snprintf(line + n, sizeof(line) - n, " %s=%lu",
						      e == 0 ? "ok" : e == 135 ? "other" : strerrorname_np(e) ? strerrorname_np(e) : "?", c);
			}
			puts(line);
		}
	}
	bad += atomic_load(&G->failures);
	if (bad)
		printf("NB-TEST-FAIL fuzz-run seed=%llu: %d failure(s)\n", (unsigned long long)opt_seed, bad);
	else
		printf("NB-TEST-PASS fuzz-run\n");
	return bad ? 1 : 0;
}
