/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kheap.h - the guide's kheap_init/kalloc/kfree: a small-object heap carved from pool frames.
 *
 * Every heap page starts with a 64-byte SlabHeader, so kfree finds the slab by rounding the
 * pointer down to its page: no lookup table, no per-object header. Small sizes come from
 * size classes within one page; the classes divide the 4032 bytes after the header evenly
 * where they can (4032 = 2 x 2016 = 3 x 1344 = 4 x 1008 = 6 x 672 ...), which is why the
 * largest class is 2016 and not 2048. Larger requests (up to 2^max_order frames) get their
 * own buddy block with the same header in front.
 *
 * Unlike the buddy allocator, the heap writes into the frames it owns (headers, free-object
 * links): they are its frames, allocated from the pool like anyone else's.
 */
#ifndef NB_KHEAP_H
#define NB_KHEAP_H

#include "base.h"

namespace nb {

class Core;
class KHeap;

constexpr unsigned kHeapClasses = 15;
constexpr u32 kHeapClassSize[kHeapClasses] = {16,  32,  48,  64,  96,  128,  192, 256,
					       336, 448, 576, 672, 1008, 1344, 2016};
constexpr u32 kSlabHeaderSize = 64;
constexpr u32 kHeapMaxSmall = 2016;
constexpr u32 kSlabMagic = 0x6e62736cu;  /* "nbsl" */
constexpr u32 kLargeMagic = 0x6e626c67u; /* "nblg" */

struct SlabHeader {
	u32 magic;
	u16 cls;        /* size class (slab) */
	u16 inuse;      /* objects handed out (slab) */
	u16 capacity;   /* objects per page (slab) */
	u16 carved;     /* objects ever handed out from the bump area (slab) */
	u32 order;      /* block order (large) */
	u64 pfn;
	void *free;     /* freed objects, linked through their first word */
	SlabHeader *next;
	SlabHeader *prev;
	KHeap *owner;
};
static_assert(sizeof(SlabHeader) <= kSlabHeaderSize, "slab header must fit its 64 bytes");

/* Size class for 1 <= size <= kHeapMaxSmall: a table by 16-byte granule, built at compile
 * time (no constructor runs). Granule g covers sizes 16g-15 .. 16g; size 100 -> g 7 -> 128. */
struct HeapClassTable {
	u8 cls[kHeapMaxSmall / 16 + 1];
	constexpr HeapClassTable() : cls() {
		unsigned c = 0;
		for (unsigned g = 0; g <= kHeapMaxSmall / 16; g++) {
			while (kHeapClassSize[c] < g * 16)
				c++;
			cls[g] = static_cast<u8>(c);
		}
	}
};
inline constexpr HeapClassTable kHeapClassTable{};
inline unsigned HeapClass(usize size) { return kHeapClassTable.cls[(size + 15) / 16]; }
static_assert(kHeapClassSize[kHeapClassTable.cls[(100 + 15) / 16]] == 128, "worked example");
static_assert(kHeapClassSize[kHeapClassTable.cls[(2016 + 15) / 16]] == 2016, "largest class");

/* Intrusive list of slabs; all-zero is a valid empty list. */
struct SlabList {
	SlabHeader *first;

	void Push(SlabHeader *h) {
		h->prev = nullptr;
		h->next = first;
		if (first != nullptr)
			first->prev = h;
		first = h;
	}
	void Remove(SlabHeader *h) {
		if (h->prev != nullptr)
			h->prev->next = h->next;
		else
			first = h->next;
		if (h->next != nullptr)
			h->next->prev = h->prev;
		h->next = h->prev = nullptr;
	}
};

/* The heap of one node. */
class KHeap {
public:
	void Init(Core *core, int node);
	/* Return cached empty slabs to the buddy allocator (teardown). */
	void ReleaseEmpty() TA_EXCL(lock_);
	void *AllocSmall(usize size, nb_ctx ctx) TA_EXCL(lock_);
	/* Logs and ignores a pointer that is no live object of h, a double free included. */
	void FreeSmall(SlabHeader *h, void *p) TA_EXCL(lock_);
	/* Slabs with live objects (for teardown checks and tests). */
	u64 live_objects() TA_EXCL(lock_);

private:
	void *TakeLocked(SlabHeader *h) TA_REQ(lock_);
	/* p is on h's free list (a double free). */
	bool IsFreeLocked(const SlabHeader *h, const void *p) TA_REQ(lock_);

	Lock lock_;
	Core *core_;
	int node_;
	SlabList partial_[kHeapClasses] TA_GUARDED(lock_); /* slabs with free objects */
	SlabHeader *empty_[kHeapClasses] TA_GUARDED(lock_); /* one spare empty slab per class */
	u64 live_ TA_GUARDED(lock_);
};

} /* namespace nb */

#endif /* NB_KHEAP_H */
