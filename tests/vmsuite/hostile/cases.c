// SPDX-License-Identifier: GPL-2.0
/*
 * cases.c - nb_hostile's rmmod-busy, mmap-edges, exit-with-blocks, signal-alloc and
 * signal-migrate (see main.c for what each checks).
 */
#include "hostile.h"

/* ---- rmmod-busy -------------------------------------------------------------------------- */

static int try_rmmod(void)
{
	return syscall(SYS_delete_module, "numabuddy", O_NONBLOCK) ? errno : 0;
}

void t_rmmod_busy(void)
{
	int fd = dev_open(O_RDWR), err;
	struct nb_alloc a;
	uint64_t *p;

	if (dev_alloc(fd, 4 * MiB, NB_POLICY_LOCAL, -1, 0, &a, 0)) {
		FAIL("rmmod-busy-setup", "ALLOC: %s", strerror(errno));
		close(fd);
		return;
	}
	p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.offset);
	if (p == MAP_FAILED) {
		FAIL("rmmod-busy-setup", "mmap: %s", strerror(errno));
		return;
	}
	fill(p, a.alloc_size, 0xabc);
	err = try_rmmod();
	CHECK("rmmod-refused-fd-open", err == EWOULDBLOCK || err == EBUSY,
	      "rmmod with an open file: %s", err ? strerror(err) : "succeeded");
	close(fd);
	err = try_rmmod();
	CHECK("rmmod-refused-mapping", err == EWOULDBLOCK || err == EBUSY,
	      "rmmod with only a mapping left: %s", err ? strerror(err) : "succeeded");
	CHECK("rmmod-refused-no-harm", err && check(p, a.alloc_size, 0xabc),
	      "data of the mapped block changed after the refused rmmod");
	munmap(p, a.alloc_size);
	err = try_rmmod();
	CHECK("rmmod-after-munmap", err == 0, "rmmod after the last munmap: %s", strerror(err));
}

/* ---- mmap-edges -------------------------------------------------------------------------- */

void t_mmap_edges(void)
{
	int fd = dev_open(O_RDWR), sig;
	struct nb_alloc a;
	void *p;
	uint64_t *q;

	int err = dev_alloc(fd, 4 * MiB, NB_POLICY_LOCAL, -1, NB_ALLOC_HUGE_2M, &a, 0);

	if (err) {
		FAIL("mmap-edges-setup", "ALLOC: %s", strerror(err));
		close(fd);
		return;
	}
	p = mmap(NULL, 0, PROT_READ, MAP_SHARED, fd, a.offset);
	CHECK("mmap-zero-length", p == MAP_FAILED && errno == EINVAL, "got %p / %s", p,
	      strerror(errno));
	p = mmap(NULL, 1ULL << 46, PROT_READ, MAP_SHARED, fd, a.offset);
	CHECK("mmap-huge-length", p == MAP_FAILED && (errno == EINVAL || errno == ENOMEM),
	      "64 TiB mapping of a 4 MiB block: %p / %s", p, strerror(errno));
	p = mmap(NULL, (uint64_t)-1 & ~(PAGE - 1), PROT_READ, MAP_SHARED, fd, a.offset);
	CHECK("mmap-max-length", p == MAP_FAILED, "got %p", p);
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, a.offset + a.alloc_size + (1ULL << 30));
	CHECK("mmap-offset-no-block", p == MAP_FAILED && errno == EINVAL, "got %p / %s", p,
	      strerror(errno));
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, (1ULL << 47) - PAGE);
	CHECK("mmap-offset-top", p == MAP_FAILED, "got %p", p);
	p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, a.offset + a.alloc_size - PAGE);
	CHECK("mmap-across-block-end", p == MAP_FAILED && errno == EINVAL, "got %p / %s", p,
	      strerror(errno));
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, a.offset);
	CHECK("mmap-private-refused", p == MAP_FAILED && errno == EINVAL, "got %p / %s", p,
	      strerror(errno));
	/* A window in the middle of a block, at an offset that is no block start. */
	q = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.offset + 5 * PAGE);
	if (q == MAP_FAILED) {
		FAIL("mmap-window", "mmap of pages 5..7 of a block: %s", strerror(errno));
	} else {
		uint64_t *whole = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				       a.offset);

		q[0] = 0x1234;
		CHECK("mmap-window", whole != MAP_FAILED && whole[5 * PAGE / 8] == 0x1234,
		      "window and whole mapping disagree");
		if (whole != MAP_FAILED)
			munmap(whole, a.alloc_size);
		munmap(q, 3 * PAGE);
	}
	/* MAP_FIXED at an address that is not 2 MiB aligned: 4 KiB entries, same data. */
	p = mmap(NULL, 8 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED) {
		char *at = (char *)(((uintptr_t)p + 2 * MiB) & ~(2 * MiB - 1)) + PAGE;

		q = mmap(at, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			 a.offset);
		if (q == MAP_FAILED) {
			FAIL("mmap-fixed-misaligned", "mmap: %s", strerror(errno));
		} else {
			fill(q, a.alloc_size, 77);
			CHECK("mmap-fixed-misaligned", check(q, a.alloc_size, 77), "data mismatch");
		}
		munmap(p, 8 * MiB);
	}
	/* PROT_EXEC: at mmap and by mprotect; then executing is the caller's business. */
	q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED, fd, a.offset);
	if (q == MAP_FAILED && errno == EPERM) {
		printf("NB-TEST-SKIP mmap-prot-exec /dev is mounted noexec\n");
	} else {
		CHECK("mmap-prot-exec", q != MAP_FAILED, "%s", strerror(errno));
		if (q != MAP_FAILED)
			munmap(q, PAGE);
	}
	q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.offset);
	if (q != MAP_FAILED) {
		int rc = mprotect(q, PAGE, PROT_READ | PROT_EXEC);

		CHECK("mprotect-prot-exec", rc == 0 || errno == EACCES, "%s", strerror(errno));
		sig = touch((char *)q, 0);
		CHECK("mprotect-prot-exec-readable", sig == 0, "signal %d", sig);
		sig = touch((char *)q, 1);
		CHECK("mprotect-prot-exec-not-writable", sig == SIGSEGV, "signal %d", sig);
		munmap(q, PAGE);
	}
	/* Read-only file: for watching. Whatever takes or changes pool memory is EBADF (as
	 * write(2) on it); VERSION, STATS and QUERY work; a writable mapping is EACCES. */
	int ro = dev_open(O_RDONLY);
	struct nb_version v = { 0 };
	struct nb_stats st = { .node = first_pool_node() };
	struct nb_query qy = { .offset = 0 };
	struct nb_free fr = { .offset = 0 };
	struct nb_migrate mg = { .offset = 0, .node = first_pool_node() };
	struct nb_alloc one = { .size = PAGE, .policy = NB_POLICY_LOCAL, .node = -1 };
	struct nb_alloc_batch ba = { .count = 1, .entry_size = sizeof(one),
				     .reqs = (uintptr_t)&one };
	struct nb_bench be = { .node = first_pool_node(), .order = 0, .iterations = 1 };

	CHECK("rdonly-file-alloc-ebadf", dev_alloc(ro, PAGE, NB_POLICY_LOCAL, -1, 0, NULL, 0) == EBADF,
	      "ALLOC on an O_RDONLY file did not fail with EBADF");
	CHECK("rdonly-file-reserve-ebadf", dev_alloc(ro, PAGE, NB_POLICY_LOCAL, -1, 0, NULL, 1) == EBADF,
	      "RESERVE on an O_RDONLY file did not fail with EBADF");
	CHECK("rdonly-file-batch-ebadf", ioctl(ro, NB_IOC_ALLOC_BATCH, &ba) && errno == EBADF,
	      "ALLOC_BATCH: %s", strerror(errno));
	CHECK("rdonly-file-free-ebadf", ioctl(ro, NB_IOC_FREE, &fr) && errno == EBADF, "FREE: %s",
	      strerror(errno));
	CHECK("rdonly-file-migrate-ebadf", ioctl(ro, NB_IOC_MIGRATE, &mg) && errno == EBADF,
	      "MIGRATE: %s", strerror(errno));
	CHECK("rdonly-file-bench-ebadf", ioctl(ro, NB_IOC_BENCH, &be) && errno == EBADF,
	      "BENCH: %s", strerror(errno));
	CHECK("rdonly-file-version", ioctl(ro, NB_IOC_VERSION, &v) == 0 && v.nr_node_ids > 0,
	      "VERSION: %s", strerror(errno));
	CHECK("rdonly-file-stats", ioctl(ro, NB_IOC_STATS, &st) == 0 && st.total_bytes > 0,
	      "STATS: %s", strerror(errno));
	CHECK("rdonly-file-query-enoent", ioctl(ro, NB_IOC_QUERY, &qy) && errno == ENOENT,
	      "QUERY of no block: %s", strerror(errno));
	q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
	CHECK("mmap-rdonly-file-no-write", q == MAP_FAILED && errno == EACCES,
	      "writable mapping of an O_RDONLY file: %p / %s", q, strerror(errno));
	close(ro);
	/* Old mapping of a freed block: SIGBUS, and a re-mmap of its offset fails. */
	q = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.offset);
	if (q != MAP_FAILED) {
		q[0] = 5;
		dev_free(fd, a.offset);
		sig = touch((char *)q, 0);
		CHECK("mmap-after-free-sigbus", sig == SIGBUS, "signal %d", sig);
		munmap(q, a.alloc_size);
		p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, a.offset);
		CHECK("mmap-freed-offset", p == MAP_FAILED && errno == EINVAL, "got %p", p);
	}
	close(fd);
}

/* ---- exit-with-blocks -------------------------------------------------------------------- */

static void child_hold(int how)
{
	int fd = dev_open(O_RDWR), fd2 = dev_open(O_RDWR);
	struct nb_alloc a;

	for (int i = 0; i < 6; i++) {
		int f = i & 1 ? fd2 : fd;

		if (dev_alloc(f, (i + 1) * 256 * 1024, i % 4 == 3 ? NB_POLICY_INTERLEAVE : NB_POLICY_LOCAL,
			     -1, i == 4 ? NB_ALLOC_POPULATE : 0, &a, i >= 4))
			continue;
		if (i % 3) {
			char *p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, f,
				       a.offset);

			if (p != MAP_FAILED)
				memset(p, i, a.alloc_size / 2);
		}
	}
	close(fd2); /* its mapped blocks live on through their mappings */
	if (how == 1)
		kill(getpid(), SIGKILL);
	if (how == 2)
		pause(); /* the parent kills us */
	_exit(0);
}

void t_exit_with_blocks(void)
{
	for (int how = 0; how < 3; how++) {
		int st;
		pid_t pid = fork();

		if (pid == 0)
			child_hold(how);
		if (how == 2) {
			usleep(500000);
			kill(pid, SIGKILL);
		}
		waitpid(pid, &st, 0);
	}
	/* The suite checks that every pool is wholly free now. */
	PASS("exit-with-blocks-ran");
}

/* ---- signals during long operations ------------------------------------------------------- */

static volatile sig_atomic_t got_int;
static void on_int(int sig) { (void)sig; got_int = 1; }


/*
 * The zeroer off and every pool's free memory dirty (taken NOZERO, freed: a freed block is
 * never trusted to be zero), so an ALLOC memsets each extent and stays under way long enough
 * to be signalled in its middle. With zeroed blocks waiting, a 12 MiB ALLOC on the debug
 * kernel finished its last 8 MiB between the parent's look at it and the signal (CI,
 * 2026-12-01). The zeroer's old rate, to restore, or -1.
 */
static long dirty_pools_zeroer_off(void)
{
	long old = set_param(PREZERO_PARAM, 0);
	int fd = dev_open(O_RDWR);

	while (fd >= 0 && dev_alloc(fd, 2 * MiB, NB_POLICY_PREFERRED, first_pool_node(),
				    NB_ALLOC_NOZERO, NULL, 0) == 0)
		;
	if (fd >= 0)
		close(fd);
	return old;
}

/*
 * A fatal signal during the zeroing of a big ALLOC must abort it (nbc_space.h: -NB_EINTR, all
 * or nothing). Deterministic check: the parent opens the file and keeps it, the child ALLOCs
 * on it; the parent sends the signal once the file holds some but not all of the block
 * (the ALLOC is under way), reaps the child, and looks at what the file holds: 0 if the
 * ALLOC was aborted, the whole block if it ran to the end regardless of the signal.
 */
void t_signal_alloc(int mb)
{
	uint64_t want = (uint64_t)mb * MiB;
	long zeroer = dirty_pools_zeroer_off();

	for (int variant = 0, tries = 0; variant < 3; variant++) {
		const char *name = variant == 0 ? "signal-kill-during-alloc" :
				   variant == 1 ? "signal-int-during-alloc" : "signal-caught-during-alloc";
		int fd = dev_open(O_RDWR), pfd[2], st, r[2] = { -1, -1 };
		uint64_t seen = 0, after;
		double t0, dt;
		pid_t pid;

		if (pipe(pfd))
			return;
		pid = fork();
		if (pid == 0) {
			struct nb_alloc a;

			if (variant == 2)
				signal(SIGINT, on_int); /* not fatal: the ALLOC must still complete */
			r[0] = dev_alloc(fd, want, NB_POLICY_LOCAL, -1, 0, &a, 0);
			r[1] = got_int;
			if (write(pfd[1], r, sizeof(r)) != sizeof(r))
				_exit(3);
			_exit(0);
		}
		close(pfd[1]);
		for (int i = 0; i < 2000 && !(seen = nb_test_fd_bytes(fd, nr_nodes)); i++)
			usleep(5000);
		t0 = nb_test_now();
		kill(pid, variant == 0 ? SIGKILL : SIGINT);
		waitpid(pid, &st, 0);
		dt = nb_test_now() - t0;
		after = nb_test_fd_bytes(fd, nr_nodes);
		if (read(pfd[0], r, sizeof(r)) != sizeof(r))
			r[0] = r[1] = -1;
		close(pfd[0]);
		printf("nb_hostile: %s: %llu of %d MiB held when signalled, dead/done %.2f s later, file holds %llu MiB after\n",
		       name, (unsigned long long)(seen >> 20), mb, dt, (unsigned long long)(after >> 20));
		/* The signal missed the ALLOC: before or after it, or so late that only its last
		 * 2 MiB extent was left, past the last point that checks for a fatal signal
		 * (Space::AllocBlocks checks before each further extent): try up to 10 times. A
		 * case that did not run proves nothing. */
		int missed = !seen || seen >= want ||
			     (variant < 2 && after >= want && seen + 2 * MiB >= want);
		if (missed && ++tries < 10) {
			printf("nb_hostile: %s: the ALLOC was not under way, again (%d)\n", name, tries);
			close(fd);
			variant--;
			continue;
		}
		tries = 0;
		if (missed) {
			CHECK(name, 0, "could not catch the ALLOC under way in 10 tries");
		} else if (variant < 2) {
			CHECK(name, WIFSIGNALED(st) && after == 0,
			      "status %#x; after a fatal signal in the middle of the zeroing the file holds %llu MiB: the ALLOC ran to its end (Space::FillFrames checks for a fatal signal only between 2 MiB chunks of one extent; this block is all 2 MiB extents)",
			      st, (unsigned long long)(after >> 20));
		} else {
			CHECK(name, WIFEXITED(st) && r[0] == 0 && r[1] == 1 && after >= want,
			      "status %#x ALLOC -> %d, handler ran %d, file holds %llu MiB", st, r[0],
			      r[1], (unsigned long long)(after >> 20));
		}
		close(fd);
	}
	if (zeroer > 0)
		set_param(PREZERO_PARAM, zeroer);
}

void t_signal_migrate(int mb)
{
	int st, from = -1, to = -1;
	pid_t pid;
	double t0;

	for (int n = 0; n < nr_nodes && n < 64; n++)
		if ((pool_nodes >> n) & 1) {
			if (from < 0)
				from = n;
			else if (to < 0)
				to = n;
		}
	if (to < 0) {
		printf("NB-TEST-SKIP signal-kill-during-migrate needs two nodes with pools\n");
		return;
	}
	/* The child times one whole migration, tells the parent, then migrates the block back
	 * and forth until it dies: the parent kills it half a migration later, so the signal
	 * lands inside a MIGRATE whatever the kernel's speed and the VM's scheduling (a fixed
	 * delay, or a single second migration, let a fast copy finish first). */
	int tp[2];
	long half_us = 0;

	if (pipe(tp))
		exit(1);
	pid = fork();
	if (pid == 0) {
		int fd = dev_open(O_RDWR);
		struct nb_alloc a;
		struct nb_migrate m = { 0 };

		close(tp[0]);
		if (dev_alloc(fd, (uint64_t)mb * MiB, NB_POLICY_BIND, from, NB_ALLOC_NOZERO, &a, 0))
			_exit(3);
		m.offset = a.offset;
		m.node = to;
		double t = nb_test_now();

		if (ioctl(fd, NB_IOC_MIGRATE, &m))
			_exit(4);
		long us = (long)((nb_test_now() - t) * 1e6 / 2);

		if (write(tp[1], &us, sizeof(us)) != sizeof(us))
			_exit(5);
		for (;;) {
			m.node = m.node == to ? from : to;
			m.bytes_moved = 0;
			if (ioctl(fd, NB_IOC_MIGRATE, &m))
				_exit(6);
		}
	}
	close(tp[1]);
	if (read(tp[0], &half_us, sizeof(half_us)) != sizeof(half_us)) {
		waitpid(pid, &st, 0);
		close(tp[0]);
		CHECK("signal-kill-during-migrate", 0, "the child failed before migrating: status %#x", st);
		return;
	}
	close(tp[0]);
	usleep(half_us);
	t0 = nb_test_now();
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	/* The copy stops between frames on a fatal signal (MIGRATE -> EINTR, the range stays
	 * live, partly moved); the process must die promptly. */
	printf("nb_hostile: SIGKILL during a %d MiB MIGRATE (one takes ~%ld us): dead %.2f s later\n",
	       mb, 2 * half_us, nb_test_now() - t0);
	CHECK("signal-kill-during-migrate", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && nb_test_now() - t0 < 10,
	      "status %#x after %.1f s", st, nb_test_now() - t0);
}
