// SPDX-License-Identifier: GPL-2.0
/*
 * nb_fuzz - in-VM fuzzer of /dev/numabuddy: random ioctls (valid and invalid), device
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
 *
 * The files (fuzz.h lists what each holds): main.c options, launch and summary; loop.c the
 * loop; blocks.c and maps.c private blocks and their mappings; chaos.c chaos files; touch.c
 * touching memory and patterns; state.c operations, shared state, reporting; pools.c
 * --pool-check and --pool-shape.
 */
#include "fuzz.h"

static void read_version(void)
{
	struct nb_version v;
	int err = nb_test_version(&v);

	if (err) {
		printf("NB-TEST-FAIL fuzz-setup cannot open %s or read its version: %s\n",
		       NB_DEVICE_PATH, strerror(err));
		exit(1);
	}
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
