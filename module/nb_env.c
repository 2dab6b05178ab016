// SPDX-License-Identifier: GPL-2.0
/*
 * nb_env.c - mm_core's environment (mm_core/env.h) implemented with Linux primitives.
 *
 * mm_core never sees a kernel header; everything it needs from the kernel comes through here.
 */
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/kernel.h>
#include <linux/local_lock.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/topology.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "env.h"

unsigned nb_env_cpu_ids(void)
{
	return nr_cpu_ids;
}

unsigned nb_env_cpu_current(void)
{
	/* A hint (the local node of a policy): per-CPU state is reached through
	 * nb_env_cpu_own, which pins, so migration after this is harmless. */
	return raw_smp_processor_id();
}

int nb_env_cpu_node(unsigned cpu)
{
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return -1;
	return cpu_to_node(cpu);
}

unsigned nb_env_node_ids(void)
{
	return nr_node_ids;
}

int nb_env_node_distance(int from, int to)
{
	return node_distance(from, to);
}

/*
 * CPU ownership for mm_core's per-CPU caches. local_lock is preempt_disable() on a normal
 * kernel and, on PREEMPT_RT, migrate_disable() plus a per-CPU spinlock (a sleeping lock
 * there), so the owner keeps its CPU and no other task on that CPU gets in. mm_core is never
 * called from interrupt context, so interrupts need not be masked.
 */
static DEFINE_PER_CPU(local_lock_t, nb_cpu_lock) = INIT_LOCAL_LOCK(nb_cpu_lock);

unsigned nb_env_cpu_own(void)
{
	local_lock(&nb_cpu_lock);
	return smp_processor_id();
}

void nb_env_cpu_disown(unsigned cpu)
{
	local_unlock(&nb_cpu_lock);
}

struct nb_run_on {
	void (*fn)(void *arg);
	void *arg;
};

static long nb_run_owned(void *data)
{
	struct nb_run_on *r = data;

	local_lock(&nb_cpu_lock);
	r->fn(r->arg);
	local_unlock(&nb_cpu_lock);
	return 0;
}

/* Callers that reach an offline CPU's caches, one at a time. */
static DEFINE_MUTEX(nb_offline_cpu_mutex);

void nb_env_cpu_run_on(unsigned cpu, void (*fn)(void *arg), void *arg)
{
	struct nb_run_on r = { fn, arg };

	might_sleep();
	if (WARN_ON_ONCE(cpu >= nr_cpu_ids))
		return;
	cpus_read_lock();
	if (cpu_online(cpu)) {
		/* In a worker bound to that CPU, which owns it like any other task would. */
		work_on_cpu(cpu, nb_run_owned, &r);
	} else {
		/* No task runs on an offline CPU, and hotplug is held off: its per-CPU state
		 * is ours, shared only with other callers of this branch. */
		mutex_lock(&nb_offline_cpu_mutex);
		fn(arg);
		mutex_unlock(&nb_offline_cpu_mutex);
	}
	cpus_read_unlock();
}

static spinlock_t *nb_spin(struct nb_env_lock *l)
{
	BUILD_BUG_ON(sizeof(spinlock_t) > sizeof(l->opaque));
	BUILD_BUG_ON(__alignof__(spinlock_t) > __alignof__(struct nb_env_lock));
	return (spinlock_t *)l->opaque;
}

/*
 * spin_lock_init() keys lockdep by its call site, and every mm_core lock is initialised at
 * this one: they would all share one class, and a per-CPU cache refilling from its node
 * (cache lock, then node lock) would be reported as "possible recursive locking". One key
 * per kind of lock (env.h's nb_lock_class) gives lockdep the classes mm_core means.
 */
static struct lock_class_key nb_lock_keys[NB_LOCK_CLASSES];
static const char *const nb_lock_names[NB_LOCK_CLASSES] = {
	[NB_LOCK_SPACE] = "numabuddy_space",
	[NB_LOCK_HEAP] = "numabuddy_heap",
	[NB_LOCK_PCP] = "numabuddy_pcp",
	[NB_LOCK_NODE] = "numabuddy_node",
};

void nb_env_lock_init(struct nb_env_lock *l, enum nb_lock_class cls)
{
	spin_lock_init(nb_spin(l));
	if (WARN_ON_ONCE(cls < 0 || cls >= NB_LOCK_CLASSES))
		return;
	lockdep_set_class_and_name(nb_spin(l), &nb_lock_keys[cls], nb_lock_names[cls]);
}

void nb_env_lock_destroy(struct nb_env_lock *l)
{
}

void nb_env_lock_acquire(struct nb_env_lock *l)
{
	spin_lock(nb_spin(l));
}

void nb_env_lock_release(struct nb_env_lock *l)
{
	spin_unlock(nb_spin(l));
}

void *nb_env_meta_alloc(nb_size_t bytes, int node, enum nb_ctx ctx, enum nb_meta_owner owner)
{
	/* A file's metadata is charged to the memory cgroup of the task that asks for it. */
	gfp_t acct = owner == NB_META_USER ? __GFP_ACCOUNT : 0;

	if (node < 0 || node >= nr_node_ids)
		node = NUMA_NO_NODE;
	if (ctx == NB_CTX_ATOMIC)
		return bytes <= PAGE_SIZE ?
			kzalloc_node(bytes, GFP_ATOMIC | __GFP_NOWARN | acct, node) : NULL;
	return kvzalloc_node(bytes, GFP_KERNEL | __GFP_NOWARN | acct, node);
}

void nb_env_meta_free(void *p, nb_size_t bytes)
{
	kvfree(p);
}

void *nb_env_frame_addr(nb_u64 pfn)
{
	/* Pool frames come from the page allocator, so they are in the direct map (x86-64 has
	 * no highmem); the region's frames follow contiguously there too. */
	return pfn_to_kaddr(pfn);
}

void nb_env_copy_frames(void *dst, const void *src, nb_u64 nr)
{
	char *to = dst;
	const char *from = src;
	nb_u64 i;

	/* copy_page is x86's page copy (rep movsq, or the unrolled loop where that is slow);
	 * it takes non-const pointers but only reads `from`. */
	for (i = 0; i < nr; i++)
		copy_page(to + i * PAGE_SIZE, (void *)(from + i * PAGE_SIZE));
}

void nb_env_resched(void)
{
	cond_resched();
}

int nb_env_should_abort(void)
{
	return fatal_signal_pending(current);
}

void nb_env_log(int level, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	switch (level) {
	case NB_LOG_ERR:
		pr_err("numabuddy: %pV\n", &vaf);
		break;
	case NB_LOG_WARN:
		pr_warn("numabuddy: %pV\n", &vaf);
		break;
	case NB_LOG_INFO:
		pr_info("numabuddy: %pV\n", &vaf);
		break;
	default:
		pr_debug("numabuddy: %pV\n", &vaf);
		break;
	}
	va_end(args);
}

int nb_env_snprintf(char *buf, nb_size_t size, const char *fmt, ...)
{
	va_list args;
	int n;

	va_start(args, fmt);
	n = vsnprintf(buf, size, fmt, args);
	va_end(args);
	return n;
}

void nb_env_assert_fail(const char *expr, const char *file, int line)
{
	WARN(1, "numabuddy: mm_core invariant broken: %s (%s:%d)\n", expr, file, line);
}
