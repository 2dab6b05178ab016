/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sim_env.h - env.h implemented with pthreads over a simulated physical memory.
 *
 * A topology is nodes, CPUs (a thread-local "current CPU" that tests set), a distance matrix
 * and pool regions that may have holes and sit anywhere in the 52-bit physical space. Frame
 * memory is backed lazily (MAP_NORESERVE), metadata above 64 KiB too, so a 1 TiB node costs
 * only what is touched. The env enforces its own contract: sleeping calls (resched, SLEEP
 * metadata allocation) with a lock held abort, as do broken asserts.
 */
#ifndef NB_SIM_ENV_H
#define NB_SIM_ENV_H

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "../../mm_core/nbc_core.h"

namespace sim {

struct Topology {
	unsigned nodes = 1;
	unsigned cpus_per_node = 1;
	/* Optional: explicit CPU -> node map (-1 = possible-but-absent); overrides cpus_per_node. */
	std::vector<int> cpu_node;
	/* Optional: nodes x nodes SLIT matrix; default 10 local, 20 + 10*|a-b| remote. */
	std::vector<int> distance;
	std::vector<nbc_region> regions;
	/* Back frames with memory (migration, kheap need it); off for metadata-only giants. */
	bool back_frames = true;
};

/* Install a topology (no core may exist). */
void Setup(const Topology &t);
void Teardown();
const Topology &Current();

/* The calling thread's CPU, as nb_env_cpu_current() will report it. */
void SetCpu(unsigned cpu);
unsigned Cpu();
unsigned CpuCount();

/* Outstanding metadata bytes handed out by nb_env_meta_alloc; of them, NB_META_USER's (what
 * the kernel charges to the caller's memory cgroup). */
size_t MetaBytes();
size_t UserMetaBytes();
/* Locks held by the calling thread, counting an owned CPU as one. */
int LockDepth();
/* Locks of class `cls` (enum nb_lock_class) this thread has acquired so far, a CPU's
 * ownership counted as NB_LOCK_PCP: the difference around a call is its lock rounds. */
unsigned long LockRounds(int cls);
/* How often nb_env_resched ran; make nb_env_should_abort return `on`. */
unsigned long ReschedCalls();
/* Run `fn` inside every nb_env_resched (no core lock is held there), to interleave another
 * caller's operation deterministically at the core's preemption points; empty to stop. */
void SetReschedHook(std::function<void()> fn);
/* Run `fn` after every lock release that leaves the calling thread holding no lock: another
 * caller's operation lands exactly where the core has just dropped its lock, the window a
 * racing thread would use. Set by single-threaded tests only; empty to stop. */
void SetUnlockHook(std::function<void()> fn);
void SetAbort(bool on);
/* Error-level log lines so far, and the last one. */
unsigned long ErrorLogs();
std::string LastLog();

/* Frame memory: the address nb_env_frame_addr(pfn) gives, nullptr when unbacked. */
void *FrameAddr(nb_u64 pfn);

/* A single region helper. */
inline nbc_region Region(nb_u64 start, nb_u64 frames, int node)
{
	return nbc_region{start, frames, node, 0};
}

} /* namespace sim */

#endif /* NB_SIM_ENV_H */
