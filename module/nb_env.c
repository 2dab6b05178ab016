// SPDX-License-Identifier: GPL-2.0
/*
 * nb_env.c - mm_core's environment (mm_core/env.h) implemented with Linux primitives.
 *
 * mm_core never sees a kernel header; everything it needs from the kernel comes through here.
 */
#include <linux/cpumask.h>
#include <linux/kernel.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/topology.h>
#include <linux/vmalloc.h>

#include "env.h"

unsigned nb_env_cpu_ids(void)
{
	return nr_cpu_ids;
}

unsigned nb_env_cpu_current(void)
{
	/* A hint: mm_core locks whatever per-CPU state it picks, so migration is harmless. */
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

void *nb_env_meta_alloc(nb_size_t bytes, int node, enum nb_ctx ctx)
{
	if (node < 0 || node >= nr_node_ids)
		node = NUMA_NO_NODE;
	if (ctx == NB_CTX_ATOMIC)
		return bytes <= PAGE_SIZE ?
			kzalloc_node(bytes, GFP_ATOMIC | __GFP_NOWARN, node) : NULL;
	return kvzalloc_node(bytes, GFP_KERNEL | __GFP_NOWARN, node);
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
