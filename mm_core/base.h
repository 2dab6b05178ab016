/* SPDX-License-Identifier: GPL-2.0 */
/*
 * base.h - the small kernel-safe subset mm_core uses instead of std::.
 *
 * Freestanding: no libc or kernel header. Lock annotations (TA_*) are clang's thread-safety
 * attributes; GCC ignores them, clang checks them in the tests' -Wthread-safety build.
 */
#ifndef NB_BASE_H
#define NB_BASE_H

#include "env.h"

#if defined(__clang__)
#define TA_ATTR(x) __attribute__((x))
#else
#define TA_ATTR(x)
#endif
#define TA_CAP(x) TA_ATTR(capability(x))
#define TA_SCOPED TA_ATTR(scoped_lockable)
#define TA_GUARDED(x) TA_ATTR(guarded_by(x))
#define TA_PT_GUARDED(x) TA_ATTR(pt_guarded_by(x))
#define TA_REQ(...) TA_ATTR(requires_capability(__VA_ARGS__))
#define TA_ACQ(...) TA_ATTR(acquire_capability(__VA_ARGS__))
#define TA_REL(...) TA_ATTR(release_capability(__VA_ARGS__))
#define TA_EXCL(...) TA_ATTR(locks_excluded(__VA_ARGS__))
#define TA_RET_CAP(x) TA_ATTR(lock_returned(x))
#define TA_NO_ANALYSIS TA_ATTR(no_thread_safety_analysis)

namespace nb {

using u8 = nb_u8;
using u16 = nb_u16;
using u32 = nb_u32;
using u64 = nb_u64;
using i32 = nb_i32;
using i64 = nb_i64;
using usize = nb_size_t;
using uptr = nb_uptr;

/* memcpy/memset through the builtins: the compiler emits calls to the C symbols the kernel
 * exports, and we never redeclare them (hosted <string.h> declares them with throw()). */
inline void MemCopy(void *d, const void *s, usize n) { __builtin_memcpy(d, s, n); }
inline void MemZero(void *d, usize n) { __builtin_memset(d, 0, n); }

template <typename T> constexpr T Min(T a, T b) { return a < b ? a : b; }
template <typename T> constexpr T Max(T a, T b) { return a > b ? a : b; }

constexpr unsigned Ctz64(u64 x) { return static_cast<unsigned>(__builtin_ctzll(x)); }
/* floor(log2(x)) for x > 0. */
constexpr unsigned Log2Floor(u64 x) { return 63u - static_cast<unsigned>(__builtin_clzll(x)); }
/* Smallest k with 2^k >= x, x > 0. */
constexpr unsigned Log2Ceil(u64 x) { return x <= 1 ? 0 : Log2Floor(x - 1) + 1; }
/* Bit count without __builtin_popcountll (that calls libgcc's __popcountdi2 in the kernel). */
inline unsigned PopCount64(u64 x) {
	unsigned n = 0;
	for (; x != 0; x &= x - 1)
		n++;
	return n;
}

/* Relaxed atomics for counters and descriptors read outside their lock. */
template <typename T> inline T AtomicLoad(const T *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
template <typename T> inline void AtomicStore(T *p, T v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T AtomicAdd(T *p, T v) { return __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T AtomicSub(T *p, T v) { return __atomic_sub_fetch(p, v, __ATOMIC_RELAXED); }
/* Publishing a pointer to memory built before it (a segment table): the reader that sees the
 * pointer sees what it points to. */
template <typename T> inline T AtomicLoadAcquire(const T *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <typename T> inline void AtomicStoreRelease(T *p, T v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
template <typename T> inline bool AtomicCas(T *p, T expect, T desired) {
	return __atomic_compare_exchange_n(p, &expect, desired, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_RELAXED);
}

/* The env's non-sleeping lock as a capability the analysis can follow. */
class TA_CAP("mutex") Lock {
public:
	void Init(nb_lock_class cls) { nb_env_lock_init(&l_, cls); }
	void Destroy() { nb_env_lock_destroy(&l_); }
	void Acquire() TA_ACQ() { nb_env_lock_acquire(&l_); }
	void Release() TA_REL() { nb_env_lock_release(&l_); }

private:
	nb_env_lock l_;
};

class TA_SCOPED Guard {
public:
	explicit Guard(Lock *l) TA_ACQ(l) : l_(l) { l_->Acquire(); }
	~Guard() TA_REL() { l_->Release(); }
	Guard(const Guard &) = delete;
	Guard &operator=(const Guard &) = delete;

private:
	Lock *l_;
};

/* Typed metadata allocation: zeroed memory from the env, never pool memory. */
template <typename T>
inline T *MetaAlloc(usize count, int node, nb_ctx ctx, nb_meta_owner owner = NB_META_CORE) {
	return static_cast<T *>(nb_env_meta_alloc(sizeof(T) * count, node, ctx, owner));
}
template <typename T> inline void MetaFree(T *p, usize count) {
	if (p != nullptr)
		nb_env_meta_free(p, sizeof(T) * count);
}

} /* namespace nb */

#endif /* NB_BASE_H */
