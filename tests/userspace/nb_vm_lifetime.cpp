// SPDX-License-Identifier: GPL-2.0
/*
 * nb_vm_lifetime.cpp - nb_vm_test, parts 4-8: two processes (isolation, zeroed reuse),
 * who may open and what an unprivileged or read-only user gets, quota, migration, reserve,
 * std::pmr.
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

/* ---- 4. two processes ---- */

void TestIsolation(int node)
{
	const int kBlocks = 16;
	const uint64_t kSize = 1 << 20;
	int to_parent[2], to_child[2];

	if (pipe(to_parent) || pipe(to_child))
		return Fail("isolation-setup", "pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* Process A: allocate, dirty, publish offsets and phys, wait, free, exit. */
		nbl_handle *h;
		uint64_t msg[2 * kBlocks] = {};
		nbl_block b[kBlocks];
		nbl_alloc_opts o;
		char go;

		if (nbl_open(g_dev, &h))
			_exit(2);
		nbl_alloc_opts_init(&o);
		o.size = kSize;
		o.policy = NB_POLICY_BIND;
		o.node = node;
		o.flags = NB_ALLOC_CONTIG;
		for (int i = 0; i < kBlocks; i++) {
			struct nb_query q;

			if (nbl_alloc(h, &o, &b[i]) || nbl_query(h, b[i].offset, &q))
				_exit(3);
			memset(b[i].addr, 0xa5, kSize);
			msg[2 * i] = b[i].offset;
			msg[2 * i + 1] = q.phys_addr;
		}
		if (write(to_parent[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
		    read(to_child[0], &go, 1) != 1)
			_exit(4);
		for (int i = 0; i < kBlocks; i++)
			nbl_free(h, &b[i]);
		nbl_close(h);
		_exit(0);
	}
	uint64_t msg[2 * kBlocks];
	if (read(to_parent[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
		return Fail("isolation-setup", "process A could not allocate");
	}

	/* Process B (us, a fresh file) cannot name A's blocks. */
	nbl_handle *h;
	if (nbl_open(g_dev, &h)) {
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
		return Fail("isolation-setup", "open");
	}
	int denied = 0;
	for (int i = 0; i < kBlocks; i++) {
		struct nb_query q;
		nbl_block other = {};
		other.offset = msg[2 * i];
		other.size = kSize;
		void *p = mmap(nullptr, kSize, PROT_READ, MAP_SHARED, nbl_fd(h), (off_t)msg[2 * i]);
		int e_map = p == MAP_FAILED ? errno : 0;
		int e_query = nbl_query(h, msg[2 * i], &q);
		if (p != MAP_FAILED)
			munmap(p, kSize);
		uint64_t moved;
		int e_mig = (g_ver.features & NB_FEAT_MIGRATE) ? nbl_migrate(h, &other, node, &moved)
							     : -ENOENT;
		int e_free = nbl_free(h, &other);
		int ok = (e_query == -ENOENT) + (e_map == EINVAL) + (e_mig == -ENOENT) +
			 (e_free == -ENOENT);
		if (ok != 4)
			printf("isolation: offset 0x%llx: query %d mmap %d migrate %d free %d\n",
			       (unsigned long long)msg[2 * i], e_query, e_map, e_mig, e_free);
		denied += ok;
	}
	CHECK("isolation-other-fd-cannot-reach-blocks", denied == 4 * kBlocks,
	      "%d of %d query/mmap/migrate/free attempts on A's offsets were not refused",
	      4 * kBlocks - denied, 4 * kBlocks);

	/* A frees and exits; B allocates the same and must read zeros. */
	if (write(to_child[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK("isolation-process-a", WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.size = kSize;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	o.flags = NB_ALLOC_CONTIG;
	uint64_t dirty = 0, reused = 0;
	nbl_block b[kBlocks];
	int got = 0;
	for (; got < kBlocks; got++) {
		struct nb_query q;
		if (nbl_alloc(h, &o, &b[got]))
			break;
		const unsigned char *p = static_cast<const unsigned char *>(b[got].addr);
		for (uint64_t j = 0; j < kSize; j++)
			dirty += p[j] != 0;
		if (!nbl_query(h, b[got].offset, &q))
			for (int i = 0; i < kBlocks; i++)
				reused += q.phys_addr && q.phys_addr == msg[2 * i + 1];
	}
	CHECK("isolation-reallocated-memory-is-zero", got == kBlocks && dirty == 0,
	      "%d of %d blocks, %llu non-zero bytes", got, kBlocks, (unsigned long long)dirty);
	Note("isolation: %llu of %d blocks came back at the same physical address",
	     (unsigned long long)reused, kBlocks);
	for (int i = 0; i < got; i++)
		nbl_free(h, &b[i]);
	nbl_close(h);
	close(to_parent[0]);
	close(to_parent[1]);
	close(to_child[0]);
	close(to_child[1]);
}

/* ---- 5. who may open, and what an unprivileged user gets ---- */

/* Runs @fn in a child as uid/gid 65534 with supplementary group @group (or none). */
int AsNobody(gid_t group, int (*fn)())
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		gid_t groups[1] = { group };
		if (setgroups(group ? 1 : 0, groups) || setgid(65534) || setuid(65534))
			_exit(100);
		_exit(fn());
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

int OpenErrno()
{
	nbl_handle *h;
	int ret = nbl_open(g_dev, &h);
	if (!ret)
		nbl_close(h);
	return -ret;
}

/* Exit code: bit 0 open failed, 1 phys shown, 2 NOZERO allowed, 3 BENCH allowed. */
int UnprivilegedChecks()
{
	nbl_handle *h;
	int bad = 0;

	if (nbl_open(g_dev, &h))
		return 1;
	nbl_alloc_opts o;
	nbl_block b;
	nbl_alloc_opts_init(&o);
	o.size = 4096;
	if (!nbl_alloc(h, &o, &b)) {
		struct nb_query q;
		if (nbl_query(h, b.offset, &q) || q.phys_addr)
			bad |= 2;
		nbl_free(h, &b);
	}
	o.flags = NB_ALLOC_NOZERO;
	if (nbl_alloc(h, &o, &b) != -EPERM)
		bad |= 4;
	struct nb_bench bench = {};
	bench.node = g_pool_node;
	bench.iterations = 1;
	if (nbl_bench(h, &bench) != ((g_ver.features & NB_FEAT_BENCH) ? -EPERM : -ENOTTY))
		bad |= 8;
	nbl_close(h);
	return bad;
}

/* Exit code: bit 0 open failed, 1 stats failed, 2 alloc not EBADF, 3 reserve not EBADF. */
int ReadOnlyChecks()
{
	nbl_handle *h;
	int bad = 0;

	if (nbl_open(g_dev, &h))
		return 1;
	struct nb_stats s;
	if (nbl_stats(h, g_pool_node, &s) || !s.total_bytes)
		bad |= 2;
	nbl_alloc_opts o;
	nbl_block b;
	nbl_alloc_opts_init(&o);
	o.size = 4096;
	if (nbl_alloc(h, &o, &b) != -EBADF)
		bad |= 4;
	if (nbl_reserve(h, &o, &b) != -EBADF)
		bad |= 8;
	nbl_close(h);
	return bad;
}

void TestPermissions()
{
	struct stat st;

	if (geteuid() != 0) {
		Note("not root: skipping permission tests");
		return;
	}
	if (stat(g_dev, &st))
		return Fail("perm-setup", "stat %s: %s", g_dev, strerror(errno));
	CHECK("perm-default-mode-0600", (st.st_mode & 0777) == 0600 && st.st_uid == 0,
	      "mode %o uid %u", st.st_mode & 0777, st.st_uid);
	int e = AsNobody(0, OpenErrno);
	CHECK("perm-nobody-refused-eacces", e == EACCES, "open as nobody: %d", e);

	/* What the udev rule does: group numabuddy (here gid 4242), mode 0660. */
	const gid_t kGroup = 4242;
	if (chown(g_dev, 0, kGroup) || chmod(g_dev, 0660))
		return Fail("perm-setup", "chown/chmod: %s", strerror(errno));
	e = AsNobody(kGroup, OpenErrno);
	CHECK("perm-group-member-allowed", e == 0, "open as nobody in group: %d", e);
	e = AsNobody(0, OpenErrno);
	CHECK("perm-non-member-refused", e == EACCES, "open as nobody, no group: %d", e);
	e = AsNobody(kGroup, UnprivilegedChecks);
	CHECK("perm-unprivileged-no-phys-nozero-bench", e == 0,
	      "code %d (1 open, 2 phys shown, 4 NOZERO allowed, 8 BENCH not EPERM)", e);
	/* Read permission only: a handle for watching. */
	if (chmod(g_dev, 0640))
		return Fail("perm-setup", "chmod: %s", strerror(errno));
	e = AsNobody(kGroup, ReadOnlyChecks);
	CHECK("perm-read-only-watches-not-allocates", e == 0,
	      "code %d (1 open, 2 stats failed, 4 alloc not EBADF, 8 reserve not EBADF)", e);
	if (chown(g_dev, st.st_uid, st.st_gid) || chmod(g_dev, st.st_mode & 07777))
		Fail("perm-restore", "%s", strerror(errno));
}

/* ---- 6. quota ---- */

void TestQuota(nbl_handle *h, int node)
{
	struct nb_stats s;
	nbl_alloc_opts o;
	nbl_block b, extra;

	if (nbl_stats(h, node, &s))
		return Fail("quota-setup", "stats");
	nbl_alloc_opts_init(&o);
	o.policy = NB_POLICY_BIND;
	o.node = node;
	if (s.fd_quota_bytes >= s.total_bytes) {
		Note("quota: fd_quota_bytes %llu >= pool %llu (fd_quota_pct=100): exhaustion instead",
		     (unsigned long long)s.fd_quota_bytes, (unsigned long long)s.total_bytes);
		o.size = s.total_bytes + 4096;
		ExpectErrno("quota-bigger-than-pool-enomem", nbl_alloc(h, &o, &b), -ENOMEM);
		return;
	}
	o.size = s.fd_quota_bytes + 4096;
	ExpectErrno("quota-single-alloc-over-quota-edquot", nbl_alloc(h, &o, &b), -EDQUOT);
	o.size = s.fd_quota_bytes;
	o.lib_flags = NBL_NOMAP;
	int ret = nbl_alloc(h, &o, &b);
	if (ret)
		return Fail("quota-fill", "allocating the whole quota: %s", nbl_strerror(ret));
	o.size = 4096;
	ExpectErrno("quota-refusal-edquot", nbl_alloc(h, &o, &extra), -EDQUOT);

	/* Quota is per file: another file may still allocate from the rest of the pool. */
	nbl_handle *h2;
	if (!nbl_open(g_dev, &h2)) {
		nbl_block c;
		ret = nbl_alloc(h2, &o, &c);
		ExpectErrno("quota-is-per-file", ret, 0);
		if (!ret)
			nbl_free(h2, &c);
		nbl_close(h2);
	}
	nbl_free(h, &b);
	ret = nbl_alloc(h, &o, &extra);
	ExpectErrno("quota-recovery-after-free", ret, 0);
	if (!ret)
		nbl_free(h, &extra);
}

/* ---- 7. migrate, reserve ---- */

void TestMigrate(nbl_handle *h, int from, int to)
{
	if (!(g_ver.features & NB_FEAT_MIGRATE))
		return Note("migrate not advertised");
	nbl_alloc_opts o;
	nbl_block b;
	nbl_alloc_opts_init(&o);
	o.size = 2 << 20;
	o.policy = NB_POLICY_BIND;
	o.node = from;
	o.flags = NB_ALLOC_CONTIG;
	if (nbl_alloc(h, &o, &b))
		return Fail("migrate-setup", "alloc");
	uint64_t *w = static_cast<uint64_t *>(b.addr), nonce = 0x31415926ULL ^ (uint64_t)from;
	for (uint64_t i = 0; i < b.size / 8; i++)
		w[i] = Pattern(nonce, i);
	uint64_t moved = 0;
	int ret = nbl_migrate(h, &b, to, &moved);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < b.size / 8; i++)
		bad += w[i] != Pattern(nonce, i);
	char name[64];
	snprintf(name, sizeof(name), "migrate-%d-to-%d-contents", from, to);
	CHECK(name, !ret && moved == b.size && !bad, "ret %d moved %llu, %llu words changed", ret,
	      (unsigned long long)moved, (unsigned long long)bad);
	snprintf(name, sizeof(name), "migrate-%d-to-%d-placement", from, to);
	VerifyPlacement(name, h, b, to);
	nbl_free(h, &b);
}

void TestReserveFirstTouch(nbl_handle *h, const nbl_alloc_opts *o);

void TestReserve(nbl_handle *h, int node)
{
	if (!(g_ver.features & NB_FEAT_RESERVE))
		return Note("reserve not advertised");
	nbl_alloc_opts o;
	nbl_block b;
	nbl_alloc_opts_init(&o);
	o.size = 2 << 20;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	int ret = nbl_reserve(h, &o, &b);
	if (ret)
		return Fail("reserve", "%s", nbl_strerror(ret));
	struct nb_query q0, q1;
	nbl_query(h, b.offset, &q0);
	unsigned char *p = static_cast<unsigned char *>(b.addr);
	bool zero = p[0] == 0 && p[b.size - 1] == 0;
	p[0] = 1;
	nbl_query(h, b.offset, &q1);
	CHECK("reserve-demand-paged", q0.nr_frames_4k == 0 && b.node == -1 &&
					      q1.nr_frames_4k >= 1 && q1.node == node && zero,
	      "frames before %llu (node_out %d), after touch %llu on node %d, zero %d",
	      (unsigned long long)q0.nr_frames_4k, b.node, (unsigned long long)q1.nr_frames_4k,
	      q1.node, zero);
	nbl_free(h, &b);

	TestReserveFirstTouch(h, &o);
}

// A 2 MiB shared mapping of `offset` at a 2 MiB-aligned address (where the kernel asks for a
// PMD first), inside the PROT_NONE reservation *area (4 MiB, munmap'd by the caller).
static unsigned char *MapAligned(nbl_handle *h, uint64_t offset, void **area)
{
	*area = mmap(nullptr, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*area == MAP_FAILED)
		return nullptr;
	uintptr_t at = (reinterpret_cast<uintptr_t>(*area) + (2 << 20) - 1) & ~uintptr_t((2 << 20) - 1);
	void *p = mmap(reinterpret_cast<void *>(at), 2 << 20, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED, nbl_fd(h), (off_t)offset);
	return p == MAP_FAILED ? nullptr : static_cast<unsigned char *>(p);
}

// A first touch populates the page touched, and only it: the kernel tries a 2 MiB entry
// first (a huge fault for the aligned chunk), which must not populate the chunk's first page
// as well. That page's ENOMEM, with the pools empty, turned a read of a page that was there
// into a SIGBUS (nb_fuzz, 1 run in ~15: pages first touched through a window mapping, whose
// offsets allow no PMD, read later through a whole, aligned one).
void TestReserveFirstTouch(nbl_handle *h, const nbl_alloc_opts *o)
{
	nbl_block b;
	struct nb_query q;
	void *area;
	int ret = nbl_reserve(h, o, &b);
	if (ret)
		return Fail("reserve-first-touch-one-page", "%s", nbl_strerror(ret));
	unsigned char *p = MapAligned(h, b.offset, &area);
	if (!p) {
		Fail("reserve-first-touch-one-page", "aligned mmap: %s", strerror(errno));
	} else {
		volatile unsigned char sink = p[5 * 4096 + 7];
		(void)sink;
		p[300 * 4096] = 1;
		nbl_query(h, b.offset, &q);
		CHECK("reserve-first-touch-one-page", q.nr_frames_4k == 2 && q.mapped_4k == 2 * 4096,
		      "two pages touched at %p, %llu frames and %llu bytes mapped after",
		      static_cast<void *>(p), (unsigned long long)q.nr_frames_4k,
		      (unsigned long long)q.mapped_4k);
	}
	if (area != MAP_FAILED)
		munmap(area, 4 << 20);
	nbl_free(h, &b);

	// The symptom: touched through a window (offsets from +4 KiB), read back through an
	// aligned mapping once the node's pool is taken.
	if ((ret = nbl_reserve(h, o, &b)))
		return Fail("reserve-touched-page-with-pool-full", "%s", nbl_strerror(ret));
	unsigned char *win = static_cast<unsigned char *>(
		mmap(nullptr, (2 << 20) - 4096, PROT_READ | PROT_WRITE, MAP_SHARED, nbl_fd(h),
		     (off_t)(b.offset + 4096)));
	if (win == MAP_FAILED)
		return Fail("reserve-touched-page-with-pool-full", "window mmap: %s", strerror(errno));
	win[4 * 4096] = 5;   // block page 5
	win[299 * 4096] = 6; // block page 300
	munmap(win, (2 << 20) - 4096);
	std::vector<nbl_block> fill;
	for (int order = (int)g_ver.max_order; order >= 0;) {
		nbl_alloc_opts fo;
		nbl_block fb;
		nbl_alloc_opts_init(&fo);
		fo.order = (uint32_t)order;
		fo.policy = NB_POLICY_BIND;
		fo.node = o->node;
		fo.lib_flags = NBL_NOMAP;
		if (nbl_alloc(h, &fo, &fb) == 0)
			fill.push_back(fb);
		else
			order--;
	}
	p = MapAligned(h, b.offset, &area);
	int s1 = p ? ProbeRead(p + 5 * 4096) : -1;
	int s2 = p ? ProbeRead(p + 300 * 4096) : -1;
	int s0 = p ? ProbeRead(p) : -1;
	CHECK("reserve-touched-page-with-pool-full",
	      s1 == 0 && s2 == 0 && s0 == SIGBUS && p[5 * 4096] == 5 && p[300 * 4096] == 6,
	      "%zu blocks took the pool; aligned mapping: touched pages read %d %d (0: ok), the "
	      "untouched first page %d (SIGBUS is %d)", fill.size(), s1, s2, s0, SIGBUS);
	if (area != MAP_FAILED)
		munmap(area, 4 << 20);
	for (nbl_block &fb : fill)
		nbl_free(h, &fb);
	nbl_free(h, &b);
}

/* ---- 8. std::pmr ---- */

void TestPmr(int node)
{
	numabuddy::Device dev;
	char name[64];

	snprintf(name, sizeof(name), "pmr-vector-node%d", node);
	if (auto ec = numabuddy::Device::Create(&dev, g_dev))
		return Fail(name, "open: %s", ec.message().c_str());
	uint64_t elems = 300000, on_node = 0, elsewhere = 0;
	{
		numabuddy::PoolResource pool(dev, numabuddy::AllocOptions().Bind(node));
		std::pmr::vector<uint64_t> v(&pool);
		for (uint64_t i = 0; i < elems; i++)
			v.push_back(i ^ 0xabcdef);
		uint64_t bad = 0;
		for (uint64_t i = 0; i < elems; i++)
			bad += v[i] != (i ^ 0xabcdef);
		for (int n = 0; n < 64; n++) {
			if (!(g_ver.nodes_with_pool & Bit(n)))
				continue;
			(n == node ? on_node : elsewhere) += FdBytes(dev.handle(), n);
		}
		CHECK(name, !bad && on_node >= elems * 8 && elsewhere == 0 && pool.chunk_count() >= 1,
		      "%llu bad, %llu bytes on node, %llu elsewhere, last error %s",
		      (unsigned long long)bad, (unsigned long long)on_node,
		      (unsigned long long)elsewhere, pool.last_error().message().c_str());
	}
	snprintf(name, sizeof(name), "pmr-release-node%d", node);
	CHECK(name, FdBytes(dev.handle(), node) == 0, "fd_bytes %llu after the pool died",
	      (unsigned long long)FdBytes(dev.handle(), node));
}

} // namespace nbvm
