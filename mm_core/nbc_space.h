/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbc_space.h - per-open-file address spaces: the C API the kernel shim drives.
 *
 * One struct nbc_space per open file description. It maps the file's offset space (48 bits,
 * the mmap offset) to pool frames through a software x86-64 page table (paging.h) and decides
 * what every user fault gets. Two kinds of ranges live in it:
 *   - blocks (nbc_space_alloc): frames allocated at once, largest buddy blocks first;
 *   - reserved ranges (nbc_space_reserve): no frames until first touch (nbc_space_fault).
 * Offsets come from a cursor that only moves up, so an offset is never reused while the space
 * lives: a stale mapping of a freed range can never alias a newer one.
 *
 * Everything returns 0 or -NB_E* (Linux errno values). Context is explicit (enum nb_ctx).
 *
 * The zap protocol (the shim's half of "no stale PTE ever points at a freed frame"):
 * nbc_space_free_begin and nbc_space_migrate_begin return the offset range the shim must zap
 * (unmap_mapping_range) BEFORE calling the matching _finish, which is when frames go back to
 * the pool or get copied. A fault that obtained a pfn before _begin may still be inserting it;
 * the shim must make the zap wait for such faults, e.g. a per-file rw_semaphore taken for
 * read around nbc_space_fault + vmf_insert_*, and for write around _begin + zap. Faults that
 * arrive during a migration get -NB_EAGAIN: drop locks, wait (a per-file waitqueue woken after
 * _finish) and retry. No fault path ever waits for the copy inside mm_core. A migration may
 * instead hand _finish a mapper (nbc_space_migrate_finish_mapped) and skip the whole-range
 * zap: then the mapper unmaps each batch before its copy and maps the new frames after.
 */
#ifndef NBC_SPACE_H
#define NBC_SPACE_H

#include "nbc_core.h"

/* Range flags: the same bits as the uapi's NB_ALLOC_* (the shim may static_assert that). */
#define NBC_SPACE_CONTIG (1u << 0)   /* alloc: one physically contiguous range */
#define NBC_SPACE_LOW4G (1u << 1)    /* frames below 4 GiB only */
#define NBC_SPACE_HUGE_2M (1u << 2)  /* alloc: size rounded up to 2 MiB; reserve: 2 MiB frames */
#define NBC_SPACE_HUGE_1G (1u << 3)  /* alloc: size rounded up to 1 GiB; reserve: 1 GiB frames */
#define NBC_SPACE_POPULATE (1u << 4) /* reserve: allocate every frame now */
#define NBC_SPACE_NOZERO (1u << 5)   /* skip zeroing (the shim allows it to CAP_SYS_ADMIN only) */
#define NBC_SPACE_FLAGS_ALL 0x3fu

#define NBC_SPACE_NO_QUOTA (~0ull)
/* Ranges one space may hold at once (blocks and reserved ranges): each costs unswappable
 * metadata, so a file cannot grow it without bound. One more: -NB_ENOSPC. */
#define NBC_SPACE_MAX_RANGES (1u << 16)

/* Range kinds and states, as nbc_space_query reports them. */
#define NBC_SPACE_KIND_BLOCK 0
#define NBC_SPACE_KIND_RESERVED 1
#define NBC_SPACE_STATE_LIVE 0
#define NBC_SPACE_STATE_DYING 1     /* free begun: faults get -NB_EFAULT */
#define NBC_SPACE_STATE_FREEING 2
#define NBC_SPACE_STATE_MIGRATING 3 /* faults get -NB_EAGAIN */
#define NBC_SPACE_STATE_PUBLISHING 4 /* a block being mapped: not yet returned, not mappable */

struct nbc_space;

/* What the shim inserts for one fault. */
struct nbc_space_fault_result {
	nb_u64 offset;   /* first offset the entry maps: offset rounded down to 2^order frames */
	nb_u64 pfn;      /* frame at that offset; aligned to 2^order */
	nb_u32 order;    /* 0 (PTE), 9 (PMD) or 18 (PUD), at most the max_order asked for */
	nb_u32 writable; /* 1: map writable */
	nb_u32 block;    /* 1: a block's frame: its neighbours are there (nbc_space_fault_around) */
	nb_u32 pad;
};

/* Frames already mapped around a fault (nbc_space_fault_around): page i of [offset,
 * offset + nr_pages * 4 KiB) is frame pfn[i], NBC_SPACE_NO_PFN where nothing is mapped. */
#define NBC_SPACE_AROUND_PAGES 16 /* 64 KiB: Linux's fault_around_bytes */
#define NBC_SPACE_NO_PFN (~0ull)
struct nbc_space_around {
	nb_u64 offset;
	nb_u32 nr_pages;
	nb_u32 writable; /* bit i: page i is mapped writable */
	nb_u64 pfn[NBC_SPACE_AROUND_PAGES];
};

/* One range, for NB_IOC_QUERY. */
struct nbc_space_info {
	nb_u64 offset;          /* start of the range (the handle) */
	nb_u64 size;            /* bytes */
	nb_u32 flags;           /* NB_SPACE_* it was made with */
	nb_u32 kind;            /* NB_SPACE_KIND_* */
	nb_u32 state;           /* NB_SPACE_STATE_* */
	nb_i32 node;            /* node of the first populated frame, -1 if none */
	nb_u64 first_pfn;       /* pfn of the first populated frame, ~0 if none */
	nb_u32 max_frame_order; /* largest frame backing it (0 if none) */
	nb_u32 pad;
	nb_u64 populated_bytes;
	nb_u64 leaf_bytes[3];   /* bytes mapped in the space's table by 4 KiB, 2 MiB, 1 GiB leaves */
	nb_u64 frames_by_order[NBC_ORDER_LIMIT + 1]; /* frames (buddy blocks) by order; contig: 0 */
	nb_u64 node_bytes[NBC_MAX_NODES];            /* populated bytes per node */
};

#ifdef __cplusplus
extern "C" {
#endif

/* A new empty space; its table pages and metadata come from `node` (-1: the caller's). */
int nbc_space_create(struct nbc_core *core, int node, enum nb_ctx ctx, struct nbc_space **out);
/* Free every range, every table page and the space (close). No other call may run. Then
 * drain the per-CPU caches (nbc_pcp_drain), so that what the space held merges back into
 * large blocks before anyone allocates again. */
void nbc_space_destroy(struct nbc_space *s, enum nb_ctx ctx);

/*
 * Allocate `bytes` (rounded up to 4 KiB, or to 2 MiB / 1 GiB with HUGE_*) of zeroed frames
 * under `pol` (NULL = local) and map them at a new offset aligned to the largest leaf. Frames
 * are order-18, then order-9, then order-0 buddy blocks (1 GiB + 6 MiB + 12 KiB = one 1 GiB,
 * three 2 MiB and three 4 KiB frames), or one nbc_alloc_contig range with CONTIG.
 *
 * Without CONTIG, sizes are a preference, as demand faults treat them: when no block of an
 * order is free on any node the policy allows, the rest of the range is built from the next
 * order down (a 1 GiB chunk from 2 MiB frames, a 2 MiB chunk from 4 KiB frames), and larger
 * orders are not tried again for this range. HUGE_2M / HUGE_1G guarantee the rounded size and
 * the preference, not the frame size: nbc_space_query's frames_by_order and max_frame_order say
 * what was used. CONTIG is strict: one physically contiguous range, or -NB_ENOMEM.
 *
 * `pol` goes through nbc_policy_normalize first: an empty BIND mask is `node` (or the calling
 * CPU's node), an empty INTERLEAVE mask every node with pool memory.
 * INTERLEAVE goes round its mask one frame at a time, continuing across the space's
 * allocations: four one-frame ALLOCs over {0, 1} land on 0, 1, 0, 1 (pol->il_next is ignored).
 *
 * -NB_ENOMEM when even 4 KiB frames run out; -NB_EDQUOT if a node's quota would be exceeded;
 * A request larger than the pools the policy allows (-NB_ENOMEM) or than what is left of the
 * quota on them (-NB_EDQUOT) is refused before anything is allocated for it.
 *
 * -NB_ENOSPC when the offset space is used up or the space holds NBC_SPACE_MAX_RANGES ranges;
 * -NB_EINTR if a fatal signal interrupted zeroing
 * (SLEEP only). All or nothing: on any error the space holds no frame of the request.
 */
int nbc_space_alloc(struct nbc_space *s, nb_u64 bytes, const struct nbc_policy *pol,
		    unsigned flags, enum nb_ctx ctx, nb_u64 *offset_out);
/*
 * Reserve `bytes` (rounded up to 4 KiB) of offset space with no frames; faults populate it
 * under `pol` (normalised as for nbc_space_alloc; LOCAL: the faulting CPU's node; BIND;
 * PREFERRED; INTERLEAVE by offset, the
 * range's first frame on the node after the one the space's previous INTERLEAVE frame took).
 * HUGE_2M / HUGE_1G: the offset is aligned to that size and aligned chunks lying wholly
 * inside the range get 2 MiB / 1 GiB frames (4 KiB when none is free). POPULATE: allocate
 * every frame now, placed as if CPU `cpu` touched them in order; a MIGRATE or FREE of the
 * range by another caller (who guessed the offset) before this returns ends that early; a
 * fatal signal (SLEEP only) ends it with -NB_EINTR and nothing kept.
 */
int nbc_space_reserve(struct nbc_space *s, nb_u64 bytes, const struct nbc_policy *pol,
		      unsigned flags, unsigned cpu, enum nb_ctx ctx, nb_u64 *offset_out);

/*
 * The guide's paging_handle_fault: what to insert for a fault at `offset` by CPU `cpu`.
 * max_order (0, 9 or 18) is the largest entry the VMA's alignment allows; a larger frame is
 * returned as its 4 KiB / 2 MiB sub-frame. First touch of a reserved range allocates and
 * zeroes the frame. -NB_EFAULT: no live range there, or a write to a read-only range (the
 * shim sends SIGBUS). -NB_EAGAIN: the range is migrating, retry after waiting. -NB_ENOMEM /
 * -NB_EDQUOT: no frame for a first touch.
 */
int nbc_space_fault(struct nbc_space *s, nb_u64 offset, int write, unsigned cpu,
		    unsigned max_order, enum nb_ctx ctx, struct nbc_space_fault_result *out);

/*
 * Fault-around, after a fault at `offset` was answered: the frames mapped next to it that
 * the shim may insert too -- the window of NBC_SPACE_AROUND_PAGES pages (counted from the
 * range's start, so a 64 KiB block is one window wherever it lies) that holds `offset`,
 * clipped to [lo, hi) (what the VMA covers; 4 KiB aligned) and to the range. A block's frames
 * need not be contiguous (below 2 MiB they are 4 KiB frames): each page has its own pfn.
 * Only blocks, whose frames are all there from ALLOC on; a reserved range's neighbours are
 * left to their own first touches (-NB_ENOENT). -NB_EFAULT / -NB_EAGAIN as for
 * nbc_space_fault; -NB_EINVAL if offset is not in [lo, hi). One hold of the space's lock;
 * atomic-safe.
 */
int nbc_space_fault_around(struct nbc_space *s, nb_u64 offset, nb_u64 lo, nb_u64 hi,
			   struct nbc_space_around *out);

/*
 * Free, phase 1: the range starting exactly at `offset` dies; faults on it now fail with
 * -NB_EFAULT. Returns the offsets to zap. -NB_ENOENT: no such range (or already dying),
 * -NB_EBUSY: migrating, -NB_EAGAIN: being moved by compaction (nbc_compact.h; wait for it
 * as a fault does, then retry). Atomic-safe.
 */
int nbc_space_free_begin(struct nbc_space *s, nb_u64 offset, nb_u64 *start, nb_u64 *len);
/* Free, phase 2, after the zap: frames go back to the pool. A range of 2 MiB or more that
 * returned at least as many buddy blocks as there are per-CPU caches (CPU ids x nodes) also
 * drains them. -NB_EINVAL if not begun. */
int nbc_space_free_finish(struct nbc_space *s, nb_u64 offset, enum nb_ctx ctx);
/* Both phases, calling zap(arg, start, len) in between when zap is not NULL. */
int nbc_space_free(struct nbc_space *s, nb_u64 offset, enum nb_ctx ctx,
		   void (*zap)(void *arg, nb_u64 start, nb_u64 len), void *arg);

/*
 * Migrate, phase 1: the range starting at `offset` starts moving to `node`; faults on it get
 * -NB_EAGAIN until phase 2 ends. Returns the offsets to zap (unless phase 2 gets a mapper).
 * -NB_EBUSY if not live, -NB_EAGAIN if being moved by compaction (wait, retry), -NB_EINVAL
 * if `node` has no pool. Atomic-safe.
 */
int nbc_space_migrate_begin(struct nbc_space *s, nb_u64 offset, int node, nb_u64 *start,
			    nb_u64 *len);
/*
 * Migrate, phase 2, after the zap: copy each frame not yet on the node into a frame of the
 * same order there (huge stays huge), repoint the table, free the old frame; the range is
 * live again whatever happened. *bytes_moved counts what moved even on error (-NB_ENOMEM,
 * -NB_EDQUOT: the rest stays where it was).
 */
int nbc_space_migrate_finish(struct nbc_space *s, nb_u64 offset, enum nb_ctx ctx,
			     nb_u64 *bytes_moved);
/*
 * Migration that leaves the range mapped. Phase 2 with a mapper replaces the zap of the whole
 * range after phase 1 (the shim still makes phase 1 wait for faults that are inserting an
 * entry). Frames move in batches of at most 2 MiB (or one larger frame): for each batch,
 * unmap(arg, offset, len) runs before its frames are copied, so no user store can land in a
 * frame after its copy began; map(arg, offset, pfn, nr_frames) runs once per frame of the
 * batch after the table points at its new (or, if it could not move, its old) frame, so the
 * shim can put the user's entries back at once and nothing needs to fault. Faults still get
 * -NB_EAGAIN until phase 2 ends. Both callbacks run with no lock of the space held, in the
 * caller's context (they may sleep when ctx is NB_CTX_SLEEP).
 */
struct nbc_space_mapper {
	void (*unmap)(void *arg, nb_u64 offset, nb_u64 len);
	void (*map)(void *arg, nb_u64 offset, nb_u64 pfn, nb_u64 nr_frames);
	void *arg;
};
int nbc_space_migrate_finish_mapped(struct nbc_space *s, nb_u64 offset, enum nb_ctx ctx,
				    const struct nbc_space_mapper *m, nb_u64 *bytes_moved);
/* Both phases, calling zap(arg, start, len) in between when zap is not NULL. */
int nbc_space_migrate(struct nbc_space *s, nb_u64 offset, int node, enum nb_ctx ctx,
		      void (*zap)(void *arg, nb_u64 start, nb_u64 len), void *arg,
		      nb_u64 *bytes_moved);

/* The range containing `offset` (any offset inside it): offset, size, flags, kind, state and
 * its first frame (node, first_pfn); the counters are 0. O(log ranges), whatever the range's
 * size: what mmap and an ALLOC's reply need. Atomic-safe. -NB_ENOENT if none. */
int nbc_space_query(struct nbc_space *s, nb_u64 offset, struct nbc_space_info *out);
/* The same with every counter (frames by order, bytes per node, bytes per leaf size): a walk
 * over the range's extents and table, done in bounded batches with the space's lock dropped
 * between them, so a concurrent migration or first touch may be seen half-way. */
int nbc_space_query_full(struct nbc_space *s, nb_u64 offset, struct nbc_space_info *out);
/* Largest mapping size (4 KiB, 2 MiB or 1 GiB) usable somewhere in [offset, offset+len):
 * the alignment a get_unmapped_area hook should give the user address (modulo offset). */
nb_u64 nbc_space_huge_align(struct nbc_space *s, nb_u64 offset, nb_u64 len);

/* Limit this space's populated bytes on `node` (NBC_SPACE_NO_QUOTA: no limit, the default).
 * Lowering it below the current use refuses new frames only. -NB_EINVAL for a bad node. */
int nbc_space_set_quota(struct nbc_space *s, int node, nb_u64 bytes);
nb_u64 nbc_space_quota(struct nbc_space *s, int node);
/* Bytes of frames this space holds on `node` (blocks and populated reserved pages). */
nb_u64 nbc_space_node_bytes(struct nbc_space *s, int node);
/* Table pages the space's page table uses now (4 KiB each, pool frames on its node). */
nb_u64 nbc_space_table_pages(struct nbc_space *s);

#ifdef __cplusplus
}
#endif

#endif /* NBC_SPACE_H */
