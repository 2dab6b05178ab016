// SPDX-License-Identifier: GPL-2.0
/*
 * nb_prezero.c - the background zeroer: one kernel thread at SCHED_IDLE that keeps free pool
 * blocks zeroed (mm_core's nbc_core_prezero, 2 MiB at a time, round robin over the nodes), so
 * an ALLOC or a first touch served from a zeroed block skips its memset.
 *
 * prezero_mb_s (writable) caps the rate, so a busy machine (or a TCG VM) keeps its CPU: after
 * each block the thread sleeps until the bytes zeroed so far fit the rate. 0 stops the work.
 * With nothing dirty it polls every 100 ms (a free does not wake it: the fast paths stay free
 * of it). nb_prezero_mutex is held for each step: nb_prezero_pause() (resize, compaction)
 * waits for the block in flight to be back on the free lists and keeps the next one from
 * starting. Order: nb_compact_mutex, then nb_prezero_mutex.
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <uapi/linux/sched/types.h>

#include "nb_internal.h"
#include "nb_prezero.h"

static unsigned long prezero_mb_s = 64;
module_param(prezero_mb_s, ulong, 0644);
MODULE_PARM_DESC(prezero_mb_s,
		 "Background zeroing of free pool memory, MiB per second over all nodes (default 64; 0 = off)");

static DEFINE_MUTEX(nb_prezero_mutex);
static struct task_struct *nb_prezero_task;
static atomic64_t nb_prezero_bytes; /* zeroed since load */
static atomic64_t nb_prezero_cpu_ns; /* the thread's CPU time, written by the thread itself */

#define NB_PREZERO_POLL (HZ / 10)

/* One block of the next node that has dirty memory; bytes zeroed (0: no node had any). */
static u64 nb_prezero_step(int *next)
{
	int tries, node = *next;

	for (tries = 0; tries < MAX_NUMNODES; tries++, node = (node + 1) % MAX_NUMNODES) {
		s64 got;

		if (!nbc_pool_frames(nb_core, node))
			continue;
		mutex_lock(&nb_prezero_mutex);
		got = nbc_core_prezero(nb_core, node, 1u << (21 - PAGE_SHIFT), NB_CTX_SLEEP);
		mutex_unlock(&nb_prezero_mutex);
		if (got > 0) {
			*next = (node + 1) % MAX_NUMNODES; /* fair between nodes */
			return (u64)got << PAGE_SHIFT;
		}
	}
	return 0;
}

static int nb_prezero_thread(void *unused)
{
	/* Only when nothing else wants the CPU: zeroing ahead is never urgent. */
	struct sched_attr idle = { .size = sizeof(idle), .sched_policy = SCHED_IDLE };
	u64 start = ktime_get_ns(), budget_bytes = 0;
	unsigned long last_rate = 0;
	int next = 0;

	if (sched_setattr_nocheck(current, &idle))
		sched_set_normal(current, MAX_NICE);
	while (!kthread_should_stop()) {
		/* Any value root writes is valid: above 1 TiB/s means "no limit" (and keeps
		 * rate << 20 from overflowing). */
		unsigned long rate = min(READ_ONCE(prezero_mb_s), 1UL << 20);
		u64 got, now, due;

		atomic64_set(&nb_prezero_cpu_ns, current->se.sum_exec_runtime);
		if (rate != last_rate) { /* a new rate starts a new account */
			last_rate = rate;
			start = ktime_get_ns();
			budget_bytes = 0;
		}
		if (!rate) {
			schedule_timeout_interruptible(NB_PREZERO_POLL);
			start = ktime_get_ns();
			budget_bytes = 0;
			continue;
		}
		got = nb_prezero_step(&next);
		now = ktime_get_ns();
		if (!got) {
			schedule_timeout_interruptible(NB_PREZERO_POLL);
			start = ktime_get_ns(); /* idle time earns no burst */
			budget_bytes = 0;
			continue;
		}
		atomic64_add(got, &nb_prezero_bytes);
		budget_bytes += got;
		/* When the bytes so far are due at `rate`; sleep until then. */
		due = start + div64_u64(budget_bytes * NSEC_PER_SEC, (u64)rate << 20);
		if (due > now)
			schedule_timeout_interruptible(max(1UL, nsecs_to_jiffies(due - now)));
		else
			cond_resched();
		if (budget_bytes > (1ULL << 33)) { /* restart before budget * NSEC_PER_SEC overflows */
			start = ktime_get_ns();
			budget_bytes = 0;
		}
	}
	return 0;
}

int nb_prezero_start(void)
{
	struct task_struct *t = kthread_run(nb_prezero_thread, NULL, "numabuddy-zero");

	if (IS_ERR(t))
		return PTR_ERR(t);
	nb_prezero_task = t;
	return 0;
}

void nb_prezero_stop(void)
{
	if (nb_prezero_task)
		kthread_stop(nb_prezero_task);
	nb_prezero_task = NULL;
}

void nb_prezero_pause(void)
{
	mutex_lock(&nb_prezero_mutex);
}

void nb_prezero_resume(void)
{
	mutex_unlock(&nb_prezero_mutex);
}

void nb_prezero_show(struct seq_file *m)
{
	struct nbc_node_stats ns;
	int node;

	seq_printf(m, "rate_mb_s %lu\nzeroed_total_bytes %lld\ncpu_ns %lld\n",
		   READ_ONCE(prezero_mb_s), atomic64_read(&nb_prezero_bytes),
		   atomic64_read(&nb_prezero_cpu_ns));
	for (node = 0; node < NBC_MAX_NODES && node < nr_node_ids; node++) {
		if (!nbc_pool_frames(nb_core, node) || nbc_node_stats(nb_core, node, &ns))
			continue;
		/* free: the lists' and the zeroer's (per-CPU caches apart: never zeroed). */
		seq_printf(m, "node%d_free_bytes %llu\nnode%d_pcp_bytes %llu\nnode%d_zeroed_bytes %llu\n"
			   "node%d_zeroed_huge_bytes %llu\n",
			   node, (unsigned long long)ns.free_frames << PAGE_SHIFT, node,
			   (unsigned long long)ns.pcp_frames << PAGE_SHIFT, node,
			   (unsigned long long)ns.zeroed_frames << PAGE_SHIFT, node,
			   (unsigned long long)ns.zeroed_huge_frames << PAGE_SHIFT);
	}
}
