// SPDX-License-Identifier: GPL-2.0
/*
 * nb_inplace.c - MIGRATE leaves a range mapped: after it, every entry a mapping had is there
 * again (same size, now on the target node) before anything touches it, and reading or
 * writing the whole range faults nothing. Proof comes from outside mm_core: entries and
 * frames from the hardware page tables (NB_IOC_WALK), the frame's node from sysfs memory
 * blocks, faults from the module's fault counter (debugfs "faults", counted on entry to
 * every fault handler). Also: fork children and mremap'd copies are switched too, and
 * concurrent faults, readers, writers and a second MIGRATE during a migration keep
 * every byte and get only the documented errors.
 *
 * Needs two nodes with pools and debugfs; prints NB-TEST-* lines, exits 1 on failure.
 *   nb_inplace [--gib]   --gib: only the 1 GiB cases (an aligned GiB in both pools)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "nb_test.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)

static int fd, failures, from, to;
static struct nb_version ver;

/* The entry at addr: NB_WALK_* level, and the frame's node from sysfs (-1 if none). */
static unsigned int walk(const void *addr, int *node)
{
	struct nb_walk w = { .addr = (uintptr_t)addr };

	*node = -1;
	if (ioctl(fd, NB_IOC_WALK, &w))
		return NB_WALK_NONE;
	if (w.level != NB_WALK_NONE)
		*node = nb_test_node_of_phys(w.pfn << 12);
	return w.level;
}

static int alloc(uint64_t size, uint32_t flags, int reserve, uint64_t *off)
{
	struct nb_alloc a = { .size = size, .policy = NB_POLICY_BIND, .node = from,
			      .flags = flags };

	if (ioctl(fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, &a))
		return -errno;
	*off = a.offset;
	return 0;
}

static int migrate(uint64_t off, int node, uint64_t *moved)
{
	struct nb_migrate m = { .offset = off, .node = node };
	int rc = ioctl(fd, NB_IOC_MIGRATE, &m) ? -errno : 0;

	if (moved)
		*moved = m.bytes_moved;
	return rc;
}

static void release(uint64_t off)
{
	struct nb_free f = { .offset = off };

	ioctl(fd, NB_IOC_FREE, &f);
}

/* A mapping of `size` at an address `skew` bytes past an `align` boundary (skew 0: the
 * module's own placement, which aligns for huge entries). */
static unsigned char *map_aligned(uint64_t off, uint64_t size, uint64_t align, uint64_t skew)
{
	void *p;

	if (!skew) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
		return p == MAP_FAILED ? NULL : p;
	}
	p = mmap(NULL, size + 2 * align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uintptr_t at = (((uintptr_t)p + align - 1) & ~(align - 1)) + skew;
	p = mmap((void *)at, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off);
	return p == MAP_FAILED ? NULL : p;
}

static unsigned char *map_at(uint64_t off, uint64_t size, uint64_t skew)
{
	return map_aligned(off, size, 2 * MiB, skew);
}

static void fill(unsigned char *p, uint64_t size, unsigned salt, unsigned step)
{
	for (uint64_t i = 0; i < size; i += 4096 * step)
		*(volatile uint64_t *)(p + i) = i * 31 + salt;
}

static uint64_t bad_words(const unsigned char *p, uint64_t size, unsigned salt, unsigned step)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < size; i += 4096 * step)
		bad += *(volatile const uint64_t *)(p + i) != i * 31 + salt;
	return bad;
}

/* The level of every page's entry. */
static unsigned walk_stride = 1; /* pages between two walks (a GiB has 262144) */

static unsigned char *levels_of(const unsigned char *p, uint64_t size)
{
	unsigned char *l = calloc(size / 4096, 1);
	int n;

	for (uint64_t i = 0; l && i < size; i += 4096 * walk_stride)
		l[i / 4096] = walk(p + i, &n);
	return l;
}

/* Every page mapped as `before` says (same level), now on `node`; holes still unmapped. */
static int entries_are(const unsigned char *p, uint64_t size, const unsigned char *before,
		       int node, char *why, size_t why_len)
{
	if (!before) {
		snprintf(why, why_len, "no memory");
		return 0;
	}
	for (uint64_t i = 0; i < size; i += 4096 * walk_stride) {
		int n;
		unsigned int l = walk(p + i, &n), want = before[i / 4096];

		if (l != want || (want != NB_WALK_NONE && n != node)) {
			snprintf(why, why_len, "page %llu: level %u node %d (want %u on %d)",
				 (unsigned long long)(i / 4096), l, n, want, node);
			return 0;
		}
	}
	return 1;
}

/*
 * One case: touch every step-th page, note the level, MIGRATE, then the page tables must
 * already show the new node at that level, and reading everything faults nothing.
 */
static void no_refault_aligned(const char *name, uint64_t size, uint32_t flags, int reserve,
			       uint64_t align, uint64_t skew, unsigned step, unsigned level)
{
	char why[160] = "";
	uint64_t off, moved;
	unsigned char *p;
	int err = alloc(size, flags, reserve, &off), node;

	if (err || !(p = map_aligned(off, size, align, skew))) {
		FAILF("%s setup: %s", name, strerror(err ? -err : errno));
		return;
	}
	fill(p, size, 7, step);
	unsigned int got = walk(p, &node);
	unsigned char *before = levels_of(p, size);
	long long f0 = nb_test_module_faults();

	err = migrate(off, to, &moved);
	long long f1 = nb_test_module_faults();
	int ok = !err && entries_are(p, size, before, to, why, sizeof(why));
	uint64_t bad = bad_words(p, size, 7, step);
	fill(p, size, 9, step);
	long long f2 = nb_test_module_faults();

	if (level != NB_WALK_NONE && got != level)
		FAILF("%s-level got %u before migrating, want %u", name, got, level);
	if (ok && !bad && f1 == f0 && f2 == f0 && f0 >= 0)
		PASSF("%s %llu bytes moved, level %u kept, no fault", name,
		      (unsigned long long)moved, got);
	else
		FAILF("%s migrate %d moved %llu; %s; %llu bad words; faults %lld -> %lld -> %lld",
		      name, err, (unsigned long long)moved, why, (unsigned long long)bad, f0, f1,
		      f2);
	free(before);
	munmap(p, size);
	release(off);
}

static void no_refault(const char *name, uint64_t size, uint32_t flags, int reserve,
		       uint64_t skew, unsigned step, unsigned level)
{
	no_refault_aligned(name, size, flags, reserve, 2 * MiB, skew, step, level);
}

/* A fork child's own entries are switched too. (fork copies PFN PTEs but not huge PFN
 * entries, which a file VMA refills by faulting: so the child touches everything first.) */
static void fork_child_switched(void)
{
	const uint64_t size = 8 * MiB;
	uint64_t off;
	unsigned char *p;
	int go[2], done[2], status;

	if (alloc(size, NB_ALLOC_HUGE_2M, 0, &off) || !(p = map_at(off, size, 0)) || pipe(go) ||
	    pipe(done)) {
		FAILF("inplace-fork setup: %s", strerror(errno));
		return;
	}
	fill(p, size, 3, 1);
	pid_t pid = fork();
	if (pid == 0) {
		char c, why[160] = "";
		int node, ok = !bad_words(p, size, 3, 1);
		unsigned int level = walk(p, &node);
		unsigned char *before = levels_of(p, size);

		ok = ok && level != NB_WALK_NONE && node == from;
		if (write(done[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		long long f0 = nb_test_module_faults();
		ok = ok && entries_are(p, size, before, to, why, sizeof(why));
		ok = ok && !bad_words(p, size, 3, 1) && nb_test_module_faults() == f0;
		if (!ok)
			printf("fork child: level %u, %s\n", level, why);
		_exit(ok ? 0 : 1);
	}
	char c;
	uint64_t moved;
	int err = read(done[0], &c, 1) == 1 ? migrate(off, to, &moved) : -EIO;
	if (write(go[1], "g", 1) != 1)
		err = -EIO;
	waitpid(pid, &status, 0);
	CHECK("inplace-fork-child-switched", !err && WIFEXITED(status) && !WEXITSTATUS(status),
	      "migrate %d, child status 0x%x", err, status);
	close(go[0]), close(go[1]), close(done[0]), close(done[1]);
	munmap(p, size);
	release(off);
}

/* A mapping mremap moved (a new VMA in the file's tree, its entries moved over) is switched. */
static void mremap_copy_switched(void)
{
	const uint64_t size = 4 * MiB;
	char why[160] = "";
	uint64_t off, moved;
	unsigned char *p, *q, *spot;
	int node;

	if (alloc(size, NB_ALLOC_HUGE_2M, 0, &off) || !(p = map_at(off, size, 0))) {
		FAILF("inplace-mremap setup: %s", strerror(errno));
		return;
	}
	spot = map_at(off, size, 0); /* a huge-aligned address to move to */
	if (!spot) {
		FAILF("inplace-mremap spot: %s", strerror(errno));
		return;
	}
	munmap(spot, size);
	fill(p, size, 5, 1);
	q = mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
	if (q == MAP_FAILED) {
		FAILF("inplace-mremap: %s", strerror(errno));
		return;
	}
	unsigned int level = walk(q, &node);
	unsigned char *before = levels_of(q, size);
	long long f0 = nb_test_module_faults();
	int err = migrate(off, to, &moved);
	int ok = !err && level != NB_WALK_NONE && entries_are(q, size, before, to, why, sizeof(why)) &&
		 !bad_words(q, size, 5, 1) && nb_test_module_faults() == f0;
	CHECK("inplace-mremap-switched", ok, "migrate %d, level %u, %s", err, level, why);
	free(before);
	munmap(q, size);
	release(off);
}

/*
 * Concurrency: first touches of a reserved range, writers that check what they wrote,
 * readers of a fixed pattern, and FREE and MIGRATE of the same range from other threads,
 * all while the range migrates back and forth. FREE and a second MIGRATE get EBUSY (or
 * succeed between migrations, for MIGRATE); nobody loses a byte.
 */
static atomic_int stop, bad, other_errors, busy;
static unsigned char *area;
static uint64_t area_off;
#define AREA (16 * MiB)

static void *toucher(void *arg)
{
	/* Second half: first touches in a stride, each page's first word checked after. */
	unsigned seed = (unsigned)(uintptr_t)arg;
	while (!atomic_load(&stop)) {
		uint64_t i = AREA / 2 + (uint64_t)(rand_r(&seed) % (AREA / 2 / 4096)) * 4096;
		volatile uint64_t *w = (volatile uint64_t *)(area + i + 8);
		uint64_t v = *w;
		if (v && v != i)
			atomic_fetch_add(&bad, 1);
		*w = i;
	}
	return NULL;
}

static void *writer(void *arg)
{
	volatile uint64_t *w = (volatile uint64_t *)(area + (uintptr_t)arg * 4096);
	for (uint64_t v = 1; !atomic_load(&stop); v++) {
		*w = v;
		if (*w != v)
			atomic_fetch_add(&bad, 1);
	}
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		for (uint64_t i = 64 * 4096; i < AREA / 2; i += 4096)
			if (*(volatile uint64_t *)(area + i) != i * 31 + 1)
				atomic_fetch_add(&bad, 1);
	return NULL;
}

/* A second MIGRATE of the same range, to the other node: EBUSY while one runs. (FREE during
 * a migration is EBUSY too, but from here it cannot be aimed inside one without racing its
 * end, after which FREE rightly succeeds: the hosted test calls it from inside a batch.) */
static void *meddler(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int rc = migrate(area_off, from, NULL);

		if (rc == -EBUSY)
			atomic_fetch_add(&busy, 1);
		else if (rc)
			atomic_fetch_add(&other_errors, 1);
	}
	return NULL;
}

static void concurrent(void)
{
	pthread_t t[6];
	int n = 0, rounds_ok = 1;

	if (alloc(AREA, 0, 1, &area_off) || !(area = map_at(area_off, AREA, 0))) {
		FAILF("inplace-concurrent setup: %s", strerror(errno));
		return;
	}
	fill(area, AREA / 2, 1, 1);
	pthread_create(&t[n++], NULL, toucher, (void *)1);
	pthread_create(&t[n++], NULL, toucher, (void *)2);
	pthread_create(&t[n++], NULL, writer, (void *)3);
	pthread_create(&t[n++], NULL, writer, (void *)40);
	pthread_create(&t[n++], NULL, reader, NULL);
	pthread_create(&t[n++], NULL, meddler, NULL);
	for (int round = 0; round < 8; round++) {
		int rc = migrate(area_off, round % 2 ? from : to, NULL);

		if (rc && rc != -EBUSY) {
			printf("concurrent round %d: %s\n", round, strerror(-rc));
			rounds_ok = 0;
		}
		usleep(10000);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	uint64_t wrong = 0;
	for (uint64_t i = 64 * 4096; i < AREA / 2; i += 4096)
		wrong += *(volatile uint64_t *)(area + i) != i * 31 + 1;
	printf("inplace-concurrent: %d EBUSY seen\n", atomic_load(&busy));
	CHECK("inplace-concurrent-data", !atomic_load(&bad) && !wrong && rounds_ok,
	      "%d bad reads, %llu wrong words after, rounds ok %d", atomic_load(&bad),
	      (unsigned long long)wrong, rounds_ok);
	CHECK("inplace-concurrent-errors", !atomic_load(&other_errors),
	      "%d second MIGRATEs failed other than EBUSY", atomic_load(&other_errors));
	munmap(area, AREA);
	release(area_off);
}

int main(int argc, char **argv)
{
	int nodes[64], n = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open(NB_DEVICE_PATH, O_RDWR);
	if (fd < 0 || ioctl(fd, NB_IOC_VERSION, &ver)) {
		FAIL("inplace-open", "%s", strerror(errno));
		return 1;
	}
	for (int i = 0; i < 64; i++)
		if (ver.nodes_with_pool & (1ULL << i))
			nodes[n++] = i;
	if (n < 2 || nb_test_module_faults() < 0) {
		printf("NB-TEST-SKIP inplace needs two pool nodes and debugfs (%d nodes)\n", n);
		return 0;
	}
	from = nodes[0];
	to = nodes[n - 1];
	unsigned pmd = (ver.features & NB_FEAT_HUGE_PMD) ? NB_WALK_PMD : NB_WALK_PTE;
	unsigned pud = (ver.features & NB_FEAT_HUGE_PUD) ? NB_WALK_PUD : pmd;

	if (argc > 1 && !strcmp(argv[1], "--gib")) {
		/* A 1 GiB frame: one PUD, then the same frame mapped by 2 MiB entries. */
		walk_stride = 4099;
		no_refault_aligned("inplace-1g-pud", 1024 * MiB, NB_ALLOC_HUGE_1G, 0, 1024 * MiB,
				   0, 1, pud);
		no_refault_aligned("inplace-1g-pmd-mapped", 1024 * MiB, NB_ALLOC_HUGE_1G, 0,
				   1024 * MiB, 2 * MiB, 1, pmd);
		close(fd);
		return failures ? 1 : 0;
	}
	no_refault("inplace-2m-pmd", 16 * MiB, NB_ALLOC_HUGE_2M, 0, 0, 1, pmd);
	no_refault("inplace-2m-frames-pte-mapped", 8 * MiB, NB_ALLOC_HUGE_2M, 0, 4096, 1,
		   NB_WALK_PTE);
	no_refault("inplace-reserved-sparse", 4 * MiB, 0, 1, 0, 3, NB_WALK_PTE);
	no_refault("inplace-contig", 6 * MiB + 8192, NB_ALLOC_CONTIG, 0, 0, 1, NB_WALK_NONE);
	fork_child_switched();
	mremap_copy_switched();
	concurrent();
	close(fd);
	return failures ? 1 : 0;
}
