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

#include "nb_vm_test.h"

namespace nbvm {

int g_failures;
const char *g_dev = NB_DEVICE_PATH;
nb_version g_ver;
int g_nr_node_ids, g_pool_node, g_max_order;

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
void VerifyPlacement(const char *name, nbl_handle *h, const nbl_block &b,
		     int node)
{
	struct nb_query q;
	int ret = nbl_query(h, b.offset, &q);
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
void CrossCheckPagemap(const char *name, const nbl_block &b, int node)
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

uint64_t FdBytes(nbl_handle *h, int node)
{
	struct nb_stats s;

	return nbl_stats(h, node, &s) ? ~0ULL : s.fd_bytes;
}

/* ---- 1. version ---- */

void TestVersion(nbl_handle *h)
{
	const nb_version &v = *nbl_version_info(h);
	int fd = nbl_fd(h);

	CHECK("version-abi", v.abi_major == NB_ABI_MAJOR && v.page_size == 4096,
	      "abi %u.%u page_size %u", v.abi_major, v.abi_minor, v.page_size);
	CHECK("version-nodes", v.nodes_with_pool && v.nr_node_ids >= 1 && v.nr_node_ids <= 64 &&
		      (v.nr_node_ids == 64 || !(v.nodes_with_pool >> v.nr_node_ids)) &&
		      (int)v.nr_node_ids > nbl_max_node() && v.max_order <= 20,
	      "nr_node_ids %u (libnuma max node %d) pools 0x%llx max_order %u", v.nr_node_ids,
	      nbl_max_node(), (unsigned long long)v.nodes_with_pool, v.max_order);

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

void TestNode(nbl_handle *h, int node)
{
	char name[96];
	nbl_alloc_opts o;
	nbl_block b;
	const uint64_t size = 4 << 20;
	uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)node ^ 0x5eed0000ULL;

	nbl_alloc_opts_init(&o);
	o.size = size;
	o.policy = NB_POLICY_BIND;
	o.node = node;
	o.flags = NB_ALLOC_CONTIG;
	snprintf(name, sizeof(name), "alloc-node%d", node);
	int ret = nbl_alloc(h, &o, &b);
	if (ret)
		return Fail(name, "%s", nbl_strerror(ret));
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
	ret = nbl_query(h, b.offset, &q);
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
	void *second = mmap(nullptr, size, PROT_READ, MAP_SHARED, nbl_fd(h), (off_t)b.offset);
	ret = nbl_free(h, &b);
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

} // namespace nbvm

using namespace nbvm;


int main(int argc, char **argv)
{
	struct sigaction sa = {};
	nbl_handle *h;

	setvbuf(stdout, nullptr, _IOLBF, 0);
	if (argc > 1)
		g_dev = argv[1];
	else if (getenv("NUMABUDDY_DEVICE"))
		g_dev = getenv("NUMABUDDY_DEVICE");
	sa.sa_handler = OnFault;
	sigaction(SIGBUS, &sa, nullptr);
	sigaction(SIGSEGV, &sa, nullptr);

	int ret = nbl_open(g_dev, &h);
	if (ret) {
		Fail("open", "%s: %s", g_dev, nbl_strerror(ret));
		return 1;
	}
	g_ver = *nbl_version_info(h);
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

	TestBadAlloc(nbl_fd(h), NB_IOC_ALLOC, "alloc");
	if (g_ver.features & NB_FEAT_RESERVE)
		TestBadAlloc(nbl_fd(h), NB_IOC_RESERVE, "reserve");
	TestBadPointers(nbl_fd(h));
	TestBadCommands(nbl_fd(h));
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
	nbl_close(h);

	printf("# nb_vm_test: %d failure(s)\n", g_failures);
	return g_failures ? 1 : 0;
}
