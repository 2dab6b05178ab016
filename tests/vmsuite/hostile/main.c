// SPDX-License-Identifier: GPL-2.0
/*
 * nb_hostile - hostile and edge cases for /dev/numabuddy, one subcommand each (hostile.sh
 * runs them in order, with the module loaded as each needs):
 *
 *   rmmod-busy        rmmod refused while a file, then only a mapping, remains; data intact;
 *                     succeeds after munmap (the module is then unloaded)
 *   mmap-edges        zero and huge lengths, offsets that are no block, windows, MAP_PRIVATE,
 *                     O_RDONLY files, PROT_EXEC, MAP_FIXED at a misaligned address
 *   exit-with-blocks  children exit (and get killed) holding blocks, reserved ranges,
 *                     mappings of closed files
 *   signal-alloc MB   SIGKILL / SIGINT during the zeroing of an MB MiB allocation
 *   signal-migrate MB SIGKILL during the migration of an MB MiB block
 *   fault-over-quota  first touch of a reserved range beyond the file's quota must SIGBUS
 *   fault-pool-empty  first touch of a BIND reserved range whose node is full must SIGBUS
 *   pressure          a memory hog takes the node's memory down to a floor; the module keeps
 *                     working meanwhile
 *   works             allocate, map, write, read back, migrate and free on every node
 *
 * Prints NB-TEST-PASS/NB-TEST-FAIL lines; exits 1 on any failure.
 *
 * This file: the helpers the cases share and main(); the cases are in cases.c and pressure.c.
 */
#include "hostile.h"

int failures, nr_nodes;
uint64_t pool_nodes;

static sigjmp_buf jb;
static volatile int armed;

static void on_fault(int sig)
{
	if (armed) {
		armed = 0;
		siglongjmp(jb, sig);
	}
	_exit(100 + sig);
}

/* Read one byte at p (write when `write`): 0, or the signal it raised. */
int touch(volatile char *p, int write)
{
	int sig = sigsetjmp(jb, 1);

	if (sig == 0) {
		armed = 1;
		if (write)
			*p = 1;
		else
			(void)*p;
		armed = 0;
	}
	return sig;
}

int dev_open(int flags)
{
	int fd = open(NB_DEVICE_PATH, flags | O_CLOEXEC);

	if (fd < 0) {
		printf("nb_hostile: open %s: %s\n", NB_DEVICE_PATH, strerror(errno));
		exit(2);
	}
	return fd;
}

int dev_alloc(int fd, uint64_t size, int policy, int node, uint32_t flags,
	      struct nb_alloc *out, int reserve)
{
	struct nb_alloc a = { .size = size, .policy = policy, .node = node, .flags = flags };
	int rc = ioctl(fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, &a);

	if (out)
		*out = a;
	return rc ? errno : 0;
}

int dev_free(int fd, uint64_t offset)
{
	struct nb_free f = { .offset = offset };

	return ioctl(fd, NB_IOC_FREE, &f) ? errno : 0;
}

static void read_version(void)
{
	struct nb_version v;

	if (nb_test_version(&v))
		exit(2);
	nr_nodes = v.nr_node_ids;
	pool_nodes = v.nodes_with_pool;
}

int first_pool_node(void)
{
	return pool_nodes ? __builtin_ctzll(pool_nodes) : 0;
}

long set_param(const char *path, long value)
{
	FILE *f = fopen(path, "r+");
	long old = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &old) != 1)
		old = -1;
	rewind(f);
	fprintf(f, "%ld\n", value);
	fclose(f);
	return old;
}

int set_quota_pct(int pct)
{
	return (int)set_param(QUOTA_PARAM, pct);
}


void fill(volatile uint64_t *p, uint64_t bytes, uint64_t seed)
{
	for (uint64_t i = 0; i < bytes / 8; i += PAGE / 8)
		p[i] = seed ^ i;
}

int check(volatile uint64_t *p, uint64_t bytes, uint64_t seed)
{
	for (uint64_t i = 0; i < bytes / 8; i += PAGE / 8)
		if (p[i] != (seed ^ i))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_fault, .sa_flags = SA_NODEFER };

	if (argc < 2) {
		fprintf(stderr, "usage: nb_hostile rmmod-busy|mmap-edges|exit-with-blocks|signal-alloc MB|signal-migrate MB|fault-over-quota|fault-pool-empty|pressure FLOOR_MB|works\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	read_version();
	if (!strcmp(argv[1], "rmmod-busy"))
		t_rmmod_busy();
	else if (!strcmp(argv[1], "mmap-edges"))
		t_mmap_edges();
	else if (!strcmp(argv[1], "exit-with-blocks"))
		t_exit_with_blocks();
	else if (!strcmp(argv[1], "signal-alloc") && argc > 2)
		t_signal_alloc(atoi(argv[2]));
	else if (!strcmp(argv[1], "signal-migrate") && argc > 2)
		t_signal_migrate(atoi(argv[2]));
	else if (!strcmp(argv[1], "fault-over-quota"))
		t_fault_over_quota();
	else if (!strcmp(argv[1], "fault-pool-empty"))
		t_fault_pool_empty();
	else if (!strcmp(argv[1], "pressure") && argc > 2)
		t_pressure(atoi(argv[2]));
	else if (!strcmp(argv[1], "works"))
		failures += works("works");
	else {
		fprintf(stderr, "nb_hostile: unknown test %s\n", argv[1]);
		return 2;
	}
	return failures ? 1 : 0;
}
