// SPDX-License-Identifier: GPL-2.0
/*
 * nb_pinnable.c - pinnable blocks (NB_ALLOC_PINNABLE, issue 15) used by the kernel's real I/O
 * paths, with the data checked end to end, and the rule that keeps them safe: FREE, MIGRATE
 * and close never hand out a frame the kernel still references.
 *
 *   - O_DIRECT writes from a pinnable block to a RAM disk (brd, /dev/ram0) and O_DIRECT reads
 *     back into another one; io_uring IORING_REGISTER_BUFFERS + READ_FIXED (6.4+: 6.1's
 *     io_uring refuses every file-backed buffer with EOPNOTSUPP, which is checked instead);
 *     process_vm_readv/writev; move_pages' query reports the node the kernel sees (sysfs).
 *   - FREE while a pipe holds vmspliced pages, while an O_DIRECT read is in flight (null_blk
 *     with a delayed completion, /dev/nullb0) and while io_uring holds a registered buffer:
 *     FREE returns 0, STATS counts the bytes in flight, another file sweeping the whole node
 *     never gets one of those frames, the holder's data is intact, and once the reference
 *     drops the frames come back (in flight 0, a second sweep gets them).
 *   - close with a reference left: the module stays pinned until it drops.
 *   - MIGRATE: EBUSY while referenced, moves (data kept) when not.
 *   - NB_IOC_EXPORT_DMABUF: the dma-buf's mmap, DMA_BUF_IOCTL_SYNC, its name; a real
 *     importer, vgem (DRM PRIME import: attach + map_dma_buf, seen in debugfs' bufinfo;
 *     vgem cannot map an imported object on these kernels, so the data is checked through
 *     the dma-buf's own mmap); vivid's V4L2 capture with dma-contig buffers imports it,
 *     vmaps it and draws a frame into it, checked against an MMAP capture; MIGRATE EBUSY
 *     and FREE deferred while the dma-buf lives, also when the importer alone holds it.
 *
 * Needs two nodes with pools and CAP_SYS_ADMIN (physical addresses from NB_IOC_QUERY).
 * Prints NB-TEST-PASS/NB-TEST-FAIL lines; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <linux/dma-buf.h>
#include <linux/io_uring.h>
#include <linux/videodev2.h>
#include <pthread.h>
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
#define PAGE 4096

static int failures;
static long sweep_table_pages; /* page-table pages the last sweep's file held */

/* A mapped pinnable, physically contiguous block on node, filled with c; exits on failure. */
static void pin_new(int fd, uint64_t size, int node, unsigned char c, struct nb_block *b)
{
	int err = nb_block_alloc(fd, size, NB_ALLOC_PINNABLE | NB_ALLOC_CONTIG, node, b);

	if (!err)
		err = nb_block_map(b);
	if (err) {
		FAILF("setup pinnable %llu KiB on node %d: %s", (unsigned long long)size >> 10,
		      node, strerror(-err));
		exit(1);
	}
	memset(b->p, c, size);
}

static int all_are(const unsigned char *p, size_t n, unsigned char c)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

static struct nb_stats stats(int fd, int node)
{
	struct nb_stats s;

	memset(&s, 0, sizeof(s));
	s.node = node;
	if (ioctl(fd, NB_IOC_STATS, &s))
		FAILF("stats node %d: %s", node, strerror(errno));
	return s;
}

/* Wait up to 5 s for the node's in-flight bytes to reach 0; returns the last value. */
static uint64_t wait_inflight_zero(int fd, int node)
{
	uint64_t v = 0;

	for (int i = 0; i < 500; i++) {
		v = stats(fd, node).inflight_bytes;
		if (!v)
			break;
		usleep(10000);
	}
	return v;
}

/*
 * Another file takes every 4 KiB frame node has left, one block each, and counts how many
 * lie in [lo, hi); then frees them. Returns that count, or -1 if nothing was allocated. The
 * file's own page-table pages come from the pool too, and may take frames of the range:
 * as many as fdinfo says it had count as hits (the range's frames are all accounted for when
 * the count reaches its size; none may be taken while they are in flight).
 */
static long sweep(int node, uint64_t lo, uint64_t hi)
{
	int fd = nb_test_open();
	long hits = 0, n = 0, table = 0;
	struct nb_block b;
	char path[64], line[128];
	FILE *f;

	while (nb_block_alloc(fd, PAGE, 0, node, &b) == 0) {
		n++;
		if (b.phys >= lo && b.phys < hi)
			hits++;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "numabuddy-table-pages: %ld", &table);
	if (f)
		fclose(f);
	close(fd); /* frees them all */
	sweep_table_pages = table;
	return n ? hits : -1;
}

/* The range's frames all came back: a sweep got every one, or all but what its own page
 * table may have taken. */
static int sweep_got_all(int node, uint64_t lo, uint64_t hi, long *hits)
{
	long want = (long)((hi - lo) / PAGE);

	*hits = sweep(node, lo, hi);
	return *hits <= want && *hits + sweep_table_pages >= want;
}

/* Open file descriptors of this process (entries of /proc/self/fd, less the one reading it). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own fd */
}

static int is_kernel_6_1(void)
{
	struct utsname u;

	return uname(&u) == 0 && !strncmp(u.release, "6.1.", 4);
}

static void test_abi(int fd)
{
	struct nb_version v;
	struct nb_alloc a = { .size = PAGE, .flags = NB_ALLOC_PINNABLE };
	struct nb_block pb, ob;
	struct nb_query q;

	if (nb_test_version(&v) == 0 && (v.features & NB_FEAT_PINNABLE) && v.abi_minor >= 2)
		PASS("pin-version-feature");
	else
		FAIL("pin-version-feature", "features 0x%llx minor %u",
		     (unsigned long long)v.features, v.abi_minor);
	errno = 0;
	CHECK("pin-reserve-refused", ioctl(fd, NB_IOC_RESERVE, &a) == -1 && errno == EINVAL,
	      "RESERVE|PINNABLE errno %d", errno);
	pin_new(fd, 2 * MiB, 0, 1, &pb);
	if (nb_block_alloc(fd, 2 * MiB, NB_ALLOC_HUGE_2M | NB_ALLOC_CONTIG, 0, &ob) || nb_block_map(&ob)) {
		FAIL("pin-query", "ordinary block: %s", strerror(errno));
		exit(1);
	}
	memset(ob.p, 1, PAGE);
	memset(&q, 0, sizeof(q));
	q.offset = pb.off;
	int r1 = ioctl(fd, NB_IOC_QUERY, &q);
	uint32_t pflags = q.flags, pmap = q.mapping;

	memset(&q, 0, sizeof(q));
	q.offset = ob.off;
	int r2 = ioctl(fd, NB_IOC_QUERY, &q);

	CHECK("pin-query-mapping", !r1 && !r2 && (pflags & NB_ALLOC_PINNABLE) &&
	      pmap == NB_MAPPING_PAGES && !(q.flags & NB_ALLOC_PINNABLE) &&
	      q.mapping == NB_MAPPING_PFN,
	      "pinnable flags 0x%x mapping %u, ordinary flags 0x%x mapping %u", pflags, pmap,
	      q.flags, q.mapping);
	/* The kernel's own page table: 4 KiB entries on the pinnable block, on the frame QUERY
	 * names. */
	struct nb_walk w = { .addr = (uintptr_t)pb.p + 5 * PAGE };

	CHECK("pin-mapped-4k", ioctl(fd, NB_IOC_WALK, &w) == 0 && w.level == NB_WALK_PTE &&
	      w.pfn == pb.phys / PAGE + 5, "level %u pfn 0x%llx want 0x%llx", w.level,
	      (unsigned long long)w.pfn, (unsigned long long)(pb.phys / PAGE + 5));
	nb_block_free(&pb);
	nb_block_free(&ob);
}

/* O_DIRECT: block -> disk, checked through an anonymous buffer; disk -> block. */
static void test_odirect(int fd, uint64_t size)
{
	int disk = open("/dev/ram0", O_RDWR | O_DIRECT);
	struct nb_block src, dst;
	unsigned char *check;

	if (disk < 0) {
		/* No brd on this kernel (the debug kernel has no modules): allowed skip there. */
		printf("NB-TEST-SKIP odirect-pinnable-%lluk /dev/ram0: %s\n",
		       (unsigned long long)size >> 10, strerror(errno));
		return;
	}
	if (posix_memalign((void **)&check, PAGE, size))
		exit(1);
	pin_new(fd, size, 0, 0, &src);
	for (uint64_t i = 0; i < size; i++)
		src.p[i] = (unsigned char)(i * 7 + i / PAGE);
	ssize_t w = pwrite(disk, src.p, size, 0);

	memset(check, 0, size);
	ssize_t r = pread(disk, check, size, 0);

	CHECK(size >= MiB ? "pin-odirect-write-2m" : "pin-odirect-write-64k", w == (ssize_t)size && r == (ssize_t)size &&
	      !memcmp(check, src.p, size), "pwrite %zd pread %zd errno %d, data %s", w, r, errno,
	      memcmp(check, src.p, size) ? "differs" : "same");
	for (uint64_t i = 0; i < size; i++)
		check[i] = (unsigned char)(i * 13 + 5);
	w = pwrite(disk, check, size, 0);
	pin_new(fd, size, 1, 0xee, &dst);
	r = pread(disk, dst.p, size, 0);
	CHECK(size >= MiB ? "pin-odirect-read-2m" : "pin-odirect-read-64k", w == (ssize_t)size && r == (ssize_t)size &&
	      !memcmp(check, dst.p, size), "pwrite %zd pread %zd errno %d", w, r, errno);
	nb_block_free(&src);
	nb_block_free(&dst);
	free(check);
	close(disk);
}

/* A minimal io_uring: one SQE, one CQE, raw syscalls (the VM has no liburing). */
struct ring {
	int fd;
	void *sq, *cq;
	size_t sq_len, cq_len, sqes_len;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int ring_setup(struct ring *r)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -errno;
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	unsigned char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
				 IORING_OFF_SQ_RING);
	unsigned char *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
				 IORING_OFF_CQ_RING);

	r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -ENOMEM;
	r->sq = sq;
	r->cq = cq;
	r->sq_len = sq_len;
	r->cq_len = cq_len;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* The ring's mappings hold its file: the registered buffers go only when all are gone. */
static void ring_close(struct ring *r)
{
	munmap(r->sq, r->sq_len);
	munmap(r->cq, r->cq_len);
	munmap(r->sqes, r->sqes_len);
	close(r->fd);
}

/* READ_FIXED of len bytes at disk offset 0 into buf (registered buffer 0); the CQE's res. */
static int ring_read_fixed(struct ring *r, int disk, void *buf, unsigned len)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ_FIXED;
	sqe->fd = disk;
	sqe->addr = (uintptr_t)buf;
	sqe->len = len;
	sqe->buf_index = 0;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	unsigned head = *r->cq_head;

	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	int res = r->cqes[head & *r->cq_mask].res;

	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/* Fill the disk's first len bytes with c (O_DIRECT from an anonymous buffer). */
static int disk_fill(int disk, size_t len, unsigned char c)
{
	void *buf;
	int ok;

	if (posix_memalign(&buf, PAGE, len))
		return 0;
	memset(buf, c, len);
	ok = pwrite(disk, buf, len, 0) == (ssize_t)len;
	free(buf);
	return ok;
}

/*
 * io_uring fixed buffer in a pinnable block: READ_FIXED lands the disk's data in it. With
 * free_while_registered: FREE the block while the buffer is registered; reads into it still
 * work, the frames stay in flight and unused until the ring is gone.
 */
static void test_io_uring(int fd, int free_while_registered)
{
	const char *name = free_while_registered ? "pin-io_uring-free-registered" :
						   "pin-io_uring-read-fixed";
	int disk = open("/dev/ram0", O_RDWR | O_DIRECT);
	uint64_t size = 256 * KiB;
	struct ring ring;
	struct nb_block b;

	if (disk < 0) {
		printf("NB-TEST-SKIP odirect-%s /dev/ram0: %s\n", name, strerror(errno));
		return;
	}
	if (ring_setup(&ring)) {
		FAILF("%s setup: %s", name, strerror(errno));
		close(disk);
		return;
	}
	pin_new(fd, size, 0, 'u', &b);
	struct iovec iov = { b.p, size };
	long reg = syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_BUFFERS, &iov, 1);

	if (is_kernel_6_1()) {
		/* 6.1's io_pin_pages refuses every file-backed VMA but shmem and hugetlbfs. */
		CHECK(name, reg < 0 && errno == EOPNOTSUPP,
		      "6.1: register returned %ld errno %d, want EOPNOTSUPP", reg, errno);
		goto out;
	}
	if (reg < 0) {
		FAILF("%s register: %s", name, strerror(errno));
		goto out;
	}
	if (!free_while_registered) {
		disk_fill(disk, size, 'F');
		int res = ring_read_fixed(&ring, disk, b.p, size);

		CHECK(name, res == (int)size && all_are(b.p, size, 'F'), "res %d data %s", res,
		      all_are(b.p, size, 'F') ? "ok" : "wrong");
		goto out;
	}
	uint64_t lo = b.phys, hi = b.phys + size;
	uint64_t fd_before = stats(fd, 0).fd_bytes;
	int err = nb_block_free(&b);
	struct nb_stats s = stats(fd, 0);

	CHECK("pin-io_uring-free-inflight", !err && s.inflight_bytes == size &&
	      s.fd_inflight_bytes == size && s.fd_bytes == fd_before,
	      "free %d inflight %llu fd_inflight %llu fd_bytes %llu (was %llu)", err,
	      (unsigned long long)s.inflight_bytes, (unsigned long long)s.fd_inflight_bytes,
	      (unsigned long long)s.fd_bytes, (unsigned long long)fd_before);
	/* The ring still writes into the freed block's frames: nobody else may have them. */
	disk_fill(disk, size, 'G');
	int res = ring_read_fixed(&ring, disk, (void *)iov.iov_base, size);
	long hits = sweep(0, lo, hi);

	CHECK("pin-io_uring-free-not-reused", res == (int)size && hits == 0,
	      "read_fixed after FREE %d, sweep got %ld of the frames", res, hits);
	ring_close(&ring);
	uint64_t left = wait_inflight_zero(fd, 0);

	int all = sweep_got_all(0, lo, hi, &hits);
	CHECK("pin-io_uring-free-returned", left == 0 && all,
	      "in flight %llu after the ring closed, sweep got %ld of %llu frames",
	      (unsigned long long)left, hits, (unsigned long long)(size / PAGE));
	close(disk);
	return;
out:
	ring_close(&ring);
	nb_block_free(&b);
	/* The ring's file goes in a work item: wait until its pins are gone. */
	if (wait_inflight_zero(fd, 0))
		FAILF("%s buffer still pinned 5 s after the ring closed", name);
	close(disk);
}

/* Another process reads and writes the block through process_vm_readv/writev. */
static void test_process_vm(int fd)
{
	struct nb_block b;
	int status;

	pin_new(fd, 64 * KiB, 0, 'V', &b);
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		unsigned char buf[2 * PAGE];
		struct iovec local = { buf, sizeof(buf) }, remote = { b.p + PAGE, sizeof(buf) };

		if (process_vm_readv(parent, &local, 1, &remote, 1, 0) != sizeof(buf) ||
		    !all_are(buf, sizeof(buf), 'V'))
			_exit(2);
		memset(buf, 'W', sizeof(buf));
		_exit(process_vm_writev(parent, &local, 1, &remote, 1, 0) == sizeof(buf) ? 0 : 3);
	}
	waitpid(pid, &status, 0);
	CHECK("pin-process_vm_readv-writev", WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	      all_are(b.p, PAGE, 'V') && all_are(b.p + PAGE, 2 * PAGE, 'W') &&
	      all_are(b.p + 3 * PAGE, PAGE, 'V'), "child status 0x%x", status);
	nb_block_free(&b);
}

/* move_pages' query answers the node sysfs gives for the frame, on both nodes. */
static void test_move_pages(int fd)
{
	for (int node = 0; node < 2; node++) {
		struct nb_block b;
		int status = -99;

		pin_new(fd, 64 * KiB, node, 'M', &b);
		void *page = b.p + 3 * PAGE;
		long r = syscall(__NR_move_pages, 0, 1, &page, NULL, &status, 0);
		int want = nb_test_node_of_phys(b.phys + 3 * PAGE);

		CHECK(node ? "pin-move_pages-query-node1" : "pin-move_pages-query-node0",
		      r == 0 && status == node && want == node,
		      "returned %ld status %d, sysfs node %d", r, status, want);
		/* A move must leave the pool's frame where it is (a DAX VMA: not migratable). */
		int to = !node, mstatus = 99;
		struct nb_walk w = { .addr = (uintptr_t)page };

		r = syscall(__NR_move_pages, 0, 1, &page, &to, &mstatus, 0);
		CHECK(node ? "pin-move_pages-move-node1" : "pin-move_pages-move-node0",
		      mstatus < 0 && ioctl(fd, NB_IOC_WALK, &w) == 0 &&
		      w.pfn == (b.phys >> 12) + 3 && all_are(b.p, 64 * KiB, 'M'),
		      "returned %ld status %d, frame 0x%llx want 0x%llx", r, mstatus,
		      (unsigned long long)w.pfn, (unsigned long long)((b.phys >> 12) + 3));
		nb_block_free(&b);
	}
}

/*
 * FREE while a pipe holds vmspliced pages of the block: FREE returns 0, the frames are in
 * flight (counted, never handed to the sweep), the pipe delivers the block's data, then the
 * frames come back.
 */
static void test_free_vmsplice(int fd)
{
	uint64_t size = 64 * KiB;
	struct nb_block b;
	int pfd[2];
	unsigned char buf[4 * PAGE];

	pin_new(fd, size, 0, 'S', &b);
	uint64_t lo = b.phys, hi = b.phys + size;

	if (pipe(pfd))
		exit(1);
	struct iovec iov = { b.p + 8 * PAGE, sizeof(buf) };
	ssize_t n = vmsplice(pfd[1], &iov, 1, 0);

	CHECK("pin-vmsplice", n == (ssize_t)sizeof(buf), "vmsplice %zd errno %d", n, errno);
	uint64_t fd_before = stats(fd, 0).fd_bytes;
	int err = nb_block_free(&b);
	struct nb_stats s = stats(fd, 0);

	CHECK("pin-free-vmsplice-inflight", !err && s.inflight_bytes == size &&
	      s.fd_inflight_bytes == size && s.fd_bytes == fd_before,
	      "free %d inflight %llu fd_inflight %llu fd_bytes %llu (was %llu)", err,
	      (unsigned long long)s.inflight_bytes, (unsigned long long)s.fd_inflight_bytes,
	      (unsigned long long)s.fd_bytes, (unsigned long long)fd_before);
	long hits = sweep(0, lo, hi);

	CHECK("pin-free-vmsplice-not-reused", hits == 0, "sweep got %ld of the frames", hits);
	usleep(50000); /* several polls of the deferred list: still referenced, still held */
	s = stats(fd, 0);
	CHECK("pin-free-vmsplice-held", s.inflight_bytes == size, "inflight %llu",
	      (unsigned long long)s.inflight_bytes);
	n = read(pfd[0], buf, sizeof(buf));
	CHECK("pin-free-vmsplice-data", n == (ssize_t)sizeof(buf) && all_are(buf, n, 'S'),
	      "read %zd, data %s", n, n > 0 && all_are(buf, n, 'S') ? "ok" : "wrong");
	uint64_t left = wait_inflight_zero(fd, 0);

	s = stats(fd, 0);
	int all = sweep_got_all(0, lo, hi, &hits);
	CHECK("pin-free-vmsplice-returned", left == 0 && s.fd_inflight_bytes == 0 &&
	      s.fd_bytes == fd_before - size && all,
	      "in flight %llu, fd_bytes %llu want %llu, sweep got %ld frames",
	      (unsigned long long)left, (unsigned long long)s.fd_bytes,
	      (unsigned long long)(fd_before - size), hits);
	close(pfd[0]);
	close(pfd[1]);
}

struct slow_read {
	int disk;
	void *buf;
	size_t len;
	ssize_t got;
	int err;
};

static void *slow_read_thread(void *arg)
{
	struct slow_read *r = arg;

	r->got = pread(r->disk, r->buf, r->len, 0);
	r->err = errno;
	return NULL;
}

/* FREE while an O_DIRECT read into the block is in flight (null_blk completes it late). */
static void test_free_odirect_inflight(int fd)
{
	uint64_t size = 64 * KiB;
	struct slow_read r = { .len = size };
	struct nb_block b;
	pthread_t t;

	r.disk = open("/dev/nullb0", O_RDONLY | O_DIRECT);
	if (r.disk < 0) {
		printf("NB-TEST-SKIP odirect-pinnable-free-inflight /dev/nullb0: %s\n",
		       strerror(errno));
		return;
	}
	pin_new(fd, size, 0, 'O', &b);
	uint64_t lo = b.phys, hi = b.phys + size;

	r.buf = b.p;
	double t0 = nb_test_now();

	pthread_create(&t, NULL, slow_read_thread, &r);
	usleep(300000); /* the bio is submitted: null_blk completes it seconds later */
	b.p = NULL;     /* the thread's buffer: unmapped after the read */
	int err = nb_block_free(&b);
	struct nb_stats s = stats(fd, 0);
	long hits = sweep(0, lo, hi);
	/* Meaningful only if the read was still in flight after the sweep. */
	struct nb_stats s2 = stats(fd, 0);
	double t1 = nb_test_now();

	pthread_join(t, NULL);
	double t2 = nb_test_now();

	CHECK("pin-free-odirect-inflight", !err && s.inflight_bytes == size && hits == 0 &&
	      s2.inflight_bytes == size && r.got == (ssize_t)size,
	      "free %d inflight %llu then %llu, sweep hits %ld, read %zd errno %d, read ended "
	      "%.2f s after the sweep (started %.2f s before)", err,
	      (unsigned long long)s.inflight_bytes, (unsigned long long)s2.inflight_bytes,
	      hits, r.got, r.err, t2 - t1, t1 - t0);
	munmap(r.buf, size);
	uint64_t left = wait_inflight_zero(fd, 0);

	int all = sweep_got_all(0, lo, hi, &hits);
	CHECK("pin-free-odirect-returned", left == 0 && all,
	      "in flight %llu, sweep got %ld frames", (unsigned long long)left, hits);
	close(r.disk);
}

static long module_refcnt(void)
{
	return nb_test_read_long("/sys/module/numabuddy/refcnt");
}

/* The deferred free drops its module reference after in flight reads 0 (the last thing its
 * work does): wait up to 5 s for the count to reach want. */
static long wait_module_refcnt(long want)
{
	long v = module_refcnt();

	for (int i = 0; i < 500 && v != want; i++) {
		usleep(10000);
		v = module_refcnt();
	}
	return v;
}

/* close() of a file whose pinnable block a pipe still references: deferred, module held. */
static void test_close_inflight(int watch)
{
	uint64_t size = 64 * KiB;
	int fd = nb_test_open(), pfd[2];
	struct nb_block b;
	unsigned char buf[PAGE];

	pin_new(fd, size, 1, 'C', &b);
	uint64_t lo = b.phys, hi = b.phys + size;

	if (pipe(pfd))
		exit(1);
	struct iovec iov = { b.p, PAGE };

	vmsplice(pfd[1], &iov, 1, 0);
	munmap(b.p, size);
	long ref_open = module_refcnt();

	close(fd);
	long ref_closed = module_refcnt();
	struct nb_stats s = stats(watch, 1);
	long hits = sweep(1, lo, hi);

	CHECK("pin-close-inflight", s.inflight_bytes == size && s.fd_inflight_bytes == 0 &&
	      hits == 0 && ref_closed == ref_open,
	      "inflight %llu (watching file's own %llu), sweep hits %ld, module refcnt %ld "
	      "open, %ld closed", (unsigned long long)s.inflight_bytes,
	      (unsigned long long)s.fd_inflight_bytes, hits, ref_open, ref_closed);
	ssize_t n = read(pfd[0], buf, PAGE);
	uint64_t left = wait_inflight_zero(watch, 1);
	long ref_done = wait_module_refcnt(ref_open - 1);

	int all = sweep_got_all(1, lo, hi, &hits);
	CHECK("pin-close-returned", n == PAGE && all_are(buf, PAGE, 'C') && left == 0 &&
	      ref_done == ref_open - 1 && all,
	      "pipe read %zd, in flight %llu, module refcnt %ld (open %ld), sweep got %ld",
	      n, (unsigned long long)left, ref_done, ref_open, hits);
	close(pfd[0]);
	close(pfd[1]);
}

/* MIGRATE: refused while a pipe references the block, moves it once nothing does. */
static void test_migrate(int fd)
{
	uint64_t size = 64 * KiB;
	struct nb_block b;
	int pfd[2], status = -99;
	unsigned char buf[PAGE];

	pin_new(fd, size, 0, 'G', &b);
	if (pipe(pfd))
		exit(1);
	struct iovec iov = { b.p + PAGE, PAGE };

	vmsplice(pfd[1], &iov, 1, 0);
	struct nb_migrate m = { .offset = b.off, .node = 1 };

	errno = 0;
	int r = ioctl(fd, NB_IOC_MIGRATE, &m);

	CHECK("pin-migrate-referenced-ebusy", r == -1 && errno == EBUSY && all_are(b.p, size, 'G'),
	      "returned %d errno %d", r, errno);
	if (read(pfd[0], buf, PAGE) != PAGE || !all_are(buf, PAGE, 'G'))
		FAIL("pin-migrate-pipe", "pipe lost the data");
	memset(&m, 0, sizeof(m));
	m.offset = b.off;
	m.node = 1;
	r = ioctl(fd, NB_IOC_MIGRATE, &m);
	int data_ok = all_are(b.p, size, 'G'); /* maps the moved pages again */
	void *page = b.p + 2 * PAGE;
	long mp = syscall(__NR_move_pages, 0, 1, &page, NULL, &status, 0);

	CHECK("pin-migrate-unreferenced", r == 0 && m.bytes_moved == size && data_ok && mp == 0 &&
	      status == 1,
	      "returned %d errno %d moved %llu, move_pages node %d", r, errno,
	      (unsigned long long)m.bytes_moved, status);
	nb_block_free(&b);
	close(pfd[0]);
	close(pfd[1]);
}

/* The few DRM uapi pieces the vgem import needs (the build host has no drm headers). */
struct drm_version_req {
	int major, minor, patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};
struct drm_prime_handle_req {
	uint32_t handle, flags;
	int32_t fd;
};
struct drm_gem_close_req {
	uint32_t handle, pad;
};
#define DRM_VERSION_IOCTL _IOWR('d', 0x00, struct drm_version_req)
#define DRM_GEM_CLOSE_IOCTL _IOW('d', 0x09, struct drm_gem_close_req)
#define DRM_PRIME_FD_TO_HANDLE_IOCTL _IOWR('d', 0x2e, struct drm_prime_handle_req)

/* The primary node of the vgem driver, or -1. */
static int vgem_open(void)
{
	for (int i = 0; i < 8; i++) {
		char path[32], name[16] = "";
		struct drm_version_req v = { .name_len = sizeof(name) - 1, .name = name };
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (ioctl(fd, DRM_VERSION_IOCTL, &v) == 0 && !strcmp(name, "vgem"))
			return fd;
		close(fd);
	}
	return -1;
}

/* Whether the dma-buf's fdinfo has a line containing want. */
static int fdinfo_has(int fd, const char *want)
{
	char path[64], line[256];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* Whether debugfs' dma-buf list shows a buffer named name attached to a device named dev. */
static int bufinfo_attached(const char *name, const char *dev)
{
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "r");
	char line[512];
	int in_buf = 0, found = 0;

	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "numabuddy"))
			in_buf = strstr(line, name) != NULL;
		else if (in_buf && strstr(line, dev))
			found = 1;
	}
	if (f)
		fclose(f);
	return found;
}

static void test_dmabuf(int fd)
{
	uint64_t size = 1 * MiB;
	struct nb_export_dmabuf e;
	struct nb_block b, ob;
	struct nb_version v;

	nb_test_version(&v);
	CHECK("dmabuf-feature", v.features & NB_FEAT_DMABUF, "features 0x%llx",
	      (unsigned long long)v.features);
	/* Refusals: an ordinary block, unknown flags, O_WRONLY, a dead offset. */
	if (nb_block_alloc(fd, 64 * KiB, 0, 0, &ob))
		exit(1);
	int e1, e2, e3, e4;

	memset(&e, 0, sizeof(e));
	e.offset = ob.off;
	e.flags = O_RDWR | O_CLOEXEC;
	e1 = ioctl(fd, NB_IOC_EXPORT_DMABUF, &e) ? errno : 0;
	nb_block_free(&ob);
	pin_new(fd, size, 1, 0, &b);
	for (uint64_t i = 0; i < size; i++)
		b.p[i] = (unsigned char)(i * 3 + i / PAGE);
	memset(&e, 0, sizeof(e));
	e.offset = b.off;
	e.flags = O_RDWR | O_NONBLOCK;
	e2 = ioctl(fd, NB_IOC_EXPORT_DMABUF, &e) ? errno : 0;
	e.flags = O_WRONLY;
	e3 = ioctl(fd, NB_IOC_EXPORT_DMABUF, &e) ? errno : 0;
	e.offset = ob.off;
	e.flags = O_RDWR;
	e4 = ioctl(fd, NB_IOC_EXPORT_DMABUF, &e) ? errno : 0;
	CHECK("dmabuf-refusals", e1 == EINVAL && e2 == EINVAL && e3 == EINVAL && e4 == EINVAL,
	      "ordinary %d, O_NONBLOCK %d, O_WRONLY %d, freed %d (want EINVAL each)", e1, e2, e3,
	      e4);

	/* A reply that cannot be written: EFAULT, and no fd the caller does not know of. */
	struct nb_export_dmabuf *ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fds_before = count_fds(), e5 = -1;

	if (ro != MAP_FAILED) {
		memset(ro, 0, sizeof(*ro));
		ro->offset = b.off;
		ro->flags = O_RDWR;
		mprotect(ro, PAGE, PROT_READ);
		e5 = ioctl(fd, NB_IOC_EXPORT_DMABUF, ro) ? errno : 0;
		munmap(ro, PAGE);
	}
	CHECK("dmabuf-export-efault-no-fd", e5 == EFAULT && count_fds() == fds_before,
	      "errno %d (want EFAULT), fds %d before, %d after", e5, fds_before, count_fds());

	memset(&e, 0, sizeof(e));
	e.offset = b.off;
	e.flags = O_RDWR | O_CLOEXEC;
	if (ioctl(fd, NB_IOC_EXPORT_DMABUF, &e)) {
		FAILF("dmabuf-export: %s", strerror(errno));
		nb_block_free(&b);
		return;
	}
	int dfd = e.fd;

	CHECK("dmabuf-export", (fcntl(dfd, F_GETFD) & FD_CLOEXEC) &&
	      (fcntl(dfd, F_GETFL) & O_ACCMODE) == O_RDWR && fdinfo_has(dfd, "numabuddy-node1") &&
	      lseek(dfd, 0, SEEK_END) == (off_t)size,
	      "fd %d flags 0x%x fl 0x%x name %s size %lld", dfd, fcntl(dfd, F_GETFD),
	      fcntl(dfd, F_GETFL), fdinfo_has(dfd, "numabuddy-node1") ? "ok" : "missing",
	      (long long)lseek(dfd, 0, SEEK_END));

	/* The dma-buf's own mmap, inside begin/end CPU access. */
	unsigned char *dm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
	struct dma_buf_sync sync = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
	int s1 = ioctl(dfd, DMA_BUF_IOCTL_SYNC, &sync);
	int same = dm != MAP_FAILED && !memcmp(dm, b.p, size);

	if (dm != MAP_FAILED)
		memset(dm + 5 * PAGE, 'd', PAGE);
	sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
	int s2 = ioctl(dfd, DMA_BUF_IOCTL_SYNC, &sync);

	CHECK("dmabuf-mmap-sync", same && !s1 && !s2 && all_are(b.p + 5 * PAGE, PAGE, 'd'),
	      "mmap %s, data %s, sync %d/%d", dm == MAP_FAILED ? strerror(errno) : "ok",
	      same ? "same" : "differs", s1, s2);

	/* A real importer: vgem attaches the dma-buf and maps it (dma_buf_map_attachment). */
	int card = vgem_open(), imported = 0;
	struct drm_prime_handle_req ph = { .fd = dfd };

	if (card < 0) {
		/* A kernel without modules (the debug kernel): allowed to skip there only. */
		printf("NB-TEST-SKIP dmabuf-vgem-import no vgem device\n");
	} else if (ioctl(card, DRM_PRIME_FD_TO_HANDLE_IOCTL, &ph)) {
		FAILF("dmabuf-vgem-import: PRIME_FD_TO_HANDLE: %s", strerror(errno));
	} else {
		imported = 1;
		CHECK("dmabuf-vgem-import", bufinfo_attached("numabuddy-node1", "vgem"),
		      "debugfs bufinfo shows no vgem attachment of numabuddy-node1");
	}

	/* While the dma-buf lives: MIGRATE refused, FREE deferred, nothing reused. */
	struct nb_migrate m = { .offset = b.off, .node = 0 };
	int mr = ioctl(fd, NB_IOC_MIGRATE, &m) ? errno : 0;

	CHECK("dmabuf-migrate-ebusy", mr == EBUSY, "MIGRATE errno %d", mr);
	unsigned char *keep = malloc(size);

	memcpy(keep, b.p, size);
	uint64_t lo = b.phys, hi = b.phys + size;
	int fr = nb_block_free(&b);
	uint64_t inflight = stats(fd, 1).inflight_bytes;
	long hits = sweep(1, lo, hi);

	CHECK("dmabuf-free-deferred", !fr && inflight == size && hits == 0 &&
	      dm != MAP_FAILED && !memcmp(dm, keep, size),
	      "free %d inflight %llu sweep hits %ld, data through the dma-buf %s", fr,
	      (unsigned long long)inflight, hits,
	      dm != MAP_FAILED && !memcmp(dm, keep, size) ? "kept" : "lost");
	free(keep);
	if (dm != MAP_FAILED)
		munmap(dm, size);
	close(dfd);
	if (imported) {
		/* Our fd and mapping are gone: the importer's reference alone keeps the frames. */
		usleep(50000);
		inflight = stats(fd, 1).inflight_bytes;
		hits = sweep(1, lo, hi);
		CHECK("dmabuf-importer-holds", inflight == size && hits == 0,
		      "with only vgem's import left: inflight %llu, sweep hits %ld",
		      (unsigned long long)inflight, hits);
		struct drm_gem_close_req gc = { .handle = ph.handle };

		ioctl(card, DRM_GEM_CLOSE_IOCTL, &gc);
	}
	if (card >= 0)
		close(card);
	uint64_t left = wait_inflight_zero(fd, 1);

	int all = sweep_got_all(1, lo, hi, &hits);
	CHECK("dmabuf-released-returned", left == 0 && all,
	      "in flight %llu after the last user, sweep got %ld frames",
	      (unsigned long long)left, hits);
}

/* One frame from /dev/video0 into memory of the given kind: V4L2_MEMORY_MMAP (copied to
 * out) or V4L2_MEMORY_DMABUF (fd dmabuf, the driver writes into it). 0 or errno. */
static int v4l2_capture(int vid, unsigned memory, int dmabuf, size_t len, unsigned char *out)
{
	struct v4l2_requestbuffers rb = { .count = 1, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
					  .memory = memory };
	struct v4l2_buffer buf = { .index = 0, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
				   .memory = memory };
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE, err = 0;
	void *map = MAP_FAILED;

	if (ioctl(vid, VIDIOC_REQBUFS, &rb) || rb.count < 1)
		return errno ? errno : ENOMEM;
	if (memory == V4L2_MEMORY_MMAP) {
		if (ioctl(vid, VIDIOC_QUERYBUF, &buf))
			return errno;
		map = mmap(NULL, buf.length, PROT_READ, MAP_SHARED, vid, buf.m.offset);
		if (map == MAP_FAILED)
			return errno;
	} else {
		buf.m.fd = dmabuf;
		buf.length = len;
	}
	if (ioctl(vid, VIDIOC_QBUF, &buf) || ioctl(vid, VIDIOC_STREAMON, &type) ||
	    ioctl(vid, VIDIOC_DQBUF, &buf))
		err = errno;
	ioctl(vid, VIDIOC_STREAMOFF, &type);
	if (!err && map != MAP_FAILED)
		memcpy(out, map, len);
	if (map != MAP_FAILED)
		munmap(map, buf.length);
	rb.count = 0;
	ioctl(vid, VIDIOC_REQBUFS, &rb);
	return err;
}

/*
 * A second real importer, one that writes: vivid's capture with the dma-contig allocator
 * (allocators=1) imports the dma-buf (attach, map_dma_buf: its sg table must be contiguous
 * in DMA space, vb2_dc checks), vmaps it and draws a frame into it. The frame must be the one
 * an MMAP capture gets (bottom half: the top carries changing OSD text).
 */
static void test_vivid(int fd)
{
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	int vid = open("/dev/video0", O_RDWR | O_CLOEXEC);
	struct nb_export_dmabuf e;
	struct nb_block b;

	if (vid < 0) {
		printf("NB-TEST-SKIP dmabuf-vivid-import /dev/video0: %s\n", strerror(errno));
		return;
	}
	if (ioctl(vid, VIDIOC_G_FMT, &f) || !f.fmt.pix.sizeimage) {
		FAILF("dmabuf-vivid-import G_FMT: %s", strerror(errno));
		close(vid);
		return;
	}
	size_t len = f.fmt.pix.sizeimage;
	uint64_t size = (len + 2 * MiB - 1) & ~(2 * MiB - 1);
	unsigned char *ref = malloc(len);
	int err = nb_block_alloc(fd, size, NB_ALLOC_PINNABLE | NB_ALLOC_CONTIG | NB_ALLOC_LOW4G, 1, &b);

	if (err || nb_block_map(&b)) {
		FAILF("dmabuf-vivid-import block: %s", strerror(err ? -err : errno));
		close(vid);
		free(ref);
		return;
	}
	memset(b.p, 0xab, size);
	memset(&e, 0, sizeof(e));
	e.offset = b.off;
	e.flags = O_RDWR | O_CLOEXEC;
	int e1 = ioctl(fd, NB_IOC_EXPORT_DMABUF, &e) ? errno : 0;
	int c1 = v4l2_capture(vid, V4L2_MEMORY_MMAP, -1, len, ref);
	int c2 = e1 ? e1 : v4l2_capture(vid, V4L2_MEMORY_DMABUF, e.fd, len, NULL);
	size_t half = len / 2;
	int same = !memcmp(ref + half, b.p + half, len - half);
	int written = !all_are(b.p + half, len - half, 0xab);

	CHECK("dmabuf-vivid-import", !c1 && !c2 && same && written,
	      "%ux%u fourcc %.4s, %zu bytes: mmap capture %d, dmabuf capture %d, frame %s, %s",
	      f.fmt.pix.width, f.fmt.pix.height, (char *)&f.fmt.pix.pixelformat, len, c1, c2,
	      same ? "same" : "differs", written ? "written" : "untouched");
	if (!e1)
		close(e.fd);
	close(vid);
	nb_block_free(&b);
	free(ref);
	if (wait_inflight_zero(fd, 1))
		FAILF("dmabuf-vivid-import frames still in flight after vivid let go");
}

static void read_byte(void *p)
{
	(void)*(volatile unsigned char *)p;
}

/* fork shares the pages; FREE zaps every mapping, the child's included. */
static void test_fork_and_zap(int fd)
{
	struct nb_block b;
	int status;

	pin_new(fd, 64 * KiB, 0, 'K', &b);
	pid_t pid = fork();

	if (pid == 0) {
		_exit(all_are(b.p, 64 * KiB, 'K') ? (memset(b.p, 'L', PAGE), 0) : 2);
	}
	waitpid(pid, &status, 0);
	CHECK("pin-fork-shared", WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	      all_are(b.p, PAGE, 'L'), "child status 0x%x", status);
	unsigned char *p = b.p;

	b.p = NULL; /* keep the mapping */
	nb_block_free(&b);
	/* Nothing but the zapped mappings referenced it: back at once, nothing in flight. */
	CHECK("pin-free-unreferenced-immediate", stats(fd, 0).inflight_bytes == 0,
	      "inflight %llu right after FREE", (unsigned long long)stats(fd, 0).inflight_bytes);
	pid = fork();
	if (pid == 0) {
		read_byte(p);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CHECK("pin-after-free-sigbus", WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
	      "status 0x%x", status);
	munmap(p, 64 * KiB);
}

int main(void)
{
	struct nb_version v;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nb_test_version(&v) || (v.nodes_with_pool & 3) != 3) {
		FAIL("pin-setup", "needs pools on nodes 0 and 1 (0x%llx)",
		     (unsigned long long)v.nodes_with_pool);
		return 1;
	}
	fd = nb_test_open();
	test_abi(fd);
	test_odirect(fd, 64 * KiB);
	test_odirect(fd, 2 * MiB);
	test_io_uring(fd, 0);
	test_process_vm(fd);
	test_move_pages(fd);
	test_fork_and_zap(fd);
	test_free_vmsplice(fd);
	test_free_odirect_inflight(fd);
	test_io_uring(fd, 1);
	test_close_inflight(fd);
	test_migrate(fd);
	test_dmabuf(fd);
	test_vivid(fd);
	uint64_t left = nb_test_fd_bytes(fd, 2);

	CHECK("pin-nothing-left", left == 0 && stats(fd, 0).inflight_bytes == 0 &&
	      stats(fd, 1).inflight_bytes == 0, "fd_bytes %llu", (unsigned long long)left);
	close(fd);
	return failures ? 1 : 0;
}
