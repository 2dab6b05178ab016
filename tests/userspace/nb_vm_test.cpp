// SPDX-License-Identifier: GPL-2.0
/*
 * nb_vm_test.cpp - in-VM end-to-end test of libnumabuddy against the real module (root).
 *
 * Prints NB-TEST-PASS <name> / NB-TEST-FAIL <name> <reason> (tests/vm/README.md) and exits 1
 * on any failure. Lines starting with "# " are notes for the log, never verdicts.
 *
 * Where a block really lives is checked without trusting numabuddy's node answer:
 *   1. The block is allocated NB_ALLOC_CONTIG, filled through the mapping with a pattern
 *      unique per page and per run, and QUERY gives the first frame's physical address.
 *   2. /proc/kcore (root) is read at that physical address + i * 4 KiB, through the PT_LOAD
 *      segment whose p_paddr covers it: every page must hold exactly what we wrote. That
 *      proves the physical address (a lying or stale phys_addr cannot match a fresh pattern).
 *   3. The node of each physical page comes from sysfs: memory block M = phys / block_size
 *      (/sys/devices/system/memory/block_size_bytes) belongs to the node whose directory
 *      /sys/devices/system/node/nodeN/ has a memoryM link. If no node lists the block, the
 *      node spans of /proc/zoneinfo (start_pfn + spanned per zone) decide.
 * /proc/self/pagemap cannot do step 2: the module's mappings are VM_PFNMAP and the kernel's
 * page walker skips VM_PFNMAP VMAs (walk_page_test() -> pte_hole), so every page reads "not
 * present". move_pages(2) with nodes == NULL needs a struct page behind a normal PTE and
 * answers -EFAULT/-ENOENT for special PFN entries. Both are still asked, and reported as
 * notes; if a future module maps normal pages they must agree with the node.
 *
 * Usage: nb_vm_test [DEVICE]   (default /dev/numabuddy, or $NUMABUDDY_DEVICE)
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

namespace {

int g_failures;
const char *g_dev = NB_DEVICE_PATH;
nb_version g_ver;

void Pass(const char *name)
{
	printf("NB-TEST-PASS %s\n", name);
}

__attribute__((format(printf, 2, 3))) void Fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("NB-TEST-FAIL %s ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	g_failures++;
}

__attribute__((format(printf, 1, 2))) void Note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* One verdict from a condition; the reason is printed only on failure. */
#define CHECK(name, cond, ...) ((cond) ? Pass(name) : Fail(name, __VA_ARGS__))

int Ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* The same command with another struct size encoded (older/newer callers). */
unsigned long WithSize(unsigned long cmd, unsigned size)
{
	return (cmd & ~((unsigned long)_IOC_SIZEMASK << _IOC_SIZESHIFT)) |
	       ((unsigned long)size << _IOC_SIZESHIFT);
}

void ExpectErrno(const char *name, int got, int want)
{
	if (got == want)
		Pass(name);
	else
		Fail(name, "got %d (%s), want %d (%s)", got, strerror(-got), want, strerror(-want));
}

uint64_t Bit(int n)
{
	return 1ULL << n;
}

uint64_t Pattern(uint64_t nonce, uint64_t word)
{
	return (nonce ^ (word * 0x9e3779b97f4a7c15ULL)) | 1; /* never zero */
}

/* ---- where is a physical page: sysfs memory blocks, then zoneinfo spans ---- */

int NodeOfPhysZoneinfo(uint64_t phys)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];
	int node = -1, found = -1;
	unsigned long long start = 0, spanned = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		int n;

		if (sscanf(line, "Node %d,", &n) == 1)
			node = n;
		else if (sscanf(line, " spanned %llu", &spanned) == 1)
			continue;
		else if (sscanf(line, " start_pfn: %llu", &start) == 1 && spanned &&
			 phys / 4096 >= start && phys / 4096 < start + spanned)
			found = node;
	}
	fclose(f);
	return found;
}

int NodeOfPhys(uint64_t phys)
{
	static unsigned long long block_size;
	char path[128];

	if (!block_size) {
		FILE *f = fopen("/sys/devices/system/memory/block_size_bytes", "r");

		if (!f || fscanf(f, "%llx", &block_size) != 1 || !block_size)
			block_size = ~0ULL;
		if (f)
			fclose(f);
	}
	if (block_size != ~0ULL) {
		for (int node = 0; node < 64; node++) {
			snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/memory%llu",
				 node, phys / block_size);
			if (access(path, F_OK) == 0)
				return node;
		}
	}
	return NodeOfPhysZoneinfo(phys);
}

/* ---- /proc/kcore: read physical memory through the direct-map segments ---- */

class Kcore {
public:
	bool Open()
	{
		Elf64_Ehdr eh;

		fd_ = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
		if (fd_ < 0 || pread(fd_, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
		    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_phentsize != sizeof(Elf64_Phdr))
			return false;
		phdrs_.resize(eh.e_phnum);
		ssize_t want = (ssize_t)(eh.e_phnum * sizeof(Elf64_Phdr));
		return pread(fd_, phdrs_.data(), want, (off_t)eh.e_phoff) == want;
	}
	/* Copies @len bytes at physical @phys; false if no RAM segment covers them. */
	bool Read(uint64_t phys, void *buf, size_t len) const
	{
		for (const Elf64_Phdr &p : phdrs_) {
			if (p.p_type != PT_LOAD || p.p_paddr == ~0ULL || phys < p.p_paddr ||
			    phys + len > p.p_paddr + p.p_memsz)
				continue;
			off_t off = (off_t)(p.p_offset + (phys - p.p_paddr));
			if (pread(fd_, buf, len, off) == (ssize_t)len)
				return true;
		}
		return false;
	}

private:
	int fd_ = -1;
	std::vector<Elf64_Phdr> phdrs_;
};

Kcore g_kcore;
bool g_have_kcore;

/*
 * The independent node check of a CONTIG block filled with Pattern(nonce, word): every page
 * must be at phys + i * 4 KiB (kcore shows our data there) and on @node (sysfs).
 */
void VerifyPlacement(const char *name, nb_handle *h, const nb_block &b,
		     int node)
{
	struct nb_query q;
	int ret = nb_query(h, b.offset, &q);
	uint64_t pages = b.size / 4096, wrong_data = 0, wrong_node = 0;

	if (ret)
		return Fail(name, "QUERY: %s", strerror(-ret));
	if (!q.phys_addr)
		return Fail(name, "QUERY gave no phys_addr to root");
	if (!g_have_kcore)
		return Fail(name, "/proc/kcore unreadable: cannot verify the node independently");
	for (uint64_t i = 0; i < pages; i++) {
		uint64_t words[4];
		const uint64_t *w = static_cast<const uint64_t *>(b.addr) + i * 512;

		if (!g_kcore.Read(q.phys_addr + i * 4096, words, sizeof(words)) ||
		    memcmp(words, w, sizeof(words))) {
			if (!wrong_data)
				Note("%s: page %llu: kcore at phys 0x%llx does not hold our data", name,
				     (unsigned long long)i,
				     (unsigned long long)(q.phys_addr + i * 4096));
			wrong_data++;
			continue;
		}
		int n = NodeOfPhys(q.phys_addr + i * 4096);
		if (n != node) {
			if (!wrong_node)
				Note("%s: page %llu phys 0x%llx is on node %d", name,
				     (unsigned long long)i,
				     (unsigned long long)(q.phys_addr + i * 4096), n);
			wrong_node++;
		}
	}
	if (wrong_data || wrong_node)
		Fail(name, "%llu of %llu pages not where QUERY says, %llu not on node %d",
		     (unsigned long long)wrong_data, (unsigned long long)pages,
		     (unsigned long long)wrong_node, node);
	else
		Pass(name);
}

/* pagemap and move_pages, as notes unless they claim something wrong. */
void CrossCheckPagemap(const char *name, const nb_block &b, int node)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &entry, 8, (off_t)((uintptr_t)b.addr / 4096 * 8)) == 8) {
		if (entry & (1ULL << 63)) {
			uint64_t pfn = entry & ((1ULL << 55) - 1);
			int n = NodeOfPhys(pfn * 4096);

			if (n != node)
				Fail(name, "pagemap: pfn 0x%llx on node %d, not %d",
				     (unsigned long long)pfn, n, node);
		} else {
			Note("%s: pagemap shows the page not present (VM_PFNMAP is not walked)", name);
		}
	}
	if (fd >= 0)
		close(fd);
	void *pages[1] = { b.addr };
	int status[1] = { -1 };
	long r = move_pages(0, 1, pages, nullptr, status, 0);
	if (r == 0 && status[0] >= 0 && status[0] != node)
		Fail(name, "move_pages: node %d, not %d", status[0], node);
	else if (r == 0 && status[0] >= 0)
		Note("%s: move_pages agrees: node %d", name, status[0]);
	else
		Note("%s: move_pages cannot see the page (%ld, status %d: no struct page behind "
		     "a PFN mapping)", name, r, status[0]);
}

/* ---- SIGBUS probing ---- */

sigjmp_buf g_jmp;
void OnFault(int sig)
{
	siglongjmp(g_jmp, sig);
}

/* 0 if the read worked, else the signal it raised. */
int ProbeRead(const volatile unsigned char *p)
{
	int sig = sigsetjmp(g_jmp, 1);

	if (sig == 0) {
		(void)*p;
		return 0;
	}
	return sig;
}

uint64_t FdBytes(nb_handle *h, int node)
{
	struct nb_stats s;

	return nb_stats(h, node, &s) ? ~0ULL : s.fd_bytes;
}

/* ---- 1. version ---- */

void TestVersion(nb_handle *h)
{
	const nb_version &v = *nb_version_info(h);
	int fd = nb_fd(h);

	CHECK("version-abi", v.abi_major == NB_ABI_MAJOR && v.page_size == 4096,
	      "abi %u.%u page_size %u", v.abi_major, v.abi_minor, v.page_size);
	CHECK("version-nodes", v.nodes_with_pool && v.nr_node_ids >= 1 && v.nr_node_ids <= 64 &&
		      (v.nr_node_ids == 64 || !(v.nodes_with_pool >> v.nr_node_ids)) &&
		      (int)v.nr_node_ids > nb_max_node() && v.max_order <= 20,
	      "nr_node_ids %u (libnuma max node %d) pools 0x%llx max_order %u", v.nr_node_ids,
	      nb_max_node(), (unsigned long long)v.nodes_with_pool, v.max_order);

	/* An older caller with an 8-byte struct gets the prefix and nothing beyond it. */
	unsigned char buf[128];
	memset(buf, 0xaa, sizeof(buf));
	memset(buf, 0, 8);
	int ret = Ioctl(fd, WithSize(NB_IOC_VERSION, 8), buf);
	uint32_t major;
	memcpy(&major, buf, 4);
	bool tail_ok = true;
	for (size_t i = 8; i < sizeof(buf); i++)
		tail_ok &= buf[i] == 0xaa;
	CHECK("version-short-struct", ret == 0 && major == NB_ABI_MAJOR && tail_ok,
	      "ret %d major %u, bytes past the 8 the caller gave %s", ret, major,
	      tail_ok ? "intact" : "overwritten");

	/* A newer caller: zero tail accepted, junk tail refused. */
	memset(buf, 0, sizeof(buf));
	ExpectErrno("version-long-zero-tail",
		    Ioctl(fd, WithSize(NB_IOC_VERSION, sizeof(nb_version) + 16), buf), 0);
	memset(buf, 0, sizeof(buf));
	buf[sizeof(nb_version) + 15] = 1;
	ExpectErrno("version-long-junk-tail",
		    Ioctl(fd, WithSize(NB_IOC_VERSION, sizeof(nb_version) + 16), buf), -E2BIG);
}

/* ---- 2. per node: allocate, map, write, read back, verify placement, free ---- */

void TestNode(nb_handle *h, int node)
{
	char name[96];
	nb_alloc_opts o;
	nb_block b;
	const uint64_t size = 4 << 20;
	uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)node ^ 0x5eed0000ULL;

	nb_alloc_opts_init(&o);
	o.size = size;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	o.flags = NB_ALLOC_CONTIG;
	snprintf(name, sizeof(name), "alloc-node%d", node);
	int ret = nb_alloc(h, &o, &b);
	if (ret)
		return Fail(name, "%s", nb_strerror(ret));
	CHECK(name, b.size == size && b.node == node && b.addr,
	      "size %llu node %d addr %p", (unsigned long long)b.size, b.node, b.addr);

	snprintf(name, sizeof(name), "zero-write-read-node%d", node);
	uint64_t *w = static_cast<uint64_t *>(b.addr), words = size / 8, nonzero = 0, bad = 0;
	for (uint64_t i = 0; i < words; i++)
		nonzero += w[i] != 0;
	for (uint64_t i = 0; i < words; i++)
		w[i] = Pattern(nonce, i);
	for (uint64_t i = 0; i < words; i++)
		bad += w[i] != Pattern(nonce, i);
	CHECK(name, !nonzero && !bad, "%llu words not zero at first, %llu not read back",
	      (unsigned long long)nonzero, (unsigned long long)bad);

	snprintf(name, sizeof(name), "placement-kcore-sysfs-node%d", node);
	VerifyPlacement(name, h, b, node);
	snprintf(name, sizeof(name), "pagemap-move_pages-node%d", node);
	int before = g_failures;
	CrossCheckPagemap(name, b, node);
	if (g_failures == before)
		Pass(name);

	snprintf(name, sizeof(name), "query-node%d", node);
	struct nb_query q;
	ret = nb_query(h, b.offset, &q);
	CHECK(name, !ret && q.node == node && q.size == size && q.nr_frames_4k == size / 4096 &&
		      q.node_bytes[node < 16 ? node : 0] == (node < 16 ? size : 0) &&
		      (q.flags & NB_ALLOC_CONTIG),
	      "ret %d node %d size %llu frames %llu flags 0x%x", ret, q.node,
	      (unsigned long long)q.size, (unsigned long long)q.nr_frames_4k, q.flags);

	snprintf(name, sizeof(name), "fd-bytes-node%d", node);
	CHECK(name, FdBytes(h, node) == size, "fd_bytes %llu, want %llu",
	      (unsigned long long)FdBytes(h, node), (unsigned long long)size);

	/* FREE zaps every mapping: the library unmaps its own, so keep a second one. */
	snprintf(name, sizeof(name), "free-zaps-mappings-node%d", node);
	void *second = mmap(nullptr, size, PROT_READ, MAP_SHARED, nb_fd(h), (off_t)b.offset);
	ret = nb_free(h, &b);
	if (second == MAP_FAILED || ret) {
		Fail(name, "second mmap %s, free %d", second == MAP_FAILED ? "failed" : "ok", ret);
	} else {
		int sig = ProbeRead(static_cast<unsigned char *>(second) + 4096);
		CHECK(name, sig == SIGBUS, "old mapping after FREE: %s",
		      sig ? strsignal(sig) : "still readable");
		munmap(second, size);
	}
	snprintf(name, sizeof(name), "fd-bytes-zero-node%d", node);
	CHECK(name, FdBytes(h, node) == 0, "fd_bytes %llu after free",
	      (unsigned long long)FdBytes(h, node));
}

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

int g_nr_node_ids, g_pool_node, g_max_order;

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

void TestBadFreeQueryStats(nb_handle *h)
{
	int fd = nb_fd(h);
	nb_alloc_opts o;
	nb_block b;
	Buf buf;

	nb_alloc_opts_init(&o);
	o.size = 8192;
	if (nb_alloc(h, &o, &b))
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
		{ "bad-stats-reserved", NB_IOC_STATS,
		  [](Buf &x, uint64_t) {
			  x.as<struct nb_stats>()->node = g_pool_node;
			  x.as<struct nb_stats>()->reserved[3] = 1;
		  },
		  -EINVAL },
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
	};
	for (const Case &c : cases) {
		uint64_t feat = _IOC_NR(c.cmd) == _IOC_NR(NB_IOC_MIGRATE) ? NB_FEAT_MIGRATE :
				_IOC_NR(c.cmd) == _IOC_NR(NB_IOC_BENCH)	  ? NB_FEAT_BENCH : 0;
		memset(&buf, 0, sizeof(buf));
		c.fill(buf, b.offset);
		int ret = Ioctl(fd, c.cmd, buf.b);
		ExpectErrno(c.name, ret, (feat && !(g_ver.features & feat)) ? -ENOTTY : c.want);
	}
	ExpectErrno("free-valid", nb_free(h, &b), 0);
	struct nb_free f = {};
	f.offset = 0;
	ExpectErrno("bad-free-offset-zero", Ioctl(fd, NB_IOC_FREE, &f), -ENOENT);
}

void TestBadBatch(nb_handle *h)
{
	int fd = nb_fd(h);

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
	nb_alloc_opts o[3];
	nb_block out[3];
	size_t failed = 0;
	for (auto &x : o) {
		nb_alloc_opts_init(&x);
		x.size = 4096;
	}
	o[1].policy = 9;
	uint64_t before = FdBytes(h, g_pool_node);
	ret = nb_alloc_batch(h, o, 3, out, &failed);
	CHECK("lib-batch-all-or-nothing", ret == -EINVAL && failed == 1 &&
						   FdBytes(h, g_pool_node) == before,
	      "ret %d failed %zu", ret, failed);
}

void TestBadMmap(nb_handle *h)
{
	int fd = nb_fd(h);
	nb_alloc_opts o;
	nb_block b;

	nb_alloc_opts_init(&o);
	o.size = 8192;
	o.lib_flags = NB_LIB_NOMAP;
	if (nb_alloc(h, &o, &b))
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
	nb_free(h, &b);
	ExpectErrno("bad-mmap-freed-block", try_map(4096, MAP_SHARED, b.offset), -EINVAL);
}

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
		nb_handle *h;
		uint64_t msg[2 * kBlocks] = {};
		nb_block b[kBlocks];
		nb_alloc_opts o;
		char go;

		if (nb_open(g_dev, &h))
			_exit(2);
		nb_alloc_opts_init(&o);
		o.size = kSize;
		o.policy = NB_POLICY_BIND;
		o.node = node;
		o.flags = NB_ALLOC_CONTIG;
		for (int i = 0; i < kBlocks; i++) {
			struct nb_query q;

			if (nb_alloc(h, &o, &b[i]) || nb_query(h, b[i].offset, &q))
				_exit(3);
			memset(b[i].addr, 0xa5, kSize);
			msg[2 * i] = b[i].offset;
			msg[2 * i + 1] = q.phys_addr;
		}
		if (write(to_parent[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
		    read(to_child[0], &go, 1) != 1)
			_exit(4);
		for (int i = 0; i < kBlocks; i++)
			nb_free(h, &b[i]);
		nb_close(h);
		_exit(0);
	}
	uint64_t msg[2 * kBlocks];
	if (read(to_parent[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
		return Fail("isolation-setup", "process A could not allocate");
	}

	/* Process B (us, a fresh file) cannot name A's blocks. */
	nb_handle *h;
	if (nb_open(g_dev, &h)) {
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
		return Fail("isolation-setup", "open");
	}
	int denied = 0;
	for (int i = 0; i < kBlocks; i++) {
		struct nb_query q;
		nb_block other = {};
		other.offset = msg[2 * i];
		other.size = kSize;
		void *p = mmap(nullptr, kSize, PROT_READ, MAP_SHARED, nb_fd(h), (off_t)msg[2 * i]);
		int e_map = p == MAP_FAILED ? errno : 0;
		int e_query = nb_query(h, msg[2 * i], &q);
		if (p != MAP_FAILED)
			munmap(p, kSize);
		uint64_t moved;
		int e_mig = (g_ver.features & NB_FEAT_MIGRATE) ? nb_migrate(h, &other, node, &moved)
							     : -ENOENT;
		int e_free = nb_free(h, &other);
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
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	o.size = kSize;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	o.flags = NB_ALLOC_CONTIG;
	uint64_t dirty = 0, reused = 0;
	nb_block b[kBlocks];
	int got = 0;
	for (; got < kBlocks; got++) {
		struct nb_query q;
		if (nb_alloc(h, &o, &b[got]))
			break;
		const unsigned char *p = static_cast<const unsigned char *>(b[got].addr);
		for (uint64_t j = 0; j < kSize; j++)
			dirty += p[j] != 0;
		if (!nb_query(h, b[got].offset, &q))
			for (int i = 0; i < kBlocks; i++)
				reused += q.phys_addr && q.phys_addr == msg[2 * i + 1];
	}
	CHECK("isolation-reallocated-memory-is-zero", got == kBlocks && dirty == 0,
	      "%d of %d blocks, %llu non-zero bytes", got, kBlocks, (unsigned long long)dirty);
	Note("isolation: %llu of %d blocks came back at the same physical address",
	     (unsigned long long)reused, kBlocks);
	for (int i = 0; i < got; i++)
		nb_free(h, &b[i]);
	nb_close(h);
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
	nb_handle *h;
	int ret = nb_open(g_dev, &h);
	if (!ret)
		nb_close(h);
	return -ret;
}

/* Exit code: bit 0 open failed, 1 phys shown, 2 NOZERO allowed, 3 BENCH allowed. */
int UnprivilegedChecks()
{
	nb_handle *h;
	int bad = 0;

	if (nb_open(g_dev, &h))
		return 1;
	nb_alloc_opts o;
	nb_block b;
	nb_alloc_opts_init(&o);
	o.size = 4096;
	if (!nb_alloc(h, &o, &b)) {
		struct nb_query q;
		if (nb_query(h, b.offset, &q) || q.phys_addr)
			bad |= 2;
		nb_free(h, &b);
	}
	o.flags = NB_ALLOC_NOZERO;
	if (nb_alloc(h, &o, &b) != -EPERM)
		bad |= 4;
	struct nb_bench bench = {};
	bench.node = g_pool_node;
	bench.iterations = 1;
	if (nb_bench(h, &bench) != ((g_ver.features & NB_FEAT_BENCH) ? -EPERM : -ENOTTY))
		bad |= 8;
	nb_close(h);
	return bad;
}

/* Exit code: bit 0 open failed, 1 stats failed, 2 alloc not EBADF, 3 reserve not EBADF. */
int ReadOnlyChecks()
{
	nb_handle *h;
	int bad = 0;

	if (nb_open(g_dev, &h))
		return 1;
	struct nb_stats s;
	if (nb_stats(h, g_pool_node, &s) || !s.total_bytes)
		bad |= 2;
	nb_alloc_opts o;
	nb_block b;
	nb_alloc_opts_init(&o);
	o.size = 4096;
	if (nb_alloc(h, &o, &b) != -EBADF)
		bad |= 4;
	if (nb_reserve(h, &o, &b) != -EBADF)
		bad |= 8;
	nb_close(h);
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

void TestQuota(nb_handle *h, int node)
{
	struct nb_stats s;
	nb_alloc_opts o;
	nb_block b, extra;

	if (nb_stats(h, node, &s))
		return Fail("quota-setup", "stats");
	nb_alloc_opts_init(&o);
	o.policy = NB_POLICY_BIND;
	o.node = node;
	if (s.fd_quota_bytes >= s.total_bytes) {
		Note("quota: fd_quota_bytes %llu >= pool %llu (fd_quota_pct=100): exhaustion instead",
		     (unsigned long long)s.fd_quota_bytes, (unsigned long long)s.total_bytes);
		o.size = s.total_bytes + 4096;
		ExpectErrno("quota-bigger-than-pool-enomem", nb_alloc(h, &o, &b), -ENOMEM);
		return;
	}
	o.size = s.fd_quota_bytes + 4096;
	ExpectErrno("quota-single-alloc-over-quota-edquot", nb_alloc(h, &o, &b), -EDQUOT);
	o.size = s.fd_quota_bytes;
	o.lib_flags = NB_LIB_NOMAP;
	int ret = nb_alloc(h, &o, &b);
	if (ret)
		return Fail("quota-fill", "allocating the whole quota: %s", nb_strerror(ret));
	o.size = 4096;
	ExpectErrno("quota-refusal-edquot", nb_alloc(h, &o, &extra), -EDQUOT);

	/* Quota is per file: another file may still allocate from the rest of the pool. */
	nb_handle *h2;
	if (!nb_open(g_dev, &h2)) {
		nb_block c;
		ret = nb_alloc(h2, &o, &c);
		ExpectErrno("quota-is-per-file", ret, 0);
		if (!ret)
			nb_free(h2, &c);
		nb_close(h2);
	}
	nb_free(h, &b);
	ret = nb_alloc(h, &o, &extra);
	ExpectErrno("quota-recovery-after-free", ret, 0);
	if (!ret)
		nb_free(h, &extra);
}

/* ---- 7. migrate, reserve ---- */

void TestMigrate(nb_handle *h, int from, int to)
{
	if (!(g_ver.features & NB_FEAT_MIGRATE))
		return Note("migrate not advertised");
	nb_alloc_opts o;
	nb_block b;
	nb_alloc_opts_init(&o);
	o.size = 2 << 20;
	o.policy = NB_POLICY_BIND;
	o.node = from;
	o.flags = NB_ALLOC_CONTIG;
	if (nb_alloc(h, &o, &b))
		return Fail("migrate-setup", "alloc");
	uint64_t *w = static_cast<uint64_t *>(b.addr), nonce = 0x31415926ULL ^ (uint64_t)from;
	for (uint64_t i = 0; i < b.size / 8; i++)
		w[i] = Pattern(nonce, i);
	uint64_t moved = 0;
	int ret = nb_migrate(h, &b, to, &moved);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < b.size / 8; i++)
		bad += w[i] != Pattern(nonce, i);
	char name[64];
	snprintf(name, sizeof(name), "migrate-%d-to-%d-contents", from, to);
	CHECK(name, !ret && moved == b.size && !bad, "ret %d moved %llu, %llu words changed", ret,
	      (unsigned long long)moved, (unsigned long long)bad);
	snprintf(name, sizeof(name), "migrate-%d-to-%d-placement", from, to);
	VerifyPlacement(name, h, b, to);
	nb_free(h, &b);
}

void TestReserve(nb_handle *h, int node)
{
	if (!(g_ver.features & NB_FEAT_RESERVE))
		return Note("reserve not advertised");
	nb_alloc_opts o;
	nb_block b;
	nb_alloc_opts_init(&o);
	o.size = 2 << 20;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	int ret = nb_reserve(h, &o, &b);
	if (ret)
		return Fail("reserve", "%s", nb_strerror(ret));
	struct nb_query q0, q1;
	nb_query(h, b.offset, &q0);
	unsigned char *p = static_cast<unsigned char *>(b.addr);
	bool zero = p[0] == 0 && p[b.size - 1] == 0;
	p[0] = 1;
	nb_query(h, b.offset, &q1);
	CHECK("reserve-demand-paged", q0.nr_frames_4k == 0 && b.node == -1 &&
					      q1.nr_frames_4k >= 1 && q1.node == node && zero,
	      "frames before %llu (node_out %d), after touch %llu on node %d, zero %d",
	      (unsigned long long)q0.nr_frames_4k, b.node, (unsigned long long)q1.nr_frames_4k,
	      q1.node, zero);
	nb_free(h, &b);
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

} // namespace

int main(int argc, char **argv)
{
	struct sigaction sa = {};
	nb_handle *h;

	setvbuf(stdout, nullptr, _IOLBF, 0);
	if (argc > 1)
		g_dev = argv[1];
	else if (getenv("NUMABUDDY_DEVICE"))
		g_dev = getenv("NUMABUDDY_DEVICE");
	sa.sa_handler = OnFault;
	sigaction(SIGBUS, &sa, nullptr);
	sigaction(SIGSEGV, &sa, nullptr);

	int ret = nb_open(g_dev, &h);
	if (ret) {
		Fail("open", "%s: %s", g_dev, nb_strerror(ret));
		return 1;
	}
	g_ver = *nb_version_info(h);
	g_nr_node_ids = (int)g_ver.nr_node_ids;
	g_max_order = (int)g_ver.max_order;
	g_pool_node = __builtin_ctzll(g_ver.nodes_with_pool | (1ULL << 63));
	g_have_kcore = g_kcore.Open();
	if (!g_have_kcore)
		Note("/proc/kcore not readable: placement checks will fail");
	Pass("open");

	TestVersion(h);
	std::vector<int> nodes;
	for (int n = 0; n < 64; n++)
		if (g_ver.nodes_with_pool & Bit(n))
			nodes.push_back(n);
	for (int n : nodes)
		TestNode(h, n);

	TestBadAlloc(nb_fd(h), NB_IOC_ALLOC, "alloc");
	if (g_ver.features & NB_FEAT_RESERVE)
		TestBadAlloc(nb_fd(h), NB_IOC_RESERVE, "reserve");
	TestBadPointers(nb_fd(h));
	TestBadCommands(nb_fd(h));
	TestBadFreeQueryStats(h);
	TestBadBatch(h);
	TestBadMmap(h);

	TestIsolation(g_pool_node);
	TestPermissions();
	TestQuota(h, g_pool_node);
	if (nodes.size() >= 2) {
		TestMigrate(h, nodes[0], nodes[1]);
		TestMigrate(h, nodes[1], nodes[0]);
	} else {
		Note("one pool node: no migration test");
	}
	TestReserve(h, g_pool_node);
	for (int n : nodes)
		TestPmr(n);
	nb_close(h);

	printf("# nb_vm_test: %d failure(s)\n", g_failures);
	return g_failures ? 1 : 0;
}
