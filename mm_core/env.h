/* SPDX-License-Identifier: GPL-2.0 */
/*
 * env.h - everything mm_core needs from the world it runs in.
 *
 * mm_core is freestanding C++: it includes no kernel and no libc header. This C interface is
 * its only door out. module/nb_env.c implements it for Linux; tests/sim/ implements it with
 * pthreads over a simulated physical memory. Keep it small: every function here is one more
 * thing both sides must get right.
 *
 * Context is explicit. Functions that may sleep say so; mm_core calls them only when its
 * caller passed NB_CTX_SLEEP. Nothing here may be called with an nb_env_lock held unless it is
 * marked "atomic-safe".
 */
#ifndef NB_ENV_H
#define NB_ENV_H

/* Fixed-width types without <stdint.h>: the compiler's own predefined macros. */
typedef __UINT8_TYPE__ nb_u8;
typedef __UINT16_TYPE__ nb_u16;
typedef __UINT32_TYPE__ nb_u32;
typedef __UINT64_TYPE__ nb_u64;
typedef __INT32_TYPE__ nb_i32;
typedef __INT64_TYPE__ nb_i64;
typedef __SIZE_TYPE__ nb_size_t;
typedef __UINTPTR_TYPE__ nb_uptr;

/* Errors cross every boundary as 0 or -errno; the values are Linux's (asm-generic/errno*.h). */
#define NB_EPERM 1
#define NB_ENOENT 2
#define NB_EINTR 4
#define NB_EIO 5
#define NB_EAGAIN 11
#define NB_ENOMEM 12
#define NB_EFAULT 14
#define NB_EBUSY 16
#define NB_EEXIST 17
#define NB_ENODEV 19
#define NB_EINVAL 22
#define NB_ENOSPC 28
#define NB_ERANGE 34
#define NB_EDQUOT 122

/* Allocation context: passed by every caller, never guessed by the core. */
enum nb_ctx {
	NB_CTX_ATOMIC = 0, /* may not sleep: a spinlock or preemption-off section is held */
	NB_CTX_SLEEP = 1,  /* process context, may sleep and reschedule */
};

/*
 * Lock storage lives inside mm_core's objects; its layout is the environment's. 128 bytes is
 * enough for a Linux spinlock_t with lockdep and for a pthread mutex; each side checks that.
 */
struct nb_env_lock {
	unsigned char opaque[128];
} __attribute__((aligned(16)));

#define NB_LOG_ERR 3
#define NB_LOG_WARN 4
#define NB_LOG_INFO 6
#define NB_LOG_DEBUG 7

#ifdef __cplusplus
extern "C" {
#endif

/* Topology. CPU ids may be sparse: ids run 0..nb_env_cpu_ids()-1, and a possible-but-absent
 * CPU reports node -1. Node ids run 0..nb_env_node_ids()-1; a node with no memory still has a
 * distance row. All atomic-safe. */
unsigned nb_env_cpu_ids(void);
unsigned nb_env_cpu_current(void);     /* the calling CPU; only a hint, it may change at once */
int nb_env_cpu_node(unsigned cpu);     /* -1 if the CPU is not possible */
unsigned nb_env_node_ids(void);
int nb_env_node_distance(int from, int to); /* SLIT units: 10 = local */

/*
 * Per-CPU ownership, what Linux's local_lock gives: the per-CPU caches are used by their CPU
 * only, so the fast path needs no lock of its own, only to stay on its CPU and keep other
 * tasks on that CPU out.
 *
 * nb_env_cpu_own() pins the caller to its CPU and returns the CPU id; until
 * nb_env_cpu_disown(cpu) no other caller owns that CPU. Atomic-safe; never nested, never from
 * interrupt context (mm_core is not called there). While owning, only atomic-safe calls. In
 * the lock order (below) ownership sits where NB_LOCK_PCP does: inside SPACE and HEAP,
 * outside NODE.
 *
 * nb_env_cpu_run_on(cpu, fn, arg) runs fn(arg) as the owner of `cpu` from any CPU, and
 * returns when it is done: how one CPU drains another's caches. May sleep (the kernel runs
 * fn on that CPU from a worker); NB_CTX_SLEEP only, with no lock held and nothing owned.
 */
unsigned nb_env_cpu_own(void);
void nb_env_cpu_disown(unsigned cpu);
void nb_env_cpu_run_on(unsigned cpu, void (*fn)(void *arg), void *arg);

/*
 * Locks: non-sleeping mutual exclusion (a spinlock in the kernel). Atomic-safe.
 *
 * Each lock belongs to a class, one per kind of lock (lockdep's lock class): locks of one
 * class are never nested, and classes nest in one order only, outermost first:
 * SPACE, then HEAP or PCP, then NODE (a per-CPU cache refills from its node while its CPU is
 * owned). The kernel gives each class its own lockdep key; the simulation checks both rules.
 */
enum nb_lock_class {
	NB_LOCK_SPACE = 0, /* nb::Space: one open file's ranges and table */
	NB_LOCK_HEAP = 1,  /* nb::KHeap: one node's small-object heap */
	NB_LOCK_PCP = 2,   /* not a lock: where owning a CPU (nb_env_cpu_own) sits in the order */
	NB_LOCK_NODE = 3,  /* nb::Node: one node's free lists */
	NB_LOCK_CLASSES = 4,
};
void nb_env_lock_init(struct nb_env_lock *l, enum nb_lock_class cls);
void nb_env_lock_destroy(struct nb_env_lock *l);
void nb_env_lock_acquire(struct nb_env_lock *l);
void nb_env_lock_release(struct nb_env_lock *l);

/*
 * Whose metadata it is. The module's own tables (built at load, sized by the machine) are
 * NB_META_CORE. What a file's requests make (its space, range records, extent arrays, range
 * index) is NB_META_USER: the kernel charges it to the memory cgroup of the task that asks
 * (__GFP_ACCOUNT), so a file cannot use host memory beyond its cgroup's limit.
 */
enum nb_meta_owner {
	NB_META_CORE = 0,
	NB_META_USER = 1,
};

/*
 * Metadata memory (descriptors, per-CPU tables), placed on `node` when possible (-1: any).
 * Never pool memory. Returns zeroed memory or NULL. NB_CTX_ATOMIC callers get at most one page.
 */
void *nb_env_meta_alloc(nb_size_t bytes, int node, enum nb_ctx ctx, enum nb_meta_owner owner);
void nb_env_meta_free(void *p, nb_size_t bytes);

/*
 * Pool frames as memory: the address of frame `pfn`, valid for the frames that follow it in
 * the same region (the kernel's direct map; the simulation's backing). Atomic-safe.
 */
void *nb_env_frame_addr(nb_u64 pfn);

/*
 * Copies nr whole frames from src to dst (both from nb_env_frame_addr, same region): the
 * platform's page-copy primitive (copy_page in the kernel, which picks the CPU's fastest
 * page copy; memcpy in the simulation). Atomic-safe; the caller bounds nr between
 * reschedule points.
 */
void nb_env_copy_frames(void *dst, const void *src, nb_u64 nr);

/* Called between chunks of long work in NB_CTX_SLEEP only (cond_resched in the kernel). */
void nb_env_resched(void);
/* Nonzero when the caller should stop long work early (a fatal signal is pending). */
int nb_env_should_abort(void);

/* Logging and formatting: printk/printf format subset (%d %u %ld %lu %lld %llu %llx %s %c %%). */
void nb_env_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int nb_env_snprintf(char *buf, nb_size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An mm_core invariant is broken. The kernel WARNs once; tests abort. Returns. */
void nb_env_assert_fail(const char *expr, const char *file, int line);

#ifdef __cplusplus
}
#endif

#define NB_ASSERT(e) \
	((e) ? (void)0 : nb_env_assert_fail(#e, __FILE__, __LINE__))

#endif /* NB_ENV_H */
