/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz.h - what the files of nb_fuzz share: the operations, the state of the run, of each
 * process and of each thread, the random numbers and TOUCH. main.c says what the fuzzer does.
 *
 *   state.c   the operations' names, weights and errno sets; shared state; reporting
 *   touch.c   touching memory that may legitimately vanish; patterns
 *   blocks.c  private blocks: allocation, free, query, migrate, and the other ioctls
 *   maps.c    mappings of private blocks
 *   chaos.c   chaos files: shared ranges, fds passed between processes, forks
 *   kpaths.c  the kernel's own ways into blocks: vmsplice, process_vm_readv, O_DIRECT, move_pages
 *   loop.c    the loop: picking and running operations, threads, worker processes
 *   pools.c   --pool-check and --pool-shape
 *   main.c    options, launching the worker processes, the summary
 */
#ifndef NB_FUZZ_H
#define NB_FUZZ_H

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

#include "../nb_test.h"

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
	OP_CHAOS_IOCTL, OP_KPATH, OP_COMPACT, NR_OPS
};

extern const char *const op_name[NR_OPS];
extern const unsigned op_weight[NR_OPS]; /* relative weights of the operations */

/* One bit per errno; EDQUOT (122) takes bit 63, any other errno >= 63 bit 62 (never allowed). */
#define E(x) ((x) == EDQUOT ? 1ULL << 63 : (x) < 62 ? 1ULL << (x) : 1ULL << 62)
uint64_t cmd_errnos(unsigned nr);

/* ---- shared (MAP_SHARED anonymous) state across all processes --------------------------- */

struct global {
	atomic_ulong ops;
	atomic_ulong ops_limit;
	atomic_int fail_lines;
	atomic_int failures;
	atomic_ulong hist[NR_OPS][136]; /* [op][errno], slot 0 = success, 135 = other */
	atomic_ulong sigbus, sigsegv, forks, kills, scm_sent, scm_recv;
};
extern struct global *G;

extern uint64_t opt_ops, opt_seed, opt_seconds, opt_max_block;
extern int opt_procs, opt_threads, opt_quiet;
extern struct timespec t_start;
extern int nr_nodes, max_order;
extern uint64_t pool_nodes;

double now_s(void);

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

extern __thread struct thread *self;

/* ---- per-process state ------------------------------------------------------------------ */

struct shared_range {
	int used, dead;   /* dead: freed or being retired; last user unmaps */
	int users;
	int slot;         /* chaos slot whose file it was allocated from */
	int fd;           /* that slot's descriptor number */
	uint64_t offset, size, tag;
	char *map;
};

extern int chaos_fd[CHAOS_FDS];
extern struct shared_range shared[SHARED_MAX];
extern pthread_mutex_t shared_lock;
extern int sock_next, sock_prev; /* ring of processes for SCM_RIGHTS */
extern int my_proc;
extern int in_child; /* forked child: other threads' locks may be held forever */

/* ---- random numbers --------------------------------------------------------------------- */

static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rnd(void) { return splitmix64(&self->rng); }
static inline uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }
static inline int chance(unsigned pct) { return rnd_below(100) < pct; }

/* ---- reporting (state.c) ---------------------------------------------------------------- */

void fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void count(enum op op, int err);
int dev_ioctl(int fd, unsigned long cmd, void *arg);

/* ---- touching memory that may legitimately vanish (touch.c) ------------------------------ */

/* Runs stmt with SIGBUS/SIGSEGV caught; sigvar is 0, or the signal that cut it short. */
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

const char *maps_line(uintptr_t addr, char *buf, size_t len);
void on_fault(int sig, siginfo_t *si, void *uc);
volatile uint64_t *word_at(struct block *b, uint64_t boff);
int fill_block(struct block *b);
void verify_block(struct block *b, const char *when);

/* ---- private blocks (blocks.c) ------------------------------------------------------------ */

uint64_t rand_size(void);
void rand_policy(struct nb_alloc *a);
uint32_t rand_flags(int reserve);
struct block *pick_block(void);
struct block *pick_live(void);
void drop_block(struct block *b);
void free_block(struct block *b, const char *how);
void op_alloc(int reserve);
void op_free(void);
void op_free_random(void);
void op_query(void);
void op_migrate(void);
void op_stats(int fd);
void op_version(int fd);
void op_batch(int fd, int private);
void op_raw_ioctl(int fd);
void op_bad_ptr(int fd);
void op_undo(void);
void op_kpath(void);
void op_bench(int fd);
void op_compact(int fd);
void op_walk(int fd);

/* ---- mappings of private blocks (maps.c) -------------------------------------------------- */

int map_block(struct block *b, int whole);
void op_map(void);
void op_map_bad(void);
void op_unmap_part(void);
void op_mremap(void);
void op_mprotect(void);
void op_madvise(void);
void op_verify(void);
void op_reopen(void);
void op_dup(void);

/* ---- chaos files (chaos.c) ---------------------------------------------------------------- */

void op_scm(void);
void op_sh_create(void);
void op_sh_touch(void);
void op_sh_migrate(void);
void op_sh_free(void);
void op_sh_retire(void);
void op_chaos_ioctl(void);
void op_fork(void);

/* ---- the loop (loop.c) -------------------------------------------------------------------- */

extern unsigned op_total;
int worker(int proc);

/* ---- pools (pools.c) ---------------------------------------------------------------------- */

int pool_check(void);
int pool_shape(void);

#endif /* NB_FUZZ_H */
