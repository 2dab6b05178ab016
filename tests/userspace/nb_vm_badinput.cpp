// SPDX-License-Identifier: GPL-2.0
/*
 * nb_vm_badinput.cpp - nb_vm_test, part 3: bad input for every ioctl (fields, struct sizes,
 * pointers, unknown commands, batches) and for mmap; every refusal has its documented errno.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <numaif.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory_resource>
#include <vector>

#include "numabuddy.hpp"

#include "nb_vm_test.h"

namespace nbvm {

/* ---- 3. bad input for every ioctl ---- */

/* A buffer big enough for any struct plus a newer caller's tail. */
struct Buf {
	alignas(8) unsigned char b[4096];
	template <class T> T *as() { return reinterpret_cast<T *>(b); }
};

/* Frees whatever an ALLOC/RESERVE that should have failed allocated. */
void Cleanup(int fd, unsigned long cmd, Buf &buf, int ret)
{
	if (ret || (_IOC_NR(cmd) != _IOC_NR(NB_IOC_ALLOC) && _IOC_NR(cmd) != _IOC_NR(NB_IOC_RESERVE)))
		return;
	struct nb_free f = {};
	f.offset = buf.as<struct nb_alloc>()->offset;
	Ioctl(fd, NB_IOC_FREE, &f);
}

struct AllocCase {
	const char *name;
	void (*fill)(struct nb_alloc *a);
	int want;
};

const AllocCase kAllocCases[] = {
	{ "policy-4", [](struct nb_alloc *a) { a->policy = 4; }, -EINVAL },
	{ "policy-max", [](struct nb_alloc *a) { a->policy = ~0U; }, -EINVAL },
	{ "node-minus-2", [](struct nb_alloc *a) { a->node = -2; }, -EINVAL },
	{ "node-nr_node_ids", [](struct nb_alloc *a) { a->node = g_nr_node_ids; }, -EINVAL },
	{ "node-64", [](struct nb_alloc *a) { a->node = 64; }, -EINVAL },
	{ "node-int-max", [](struct nb_alloc *a) { a->node = 0x7fffffff; }, -EINVAL },
	{ "nodemask-beyond-nr_node_ids",
	  [](struct nb_alloc *a) {
		  a->policy = NB_POLICY_BIND;
		  a->nodemask = g_nr_node_ids < 64 ? Bit(g_nr_node_ids) : 0;
	  },
	  -EINVAL },
	{ "flags-unknown-bit", [](struct nb_alloc *a) { a->flags = NB_ALLOC_FLAGS_ALL + 1; }, -EINVAL },
	{ "flags-top-bit", [](struct nb_alloc *a) { a->flags = 1U << 31; }, -EINVAL },
	{ "flags-huge-2m-and-1g",
	  [](struct nb_alloc *a) { a->flags = NB_ALLOC_HUGE_2M | NB_ALLOC_HUGE_1G; }, -EINVAL },
	{ "order-above-max",
	  [](struct nb_alloc *a) {
		  a->size = 0;
		  a->order = (uint32_t)g_max_order + 1;
	  },
	  -EINVAL },
	{ "order-u32-max",
	  [](struct nb_alloc *a) {
		  a->size = 0;
		  a->order = ~0U;
	  },
	  -EINVAL },
	{ "size-and-order", [](struct nb_alloc *a) { a->order = 1; }, -EINVAL },
	{ "size-2^50", [](struct nb_alloc *a) { a->size = 1ULL << 50; }, -EINVAL },
	{ "size-u64-max", [](struct nb_alloc *a) { a->size = ~0ULL; }, -EINVAL },
	{ "pad", [](struct nb_alloc *a) { a->pad = 1; }, -EINVAL },
	{ "reserved0", [](struct nb_alloc *a) { a->reserved[0] = 1; }, -EINVAL },
	{ "reserved3", [](struct nb_alloc *a) { a->reserved[3] = 1ULL << 63; }, -EINVAL },
	{ "output-offset-set", [](struct nb_alloc *a) { a->offset = 4096; }, -EINVAL },
	{ "output-node_out-set", [](struct nb_alloc *a) { a->node_out = 1; }, -EINVAL },
	/* Sanity: the base request itself is valid, so the cases above test one field each. */
	{ "valid-base", [](struct nb_alloc *) {}, 0 },
};

void TestBadAlloc(int fd, unsigned long cmd, const char *cmdname)
{
	char name[128];

	for (const AllocCase &c : kAllocCases) {
		Buf buf = {};
		struct nb_alloc *a = buf.as<struct nb_alloc>();

		a->size = 4096;
		a->policy = NB_POLICY_BIND;
		a->node = g_pool_node;
		c.fill(a);
		int ret = Ioctl(fd, cmd, a);
		Cleanup(fd, cmd, buf, ret);
		snprintf(name, sizeof(name), "bad-%s-%s", cmdname, c.name);
		ExpectErrno(name, ret, c.want);
	}

	/* A newer caller: extra zero bytes fine, junk refused before anything is allocated. */
	Buf buf = {};
	struct nb_alloc *a = buf.as<struct nb_alloc>();
	a->size = 4096;
	a->node = -1;
	int ret = Ioctl(fd, WithSize(cmd, sizeof(*a) + 64), a);
	Cleanup(fd, cmd, buf, ret);
	snprintf(name, sizeof(name), "bad-%s-long-zero-tail-ok", cmdname);
	ExpectErrno(name, ret, 0);
	memset(&buf, 0, sizeof(buf));
	a->size = 4096;
	a->node = -1;
	buf.b[sizeof(*a) + 63] = 0x42;
	ret = Ioctl(fd, WithSize(cmd, sizeof(*a) + 64), a);
	Cleanup(fd, cmd, buf, ret);
	snprintf(name, sizeof(name), "bad-%s-long-junk-tail", cmdname);
	ExpectErrno(name, ret, -E2BIG);

	/* An older caller that knows the fields up to node_out only: outputs still arrive. */
	memset(&buf, 0, sizeof(buf));
	memset(buf.b + offsetof(struct nb_alloc, pad), 0xcc, 64);
	a->size = 4096;
	a->node = -1;
	ret = Ioctl(fd, WithSize(cmd, offsetof(struct nb_alloc, pad)), a);
	bool tail_ok = true;
	for (size_t i = offsetof(struct nb_alloc, pad); i < offsetof(struct nb_alloc, pad) + 64; i++)
		tail_ok &= buf.b[i] == 0xcc;
	uint64_t off = a->offset;
	Cleanup(fd, cmd, buf, ret);
	snprintf(name, sizeof(name), "bad-%s-short-struct-ok", cmdname);
	CHECK(name, ret == 0 && off && a->alloc_size == 4096 && tail_ok,
	      "ret %d offset %llu size %llu tail %s", ret, (unsigned long long)off,
	      (unsigned long long)a->alloc_size, tail_ok ? "intact" : "overwritten");
}

/* Bad pointers: NULL, unmapped, PROT_NONE, a struct running off the end of a page. */
void TestBadPointers(int fd)
{
	static const struct {
		const char *name;
		unsigned long cmd;
		uint64_t feature; /* not advertised: the command is unknown, -ENOTTY */
	} cmds[] = {
		{ "version", NB_IOC_VERSION, 0 },
		{ "alloc", NB_IOC_ALLOC, 0 },
		{ "free", NB_IOC_FREE, 0 },
		{ "batch", NB_IOC_ALLOC_BATCH, NB_FEAT_BATCH },
		{ "query", NB_IOC_QUERY, 0 },
		{ "reserve", NB_IOC_RESERVE, NB_FEAT_RESERVE },
		{ "migrate", NB_IOC_MIGRATE, NB_FEAT_MIGRATE },
		{ "stats", NB_IOC_STATS, 0 },
		{ "bench", NB_IOC_BENCH, NB_FEAT_BENCH },
		{ "compact", NB_IOC_COMPACT, NB_FEAT_COMPACT },
	};
	char name[96];
	unsigned char *pages = static_cast<unsigned char *>(
		mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));

	if (pages == MAP_FAILED)
		return Fail("bad-pointer-setup", "mmap: %s", strerror(errno));
	memset(pages, 0, 8192);
	mprotect(pages + 4096, 4096, PROT_NONE);
	for (const auto &c : cmds) {
		int want = (c.feature && !(g_ver.features & c.feature)) ? -ENOTTY : -EFAULT;

		snprintf(name, sizeof(name), "bad-%s-null-pointer", c.name);
		ExpectErrno(name, Ioctl(fd, c.cmd, nullptr), want);
		snprintf(name, sizeof(name), "bad-%s-prot-none", c.name);
		ExpectErrno(name, Ioctl(fd, c.cmd, pages + 4096), want);
		snprintf(name, sizeof(name), "bad-%s-straddles-page-end", c.name);
		ExpectErrno(name, Ioctl(fd, c.cmd, pages + 4096 - 8), want);
		snprintf(name, sizeof(name), "bad-%s-kernel-address", c.name);
		ExpectErrno(name, Ioctl(fd, c.cmd, reinterpret_cast<void *>(0xffff888000000000UL)),
			    want);
	}

	/* Valid request in read-only memory: the result cannot be copied out, so the
	 * allocation must be undone (no bytes left charged to this file). */
	struct nb_stats s0 = {}, s1 = {};
	s0.node = s1.node = g_pool_node;
	Ioctl(fd, NB_IOC_STATS, &s0);
	struct nb_alloc *a = reinterpret_cast<struct nb_alloc *>(pages);
	memset(pages, 0, 4096);
	a->size = 4096;
	a->policy = NB_POLICY_BIND;
	a->node = g_pool_node;
	mprotect(pages, 4096, PROT_READ);
	int ret = Ioctl(fd, NB_IOC_ALLOC, a);
	Ioctl(fd, NB_IOC_STATS, &s1);
	CHECK("bad-alloc-readonly-result-undone", ret == -EFAULT && s1.fd_bytes == s0.fd_bytes,
	      "ret %d, fd_bytes %llu -> %llu", ret, (unsigned long long)s0.fd_bytes,
	      (unsigned long long)s1.fd_bytes);
	munmap(pages, 8192);
}

void TestBadCommands(int fd)
{
	Buf buf = {};

	ExpectErrno("bad-cmd-unknown-nr", Ioctl(fd, _IOWR(NB_IOC_MAGIC, 0x3f, struct nb_version),
						buf.b), -ENOTTY);
	ExpectErrno("bad-cmd-nr-255", Ioctl(fd, _IOWR(NB_IOC_MAGIC, 0xff, struct nb_version), buf.b),
		    -ENOTTY);
	ExpectErrno("bad-cmd-wrong-magic", Ioctl(fd, _IOWR(0xB8, 0x01, struct nb_alloc), buf.b),
		    -ENOTTY);
	ExpectErrno("bad-cmd-wrong-direction-ior", Ioctl(fd, _IOR(NB_IOC_MAGIC, 0x00,
								  struct nb_version), buf.b),
		    -ENOTTY);
	ExpectErrno("bad-cmd-wrong-direction-io", Ioctl(fd, _IO(NB_IOC_MAGIC, 0x01), buf.b), -ENOTTY);
	ExpectErrno("bad-cmd-tcgets", Ioctl(fd, TCGETS, buf.b), -ENOTTY);
}

void TestBadFreeQueryStats(nbl_handle *h)
{
	int fd = nbl_fd(h);
	nbl_alloc_opts o;
	nbl_block b;
	Buf buf;

	nbl_alloc_opts_init(&o);
	o.size = 8192;
	if (nbl_alloc(h, &o, &b))
		return Fail("bad-free-setup", "alloc failed");

	struct Case {
		const char *name;
		unsigned long cmd;
		void (*fill)(Buf &, uint64_t live);
		int want;
	};
	static const Case cases[] = {
		{ "bad-free-unknown-offset", NB_IOC_FREE,
		  [](Buf &x, uint64_t) { x.as<struct nb_free>()->offset = 1ULL << 44; }, -ENOENT },
		{ "bad-free-misaligned", NB_IOC_FREE,
		  [](Buf &x, uint64_t l) { x.as<struct nb_free>()->offset = l + 1; }, -EINVAL },
		{ "bad-free-inside-block", NB_IOC_FREE,
		  [](Buf &x, uint64_t l) { x.as<struct nb_free>()->offset = l + 4096; }, -ENOENT },
		{ "bad-free-reserved", NB_IOC_FREE,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_free>()->offset = l;
			  x.as<struct nb_free>()->reserved[2] = 1;
		  },
		  -EINVAL },
		{ "bad-query-unknown-offset", NB_IOC_QUERY,
		  [](Buf &x, uint64_t) { x.as<struct nb_query>()->offset = 1ULL << 44; }, -ENOENT },
		{ "bad-query-misaligned", NB_IOC_QUERY,
		  [](Buf &x, uint64_t l) { x.as<struct nb_query>()->offset = l + 8; }, -EINVAL },
		{ "bad-query-inside-block", NB_IOC_QUERY,
		  [](Buf &x, uint64_t l) { x.as<struct nb_query>()->offset = l + 4096; }, -ENOENT },
		{ "bad-query-pad", NB_IOC_QUERY,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_query>()->offset = l;
			  x.as<struct nb_query>()->pad = 1;
		  },
		  -EINVAL },
		{ "bad-query-reserved", NB_IOC_QUERY,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_query>()->offset = l;
			  x.as<struct nb_query>()->reserved[0] = 1;
		  },
		  -EINVAL },
		{ "bad-stats-node-minus-1", NB_IOC_STATS,
		  [](Buf &x, uint64_t) { x.as<struct nb_stats>()->node = -1; }, -EINVAL },
		{ "bad-stats-node-nr_node_ids", NB_IOC_STATS,
		  [](Buf &x, uint64_t) { x.as<struct nb_stats>()->node = g_nr_node_ids; }, -EINVAL },
		{ "bad-stats-node-64", NB_IOC_STATS,
		  [](Buf &x, uint64_t) { x.as<struct nb_stats>()->node = 64; }, -EINVAL },
		{ "bad-migrate-unknown-offset", NB_IOC_MIGRATE,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_migrate>()->offset = 1ULL << 44;
			  x.as<struct nb_migrate>()->node = g_pool_node;
		  },
		  -ENOENT },
		{ "bad-migrate-misaligned", NB_IOC_MIGRATE,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_migrate>()->offset = l + 1;
			  x.as<struct nb_migrate>()->node = g_pool_node;
		  },
		  -EINVAL },
		{ "bad-migrate-node-minus-1", NB_IOC_MIGRATE,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_migrate>()->offset = l;
			  x.as<struct nb_migrate>()->node = -1;
		  },
		  -EINVAL },
		{ "bad-migrate-node-nr_node_ids", NB_IOC_MIGRATE,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_migrate>()->offset = l;
			  x.as<struct nb_migrate>()->node = g_nr_node_ids;
		  },
		  -EINVAL },
		{ "bad-migrate-pad", NB_IOC_MIGRATE,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_migrate>()->offset = l;
			  x.as<struct nb_migrate>()->node = g_pool_node;
			  x.as<struct nb_migrate>()->pad = 1;
		  },
		  -EINVAL },
		{ "bad-migrate-output-set", NB_IOC_MIGRATE,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_migrate>()->offset = l;
			  x.as<struct nb_migrate>()->node = g_pool_node;
			  x.as<struct nb_migrate>()->bytes_moved = 1;
		  },
		  -EINVAL },
		{ "bad-migrate-reserved", NB_IOC_MIGRATE,
		  [](Buf &x, uint64_t l) {
			  x.as<struct nb_migrate>()->offset = l;
			  x.as<struct nb_migrate>()->node = g_pool_node;
			  x.as<struct nb_migrate>()->reserved[1] = 1;
		  },
		  -EINVAL },
		{ "bad-bench-allocator-2", NB_IOC_BENCH,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_bench>()->allocator = 2;
			  x.as<struct nb_bench>()->node = g_pool_node;
			  x.as<struct nb_bench>()->iterations = 1;
		  },
		  -EINVAL },
		{ "bad-bench-iterations-0", NB_IOC_BENCH,
		  [](Buf &x, uint64_t) { x.as<struct nb_bench>()->node = g_pool_node; }, -EINVAL },
		{ "bad-bench-iterations-too-many", NB_IOC_BENCH,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_bench>()->node = g_pool_node;
			  x.as<struct nb_bench>()->iterations = (1ULL << 24) + 1;
		  },
		  -EINVAL },
		{ "bad-bench-order", NB_IOC_BENCH,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_bench>()->node = g_pool_node;
			  x.as<struct nb_bench>()->iterations = 1;
			  x.as<struct nb_bench>()->order = (uint32_t)g_max_order + 1;
		  },
		  -EINVAL },
		{ "bad-bench-node", NB_IOC_BENCH,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_bench>()->node = g_nr_node_ids;
			  x.as<struct nb_bench>()->iterations = 1;
		  },
		  -EINVAL },
		{ "bad-bench-output-set", NB_IOC_BENCH,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_bench>()->node = g_pool_node;
			  x.as<struct nb_bench>()->iterations = 1;
			  x.as<struct nb_bench>()->elapsed_ns = 1;
		  },
		  -EINVAL },
		{ "bad-bench-reserved", NB_IOC_BENCH,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_bench>()->node = g_pool_node;
			  x.as<struct nb_bench>()->iterations = 1;
			  x.as<struct nb_bench>()->reserved[0] = 1;
		  },
		  -EINVAL },
		{ "bad-compact-node", NB_IOC_COMPACT,
		  [](Buf &x, uint64_t) { x.as<struct nb_compact>()->node = g_nr_node_ids; }, -EINVAL },
		{ "bad-compact-negative-node", NB_IOC_COMPACT,
		  [](Buf &x, uint64_t) { x.as<struct nb_compact>()->node = -1; }, -EINVAL },
		{ "bad-compact-order", NB_IOC_COMPACT,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_compact>()->node = g_pool_node;
			  x.as<struct nb_compact>()->order = (uint32_t)g_max_order + 1;
		  },
		  -EINVAL },
		{ "bad-compact-output-set", NB_IOC_COMPACT,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_compact>()->node = g_pool_node;
			  x.as<struct nb_compact>()->elapsed_ns = 1;
		  },
		  -EINVAL },
		{ "bad-compact-reserved", NB_IOC_COMPACT,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_compact>()->node = g_pool_node;
			  x.as<struct nb_compact>()->reserved[1] = 1;
		  },
		  -EINVAL },
	};
	for (const Case &c : cases) {
		uint64_t feat = _IOC_NR(c.cmd) == _IOC_NR(NB_IOC_MIGRATE) ? NB_FEAT_MIGRATE :
				_IOC_NR(c.cmd) == _IOC_NR(NB_IOC_BENCH)	  ? NB_FEAT_BENCH :
				_IOC_NR(c.cmd) == _IOC_NR(NB_IOC_COMPACT) ? NB_FEAT_COMPACT : 0;
		memset(&buf, 0, sizeof(buf));
		c.fill(buf, b.offset);
		int ret = Ioctl(fd, c.cmd, buf.b);
		ExpectErrno(c.name, ret, (feat && !(g_ver.features & feat)) ? -ENOTTY : c.want);
	}
	ExpectErrno("free-valid", nbl_free(h, &b), 0);
	struct nb_free f = {};
	f.offset = 0;
	ExpectErrno("bad-free-offset-zero", Ioctl(fd, NB_IOC_FREE, &f), -ENOENT);
}

void TestBadBatch(nbl_handle *h)
{
	int fd = nbl_fd(h);

	if (!(g_ver.features & NB_FEAT_BATCH)) {
		struct nb_alloc_batch b = {};
		return ExpectErrno("batch-not-advertised-enotty", Ioctl(fd, NB_IOC_ALLOC_BATCH, &b),
				   -ENOTTY);
	}
	struct nb_alloc reqs[3] = {};
	auto reset = [&]() {
		memset(reqs, 0, sizeof(reqs));
		for (auto &r : reqs) {
			r.size = 4096;
			r.node = -1;
		}
	};
	auto run = [&](struct nb_alloc_batch *b) {
		int ret = Ioctl(fd, NB_IOC_ALLOC_BATCH, b);
		for (uint32_t i = 0; i < b->done && i < 3; i++) {
			struct nb_free f = {};
			f.offset = reqs[i].offset;
			Ioctl(fd, NB_IOC_FREE, &f);
		}
		return ret;
	};
	struct nb_alloc_batch b = {};
	auto base = [&]() {
		reset();
		memset(&b, 0, sizeof(b));
		b.reqs = (uint64_t)(uintptr_t)reqs;
		b.count = 3;
		b.entry_size = sizeof(struct nb_alloc);
	};

	base();
	int ret = run(&b);
	CHECK("batch-valid", ret == 0 && b.done == 3 && reqs[2].alloc_size == 4096,
	      "ret %d done %u", ret, b.done);
	base();
	b.count = 0;
	ExpectErrno("bad-batch-count-0", run(&b), -EINVAL);
	base();
	b.count = 4097;
	ExpectErrno("bad-batch-count-4097", run(&b), -EINVAL);
	base();
	b.entry_size = 0;
	ExpectErrno("bad-batch-entry-size-0", run(&b), -EINVAL);
	base();
	b.entry_size = 8;
	ExpectErrno("bad-batch-entry-size-8", run(&b), -EINVAL);
	base();
	b.entry_size = 8192;
	ExpectErrno("bad-batch-entry-size-above-page", run(&b), -EINVAL);
	base();
	b.pad = 1;
	ExpectErrno("bad-batch-pad", run(&b), -EINVAL);
	base();
	b.done = 1;
	ExpectErrno("bad-batch-done-set", run(&b), -EINVAL);
	base();
	b.reserved[1] = 1;
	ExpectErrno("bad-batch-reserved", run(&b), -EINVAL);
	base();
	b.reqs = 0;
	ExpectErrno("bad-batch-reqs-null", run(&b), -EFAULT);
	base();
	reqs[0].policy = 9;
	ExpectErrno("bad-batch-first-entry-invalid", run(&b), -EINVAL);
	CHECK("bad-batch-first-entry-invalid-done-0", b.done == 0, "done %u", b.done);

	/* A bad entry after good ones: the module reports the partial batch as success with
	 * done = index of the bad entry; entries before it are allocated and freed by run(). */
	base();
	reqs[1].policy = 9;
	ret = run(&b);
	CHECK("batch-partial-done", ret == 0 && b.done == 1 && reqs[0].offset,
	      "ret %d done %u", ret, b.done);

	/* The library is all or nothing and surfaces the failing entry's errno. */
	nbl_alloc_opts o[3];
	nbl_block out[3];
	size_t failed = 0;
	for (auto &x : o) {
		nbl_alloc_opts_init(&x);
		x.size = 4096;
	}
	o[1].policy = 9;
	uint64_t before = FdBytes(h, g_pool_node);
	ret = nbl_alloc_batch(h, o, 3, out, &failed);
	CHECK("lib-batch-all-or-nothing", ret == -EINVAL && failed == 1 &&
						   FdBytes(h, g_pool_node) == before,
	      "ret %d failed %zu", ret, failed);
}

void TestBadMmap(nbl_handle *h)
{
	int fd = nbl_fd(h);
	nbl_alloc_opts o;
	nbl_block b;

	nbl_alloc_opts_init(&o);
	o.size = 8192;
	o.lib_flags = NBL_NOMAP;
	if (nbl_alloc(h, &o, &b))
		return Fail("bad-mmap-setup", "alloc failed");
	auto try_map = [&](size_t len, int flags, uint64_t off) {
		void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, flags, fd, (off_t)off);
		if (p == MAP_FAILED)
			return -errno;
		munmap(p, len);
		return 0;
	};
	ExpectErrno("mmap-valid", try_map(8192, MAP_SHARED, b.offset), 0);
	ExpectErrno("bad-mmap-private", try_map(8192, MAP_PRIVATE, b.offset), -EINVAL);
	ExpectErrno("bad-mmap-unknown-offset", try_map(4096, MAP_SHARED, 1ULL << 44), -EINVAL);
	ExpectErrno("bad-mmap-longer-than-block", try_map(3 * 4096, MAP_SHARED, b.offset), -EINVAL);
	ExpectErrno("bad-mmap-past-block-end", try_map(8192, MAP_SHARED, b.offset + 4096), -EINVAL);
	nbl_free(h, &b);
	ExpectErrno("bad-mmap-freed-block", try_map(4096, MAP_SHARED, b.offset), -EINVAL);
}

} // namespace nbvm
