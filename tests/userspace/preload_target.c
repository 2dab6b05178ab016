// SPDX-License-Identifier: GPL-2.0
/*
 * preload_target.c - an ordinary program that preload_test.cpp runs under
 * libnumabuddy-preload.so (hosted: NUMABUDDY_EXEC_FAKE=memfd stands in a memfd for the
 * device; in the VM: the real device). It knows nothing of numabuddy: whether a buffer is
 * pool memory is read from the kernel's /proc/self/maps (the mapping's file), never asked
 * of the preload.
 *
 *   preload_target CASE...    cases: malloc calloc realloc memalign mmap madvise fork
 *                             forkhole threads exhaust strict exec
 * Prints "ok CASE" or "FAIL CASE why" per case; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024UL * 1024)

static int failed;

#define CHECK(c, ...)                                                                      \
	do {                                                                               \
		if (!(c)) {                                                                \
			printf("FAIL %s ", cur);                                            \
			printf(__VA_ARGS__);                                                \
			printf("\n");                                                       \
			failed = 1;                                                        \
			return;                                                            \
		}                                                                          \
	} while (0)

static const char *cur;

/* The file behind the mapping holding @p, per /proc/self/maps ("" for anonymous). */
static void backing(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long lo, hi;
	int n;

	snprintf(out, len, "unmapped");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &n) < 2)
			continue;
		if ((uintptr_t)p >= lo && (uintptr_t)p < hi) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", line + n);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* Pool memory: a mapping of the device (or of the hosted tests' memfd). */
static int is_pool(const void *p)
{
	char b[256];

	backing(p, b, sizeof(b));
	return strstr(b, "numabuddy") != NULL;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static void t_malloc(void)
{
	unsigned char *big = malloc(3 * MiB), *small = malloc(100);

	CHECK(big && small, "malloc failed");
	CHECK(is_pool(big), "3 MiB not in the pool");
	CHECK(!is_pool(small), "100 bytes in the pool");
	memset(big, 0xa5, 3 * MiB);
	CHECK(malloc_usable_size(big) >= 3 * MiB, "usable size %zu", malloc_usable_size(big));
	free(big);
	free(small);
	big = malloc(3 * MiB);
	CHECK(big && is_pool(big) && all_bytes(big, 3 * MiB, 0), "second block not fresh pool");
	free(big);
}

static void t_calloc(void)
{
	unsigned char *p = calloc(3, MiB);

	CHECK(p && is_pool(p) && all_bytes(p, 3 * MiB, 0), "calloc not zeroed pool");
	free(p);
	size_t huge_n = SIZE_MAX / 2; /* not a constant: GCC would refuse the overflow itself */

	__asm__("" : "+r"(huge_n));
	CHECK(!calloc(huge_n, 4) && errno == ENOMEM, "overflow not refused");
}

static void t_realloc(void)
{
	unsigned char *p = malloc(2 * MiB), *q;

	memset(p, 1, 2 * MiB);
	q = realloc(p, 8 * MiB);
	CHECK(q && is_pool(q) && all_bytes(q, 2 * MiB, 1), "grow lost data");
	p = realloc(q, 100);
	CHECK(p && !is_pool(p) && all_bytes(p, 100, 1), "shrink to small");
	q = realloc(p, 4 * MiB); /* a glibc pointer moves into the pool */
	CHECK(q && is_pool(q) && all_bytes(q, 100, 1), "glibc pointer into the pool");
	free(q);
}

static void t_memalign(void)
{
	void *p = NULL;

	CHECK(!posix_memalign(&p, 4 * MiB, 3 * MiB), "posix_memalign");
	CHECK(is_pool(p) && !((uintptr_t)p & (4 * MiB - 1)), "%p not 4 MiB aligned pool", p);
	free(p);
	p = aligned_alloc(64, 2 * MiB);
	CHECK(p && is_pool(p), "aligned_alloc");
	free(p);
	CHECK(posix_memalign(&p, 3, 2 * MiB) == EINVAL, "bad alignment accepted");
}

static void t_mmap(void)
{
	unsigned char *p = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	unsigned char *s;

	CHECK(p != MAP_FAILED && is_pool(p), "anonymous mmap not served");
	memset(p, 7, 4 * MiB);
	CHECK(!munmap(p + 3 * MiB, MiB), "partial munmap");
	CHECK(all_bytes(p, 3 * MiB, 7), "rest changed");
	CHECK(!munmap(p, 3 * MiB), "munmap");
	s = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(s != MAP_FAILED && !is_pool(s), "MAP_SHARED served");
	munmap(s, 4 * MiB);
	s = mmap(NULL, 4 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(s != MAP_FAILED && !is_pool(s), "PROT_NONE reservation served");
	munmap(s, 4 * MiB);
	p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 3, 2 * MiB);
	s = mremap(p, 2 * MiB, 6 * MiB, MREMAP_MAYMOVE);
	CHECK(s != MAP_FAILED && all_bytes(s, 2 * MiB, 3), "mremap grow lost data");
	munmap(s, 6 * MiB);
}

static void t_madvise(void)
{
	unsigned char *p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);

	CHECK(p != MAP_FAILED && is_pool(p), "not served");
	memset(p, 9, 2 * MiB);
	CHECK(!madvise(p, 2 * MiB, MADV_DONTNEED), "MADV_DONTNEED: %s", strerror(errno));
	CHECK(all_bytes(p, 2 * MiB, 0), "MADV_DONTNEED did not zero");
	munmap(p, 2 * MiB);
}

/*
 * fork: the child sees the parent's data as of fork, in private memory; writes on either
 * side after fork are invisible to the other (pipes order them).
 */
static void t_fork(void)
{
	unsigned char *p = malloc(4 * MiB), *m;
	int to_child[2], to_parent[2], st;
	char c = 0;
	pid_t pid;

	m = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p && is_pool(p) && m != MAP_FAILED && is_pool(m), "not served");
	memset(p, 'P', 4 * MiB);
	memset(m, 'M', 2 * MiB);
	CHECK(!pipe(to_child) && !pipe(to_parent), "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int bad = 0;

		bad |= is_pool(p) << 0 | is_pool(m) << 1;
		bad |= !all_bytes(p, 4 * MiB, 'P') << 2 | !all_bytes(m, 2 * MiB, 'M') << 3;
		memset(p, 'C', 4 * MiB);
		memset(m, 'c', 2 * MiB);
		free(p); /* the child's copy: must not free the parent's block */
		if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
			bad |= 1 << 4;
		bad |= !all_bytes(m, 2 * MiB, 'c') << 5; /* parent wrote 'Q' meanwhile */
		p = malloc(3 * MiB); /* the child's own pool memory */
		bad |= !p || !is_pool(p) ? 1 << 6 : 0;
		free(p);
		_exit(bad);
	}
	CHECK(read(to_parent[0], &c, 1) == 1, "child did not report");
	CHECK(all_bytes(p, 4 * MiB, 'P') && all_bytes(m, 2 * MiB, 'M'), "child's writes seen");
	CHECK(is_pool(p) && is_pool(m), "parent lost its pool mapping");
	memset(m, 'Q', 2 * MiB);
	CHECK(write(to_child[1], "x", 1) == 1, "pipe");
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st), "wait");
	CHECK(WEXITSTATUS(st) == 0, "child saw problems 0x%x (bits: 0,1 still pool; 2,3 data; "
	      "5 parent's write seen; 6 no own pool)", WEXITSTATUS(st));
	free(p);
	munmap(m, 2 * MiB);
}

/* fork of a served mapping with a hole munmap()ed in its middle: the hole stays a hole. */
static void t_forkhole(void)
{
	unsigned char *m = mmap(NULL, 3 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0), v;
	int st;
	pid_t pid;

	CHECK(m != MAP_FAILED && is_pool(m), "not served");
	memset(m, 'H', 3 * MiB);
	CHECK(!munmap(m + MiB, MiB), "munmap the middle");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int bad = is_pool(m) || is_pool(m + 2 * MiB);

		bad |= !all_bytes(m, MiB, 'H') << 1 | !all_bytes(m + 2 * MiB, MiB, 'H') << 2;
		bad |= (mincore(m + MiB, 4096, &v) == 0 || errno != ENOMEM) << 3;
		memset(m, 'c', MiB);
		_exit(bad);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st), "wait");
	CHECK(WEXITSTATUS(st) == 0, "child saw problems 0x%x (0 pool, 1-2 data, 3 hole mapped)",
	      WEXITSTATUS(st));
	CHECK(all_bytes(m, MiB, 'H') && is_pool(m), "the child's write reached the parent");
	munmap(m, MiB);
	munmap(m + 2 * MiB, MiB);
}

static void *thread_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	long bad = 0;

	for (int i = 0; i < 200; i++) {
		size_t n = (rand_r(&seed) % 2) ? (1 + rand_r(&seed) % 3) * MiB : 64;
		unsigned char *p = malloc(n), v = (unsigned char)seed;

		if (!p)
			return (void *)1;
		memset(p, v, n);
		sched_yield();
		bad |= !all_bytes(p, n, v);
		p = realloc(p, n + MiB);
		bad |= !p || !all_bytes(p, n, v);
		free(p);
	}
	return (void *)bad;
}

static void t_threads(void)
{
	pthread_t t[4];
	void *r;
	long bad = 0;

	for (uintptr_t i = 0; i < 4; i++)
		CHECK(!pthread_create(&t[i], NULL, thread_main, (void *)(i + 1)), "pthread_create");
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], &r);
		bad |= (long)r;
	}
	CHECK(!bad, "a thread saw corrupted memory");
}

/* With an 8 MiB pool (NUMABUDDY_EXEC_FAKE_LIMIT): two 4 MiB blocks, then normal memory. */
static void t_exhaust(void)
{
	void *p[4];
	char got[4];

	for (int i = 0; i < 4; i++) {
		p[i] = malloc(4 * MiB);
		got[i] = !p[i] ? '0' : is_pool(p[i]) ? 'P' : 'n';
	}
	CHECK(!memcmp(got, "PPnn", 4), "got %.4s, want PPnn", got);
	for (int i = 0; i < 4; i++)
		free(p[i]);
}

/* The same under --strict: the allocations past the pool fail. */
static void t_strict(void)
{
	void *p[3];
	char got[3];

	for (int i = 0; i < 3; i++) {
		p[i] = malloc(4 * MiB);
		got[i] = !p[i] ? '0' : is_pool(p[i]) ? 'P' : 'n';
	}
	CHECK(!memcmp(got, "PP0", 3), "got %.3s, want PP0", got);
	CHECK(mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
	      MAP_FAILED, "strict mmap succeeded");
	CHECK(malloc(100), "small malloc failed");
	for (int i = 0; i < 3; i++)
		free(p[i]);
}

/* Programs this one execs run without the preload unless --follow-exec. */
static void t_exec(void)
{
	const char *v = getenv("LD_PRELOAD");

	printf("exec: LD_PRELOAD=%s\n", v ? v : "");
	fflush(stdout);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "malloc", t_malloc }, { "calloc", t_calloc }, { "realloc", t_realloc },
	{ "memalign", t_memalign }, { "mmap", t_mmap }, { "madvise", t_madvise },
	{ "fork", t_fork }, { "forkhole", t_forkhole }, { "threads", t_threads }, { "exhaust", t_exhaust },
	{ "strict", t_strict }, { "exec", t_exec },
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		unsigned c;

		for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
			if (!strcmp(argv[i], cases[c].name))
				break;
		if (c == sizeof(cases) / sizeof(cases[0])) {
			printf("FAIL %s unknown case\n", argv[i]);
			return 1;
		}
		cur = argv[i];
		int before = failed;

		failed = 0;
		cases[c].fn();
		if (!failed)
			printf("ok %s\n", cur);
		failed |= before;
	}
	return failed;
}
