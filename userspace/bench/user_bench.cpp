// SPDX-License-Identifier: GPL-2.0
/*
 * user_bench.cpp - what a process sees: numabuddy next to the kernel's ways of getting memory.
 *
 * Every case is paired (paired.h): "<case>/<param>/<kernel alternative>" alternates numabuddy
 * and that alternative in this process and reports the median per-pair ratio with its interval.
 *
 *   alloc_map_touch_free/<size>/<alt>  one allocation, mapped, every 4 KiB page written, freed
 *   prezero_amtf[_outrun|_off]/2MiB/hugetlb  the same with the background zeroer: a zeroed
 *                                      block waiting for each sample; the pool made dirty and
 *                                      samples back to back (allocation outruns zeroing);
 *                                      the zeroer off (today's path, the reference)
 *   first_touch/<4KiB|2MiB>/<alt>      cost of the first write to each page (or 2 MiB page)
 *   prezero_first_touch/2MiB/hugetlb   the same with zeroed memory waiting for each sample
 *   migrate[_touch]/<size>/move_pages  NB_IOC_MIGRATE vs move_pages(2), node A <-> node B
 *   tlb_random_read/<size>/<alt>       random 8-byte reads over a buffer mapped by 4 KiB
 *                                      (anon-4K vs numabuddy RESERVE) or 2 MiB entries
 *                                      (hugetlb-2M vs numabuddy ALLOC HUGE_2M)
 *   odirect_read/<size>/<alt>          one O_DIRECT read of the RAM disk /dev/ram0 (brd) into
 *                                      a PINNABLE block (4 KiB entries) vs anonymous memory
 *                                      (THP) or hugetlb: what I/O into pool memory costs
 *
 * All cases run pinned to bench_cpu() and allocate on its node (BIND, or libnuma's
 * numa_alloc_onnode, or hugetlb's local-first placement). Who zeroes what and when is in
 * each case's label (zeroing_*() below): under TCG zeroing is most of the cost. Anonymous
 * mappings get the system THP setting (Debian: always) unless the alternative says 4K
 * (MADV_NOHUGEPAGE) or thp (MADV_HUGEPAGE); the warm-up sample reads the mapping's
 * AnonHugePages from /proc/self/smaps, so the label says whether the kernel really used THP.
 */
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sys/resource.h>

#include <memory>
#include <vector>

#include "bench_common.h"
#include "paired.h"

using namespace nbb;

namespace {

int g_node = -1; /* node of bench_cpu() */

enum class Anon { Default, NoHuge, Thp, Hugetlb };

size_t huge_round(size_t len) { return (len + 2 * MiB - 1) & ~(2 * MiB - 1); }

/* Anonymous private memory aligned to 2 MiB (so THP and hugetlb can map it whole). */
void *anon_map(size_t len, Anon kind)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (kind == Anon::Hugetlb) {
		void *p = mmap(nullptr, huge_round(len), PROT_READ | PROT_WRITE, flags | MAP_HUGETLB,
			       -1, 0);
		return p == MAP_FAILED ? nullptr : p;
	}
	size_t span = len + 2 * MiB;
	char *raw = (char *)mmap(nullptr, span, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (raw == MAP_FAILED)
		return nullptr;
	char *p = (char *)(((uintptr_t)raw + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (raw + span > p + len)
		munmap(p + len, (size_t)(raw + span - (p + len)));
	if (kind == Anon::NoHuge)
		madvise(p, len, MADV_NOHUGEPAGE);
	else if (kind == Anon::Thp)
		madvise(p, len, MADV_HUGEPAGE);
	return p;
}

void anon_unmap(void *p, size_t len, Anon kind)
{
	munmap(p, kind == Anon::Hugetlb ? huge_round(len) : len);
}

/* "THP x of y KiB" for the mapping at @p (read in warm-up samples only). */
std::string thp_note(void *p, size_t len)
{
	long kb = anon_huge_kb(p);
	if (kb < 0)
		return "THP unknown (no smaps entry)";
	return "THP " + std::to_string(kb) + " of " + std::to_string(len / KiB) + " KiB";
}

std::string level_note(void *p) { return std::string("mapped ") + level_name(walk_level(p)); }

double errno_fail(Probe &pr, const char *what, int err)
{
	pr.error = std::string(what) + ": " + strerror(err < 0 ? -err : err);
	return -1;
}

/* ---- who zeroes what, and when (this boot's init_on_alloc decides half of it) ---- */

std::string zero_thp()
{
	return init_on_alloc() ? "each THP twice at its fault (init_on_alloc, then clear_huge_page)"
			       : "each THP once at its fault (clear_huge_page)";
}
std::string zeroing_anon(Anon kind, bool populate)
{
	std::string when = populate ? " inside mmap (MAP_POPULATE)" : " at its fault";
	switch (kind) {
	case Anon::NoHuge: return "each 4 KiB page once" + when;
	case Anon::Thp: return zero_thp();
	case Anon::Hugetlb:
		return "each 2 MiB page once at its fault (clear_huge_page; the pool page was "
		       "reserved before, untimed)";
	default:
		return "each page once" + when + "; THP-backed parts: " + zero_thp();
	}
}
const char *kZeroNbAlloc = "the whole block once inside NB_IOC_ALLOC, before mmap, unless the "
			  "background zeroer (prezero_mb_s) cleared it while it was free";
const char *kZeroNbReserve = "each frame once at its first-touch fault, unless the background "
			    "zeroer (prezero_mb_s) cleared it while it was free";

/* ---- alloc + map + touch + free ---- */

/* The bench node's free bytes the background zeroer has cleared in blocks of 2 MiB or more
 * (STATS zeroed_huge_bytes, ABI 1.5): what the 2 MiB cases can take without a memset. Waiting
 * on zeroed_bytes instead, which counts smaller zeroed pieces too, once let a sample start
 * with too few zeroed 2 MiB blocks (docs/benchmarks.md). An older module: zeroed_bytes. */
uint64_t zeroed_bytes()
{
	struct nb_stats s;
	if (!dev() || nbl_stats(dev(), g_node, &s))
		return 0;
	return nbl_version_info(dev())->abi_minor >= 5 ? s.zeroed_huge_bytes : s.zeroed_bytes;
}

/* numabuddy's alloc+map+touch+free; `wait`: first wait (untimed) until the zeroer has a zeroed
 * block of the size (prezero_amtf). */
Side amtf_numabuddy(uint64_t size, bool wait = false, const std::string &label = kZeroNbAlloc)
{
	return { [size, wait](Probe &pr) -> double {
			 for (int i = 0; wait && i < 1000 && zeroed_bytes() < size; i++)
				 usleep(10000);
			 if (wait && zeroed_bytes() < size)
				 return errno_fail(pr, "no zeroed block within 10 s", EAGAIN);
			 nbl_alloc_opts o = opts_on(g_node, size, 0);
			 uint64_t t0 = now_ns();
			 nbl_block b;
			 int err = nbl_alloc(dev(), &o, &b);
			 if (err)
				 return errno_fail(pr, "nbl_alloc", err);
			 touch(b.addr, size);
			 if (pr.warmup) /* an ioctl: only in the discarded warm-up sample */
				 pr.note = level_note(b.addr);
			 nbl_free(dev(), &b);
			 return (double)(now_ns() - t0);
		 },
		 label };
}

Side amtf_mmap_populate(uint64_t size)
{
	return { [size](Probe &pr) -> double {
			 uint64_t t0 = now_ns();
			 void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			 if (p == MAP_FAILED)
				 return errno_fail(pr, "mmap", errno);
			 touch(p, size);
			 if (pr.warmup)
				 pr.note = thp_note(p, size);
			 munmap(p, size);
			 return (double)(now_ns() - t0);
		 },
		 zeroing_anon(Anon::Default, true) };
}

Side amtf_numa_alloc_onnode(uint64_t size)
{
	return { [size](Probe &pr) -> double {
			 uint64_t t0 = now_ns();
			 void *p = numa_alloc_onnode(size, g_node);
			 if (!p)
				 return errno_fail(pr, "numa_alloc_onnode", ENOMEM);
			 touch(p, size);
			 if (pr.warmup)
				 pr.note = thp_note(p, size);
			 numa_free(p, size);
			 return (double)(now_ns() - t0);
		 },
		 zeroing_anon(Anon::Default, false) };
}

Side amtf_hugetlb(uint64_t size)
{
	return { [size](Probe &pr) -> double {
			 size_t len = huge_round(size);
			 uint64_t t0 = now_ns();
			 void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
			 if (p == MAP_FAILED)
				 return errno_fail(pr, "mmap(MAP_HUGETLB)", errno);
			 touch(p, size);
			 munmap(p, len);
			 double dt = (double)(now_ns() - t0);
			 if (pr.warmup && len != size)
				 pr.note = "rounded up to " + size_name(len);
			 return dt;
		 },
		 zeroing_anon(Anon::Hugetlb, false) };
}

/* ---- pre-zeroed pools (module parameter prezero_mb_s; STATS zeroed_bytes) ---- */

const char *kPrezeroParam = "/sys/module/numabuddy/parameters/prezero_mb_s";

long prezero_rate()
{
	return read_number(kPrezeroParam);
}

bool set_prezero_rate(long mb_s)
{
	FILE *f = fopen(kPrezeroParam, "w");
	if (!f)
		return false;
	bool ok = fprintf(f, "%ld", mb_s) > 0;
	return fclose(f) == 0 && ok;
}

/* Every block of our node handed out once and freed: all of it dirty for the zeroer (a freed
 * block is never trusted to be zero), nothing written. NOZERO: nothing zeroed either. */
void dirty_pool()
{
	std::vector<nbl_block> got;
	nbl_block b;
	nbl_alloc_opts o = opts_on(g_node, 2 * MiB, NB_ALLOC_NOZERO);
	while (got.size() < 65536 && nbl_alloc(dev(), &o, &b) == 0)
		got.push_back(b);
	for (nbl_block &x : got)
		nbl_free(dev(), &x);
}

/* Wait (at most 60 s) until the zeroer has nothing left to clear, seen as the node's zeroed
 * bytes not moving for 200 ms (at 64 MB/s it clears 2 MiB every ~31 ms). The cases that made
 * the pool dirty leave it busy for seconds, and a vCPU clearing memory takes host CPU from
 * both sides of the next case (suspected, not shown, in one full run where migrate/64MiB took
 * 113 ms against 122 ms, both sides 3-5x their usual time). */
void settle_zeroer()
{
	struct nb_stats s;
	uint64_t last = ~0ull;
	for (int i = 0; i < 300 && dev() && !nbl_stats(dev(), g_node, &s) && s.zeroed_bytes != last; i++) {
		last = s.zeroed_bytes;
		usleep(200000);
	}
}

/* One prezero_amtf case: `rate` for the zeroer during it (restored after), the pool made
 * dirty first or not, numabuddy waiting for a zeroed block or not. */
void prezero_case(benchmark::State &st, uint64_t size, long rate, bool dirty, bool wait)
{
	long saved = prezero_rate();
	if (saved < 0) {
		st.SkipWithError("no prezero_mb_s parameter: a module without the zeroer");
		return;
	}
	if (rate < 0)
		rate = saved ? saved : 64;
	if (!set_prezero_rate(rate)) {
		failed_cases()++;
		fail(st, "prezero_mb_s", errno);
		return;
	}
	if (dirty)
		dirty_pool();
	std::string label;
	if (wait)
		label = "nothing inside the timed region: a block the background zeroer (prezero_mb_s=" +
			std::to_string(rate) + ") cleared while it was free (zeroed_huge_bytes >= size "
			"checked, untimed, before each sample)";
	else if (rate)
		label = "the whole block inside NB_IOC_ALLOC unless the background zeroer "
			"(prezero_mb_s=" + std::to_string(rate) + ") cleared one since: pool made "
			"dirty before the case, samples back to back (allocation outruns zeroing)";
	else
		label = "the whole block once inside NB_IOC_ALLOC, before mmap (zeroer off, pool "
			"made dirty before the case)";
	uint64_t z0 = zeroed_bytes();
	run_paired(st, amtf_numabuddy(size, wait, label), amtf_hugetlb(size), 1);
	st.counters["zeroed_bytes_before"] = (double)z0;
	st.counters["zeroed_bytes_after"] = (double)zeroed_bytes();
	set_prezero_rate(saved);
	settle_zeroer();
}

/* first_touch with the zeroer: numabuddy's side waits (untimed) until `size` of the node's
 * free memory is zeroed, then reserves and touches as ft_numabuddy does. */
Side ft_nb_prezero(uint64_t size, const Side &plain)
{
	return { [size, plain](Probe &pr) -> double {
			 for (int i = 0; i < 3000 && zeroed_bytes() < size; i++)
				 usleep(10000);
			 if (zeroed_bytes() < size)
				 return errno_fail(pr, "not enough zeroed memory within 30 s", EAGAIN);
			 return plain.sample(pr);
		 },
		 "nothing at the faults: frames the background zeroer cleared while they were free "
		 "(zeroed_huge_bytes >= size checked, untimed, before each sample)" };
}

/* The largest free block on our node, from the pool's buddyinfo. */
uint64_t largest_block()
{
	struct nb_stats s;
	if (!dev() || nbl_stats(dev(), g_node, &s))
		return 0;
	for (int o = (int)s.nr_orders - 1; o >= 0; o--)
		if (s.free_blocks[o])
			return (uint64_t)kPage << o;
	return 0;
}

/* numa_alloc_onnode binds strictly: past the node's free memory the OOM killer comes. */
bool node_can_hold(uint64_t size, std::string *why)
{
	long long node_free = 0;
	numa_node_size64(g_node, &node_free);
	if ((long long)size + (long long)(64 * MiB) <= node_free)
		return true;
	*why = "not run: node " + std::to_string(g_node) + " has only " +
	       std::to_string(node_free / (long long)MiB) +
	       " MiB free for the kernel (pool and hugetlb pages reserved)";
	return false;
}

/* ---- first touch: only the writes are timed ---- */

Side ft_numabuddy(uint64_t size, uint32_t flags)
{
	return { [size, flags](Probe &pr) -> double {
			 nbl_alloc_opts o = opts_on(g_node, size, flags);
			 nbl_block b;
			 int err = nbl_reserve(dev(), &o, &b);
			 if (err)
				 return errno_fail(pr, "nbl_reserve", err);
			 uint64_t t0 = now_ns();
			 touch(b.addr, size);
			 double dt = (double)(now_ns() - t0);
			 if (pr.warmup)
				 pr.note = level_note(b.addr);
			 nbl_free(dev(), &b);
			 return dt;
		 },
		 kZeroNbReserve };
}

Side ft_anon(uint64_t size, Anon kind)
{
	return { [size, kind](Probe &pr) -> double {
			 void *p = anon_map(size, kind);
			 if (!p)
				 return errno_fail(pr, "mmap", errno);
			 uint64_t t0 = now_ns();
			 touch(p, size);
			 double dt = (double)(now_ns() - t0);
			 if (pr.warmup && kind != Anon::Hugetlb)
				 pr.note = thp_note(p, size);
			 anon_unmap(p, size, kind);
			 return dt;
		 },
		 zeroing_anon(kind, false) };
}

/* ---- migration: one buffer per side, moved back and forth ---- */

int other_node()
{
	/* The nearest other node with a pool: a realistic "move it next door". */
	int best = -1, best_d = 1 << 30;
	for (int n = 0; n <= numa_max_node(); n++) {
		if (n == g_node || numa_node_size64(n, nullptr) <= 0)
			continue;
		if (dev() && !(nbl_version_info(dev())->nodes_with_pool & (1ull << n)))
			continue;
		int d = numa_distance(g_node, n);
		if (d < best_d) {
			best = n;
			best_d = d;
		}
	}
	return best;
}

struct NbBuffer {
	nbl_block b{};
	bool ok = false;
	~NbBuffer()
	{
		if (ok)
			nbl_free(dev(), &b);
	}
};

struct AnonBuffer {
	char *p = nullptr;
	size_t len = 0;
	~AnonBuffer()
	{
		if (p)
			munmap(p, len);
	}
};

void migrate_case(benchmark::State &st, uint64_t size, bool touch_after)
{
	int nodes[2] = { g_node, other_node() };
	auto nb = std::make_shared<NbBuffer>();
	nbl_alloc_opts o = opts_on(g_node, size, 0);
	if (int err = nbl_alloc(dev(), &o, &nb->b)) {
		failed_cases()++;
		fail(st, "nbl_alloc", err);
		return;
	}
	nb->ok = true;
	touch(nb->b.addr, size);
	auto k = std::make_shared<AnonBuffer>();
	k->p = (char *)anon_map(size, Anon::Default);
	if (!k->p) {
		failed_cases()++;
		fail(st, "mmap", errno);
		return;
	}
	k->len = size;
	unsigned long mask = 1ul << g_node;
	if (mbind(k->p, size, MPOL_BIND, &mask, 64, 0))
		fprintf(stderr, "mbind: %s\n", strerror(errno));
	touch(k->p, size);
	size_t n = size / kPage;
	auto pages = std::make_shared<std::vector<void *>>(n);
	for (size_t i = 0; i < n; i++)
		(*pages)[i] = k->p + i * kPage;
	auto nb_where = std::make_shared<int>(0), k_where = std::make_shared<int>(0);

	Side a = { [=](Probe &pr) -> double {
			   int to = nodes[*nb_where ^ 1];
			   uint64_t moved = 0, t0 = now_ns();
			   int err = nbl_migrate(dev(), &nb->b, to, &moved);
			   if (touch_after)
				   touch(nb->b.addr, size);
			   double dt = (double)(now_ns() - t0);
			   if (err || moved != size)
				   return errno_fail(pr, "nbl_migrate", err ? err : EIO);
			   *nb_where ^= 1;
			   if (pr.warmup) /* are the entries back, at their size, with no touch? */
				   pr.note = "after migration, untouched, " + level_note(nb->b.addr);
			   return dt;
		   },
		   "none: the copy fills the target frames; the range stays mapped, migrate_touch faults nothing" };
	std::string kz = init_on_alloc() ? "target pages zeroed at allocation (init_on_alloc), then copied"
					 : "none: target pages are copied into";
	Side b = { [=](Probe &pr) -> double {
			   int to = nodes[*k_where ^ 1];
			   std::vector<int> target(n, to), status(n);
			   uint64_t t0 = now_ns();
			   long r = move_pages(0, n, pages->data(), target.data(), status.data(),
					       MPOL_MF_MOVE);
			   if (touch_after)
				   touch(k->p, size);
			   double dt = (double)(now_ns() - t0);
			   if (r < 0)
				   return errno_fail(pr, "move_pages", errno);
			   if (status[0] != to || status[n - 1] != to) {
				   pr.error = "move_pages left pages behind";
				   return -1;
			   }
			   *k_where ^= 1;
			   if (pr.warmup)
				   pr.note = thp_note(k->p, size);
			   return dt;
		   },
		   kz };
	run_paired(st, a, b, 1);
}

/* ---- TLB: random reads over a buffer touched in full beforehand ---- */

uint64_t tlb_bytes()
{
	const char *e = getenv("NB_BENCH_TLB_MB");
	uint64_t b = e ? strtoull(e, nullptr, 0) * MiB : smoke() ? 32 * MiB : 512 * MiB;
	while (b & (b - 1))
		b &= b - 1; /* random_reads masks: a power of two */
	return b < MiB ? MiB : b;
}

uint64_t random_reads(const char *p, uint64_t size, uint64_t n, uint64_t seed)
{
	uint64_t x = seed | 1, sum = 0, mask = size / 8 - 1; /* size: power of two */
	for (uint64_t k = 0; k < n; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sum += ((const volatile uint64_t *)p)[x & mask];
	}
	return sum;
}

long faults_now()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

/* A reader side over @p; the warm-up notes the mapping and the faults seen while reading
 * (0 unless entries were taken away behind our back: a slow side with faults is no TLB effect). */
Side tlb_reader(const char *p, uint64_t size, uint64_t reads, bool ours, bool hugetlb,
		 std::string zeroing)
{
	auto seed = std::make_shared<uint64_t>(88172645463325252ull);
	return { [=](Probe &pr) -> double {
			 long f0 = faults_now();
			 uint64_t t0 = now_ns();
			 benchmark::DoNotOptimize(random_reads(p, size, reads, (*seed)++));
			 double dt = (double)(now_ns() - t0);
			 if (pr.warmup) {
				 long f = faults_now() - f0;
				 pr.note = (ours ? level_note((void *)(p + size / 2))
					    : hugetlb ? std::string("hugetlb")
						      : thp_note((void *)p, size)) +
					   ", " + std::to_string(f) + " faults while reading";
			 }
			 return dt;
		 },
		 zeroing };
}

void tlb_case(benchmark::State &st, bool huge)
{
	uint64_t size = tlb_bytes(), reads = smoke() ? (1u << 14) : (1u << 18);
	auto nb = std::make_shared<NbBuffer>();
	/* PREFERRED: one node's pool may be smaller than the buffer; spill to the next. */
	nbl_alloc_opts o = opts_on(g_node, size, huge ? NB_ALLOC_HUGE_2M : NB_ALLOC_POPULATE);
	o.policy = NB_POLICY_PREFERRED;
	int err = huge ? nbl_alloc(dev(), &o, &nb->b) : nbl_reserve(dev(), &o, &nb->b);
	if (err) {
		failed_cases()++;
		fail(st, "allocating numabuddy's buffer", err);
		return;
	}
	nb->ok = true;
	auto k = std::make_shared<AnonBuffer>();
	Anon kind = huge ? Anon::Hugetlb : Anon::NoHuge;
	k->p = (char *)anon_map(size, kind);
	if (!k->p) {
		failed_cases()++;
		fail(st, "allocating the kernel's buffer", errno);
		return;
	}
	k->len = huge_round(size);
	touch(nb->b.addr, size);
	touch(k->p, size);
	Side a = tlb_reader((const char *)nb->b.addr, size, reads, true, false,
			    std::string("untimed: ") + (huge ? kZeroNbAlloc : kZeroNbReserve));
	Side b = tlb_reader(k->p, size, reads, false, huge, "untimed: " + zeroing_anon(kind, false));
	/* Keep both buffers alive for the whole case (the sides hold raw pointers). */
	run_paired(st, a, b, (double)reads);
}

/* ---- O_DIRECT into the buffer ---- */

/* One O_DIRECT pread of the disk's first @size bytes into @buf; the kernel pins @buf's pages. */
Side odirect_reader(int disk, void *buf, uint64_t size, std::string zeroing)
{
	return { [disk, buf, size](Probe &pr) -> double {
			 uint64_t t0 = now_ns();
			 ssize_t n = pread(disk, buf, size, 0);
			 uint64_t dt = now_ns() - t0;
			 if (n != (ssize_t)size) {
				 pr.error = std::string("pread(O_DIRECT): ") +
					    strerror(n < 0 ? errno : EIO);
				 return -1;
			 }
			 return (double)dt;
		 },
		 std::move(zeroing) };
}

void odirect_case(benchmark::State &st, uint64_t size, bool huge)
{
	int disk = open("/dev/ram0", O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (disk < 0 || lseek(disk, 0, SEEK_END) < (off_t)size) {
		failed_cases()++;
		fail(st, "/dev/ram0 (bench.sh loads a 64 MiB brd disk)", disk < 0 ? errno : EINVAL);
		if (disk >= 0)
			close(disk);
		return;
	}
	auto nb = std::make_shared<NbBuffer>();
	nbl_alloc_opts o = opts_on(g_node, size, NB_ALLOC_PINNABLE | NB_ALLOC_HUGE_2M);
	int err = nbl_alloc(dev(), &o, &nb->b);
	if (err) {
		failed_cases()++;
		fail(st, "allocating a PINNABLE block", err);
		close(disk);
		return;
	}
	nb->ok = true;
	auto k = std::make_shared<AnonBuffer>();
	Anon kind = huge ? Anon::Hugetlb : Anon::Thp;
	k->p = (char *)anon_map(size, kind);
	if (!k->p) {
		failed_cases()++;
		fail(st, "allocating the kernel's buffer", errno);
		close(disk);
		return;
	}
	k->len = huge_round(size);
	touch(nb->b.addr, size);
	touch(k->p, size);
	Side a = odirect_reader(disk, nb->b.addr, size, std::string("untimed: ") + kZeroNbAlloc);
	Side b = odirect_reader(disk, k->p, size, "untimed: " + zeroing_anon(kind, false));
	run_paired(st, a, b, 1);
	close(disk);
}

void register_all()
{
	bool have_dev = dev() != nullptr;
	if (!have_dev) {
		fprintf(stderr, "numabuddy is not loaded: every case here needs it\n");
		failed_cases()++;
		return;
	}
	std::vector<uint64_t> sizes = { 4 * KiB, 64 * KiB, 2 * MiB, 64 * MiB };
	uint64_t big = largest_block();
	if (big > 64 * MiB)
		sizes.push_back(big);
	for (uint64_t s : sizes) {
		std::string g = "alloc_map_touch_free/" + size_name(s) + "/";
		reg_paired(g + "mmap_populate", [s](benchmark::State &st) {
			run_paired(st, amtf_numabuddy(s), amtf_mmap_populate(s), 1);
		});
		reg_paired(g + "numa_alloc_onnode", [s](benchmark::State &st) {
			std::string why;
			if (!node_can_hold(s, &why)) {
				st.SkipWithError(why.c_str()); /* capacity, not a failure */
				return;
			}
			run_paired(st, amtf_numabuddy(s), amtf_numa_alloc_onnode(s), 1);
		});
		reg_paired(g + "hugetlb", [s](benchmark::State &st) {
			run_paired(st, amtf_numabuddy(s), amtf_hugetlb(s), 1);
		});
	}

	/* The zeroer's goal (>= 10x MAP_HUGETLB with zeroed blocks), its steady state when
	 * allocation outruns it (never below today's), and today's path beside them. */
	reg_paired("prezero_amtf/2MiB/hugetlb", [](benchmark::State &st) {
		prezero_case(st, 2 * MiB, -1, false, true);
	});
	reg_paired("prezero_amtf_outrun/2MiB/hugetlb", [](benchmark::State &st) {
		prezero_case(st, 2 * MiB, -1, true, false);
	});
	reg_paired("prezero_amtf_off/2MiB/hugetlb", [](benchmark::State &st) {
		prezero_case(st, 2 * MiB, 0, true, false);
	});

	uint64_t ft = smoke() ? 2 * MiB : 16 * MiB, ft2 = smoke() ? 8 * MiB : 64 * MiB;
	reg_paired("first_touch/4KiB/anon", [ft](benchmark::State &st) {
		run_paired(st, ft_numabuddy(ft, 0), ft_anon(ft, Anon::NoHuge), (double)(ft / kPage));
	});
	reg_paired("first_touch/2MiB/anon_thp", [ft2](benchmark::State &st) {
		run_paired(st, ft_numabuddy(ft2, NB_ALLOC_HUGE_2M), ft_anon(ft2, Anon::Thp),
			   (double)(ft2 / (2 * MiB)));
	});
	reg_paired("first_touch/2MiB/hugetlb", [ft2](benchmark::State &st) {
		run_paired(st, ft_numabuddy(ft2, NB_ALLOC_HUGE_2M), ft_anon(ft2, Anon::Hugetlb),
			   (double)(ft2 / (2 * MiB)));
	});
	reg_paired("prezero_first_touch/2MiB/hugetlb", [ft2](benchmark::State &st) {
		if (prezero_rate() <= 0) {
			st.SkipWithError("the zeroer is off (prezero_mb_s)");
			return;
		}
		run_paired(st, ft_nb_prezero(ft2, ft_numabuddy(ft2, NB_ALLOC_HUGE_2M)),
			   ft_anon(ft2, Anon::Hugetlb), (double)(ft2 / (2 * MiB)));
		settle_zeroer(); /* its samples left 64 MiB dirty each */
	});

	if (numa_max_node() > 0) {
		for (uint64_t s : { 2 * MiB, 64 * MiB }) {
			for (bool t : { false, true }) {
				std::string g = std::string(t ? "migrate_touch/" : "migrate/") +
						size_name(s) + "/move_pages";
				reg_paired(g, [s, t](benchmark::State &st) { migrate_case(st, s, t); });
			}
		}
	}

	std::string g = "tlb_random_read/" + size_name(tlb_bytes()) + "/";
	reg_paired(g + "anon-4K", [](benchmark::State &st) { tlb_case(st, false); });
	reg_paired(g + "hugetlb-2M", [](benchmark::State &st) { tlb_case(st, true); });

	uint64_t io = smoke() ? 2 * MiB : 32 * MiB;
	g = "odirect_read/" + size_name(io) + "/";
	reg_paired(g + "anon_thp", [io](benchmark::State &st) { odirect_case(st, io, false); });
	reg_paired(g + "hugetlb", [io](benchmark::State &st) { odirect_case(st, io, true); });
}

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	g_node = pin_cpu(bench_cpu());
	if (g_node < 0) {
		fprintf(stderr, "cannot pin to CPU %d\n", bench_cpu());
		return 1;
	}
	benchmark::AddCustomContext("bench_cpu", std::to_string(bench_cpu()));
	benchmark::AddCustomContext("bench_node", std::to_string(g_node));
	benchmark::AddCustomContext("init_on_alloc", init_on_alloc() ? "1" : "0");
	register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return exit_status();
}
