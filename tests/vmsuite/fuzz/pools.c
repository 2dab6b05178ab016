// SPDX-License-Identifier: GPL-2.0
/*
 * pools.c - nb_fuzz --pool-check and --pool-shape: the state of every pool before and after a
 * run, for fuzz.sh to compare.
 */
#include "fuzz.h"

/* --pool-check: every pool, seen from a fresh file, is wholly free. Exit 0 if so. */
int pool_check(void)
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
		/* Freed pinnable blocks come back once the kernel drops its references (a pipe of
		 * a process that just exited, an io_uring torn down in a work item): wait 5 s. */
		for (int i = 0; i < 500; i++) {
			struct nb_stats in = { .node = n };

			if (ioctl(fd, NB_IOC_STATS, &in) || !in.inflight_bytes)
				break;
			usleep(10000);
		}
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
		if (st.fd_bytes || st.free_bytes > st.total_bytes || st.inflight_bytes)
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
int pool_shape(void)
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
