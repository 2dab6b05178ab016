// SPDX-License-Identifier: GPL-2.0
/*
 * sim_env.cpp - the hosted environment for mm_core tests and benchmarks.
 */
#include "sim_env.h"

#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

namespace sim {
namespace {

constexpr size_t kMmapThreshold = 64 << 10;
constexpr unsigned kLockMagic = 0x51a1c0deu;

struct Backing {
	nb_u64 start, frames;
	void *base;
};

Topology g_topo;
std::vector<int> g_cpu_node;
std::vector<Backing> g_backing;
std::atomic<size_t> g_meta{0};
std::mutex g_user_mu;
std::unordered_map<void *, size_t> g_user_meta; /* NB_META_USER blocks and their sizes */
size_t g_user_bytes; /* guarded by g_user_mu */
std::atomic<unsigned long> g_resched{0};
std::function<void()> g_resched_hook; /* set by single-threaded tests only */
std::function<void()> g_unlock_hook;  /* likewise */
std::atomic<bool> g_abort{false};
std::atomic<unsigned long> g_errors{0};
std::mutex g_log_mu;
std::string g_last_log;
thread_local unsigned t_cpu = 0;
thread_local int t_locks = 0;
/* Lock acquisitions by class on this thread, a CPU's ownership counted as NB_LOCK_PCP's. */
thread_local unsigned long t_rounds[NB_LOCK_CLASSES];

/* CPU ownership (nb_env_cpu_own): one flag per CPU id, taken with an atomic exchange, so two
 * test threads that claim the same CPU id exclude each other as two tasks on one CPU do, and
 * TSan sees the acquire/release that orders their use of its caches. The kernel's
 * local_lock on PREEMPT_RT is the same: a per-CPU lock. Ids past the table abort. */
constexpr unsigned kSimCpus = 4096;
std::atomic<int> g_cpu_owned[kSimCpus];
thread_local int t_owned = -1; /* the CPU this thread owns, or -1 */

/* A test-and-test-and-set spinlock: the kernel's lock is a spinlock, and a mutex would hide
 * lock-hold-time problems behind sleeping. Yields after a while so oversubscribed test
 * threads still make progress on 2 cores. */
struct SimLock {
	std::atomic<int> held;
	unsigned magic;
	int cls; /* enum nb_lock_class */
};

/* lockdep's two rules over the env's lock classes (env.h): no class is taken while this
 * thread holds a lock of the same class ("possible recursive locking"), and two classes are
 * never taken in both orders (g_after[a][b]: b was taken while a was held). */
thread_local int t_held[16];
std::atomic<bool> g_after[NB_LOCK_CLASSES][NB_LOCK_CLASSES];
static_assert(sizeof(SimLock) <= sizeof(nb_env_lock), "lock storage");

[[noreturn]] void Die(const char *what)
{
	fprintf(stderr, "sim env: %s\n", what);
	fflush(stderr);
	abort();
}

} /* namespace */

void Setup(const Topology &t)
{
	Teardown();
	g_topo = t;
	g_cpu_node = t.cpu_node;
	if (g_cpu_node.empty())
		for (unsigned n = 0; n < t.nodes; n++)
			for (unsigned c = 0; c < t.cpus_per_node; c++)
				g_cpu_node.push_back(static_cast<int>(n));
	if (g_topo.distance.empty()) {
		for (unsigned a = 0; a < t.nodes; a++)
			for (unsigned b = 0; b < t.nodes; b++)
				g_topo.distance.push_back(a == b ? 10 : 20 + 10 * static_cast<int>(a > b ? a - b : b - a));
	}
	if (t.back_frames) {
		for (const nbc_region &r : t.regions) {
			void *p = mmap(nullptr, r.nr_frames * NBC_FRAME_SIZE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (p == MAP_FAILED)
				Die("cannot map region backing");
			g_backing.push_back({r.start_pfn, r.nr_frames, p});
		}
	}
	t_cpu = 0;
}

void Teardown()
{
	for (const Backing &b : g_backing)
		munmap(b.base, b.frames * NBC_FRAME_SIZE);
	g_backing.clear();
	g_abort = false;
}

const Topology &Current() { return g_topo; }
void SetCpu(unsigned cpu) { t_cpu = cpu; }
unsigned Cpu() { return t_cpu; }
unsigned CpuCount() { return static_cast<unsigned>(g_cpu_node.size()); }
size_t MetaBytes() { return g_meta.load(); }
size_t UserMetaBytes()
{
	std::lock_guard<std::mutex> g(g_user_mu);
	return g_user_bytes;
}
int LockDepth() { return t_locks + (t_owned >= 0 ? 1 : 0); }
unsigned long LockRounds(int cls) { return cls >= 0 && cls < NB_LOCK_CLASSES ? t_rounds[cls] : 0; }
unsigned long ReschedCalls() { return g_resched.load(); }
void SetReschedHook(std::function<void()> fn) { g_resched_hook = std::move(fn); }
void SetUnlockHook(std::function<void()> fn) { g_unlock_hook = std::move(fn); }
void SetAbort(bool on) { g_abort = on; }
unsigned long ErrorLogs() { return g_errors.load(); }
std::string LastLog()
{
	std::lock_guard<std::mutex> g(g_log_mu);
	return g_last_log;
}

void *FrameAddr(nb_u64 pfn)
{
	for (const Backing &b : g_backing)
		if (pfn >= b.start && pfn < b.start + b.frames)
			return static_cast<char *>(b.base) + (pfn - b.start) * NBC_FRAME_SIZE;
	return nullptr;
}

} /* namespace sim */

using namespace sim;

extern "C" {

unsigned nb_env_cpu_ids(void) { return static_cast<unsigned>(g_cpu_node.size()); }
unsigned nb_env_cpu_current(void) { return t_cpu; }
int nb_env_cpu_node(unsigned cpu) { return cpu < g_cpu_node.size() ? g_cpu_node[cpu] : -1; }
unsigned nb_env_node_ids(void) { return g_topo.nodes; }

int nb_env_node_distance(int from, int to)
{
	unsigned n = g_topo.nodes;
	if (from < 0 || to < 0 || static_cast<unsigned>(from) >= n || static_cast<unsigned>(to) >= n)
		Die("distance of a node that does not exist");
	return g_topo.distance[static_cast<unsigned>(from) * n + static_cast<unsigned>(to)];
}

void nb_env_lock_init(struct nb_env_lock *l, enum nb_lock_class cls)
{
	if (cls < 0 || cls >= NB_LOCK_CLASSES)
		Die("lock of no class");
	SimLock *s = new (l->opaque) SimLock;
	s->held.store(0);
	s->magic = kLockMagic;
	s->cls = cls;
}

void nb_env_lock_destroy(struct nb_env_lock *l)
{
	SimLock *s = reinterpret_cast<SimLock *>(l->opaque);
	if (s->magic != kLockMagic || s->held.load() != 0)
		Die("destroying a lock that is held or was never initialized");
	s->magic = 0;
}

static void SpinForCpu(unsigned cpu)
{
	for (unsigned spins = 0;; spins++) {
		if (g_cpu_owned[cpu].load(std::memory_order_relaxed) == 0 &&
		    g_cpu_owned[cpu].exchange(1, std::memory_order_acquire) == 0)
			return;
		if (spins > 64)
			sched_yield();
		else
			__builtin_ia32_pause();
	}
}

/* Kept lean: the hosted instruction counts of the fast path include it. */
static inline void OwnCpu(unsigned cpu)
{
	if (cpu >= kSimCpus)
		Die("owning a CPU id past the simulation's table");
	if (g_cpu_owned[cpu].exchange(1, std::memory_order_acquire) != 0)
		SpinForCpu(cpu);
	t_owned = static_cast<int>(cpu);
}

static inline void DisownCpu(unsigned cpu)
{
	if (t_owned != static_cast<int>(cpu))
		Die("disowning a CPU this thread does not own");
	t_owned = -1;
	g_cpu_owned[cpu].store(0, std::memory_order_release);
}

static void RunUnlockHook();

static void CheckNoNodeLock()
{
	for (int i = 0; i < t_locks; i++)
		if (t_held[i] == NB_LOCK_NODE)
			Die("owning a CPU with a node lock held");
}

unsigned nb_env_cpu_own(void)
{
	/* Ownership nests outside every lock class but SPACE and HEAP (env.h's order). */
	if (t_owned >= 0)
		Die("owning a CPU twice");
	if (t_locks != 0)
		CheckNoNodeLock();
	unsigned cpu = t_cpu;
	OwnCpu(cpu);
	t_rounds[NB_LOCK_PCP]++;
	return cpu;
}

void nb_env_cpu_disown(unsigned cpu)
{
	DisownCpu(cpu);
	if (t_locks == 0 && g_unlock_hook)
		RunUnlockHook();
}

void nb_env_cpu_run_on(unsigned cpu, void (*fn)(void *arg), void *arg)
{
	if (t_locks != 0 || t_owned >= 0)
		Die("nb_env_cpu_run_on may sleep: called with a lock held or a CPU owned");
	OwnCpu(cpu);
	fn(arg);
	DisownCpu(cpu);
}

void nb_env_lock_acquire(struct nb_env_lock *l)
{
	SimLock *s = reinterpret_cast<SimLock *>(l->opaque);
	if (s->magic != kLockMagic)
		Die("acquiring an uninitialized lock");
	if (t_locks >= 16)
		Die("more than 16 locks held");
	if (t_owned >= 0 && (s->cls == NB_LOCK_SPACE || s->cls == NB_LOCK_HEAP))
		Die("lock order inversion: a space or heap lock taken with a CPU owned");
	for (int i = 0; i < t_locks; i++) {
		if (t_held[i] == s->cls)
			Die("possible recursive locking: a lock of a class this thread holds");
		if (g_after[s->cls][t_held[i]].load(std::memory_order_relaxed))
			Die("lock order inversion between two lock classes");
		g_after[t_held[i]][s->cls].store(true, std::memory_order_relaxed);
	}
	for (unsigned spins = 0;; spins++) {
		if (s->held.load(std::memory_order_relaxed) == 0 &&
		    s->held.exchange(1, std::memory_order_acquire) == 0)
			break;
		if (spins > 64)
			sched_yield();
		else
			__builtin_ia32_pause();
	}
	t_held[t_locks++] = s->cls;
	t_rounds[s->cls]++;
}

void nb_env_lock_release(struct nb_env_lock *l)
{
	SimLock *s = reinterpret_cast<SimLock *>(l->opaque);
	if (s->held.load(std::memory_order_relaxed) == 0)
		Die("releasing a lock that is not held");
	int i = t_locks - 1; /* usually the last one taken; Guards release in reverse */
	while (i > 0 && t_held[i] != s->cls)
		i--;
	for (; i + 1 < t_locks; i++)
		t_held[i] = t_held[i + 1];
	t_locks--;
	s->held.store(0, std::memory_order_release);
	if (t_locks == 0 && t_owned < 0)
		RunUnlockHook();
}

/* The core holds nothing now: the window a racing thread would use. */
static void RunUnlockHook()
{
	static thread_local bool in_hook; /* the hook's own calls take and drop locks */
	if (g_unlock_hook && !in_hook) {
		in_hook = true;
		g_unlock_hook();
		in_hook = false;
	}
}

void *nb_env_meta_alloc(nb_size_t bytes, int node, enum nb_ctx ctx, enum nb_meta_owner owner)
{
	(void)node;
	if (owner != NB_META_CORE && owner != NB_META_USER)
		Die("metadata of no owner");
	if (ctx == NB_CTX_SLEEP && (t_locks != 0 || t_owned >= 0))
		Die("sleeping metadata allocation with a lock held or a CPU owned");
	if (ctx == NB_CTX_ATOMIC && bytes > NBC_FRAME_SIZE)
		Die("atomic metadata allocation above one page");
	if (bytes == 0)
		bytes = 1;
	void *p;
	if (bytes >= kMmapThreshold) {
		p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return nullptr;
	} else {
		p = aligned_alloc(64, (bytes + 63) & ~size_t{63});
		if (p == nullptr)
			return nullptr;
		memset(p, 0, bytes);
	}
	g_meta += bytes;
	if (owner == NB_META_USER) {
		std::lock_guard<std::mutex> g(g_user_mu);
		g_user_meta[p] = bytes;
		g_user_bytes += bytes;
	}
	return p;
}

void nb_env_meta_free(void *p, nb_size_t bytes)
{
	if (p == nullptr)
		return;
	if (bytes == 0)
		bytes = 1;
	g_meta -= bytes;
	{
		std::lock_guard<std::mutex> g(g_user_mu);
		auto it = g_user_meta.find(p);
		if (it != g_user_meta.end()) {
			if (it->second != bytes)
				Die("metadata freed with another size than it was allocated with");
			g_user_bytes -= bytes;
			g_user_meta.erase(it);
		}
	}
	if (bytes >= kMmapThreshold)
		munmap(p, bytes);
	else
		free(p);
}

void *nb_env_frame_addr(nb_u64 pfn) { return sim::FrameAddr(pfn); }

void nb_env_copy_frames(void *dst, const void *src, nb_u64 nr)
{
	memcpy(dst, src, nr * NBC_FRAME_SIZE);
}

void nb_env_resched(void)
{
	if (t_locks != 0 || t_owned >= 0)
		Die("resched with a lock held or a CPU owned");
	g_resched++;
	static thread_local bool in_hook; /* the hook's own calls may resched */
	if (g_resched_hook && !in_hook) {
		in_hook = true;
		g_resched_hook();
		in_hook = false;
	}
}

int nb_env_should_abort(void) { return g_abort.load() ? 1 : 0; }

void nb_env_log(int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (level <= NB_LOG_ERR)
		g_errors++;
	{
		std::lock_guard<std::mutex> g(g_log_mu);
		g_last_log = buf;
	}
	if (getenv("NB_SIM_VERBOSE") != nullptr)
		fprintf(stderr, "%s", buf);
}

int nb_env_snprintf(char *buf, nb_size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void nb_env_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "mm_core assertion failed: %s at %s:%d\n", expr, file, line);
	fflush(stderr);
	abort();
}

} /* extern "C" */
