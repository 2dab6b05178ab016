// SPDX-License-Identifier: GPL-2.0
/*
 * loop.c - nb_fuzz's loop: each thread draws operations by weight and runs them until the
 * operation count or the time is up, then tears down; a worker process runs the threads.
 */
#include "fuzz.h"

/* ---- the loop --------------------------------------------------------------------------- */

unsigned op_total;

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
	case OP_KPATH: op_kpath(); break;
	case OP_COMPACT: op_compact(chaos_fd[rnd_below(CHAOS_FDS)]); break;
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
	for (;;) {
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

int worker(int proc)
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
