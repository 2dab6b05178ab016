// SPDX-License-Identifier: GPL-2.0
/*
 * kheap.cpp - size-class slabs of one page each, and large blocks with a header in front.
 *
 * Object addresses, worked: a 64-byte slab page at 0x...5000 holds objects at
 * 0x5040, 0x5080, ... 0x5fc0 (63 of them); kfree(0x5a80) rounds down to 0x5000, reads the
 * header, and checks (0x5a80 - 0x5040) % 64 == 0.
 */
#include "core.h"

namespace nb {

constexpr uptr kPageMask = NBC_FRAME_SIZE - 1;

/* A freed object's second word (every class is at least 16 bytes): its address mixed with a
 * constant, so a second free of it is noticed without walking the free list. A live object
 * may hold those bytes by chance, so the tag only sends FreeSmall to the list, which decides:
 * the walk is at most one slab's objects (252), and only for a free that looks doubled. */
constexpr uptr kFreeTagSalt = 0x6e62667265656421ull; /* "nbfreed!" */
inline uptr FreeTag(const void *p) { return reinterpret_cast<uptr>(p) ^ kFreeTagSalt; }

void KHeap::Init(Core *core, int node)
{
	lock_.Init(NB_LOCK_HEAP);
	core_ = core;
	node_ = node;
}

void *KHeap::TakeLocked(SlabHeader *h)
{
	void *obj;
	if (h->free != nullptr) {
		obj = h->free;
		h->free = *static_cast<void **>(obj);
		static_cast<uptr *>(obj)[1] = 0; /* live again: no longer tagged free */
	} else {
		/* Bump area: objects never handed out are not linked, so a new slab costs one
		 * header write, not a pass over the page. */
		obj = reinterpret_cast<unsigned char *>(h) + kSlabHeaderSize +
		      static_cast<usize>(h->carved) * kHeapClassSize[h->cls];
		h->carved++;
	}
	if (++h->inuse == h->capacity)
		partial_[h->cls].Remove(h);
	live_++;
	return obj;
}

void *KHeap::AllocSmall(usize size, nb_ctx ctx)
{
	unsigned cls = HeapClass(size);
	u32 csize = kHeapClassSize[cls];
	void *obj = nullptr;
	{
		Guard g(&lock_);
		SlabHeader *h = partial_[cls].first;
		if (h == nullptr && empty_[cls] != nullptr) {
			h = empty_[cls];
			empty_[cls] = nullptr;
			partial_[cls].Push(h);
		}
		if (h != nullptr)
			obj = TakeLocked(h);
	}
	if (obj == nullptr) {
		/* New slab with the heap lock dropped: the buddy path takes its own locks. */
		nbc_policy pref = {};
		pref.mode = NBC_POLICY_PREFERRED;
		pref.node = node_;
		u64 pfn;
		if (core_->Alloc(0, &pref, 0, ctx, &pfn, nullptr) != 0)
			return nullptr;
		SlabHeader *h = static_cast<SlabHeader *>(nb_env_frame_addr(pfn));
		NB_ASSERT((reinterpret_cast<uptr>(h) & kPageMask) == 0);
		MemZero(h, kSlabHeaderSize);
		h->magic = kSlabMagic;
		h->cls = static_cast<u16>(cls);
		h->capacity = static_cast<u16>((NBC_FRAME_SIZE - kSlabHeaderSize) / csize);
		h->pfn = pfn;
		h->owner = this;
		Guard g(&lock_);
		partial_[cls].Push(h);
		obj = TakeLocked(h);
	}
	MemZero(obj, csize);
	return obj;
}

bool KHeap::IsFreeLocked(const SlabHeader *h, const void *p)
{
	if (static_cast<const uptr *>(p)[1] != FreeTag(p))
		return false;
	for (void *q = h->free; q != nullptr; q = *static_cast<void **>(q))
		if (q == p)
			return true;
	return false;
}

/* Everything is read under the lock: `carved` moves with every allocation from the bump
 * area, and the slab may have been given back between KFree's look at its magic and here. */
void KHeap::FreeSmall(SlabHeader *h, void *p)
{
	const char *wrong = nullptr;
	u64 release = 0;
	{
		Guard g(&lock_);
		uptr off = reinterpret_cast<uptr>(p) - reinterpret_cast<uptr>(h) - kSlabHeaderSize;
		if (h->magic != kSlabMagic || h->owner != this || h->cls >= kHeapClasses ||
		    off % kHeapClassSize[h->cls] != 0 || off / kHeapClassSize[h->cls] >= h->carved)
			wrong = "nb: kfree of a pointer that is no heap object\n";
		else if (IsFreeLocked(h, p))
			wrong = "nb: double kfree of a heap object\n";
		if (wrong == nullptr) {
			if (h->inuse == h->capacity)
				partial_[h->cls].Push(h);
			static_cast<void **>(p)[0] = h->free;
			static_cast<uptr *>(p)[1] = FreeTag(p);
			h->free = p;
			h->inuse--;
			live_--;
			if (h->inuse == 0) {
				/* Keep one empty slab per class against alloc/free ping-pong at a
				 * page boundary; give the rest back so the heap does not hoard pool
				 * frames. */
				partial_[h->cls].Remove(h);
				if (empty_[h->cls] == nullptr) {
					empty_[h->cls] = h;
				} else {
					h->magic = 0;
					release = h->pfn + 1; /* +1: pfn 0 is a valid frame */
				}
			}
		}
	}
	if (wrong != nullptr) {
		nb_env_log(NB_LOG_ERR, "%s", wrong);
		return;
	}
	if (release != 0)
		core_->Free(release - 1, 0);
}

void KHeap::ReleaseEmpty()
{
	u64 pfns[kHeapClasses];
	unsigned n = 0;
	{
		Guard g(&lock_);
		for (unsigned c = 0; c < kHeapClasses; c++) {
			if (empty_[c] != nullptr) {
				empty_[c]->magic = 0;
				pfns[n++] = empty_[c]->pfn;
				empty_[c] = nullptr;
			}
		}
	}
	for (unsigned i = 0; i < n; i++)
		core_->Free(pfns[i], 0);
}

u64 KHeap::live_objects()
{
	Guard g(&lock_);
	return live_;
}

void *Core::KAlloc(usize size, int node, nb_ctx ctx)
{
	if (size == 0)
		return nullptr;
	if (node < 0 || !numa_.HasMemory(node)) {
		int start = node < 0 || static_cast<unsigned>(node) >= node_ids_ ? CurrentNode() : node;
		unsigned cnt;
		const u8 *fb = numa_.Fallback(start, &cnt);
		node = fb[0];
	}
	if (size <= kHeapMaxSmall)
		return heaps_[node]->AllocSmall(size, ctx);
	if (size > (NBC_FRAME_SIZE << max_order_) - kSlabHeaderSize)
		return nullptr;
	unsigned order = Log2Ceil((size + kSlabHeaderSize + NBC_FRAME_SIZE - 1) >> NBC_FRAME_SHIFT);
	nbc_policy pref = {};
	pref.mode = NBC_POLICY_PREFERRED;
	pref.node = node;
	u64 pfn;
	if (Alloc(order, &pref, 0, ctx, &pfn, nullptr) != 0)
		return nullptr;
	SlabHeader *h = static_cast<SlabHeader *>(nb_env_frame_addr(pfn));
	MemZero(h, kSlabHeaderSize + size);
	h->magic = kLargeMagic;
	h->order = order;
	h->pfn = pfn;
	return reinterpret_cast<unsigned char *>(h) + kSlabHeaderSize;
}

void Core::KFree(void *p)
{
	if (p == nullptr)
		return;
	SlabHeader *h = reinterpret_cast<SlabHeader *>(reinterpret_cast<uptr>(p) & ~kPageMask);
	if (h->magic == kSlabMagic && h->owner != nullptr) {
		h->owner->FreeSmall(h, p);
	} else if (h->magic == kLargeMagic &&
		   reinterpret_cast<uptr>(p) == reinterpret_cast<uptr>(h) + kSlabHeaderSize) {
		u64 pfn = h->pfn;
		unsigned order = h->order;
		h->magic = 0;
		if (Free(pfn, order) != 0)
			nb_env_log(NB_LOG_ERR, "nb: kfree of a large block that is not allocated\n");
	} else {
		nb_env_log(NB_LOG_ERR, "nb: kfree of a pointer the heap never returned\n");
	}
}

} /* namespace nb */
