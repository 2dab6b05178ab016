// SPDX-License-Identifier: GPL-2.0
/*
 * pressure.c - nb_hostile's fault-over-quota, fault-pool-empty, pressure and works: the module
 * when memory runs out (see main.c for what each checks).
 */
#include "hostile.h"

/* ---- faults that cannot get a frame -------------------------------------------------------- */

/* Child touches every page of [p, p+len); status says how it ended. A fault the module
 * answers with VM_FAULT_OOM is retried by the kernel forever: the alarm ends it. */
static int touch_all_in_child(int fd, uint64_t offset, uint64_t len, int secs)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);

		if (p == MAP_FAILED)
			_exit(3);
		signal(SIGBUS, SIG_DFL);
		alarm(secs);
		for (uint64_t o = 0; o < len; o += PAGE)
			p[o] = 1;
		_exit(0);
	}
	waitpid(pid, &st, 0);
	return st;
}

void t_fault_over_quota(void)
{
	int old = set_quota_pct(1), fd, st;
	struct nb_alloc a;

	if (old < 0) {
		FAIL("fault-over-quota", "cannot set %s", QUOTA_PARAM);
		return;
	}
	fd = dev_open(O_RDWR); /* quota: 1% of each pool */
	set_quota_pct(old);
	{
		struct nb_stats s = { .node = 0 };

		ioctl(fd, NB_IOC_STATS, &s);
		printf("nb_hostile: quota %llu bytes per node\n", (unsigned long long)s.fd_quota_bytes);
		if (dev_alloc(fd, 4 * s.fd_quota_bytes + 4 * MiB, NB_POLICY_LOCAL, -1, 0, &a, 1)) {
			FAIL("fault-over-quota", "RESERVE: %s", strerror(errno));
			close(fd);
			return;
		}
	}
	st = touch_all_in_child(fd, a.offset, a.alloc_size, 15);
	CHECK("fault-over-quota-sigbus", WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
	      "touching a reserved range past the file's quota: %s (expected SIGBUS; nb_errno_to_fault maps -EDQUOT to VM_FAULT_OOM, which the kernel retries forever)",
	      WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? "still faulting after 15 s, killed by the alarm" : "other end");
	close(fd);
}

void t_fault_pool_empty(void)
{
	int fd = dev_open(O_RDWR), st, node = -1, old = set_quota_pct(100);
	int filler = dev_open(O_RDWR);
	struct nb_alloc a;
	uint64_t held = 0;

	set_quota_pct(old);
	for (int n = nr_nodes - 1; n >= 0 && node < 0; n--)
		if ((pool_nodes >> n) & 1)
			node = n;
	int err = node < 0 ? ENODEV : dev_alloc(fd, 64 * MiB, NB_POLICY_BIND, node, 0, &a, 1);

	if (err) {
		FAIL("fault-pool-empty", "RESERVE on node %d: %s", node, strerror(err));
		close(filler);
		close(fd);
		return;
	}
	/* Take every frame of the node (NOZERO: no need to zero what nobody reads). */
	for (int order = 18; order >= 0; order--) {
		struct nb_alloc f = { .order = order, .policy = NB_POLICY_BIND, .node = node,
				      .flags = NB_ALLOC_NOZERO };

		while (ioctl(filler, NB_IOC_ALLOC, &f) == 0) {
			held += f.alloc_size;
			memset(&f, 0, sizeof(f));
			f.order = order;
			f.policy = NB_POLICY_BIND;
			f.node = node;
			f.flags = NB_ALLOC_NOZERO;
		}
	}
	printf("nb_hostile: node %d: %llu MiB taken\n", node, (unsigned long long)(held >> 20));
	st = touch_all_in_child(fd, a.offset, PAGE, 15);
	CHECK("fault-pool-empty-sigbus", WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
	      "first touch of a BIND range on a full node: %s (expected SIGBUS; -ENOMEM becomes VM_FAULT_OOM, which the kernel retries forever)",
	      WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? "still faulting after 15 s, killed by the alarm" : "other end");
	close(filler);
	close(fd);
}

/* ---- works / pressure ---------------------------------------------------------------------- */

int works(const char *tag)
{
	int fd = dev_open(O_RDWR), bad = 0;
	char name[96];

	for (int n = 0; n < nr_nodes && n < 64; n++) {
		struct nb_alloc a;
		struct nb_migrate m = { 0 };
		uint64_t *p;
		int err;

		if (!((pool_nodes >> n) & 1))
			continue;
		snprintf(name, sizeof(name), "%s-node%d", tag, n);
		err = dev_alloc(fd, 8 * MiB, NB_POLICY_BIND, n, 0, &a, 0);
		if (err) {
			FAIL(name, "ALLOC 8 MiB: %s", strerror(err));
			bad++;
			continue;
		}
		p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.offset);
		if (p == MAP_FAILED) {
			FAIL(name, "mmap: %s", strerror(errno));
			bad++;
			continue;
		}
		int zero = p[0] == 0 && p[a.alloc_size / 8 - 1] == 0;

		fill(p, a.alloc_size, n);
		m.offset = a.offset;
		m.node = (n + 1) % nr_nodes;
		err = (pool_nodes >> m.node) & 1 ? (ioctl(fd, NB_IOC_MIGRATE, &m) ? errno : 0) : 0;
		int ok = zero && !err && check(p, a.alloc_size, n) && !dev_free(fd, a.offset);

		CHECK(name, ok, "zero %d migrate %s data/free failed", zero, strerror(err));
		bad += !ok;
		munmap(p, a.alloc_size);
	}
	close(fd);
	return bad;
}

static uint64_t mem_available_mb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb >> 10;
}

/* A hog takes anonymous memory, 4 MiB at a time, until MemAvailable is down to floor_mb (or
 * until the OOM killer stops it, with floor 0); the module must keep working meanwhile. */
void t_pressure(int floor_mb)
{
	int pfd[2], st;
	char c;
	pid_t pid;

	if (pipe(pfd))
		return;
	pid = fork();
	if (pid == 0) {
		uint64_t mb = 0;
		FILE *f = fopen("/proc/self/oom_score_adj", "w");

		if (f) {
			fputs("1000\n", f);
			fclose(f);
		}
		for (;;) {
			if (floor_mb && mem_available_mb() <= (uint64_t)floor_mb)
				break;
			char *p = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				break;
			for (uint64_t o = 0; o < 4 * MiB; o += PAGE)
				p[o] = 1;
			mb += 4;
		}
		printf("nb_hostile: hog holds %llu MiB, MemAvailable %llu MiB\n",
		       (unsigned long long)mb, (unsigned long long)mem_available_mb());
		fflush(stdout);
		if (write(pfd[1], "r", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) == 1) {
		PASS("pressure-hog-ready");
		works("pressure-works-under-hog");
		kill(pid, SIGKILL);
	} else {
		printf("nb_hostile: hog ended before it was ready (OOM killer?)\n");
	}
	waitpid(pid, &st, 0);
	printf("nb_hostile: hog status %#x\n", st);
	works("pressure-works-after-hog");
}
