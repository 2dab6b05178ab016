// SPDX-License-Identifier: GPL-2.0
/*
 * nb_kpaths.c - pool memory reached through the kernel's own paths, not numabuddy's ioctls:
 * the page-reference paths (vmsplice, process_vm_readv, io_uring buffer registration,
 * O_DIRECT, move_pages) on 4 KiB, 2 MiB and 1 GiB mappings, and the VMA surgery the kernel
 * does on huge mappings (mprotect, mremap, MADV_DONTFORK + fork, partial munmap).
 *
 * The property under test: a frame never shows anyone data that is not its owner's. A path
 * may refuse pool memory (EFAULT: the module's design, README "Memory and the kernel's
 * paths") or work; either way, what reaches the other side must be exactly what the block
 * held, also after the block was freed and its frames handed to another file. The kernel's
 * own complaints ("bad pud", WARN, Bad page state) fail the run through the VM harness.
 *
 *   nb_kpaths [--gib]   --gib adds the 1 GiB cases (needs a pool with an aligned GiB)
 *
 * Prints NB-TEST-PASS/NB-TEST-FAIL lines; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nb_test.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define PAGE 4096

static int failures;


static const char *size_name(uint64_t size)
{
	return size >= GiB ? "1g" : size >= 2 * MiB ? "2m" : "4k";
}

static uint32_t flags_for(uint64_t size)
{
	return size >= GiB ? NB_ALLOC_HUGE_1G | NB_ALLOC_CONTIG :
	       size >= 2 * MiB ? NB_ALLOC_HUGE_2M | NB_ALLOC_CONTIG : 0;
}

/* A block of size on node 0, allocated in fd (not mapped). */
static int block_alloc(int fd, uint64_t size, struct nb_block *b)
{
	return nb_block_alloc(fd, size, flags_for(size), 0, b);
}

/* Where the block is now (NB_IOC_QUERY), which b->phys only says for the time of allocation. */
static uint64_t block_phys(const struct nb_block *b)
{
	struct nb_query q = { .offset = b->off };

	return ioctl(b->fd, NB_IOC_QUERY, &q) ? 0 : q.phys_addr;
}

static void block_free(struct nb_block *b)
{
	if (nb_block_free(b))
		FAILF("free-%s errno %d", size_name(b->size), errno);
}

/* A mapped block whose first two pages hold c; exits on failure (nothing else can run). */
static void block_new(int fd, uint64_t size, unsigned char c, struct nb_block *b)
{
	int err = block_alloc(fd, size, b);

	if (!err)
		err = nb_block_map(b);
	if (err) {
		FAILF("setup-%s alloc/map: %s", size_name(size), strerror(-err));
		exit(1);
	}
	memset(b->p, c, 2 * PAGE);
}

static int all_are(const unsigned char *p, size_t n, unsigned char c)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/*
 * vmsplice a page of a block into a pipe, free the block, let another file allocate until it
 * gets the same frame and write a secret there, then read the pipe: it must hold the block's
 * old data, never the other file's (the cross-file leak of the security issue).
 */
static void test_vmsplice(uint64_t size, int hold)
{
	const char *sz = size_name(size);
	int fd = nb_test_open(), fd2 = nb_test_open(), pfd[2];
	struct nb_block b, held, other[64];
	unsigned char buf[PAGE];
	int n_other = 0, reused = 0;

	/* hold: keep one block first, so the test block is the other half of a buddy pair */
	if (hold && block_alloc(fd, size, &held))
		hold = 0;
	block_new(fd, size, 'A', &b);
	if (pipe(pfd)) {
		FAILF("vmsplice-%s pipe: %s", sz, strerror(errno));
		return;
	}
	struct iovec iov = { .iov_base = b.p, .iov_len = PAGE };
	ssize_t n = vmsplice(pfd[1], &iov, 1, 0);

	if (n < 0) {
		if (errno == EFAULT)
			PASSF("vmsplice-%s refused (EFAULT)", sz);
		else
			FAILF("vmsplice-%s errno %d, want EFAULT or success", sz, errno);
		block_free(&b);
		goto out;
	}
	uint64_t phys = b.phys;

	block_free(&b);
	while (n_other < 64 && !reused && block_alloc(fd2, size, &other[n_other]) == 0) {
		struct nb_block *o = &other[n_other++];

		if (o->phys == phys && nb_block_map(o) == 0) {
			memcpy(o->p, "SECRET", 6);
			reused = 1;
		}
	}
	if (read(pfd[0], buf, PAGE) != PAGE)
		FAILF("vmsplice-%s pipe read: %s", sz, strerror(errno));
	else if (!all_are(buf, PAGE, 'A'))
		FAILF("vmsplice-%s the pipe shows %s data after FREE (frame %s)", sz,
		     memcmp(buf, "SECRET", 6) ? "foreign" : "another file's",
		     reused ? "reallocated" : "not reallocated");
	else
		PASSF("vmsplice-%s pinned, pipe kept the block's data (frame %s)", sz,
		     reused ? "reused" : "held back");
	for (int i = 0; i < n_other; i++)
		block_free(&other[i]);
out:
	if (hold)
		block_free(&held);
	close(pfd[0]);
	close(pfd[1]);
	close(fd);
	close(fd2);
}

/* Another process reads the block through process_vm_readv: EFAULT or the block's data. */
static void test_process_vm_readv(uint64_t size)
{
	const char *sz = size_name(size);
	int fd = nb_test_open(), status;
	struct nb_block b;

	block_new(fd, size, 'B', &b);
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		unsigned char buf[PAGE];
		struct iovec local = { buf, PAGE }, remote = { b.p, PAGE };
		ssize_t n = process_vm_readv(parent, &local, 1, &remote, 1, 0);

		_exit(n < 0 ? (errno == EFAULT ? 10 : 12) : n == PAGE && all_are(buf, PAGE, 'B') ? 11 : 13);
	}
	waitpid(pid, &status, 0);
	status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (status == 10 || status == 11)
		PASSF("process_vm_readv-%s %s", sz, status == 10 ? "refused (EFAULT)" : "read the block");
	else
		FAILF("process_vm_readv-%s child status %d (12: other errno, 13: wrong data)", sz, status);
	block_free(&b);
	close(fd);
}

/* io_uring fixed buffers are long-term pins: pool memory must refuse them (EFAULT). */
static void test_io_uring(uint64_t size)
{
	const char *sz = size_name(size);
	struct io_uring_params params = { 0 };
	int fd = nb_test_open(), ring = syscall(__NR_io_uring_setup, 4, &params);
	struct nb_block b;

	if (ring < 0) {
		FAILF("io_uring-%s setup: %s", sz, strerror(errno));
		close(fd);
		return;
	}
	block_new(fd, size, 'C', &b);
	struct iovec iov = { b.p, PAGE };
	long r = syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1);

	if (r < 0 && errno == EFAULT)
		PASSF("io_uring-register-%s refused (EFAULT)", sz);
	else
		FAILF("io_uring-register-%s returned %ld errno %d: a long-term pin of pool memory", sz,
		     r, r < 0 ? errno : 0);
	close(ring);
	block_free(&b);
	close(fd);
}

/* O_DIRECT from a RAM disk into the block: EFAULT, or the disk's bytes land in the block. */
static void test_odirect(uint64_t size)
{
	const char *sz = size_name(size);
	int disk = open("/dev/ram0", O_RDWR | O_DIRECT), fd;
	struct nb_block b;
	void *src;

	if (disk < 0) {
		/* No RAM disk on this kernel (lib.sh's nb_ramdisk skipped): the case cannot run. */
		printf("NB-TEST-SKIP odirect-%s /dev/ram0: %s\n", sz, strerror(errno));
		return;
	}
	if (posix_memalign(&src, PAGE, PAGE)) {
		close(disk);
		return;
	}
	memset(src, 'R', PAGE);
	if (pwrite(disk, src, PAGE, 0) != PAGE)
		FAILF("odirect-%s seed the disk: %s", sz, strerror(errno));
	fd = nb_test_open();
	block_new(fd, size, 'D', &b);
	ssize_t n = pread(disk, b.p, PAGE, 0);

	if (n < 0 && errno == EFAULT)
		PASSF("odirect-%s refused (EFAULT)", sz);
	else if (n == PAGE && all_are(b.p, PAGE, 'R'))
		PASSF("odirect-%s read into the block", sz);
	else
		FAILF("odirect-%s pread returned %zd errno %d", sz, n, n < 0 ? errno : 0);
	block_free(&b);
	close(fd);
	close(disk);
	free(src);
}

/* move_pages: the query answers the frame's node or a clean error; a move leaves the frame. */
static void test_move_pages(uint64_t size, int other_node)
{
	const char *sz = size_name(size);
	int fd = nb_test_open(), status = 99, node = other_node;
	struct nb_block b;
	void *page;

	block_new(fd, size, 'E', &b);
	page = b.p + PAGE;
	long r = syscall(__NR_move_pages, 0, 1, &page, NULL, &status, 0);

	if (r == 0 && (status == 0 || (status < 0 && status > -4096)))
		PASSF("move_pages-query-%s status %d", sz, status);
	else
		FAILF("move_pages-query-%s returned %ld status %d errno %d (frame on node 0)", sz, r,
		     status, errno);
	uint64_t phys = block_phys(&b);

	status = 99;
	r = syscall(__NR_move_pages, 0, 1, &page, &node, &status, 0);
	if (block_phys(&b) == phys && all_are(b.p, 2 * PAGE, 'E') && (r != 0 || status < 0))
		PASSF("move_pages-move-%s left the frame (returned %ld status %d)", sz, r, status);
	else
		FAILF("move_pages-move-%s returned %ld status %d; frame or data changed", sz, r,
		     status);
	block_free(&b);
	close(fd);
}

/* Run fn in a child; returns the signal that killed it, 0 for a normal exit, -1 on error. */
static int child_signal(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void write_byte(void *p)
{
	*(volatile unsigned char *)p = 1;
}

static void read_byte(void *p)
{
	(void)*(volatile unsigned char *)p;
}

/* Marks at offsets across a GiB, checked after each operation. */
static const uint64_t marks[] = { 0, 2 * MiB, 511 * MiB, 512 * MiB + 4 * KiB, GiB - PAGE };

static void put_marks(unsigned char *p)
{
	for (unsigned i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		p[marks[i]] = 0x40 + i;
}

static int marks_ok(const unsigned char *p)
{
	for (unsigned i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (p[marks[i]] != 0x40 + i)
			return 0;
	return 1;
}

/* The VMA surgery of the security issue on a 1 GiB block mapped by one PUD entry. */
static void test_gib_surgery(void)
{
	int fd = nb_test_open(), sig;
	struct nb_block b;

	block_new(fd, GiB, 'G', &b);
	put_marks(b.p);
	/* The cases mean something only on a 1 GiB entry; PREEMPT_RT kernels have no THP, so
	 * there every mapping is 4 KiB (uname says so, independently of the module). */
	struct nb_walk w = { .addr = (uintptr_t)b.p };
	struct utsname u;
	int rt = uname(&u) == 0 && strstr(u.version, "PREEMPT_RT");

	if (ioctl(fd, NB_IOC_WALK, &w) || w.level != (rt ? NB_WALK_PTE : NB_WALK_PUD))
		FAILF("gib-mapped-by-pud level %u (%s kernel)", w.level, rt ? "RT" : "THP");
	else
		PASSF("gib-mapped-by-%s", rt ? "pte-on-rt" : "pud");

	/* mprotect read-only over the whole leaf, then back. */
	if (mprotect(b.p, GiB, PROT_READ))
		FAILF("gib-mprotect-ro: %s", strerror(errno));
	sig = child_signal(write_byte, b.p + 511 * MiB);
	if (sig == SIGSEGV && marks_ok(b.p))
		PASSF("gib-mprotect-ro writes fault, data kept");
	else
		FAILF("gib-mprotect-ro a write got signal %d, marks %s", sig, marks_ok(b.p) ? "ok" : "lost");
	if (mprotect(b.p, GiB, PROT_READ | PROT_WRITE) == 0 && child_signal(write_byte, b.p + PAGE) == 0 &&
	    marks_ok(b.p))
		PASSF("gib-mprotect-rw");
	else
		FAILF("gib-mprotect-rw");

	/* mprotect of 2 MiB inside the leaf splits the VMA in three. */
	if (mprotect(b.p + 510 * MiB, 2 * MiB, PROT_READ))
		FAILF("gib-mprotect-part: %s", strerror(errno));
	sig = child_signal(write_byte, b.p + 511 * MiB);
	if (sig == SIGSEGV && child_signal(write_byte, b.p + 512 * MiB + 8 * KiB) == 0 && marks_ok(b.p))
		PASSF("gib-mprotect-part");
	else
		FAILF("gib-mprotect-part write in the read-only part got %d", sig);

	/* MADV_DONTFORK on 2 MiB inside the leaf, then fork: the child has the rest only. */
	if (madvise(b.p + 4 * MiB, 2 * MiB, MADV_DONTFORK))
		FAILF("gib-dontfork madvise: %s", strerror(errno));
	sig = child_signal(read_byte, b.p + 4 * MiB);
	int sig2 = child_signal(read_byte, b.p + 512 * MiB + 4 * KiB);

	if (sig == SIGSEGV && sig2 == 0 && marks_ok(b.p))
		PASSF("gib-dontfork-fork");
	else
		FAILF("gib-dontfork-fork child read of the DONTFORK part got %d, of the rest %d", sig, sig2);

	/* Partial munmap of a 2 MiB piece; the rest stays intact. */
	if (munmap(b.p + 700 * MiB, 2 * MiB))
		FAILF("gib-munmap-part: %s", strerror(errno));
	else if (marks_ok(b.p))
		PASSF("gib-munmap-part");
	else
		FAILF("gib-munmap-part marks lost");
	munmap(b.p, GiB);

	/* mremap a whole fresh mapping, to a GiB-aligned place and to a 2 MiB-aligned one. */
	b.p = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.off);
	if (b.p == MAP_FAILED) {
		FAILF("gib-mremap mmap: %s", strerror(errno));
		b.p = NULL;
		block_free(&b);
		close(fd);
		return;
	}
	read_byte(b.p);
	unsigned char *area = mmap(NULL, 4 * GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *to_gib = (unsigned char *)(((uintptr_t)area + GiB - 1) & ~(GiB - 1));
	unsigned char *to_2m = to_gib + GiB + 2 * MiB;
	unsigned char *q = mremap(b.p, GiB, GiB, MREMAP_MAYMOVE | MREMAP_FIXED, to_gib);

	if (q == to_gib && marks_ok(q) && child_signal(read_byte, b.p) == SIGSEGV)
		PASSF("gib-mremap-aligned");
	else
		FAILF("gib-mremap-aligned %p want %p", q, to_gib);
	if (q != MAP_FAILED) {
		b.p = q;
		q = mremap(b.p, GiB, GiB, MREMAP_MAYMOVE | MREMAP_FIXED, to_2m);
		if (q == to_2m && marks_ok(q) && child_signal(read_byte, b.p) == SIGSEGV)
			PASSF("gib-mremap-2m-aligned");
		else
			FAILF("gib-mremap-2m-aligned %p want %p", q, to_2m);
		if (q != MAP_FAILED)
			b.p = q;
	}
	/* FREE zaps every mapping: the moved one faults SIGBUS afterwards. */
	unsigned char *last = b.p;

	b.p = NULL; /* keep the mapping */
	block_free(&b);
	sig = child_signal(read_byte, last);
	munmap(last, GiB);
	if (sig == SIGBUS)
		PASSF("gib-after-free SIGBUS");
	else
		FAILF("gib-after-free read got %d", sig);
	munmap(area, 4 * GiB);
	close(fd);
}

int main(int argc, char **argv)
{
	int gib = argc > 1 && !strcmp(argv[1], "--gib");
	uint64_t sizes[] = { 64 * KiB, 2 * MiB, GiB };
	unsigned nsizes = gib ? 3 : 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned i = 0; i < nsizes; i++) {
		test_vmsplice(sizes[i], 0);
		if (sizes[i] < GiB) /* a big pool has room for one GiB only */
			test_vmsplice(sizes[i], 1);
		test_process_vm_readv(sizes[i]);
		test_io_uring(sizes[i]);
		test_odirect(sizes[i]);
		test_move_pages(sizes[i], 1);
	}
	if (gib)
		test_gib_surgery();
	return failures ? 1 : 0;
}
