// SPDX-License-Identifier: GPL-2.0
/*
 * nb_mapper.c - in-VM tests of the paging-style mapper (mapping sizes, demand paging,
 * migration, lifetime). Every mapping size and node is read back from the kernel's walk of
 * this process's hardware page tables (NB_IOC_WALK) and the node of each frame from sysfs
 * memory blocks: nothing here trusts mm_core's own bookkeeping.
 *
 *   nb_mapper [--mixed]   --mixed adds the 1 GiB + 6 MiB + 12 KiB block (needs a big pool)
 *
 * Prints NB-TEST-PASS/NB-TEST-FAIL lines; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nb_test.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

static int fd, failures;
static struct nb_version ver;


static int cpu_node(int cpu)
{
	char path[128];

	for (int n = 0; n < 64; n++) {
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/node%d", cpu, n);
		if (access(path, F_OK) == 0)
			return n;
	}
	return -1;
}

/* Entries walk() found, and how many of them were not write-back (the first one named). */
static unsigned int walked, walked_not_wb;
static char first_not_wb[96];

/* What the hardware page tables map at addr: level (NB_WALK_*) and node (sysfs). */
static unsigned int walk(const void *addr, int *node)
{
	struct nb_walk w = { .addr = (uintptr_t)addr };

	*node = -1;
	if (ioctl(fd, NB_IOC_WALK, &w))
		return 99;
	if (w.level != NB_WALK_NONE) {
		*node = nb_test_node_of_phys(w.pfn * 4096);
		walked++;
		if (w.cache != NB_CACHE_WB && !walked_not_wb++)
			snprintf(first_not_wb, sizeof(first_not_wb), "%p: level %u cache %u", addr,
				 w.level, w.cache);
	}
	return w.level;
}

/* The memory type of the entry at addr per NB_IOC_WALK, or -1. */
static int walk_cache(const void *addr)
{
	struct nb_walk w = { .addr = (uintptr_t)addr };

	if (ioctl(fd, NB_IOC_WALK, &w) || w.level == NB_WALK_NONE)
		return -1;
	return w.cache;
}

/* The memory type NB_IOC_WALK reads for the first page of a PCI BAR mapped through sysfs
 * (UC- for resourceN, WC for resourceN_wc); -2 when it cannot be mapped. One mapping at a
 * time: while one is mapped the kernel gives a second mapping of the BAR the same type. */
static int bar_cache(const char *path)
{
	int bfd = open(path, O_RDONLY), type;
	void *p;

	if (bfd < 0)
		return -2;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, bfd, 0);
	close(bfd);
	if (p == MAP_FAILED)
		return -2;
	type = walk_cache(p);
	munmap(p, 4096);
	return type;
}

/*
 * Memory type. Every numabuddy entry the tests above walked must be write-back, like any
 * RAM: an uncached PFN mapping would send every access to memory on real hardware, and TCG,
 * which ignores caching, could never show it in a benchmark. To prove the walk really reads
 * the type, the VGA BAR is mapped through sysfs: resource0 must read UC-, resource0_wc WC.
 */
static void test_cache_types(void)
{
	static const char bar[] = "/sys/bus/pci/devices/0000:00:02.0/resource0";
	char wc_path[sizeof(bar) + 3];
	int uc_type, wc_type;

	CHECK("cache-write-back", walked > 0 && !walked_not_wb,
	      "%u of %u entries not write-back, first %s", walked_not_wb, walked, first_not_wb);
	snprintf(wc_path, sizeof(wc_path), "%s_wc", bar);
	wc_type = bar_cache(wc_path);
	uc_type = bar_cache(bar);
	if (uc_type == -2 || wc_type == -2)
		printf("NB-TEST-SKIP cache-walk-tells-types no VGA BAR to map (%s)\n", bar);
	else
		CHECK("cache-walk-tells-types", uc_type == NB_CACHE_UC_MINUS && wc_type == NB_CACHE_WC,
		      "BAR through resource0: %d (want UC- %d), resource0_wc: %d (want WC %d)",
		      uc_type, NB_CACHE_UC_MINUS, wc_type, NB_CACHE_WC);
}

static int alloc_block(uint64_t size, uint32_t policy, int node, uint32_t flags, int reserve,
		       struct nb_alloc *out)
{
	struct nb_alloc a = { .size = size, .policy = policy, .node = node, .flags = flags };

	if (ioctl(fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, &a))
		return -errno;
	*out = a;
	return 0;
}

static void free_block(uint64_t offset)
{
	struct nb_free f = { .offset = offset };

	if (ioctl(fd, NB_IOC_FREE, &f))
		printf("free 0x%llx: %s\n", (unsigned long long)offset, strerror(errno));
}

static void *map_block(uint64_t offset, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Which huge entries this kernel can give, read from the kernel and the CPU, never from the
 * module: 2 MiB with transparent huge pages (PREEMPT_RT kernels have none, so no
 * /sys/kernel/mm/transparent_hugepage), 1 GiB on top where the CPU has 1 GiB pages (pdpe1gb).
 * A module that lost its huge mappings, or advertised ones it cannot make, fails here.
 */
static int kernel_pmd, kernel_pud;

static void read_kernel_huge(void)
{
	char line[4096];
	FILE *f = fopen("/proc/cpuinfo", "r");
	int gb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5) && strstr(line, " pdpe1gb"))
			gb = 1;
	if (f)
		fclose(f);
	kernel_pmd = access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0;
	kernel_pud = kernel_pmd && gb;
	CHECK("features-say-2m", !!(ver.features & NB_FEAT_HUGE_PMD) == kernel_pmd,
	      "NB_FEAT_HUGE_PMD %d, kernel THP %d", !!(ver.features & NB_FEAT_HUGE_PMD), kernel_pmd);
	CHECK("features-say-1g", !!(ver.features & NB_FEAT_HUGE_PUD) == kernel_pud,
	      "NB_FEAT_HUGE_PUD %d, kernel THP + pdpe1gb %d", !!(ver.features & NB_FEAT_HUGE_PUD),
	      kernel_pud);
}

/* The entry a huge frame should get on this kernel. */
static unsigned int want_level(unsigned int level)
{
	if (level == NB_WALK_PUD && !kernel_pud)
		level = NB_WALK_PMD;
	if (level == NB_WALK_PMD && !kernel_pmd)
		level = NB_WALK_PTE;
	return level;
}

static int nodes_with_pool(int *out)
{
	int n = 0;

	for (int i = 0; i < 64; i++)
		if (ver.nodes_with_pool & (1ULL << i))
			out[n++] = i;
	return n;
}

static void test_huge_2m(int node)
{
	char name[64];
	struct nb_alloc a;
	int wnode, err;
	unsigned int level;
	unsigned char *p;

	snprintf(name, sizeof(name), "pmd-2m-node%d", node);
	err = alloc_block(2 * MiB, NB_POLICY_BIND, node, NB_ALLOC_HUGE_2M, 0, &a);
	if (err) {
		FAIL(name, "alloc: %s", strerror(-err));
		return;
	}
	p = map_block(a.offset, 2 * MiB);
	if (!p) {
		FAIL(name, "mmap: %s", strerror(errno));
		free_block(a.offset);
		return;
	}
	if ((uintptr_t)p & (2 * MiB - 1))
		FAIL(name, "mapping at %p is not 2 MiB aligned (get_unmapped_area)", p);
	memset(p, 0x5a, 2 * MiB);
	level = walk(p + 12345, &wnode);
	if (level != want_level(NB_WALK_PMD) || wnode != node)
		FAIL(name, "walk: level %u node %d", level, wnode);
	else
		PASS(name);
	munmap(p, 2 * MiB);
	free_block(a.offset);
}

/* 1 GiB + 6 MiB + 12 KiB maps as one 1G, three 2M and three 4K entries. */
static void test_mixed(void)
{
	const uint64_t size = GiB + 6 * MiB + 12 * KiB;
	const struct { uint64_t off; unsigned int level; } want[] = {
		{ 0, NB_WALK_PUD }, { GiB - 4096, NB_WALK_PUD },
		{ GiB, NB_WALK_PMD }, { GiB + 2 * MiB, NB_WALK_PMD }, { GiB + 4 * MiB, NB_WALK_PMD },
		{ GiB + 6 * MiB, NB_WALK_PTE }, { GiB + 6 * MiB + 4096, NB_WALK_PTE },
		{ GiB + 6 * MiB + 8192, NB_WALK_PTE },
	};
	struct nb_alloc a;
	unsigned char *p;
	int err, bad = 0, n;

	err = alloc_block(size, NB_POLICY_PREFERRED, -1, 0, 0, &a);
	if (err) {
		FAIL("mixed-1g-2m-4k", "alloc: %s", strerror(-err));
		return;
	}
	p = map_block(a.offset, size);
	if (!p) {
		FAIL("mixed-1g-2m-4k", "mmap: %s", strerror(errno));
		free_block(a.offset);
		return;
	}
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		unsigned int level;

		p[want[i].off] = (unsigned char)i;
		level = walk(p + want[i].off, &n);
		if (level != want_level(want[i].level) || p[want[i].off] != (unsigned char)i) {
			printf("offset 0x%llx: level %u, want %u\n",
			       (unsigned long long)want[i].off, level, want[i].level);
			bad++;
		}
	}
	CHECK("mixed-1g-2m-4k", !bad, "%d entries of the wrong size", bad);
	munmap(p, size);
	free_block(a.offset);
}

struct touch_arg {
	unsigned char *addr;
	int cpu;
};

static void *touch_on_cpu(void *argp)
{
	struct touch_arg *t = argp;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return (void *)1;
	t->addr[0] = 1; /* first touch: the frame comes from this CPU's node */
	return NULL;
}

/* Demand paging: a reserved range gets frames at first touch, on the toucher's node. */
static void test_first_touch(uint32_t flags, const char *label)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t chunk = 2 * MiB, size = chunk * ncpu;
	struct nb_alloc a;
	unsigned char *p;
	char name[64];
	int bad = 0, err;

	snprintf(name, sizeof(name), "first-touch-local-%s", label);
	err = alloc_block(size, NB_POLICY_LOCAL, -1, flags, 1, &a);
	if (err) {
		FAIL(name, "reserve: %s", strerror(-err));
		return;
	}
	if (a.node_out != -1)
		FAIL(name, "untouched range reports node %d", a.node_out);
	p = map_block(a.offset, size);
	if (!p) {
		FAIL(name, "mmap: %s", strerror(errno));
		free_block(a.offset);
		return;
	}
	for (int cpu = 0; cpu < ncpu; cpu++) {
		struct touch_arg t = { p + cpu * chunk, cpu };
		pthread_t th;
		void *ret;
		unsigned int level;
		int node, want;

		pthread_create(&th, NULL, touch_on_cpu, &t);
		pthread_join(th, &ret);
		level = walk(t.addr, &node);
		/* A CPU whose node has no pool gets the nearest node that has one: any pool
		 * node then; the fallback order itself is tested in the core's numa_test. */
		want = cpu_node(cpu);
		if (want < 0 || !(ver.nodes_with_pool & (1ULL << want)))
			want = node >= 0 && (ver.nodes_with_pool & (1ULL << node)) ? node : -2;
		if (ret || node != want ||
		    level != want_level((flags & NB_ALLOC_HUGE_2M) ? NB_WALK_PMD : NB_WALK_PTE)) {
			printf("cpu %d (node %d): frame on node %d, level %u\n", cpu, cpu_node(cpu),
			       node, level);
			bad++;
		}
	}
	CHECK(name, !bad, "%d first touches misplaced", bad);
	munmap(p, size);
	free_block(a.offset);
}

static void test_bind_each_node(void)
{
	int nodes[64], n = nodes_with_pool(nodes), bad = 0;

	for (int i = 0; i < n; i++) {
		struct nb_alloc a;
		unsigned char *p;
		int node;

		if (alloc_block(64 * KiB, NB_POLICY_BIND, nodes[i], 0, 0, &a)) {
			bad++;
			continue;
		}
		p = map_block(a.offset, 64 * KiB);
		if (!p || (p[0] = 1, walk(p, &node)) != NB_WALK_PTE || node != nodes[i]) {
			printf("bind node %d: frame on node %d\n", nodes[i], node);
			bad++;
		}
		if (p)
			munmap(p, 64 * KiB);
		free_block(a.offset);
	}
	/* Includes nodes without CPUs: the cpuless topology's memory-only node. */
	CHECK("bind-every-pool-node", !bad, "%d nodes misplaced", bad);
}

/* Migration under concurrent readers and writers: contents intact, 2 MiB stays PMD. */
static atomic_int stop;
static atomic_long writes;
static unsigned char *mig;
static atomic_int bad_reads;

static void *writer(void *unused __attribute__((unused)))
{
	volatile uint64_t *w = (uint64_t *)mig; /* first 1 MiB: counters */
	uint64_t v = 0;

	while (!atomic_load(&stop)) {
		size_t slot = v % (MiB / 8);

		w[slot] = v;
		if (w[slot] != v)
			atomic_fetch_add(&bad_reads, 1);
		v++;
		atomic_fetch_add(&writes, 1);
	}
	return NULL;
}

static void *reader(void *unused __attribute__((unused)))
{
	while (!atomic_load(&stop))
		for (size_t i = MiB; i < 2 * MiB; i += 4096)
			if (mig[i] != (unsigned char)(i >> 12))
				atomic_fetch_add(&bad_reads, 1);
	return NULL;
}

static void test_migrate(int from, int to)
{
	struct nb_alloc a;
	pthread_t tw, tr;
	int err, node, moved_ok = 1;
	unsigned int level;

	err = alloc_block(2 * MiB, NB_POLICY_BIND, from, NB_ALLOC_HUGE_2M, 0, &a);
	if (err) {
		FAIL("migrate-concurrent", "alloc: %s", strerror(-err));
		return;
	}
	mig = map_block(a.offset, 2 * MiB);
	if (!mig) {
		FAIL("migrate-concurrent", "mmap: %s", strerror(errno));
		return;
	}
	for (size_t i = MiB; i < 2 * MiB; i += 4096)
		memset(mig + i, (unsigned char)(i >> 12), 4096);
	atomic_store(&stop, 0);
	pthread_create(&tw, NULL, writer, NULL);
	pthread_create(&tr, NULL, reader, NULL);
	for (int round = 0; round < 6; round++) {
		struct nb_migrate m = { .offset = a.offset, .node = round % 2 ? from : to };

		usleep(20000);
		if (ioctl(fd, NB_IOC_MIGRATE, &m) || m.bytes_moved != 2 * MiB) {
			printf("migrate round %d: %s, moved %llu\n", round, strerror(errno),
			       (unsigned long long)m.bytes_moved);
			moved_ok = 0;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	CHECK("migrate-bytes-moved", moved_ok, "a migration failed");
	CHECK("migrate-contents-intact", atomic_load(&bad_reads) == 0 && atomic_load(&writes) > 0,
	      "%d bad reads, %ld writes", atomic_load(&bad_reads), atomic_load(&writes));
	/* Six moves: back on `from`. (The entry is back without a touch: nb_inplace.c.) */
	(void)*(volatile unsigned char *)mig;
	level = walk(mig, &node);
	CHECK("migrate-stays-pmd", level == want_level(NB_WALK_PMD) && node == from,
	      "after migration: level %u node %d (want PMD on %d)", level, node, from);
	munmap(mig, 2 * MiB);
	free_block(a.offset);
}

static sigjmp_buf jmp;
static void on_signal(int sig)
{
	siglongjmp(jmp, sig);
}

static int access_signal(volatile unsigned char *p)
{
	int sig = sigsetjmp(jmp, 1);

	if (sig == 0) {
		(void)*p;
		return 0;
	}
	return sig;
}

static void test_lifetime(void)
{
	struct nb_alloc a;
	unsigned char *p, *q;
	pid_t pid;
	int status, node;

	if (alloc_block(4 * MiB, NB_POLICY_LOCAL, -1, NB_ALLOC_HUGE_2M, 0, &a)) {
		FAIL("lifetime-alloc", "%s", strerror(errno));
		return;
	}
	p = map_block(a.offset, 4 * MiB);
	if (!p) {
		FAIL("lifetime-map", "%s", strerror(errno));
		return;
	}
	memset(p, 0x11, 4 * MiB);

	/* fork: the child shares the mapping (MAP_SHARED), its writes are ours. */
	pid = fork();
	if (pid == 0) {
		int ok = p[4 * MiB - 1] == 0x11;

		p[0] = 0x22;
		_exit(ok ? 0 : 3);
	}
	waitpid(pid, &status, 0);
	CHECK("fork-shares", WIFEXITED(status) && WEXITSTATUS(status) == 0 && p[0] == 0x22,
	      "child status 0x%x, p[0]=0x%x", status, p[0]);

	/* partial munmap of the middle: the rest keeps its data and stays usable. */
	if (munmap(p + MiB, MiB))
		FAIL("partial-munmap", "%s", strerror(errno));
	else
		CHECK("partial-munmap", p[0] == 0x22 && p[2 * MiB] == 0x11 &&
		      access_signal(p + MiB) == SIGSEGV &&
		      walk(p + 2 * MiB, &node) == want_level(NB_WALK_PMD),
		      "data or mapping wrong after partial munmap");

	/* mremap moves the upper 2 MiB elsewhere; contents follow. */
	q = mremap(p + 2 * MiB, 2 * MiB, 2 * MiB, MREMAP_MAYMOVE | MREMAP_FIXED,
		   mmap(NULL, 4 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	CHECK("mremap-moves", q != MAP_FAILED && q[0] == 0x11 && q[2 * MiB - 1] == 0x11,
	      "mremap: %s", q == MAP_FAILED ? strerror(errno) : "contents lost");

	/* free: every mapping is zapped; old addresses get SIGBUS, never a reused frame. */
	free_block(a.offset);
	CHECK("freed-block-sigbus", access_signal(p) == SIGBUS &&
	      (q == MAP_FAILED || access_signal(q) == SIGBUS), "old mapping still reachable");
	munmap(p, MiB);
	if (q != MAP_FAILED)
		munmap(q, 2 * MiB);
}

static void test_refusals(void)
{
	struct nb_alloc a;
	void *p;

	if (alloc_block(64 * KiB, NB_POLICY_LOCAL, -1, 0, 0, &a)) {
		FAIL("refusals-alloc", "%s", strerror(errno));
		return;
	}
	p = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, a.offset);
	CHECK("mmap-private-einval", p == MAP_FAILED && errno == EINVAL, "private mmap: %s",
	      p == MAP_FAILED ? strerror(errno) : "succeeded");
	p = mmap(NULL, 128 * KiB, PROT_READ, MAP_SHARED, fd, a.offset);
	CHECK("mmap-beyond-block-einval", p == MAP_FAILED && errno == EINVAL, "%s",
	      p == MAP_FAILED ? strerror(errno) : "succeeded");
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, a.offset + 1024 * GiB);
	CHECK("mmap-unknown-offset-einval", p == MAP_FAILED && errno == EINVAL, "%s",
	      p == MAP_FAILED ? strerror(errno) : "succeeded");
	free_block(a.offset);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int nodes[64], n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	fd = open(NB_DEVICE_PATH, O_RDWR);
	if (fd < 0 || ioctl(fd, NB_IOC_VERSION, &ver)) {
		FAIL("open", "%s", strerror(errno));
		return 1;
	}
	read_kernel_huge();
	n = nodes_with_pool(nodes);
	for (int i = 0; i < n; i++)
		test_huge_2m(nodes[i]);
	test_bind_each_node();
	test_first_touch(0, "4k");
	test_first_touch(NB_ALLOC_HUGE_2M, "2m");
	if (n >= 2)
		test_migrate(nodes[0], nodes[n - 1]);
	test_lifetime();
	test_refusals();
	if (argc > 1 && !strcmp(argv[1], "--mixed"))
		test_mixed();
	test_cache_types();
	close(fd);
	return failures ? 1 : 0;
}
