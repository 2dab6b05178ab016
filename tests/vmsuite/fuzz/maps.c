// SPDX-License-Identifier: GPL-2.0
/*
 * maps.c - nb_fuzz's mappings of private blocks: map and unmap, mmaps that must fail, partial
 * munmap, mremap, mprotect, madvise, verification, closing the file under its mappings, dup.
 */
#include "fuzz.h"

/* ---- mappings of private blocks --------------------------------------------------------- */

/* Map the block (whole, or a random page-aligned window of it). Returns 0 on success. */
int map_block(struct block *b, int whole)
{
	uint64_t off = 0, len = b->size;
	int prot = PROT_READ | PROT_WRITE;
	void *p;

	if (b->map || b->orphan)
		return -1;
	if (!whole && chance(40)) {
		off = rnd_below(b->size / PAGE) * PAGE;
		len = (1 + rnd_below((b->size - off) / PAGE)) * PAGE;
	}
	if (chance(10))
		prot |= PROT_EXEC;
	p = mmap(NULL, len, prot, MAP_SHARED, self->fd, b->offset + off);
	if (p == MAP_FAILED && prot & PROT_EXEC) {
		prot &= ~PROT_EXEC;
		p = mmap(NULL, len, prot, MAP_SHARED, self->fd, b->offset + off);
	}
	count(OP_MAP, p == MAP_FAILED ? errno : 0);
	if (p == MAP_FAILED) {
		if (errno != ENOMEM)
			fail("mmap", "mmap of live block %#llx +%#llx len %#llx: %s",
			     (unsigned long long)b->offset, (unsigned long long)off,
			     (unsigned long long)len, strerror(errno));
		return -1;
	}
	b->map = p;
	b->map_off = off;
	b->map_len = len;
	b->prot_ro = 0;
	return 0;
}

void op_map(void)
{
	struct block *b = pick_live();

	if (!b)
		return;
	if (b->map) {
		verify_block(b, "before munmap");
		munmap(b->map, b->map_len);
		b->map = NULL;
		return;
	}
	if (!map_block(b, 0)) {
		if (!b->written)
			fill_block(b);
		else
			verify_block(b, "after remap");
	}
}

/* mmaps that must fail: offsets that are no block, past a block's end, private, unaligned. */
void op_map_bad(void)
{
	struct block *b = pick_live();
	uint64_t off, len = PAGE;
	int flags = MAP_SHARED, kind = rnd_below(6);
	const char *what;
	void *p;

	switch (kind) {
	case 0: off = (1ULL << 40) + rnd_below(1 << 20) * PAGE; what = "offset past every block"; break;
	case 1:
		if (!b)
			return;
		off = b->offset; len = b->size + PAGE; what = "longer than the block"; break;
	case 2:
		if (!b)
			return;
		off = b->offset; flags = MAP_PRIVATE; what = "MAP_PRIVATE"; break;
	case 3:
		if (!b)
			return;
		off = b->offset + b->size - PAGE; len = 2 * PAGE; what = "across the block end"; break;
	case 4: off = b ? b->offset : 0; len = 0; what = "zero length"; break;
	default: off = b ? b->offset : 0; len = 1ULL << (47 + rnd_below(10)); what = "huge length"; break;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, self->fd, off);
	count(OP_MAP_BAD, p == MAP_FAILED ? errno : 0);
	if (p != MAP_FAILED) {
		fail("mmap-bad", "mmap %s (offset %#llx len %#llx) succeeded", what,
		     (unsigned long long)off, (unsigned long long)len);
		munmap(p, len);
	}
}

/* Unmap the head or tail of a mapping (partial munmap splits the VMA). */
void op_unmap_part(void)
{
	struct block *b = pick_live();
	uint64_t cut;

	if (!b || !b->map || b->map_len < 2 * PAGE)
		return;
	cut = (1 + rnd_below(b->map_len / PAGE - 1)) * PAGE;
	if (chance(50)) {
		count(OP_UNMAP_PART, munmap(b->map, cut) ? errno : 0);
		b->map += cut;
		b->map_off += cut;
	} else {
		count(OP_UNMAP_PART, munmap(b->map + b->map_len - cut, cut) ? errno : 0);
	}
	b->map_len -= cut;
	verify_block(b, "after partial munmap");
}

void op_mremap(void)
{
	struct block *b = pick_live();
	void *p, *dst, *dst_p;

	if (!b || !b->map)
		return;
	switch (rnd_below(3)) {
	case 0: /* grow: VM_DONTEXPAND refuses */
		p = mremap(b->map, b->map_len, b->map_len + PAGE, MREMAP_MAYMOVE);
		count(OP_MREMAP, p == MAP_FAILED ? errno : 0);
		if (p != MAP_FAILED) {
			fail("mremap", "growing a device mapping succeeded");
			b->map = p;
		}
		break;
	case 1: /* shrink */
		if (b->map_len < 2 * PAGE)
			return;
		p = mremap(b->map, b->map_len, b->map_len - PAGE, 0);
		count(OP_MREMAP, p == MAP_FAILED ? errno : 0);
		if (p != MAP_FAILED)
			b->map_len -= PAGE;
		break;
	default: /* move to a fresh address */
		dst = mmap(NULL, b->map_len + 2 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dst == MAP_FAILED)
			return;
		p = (char *)dst + (chance(50) ? 0 : PAGE * (1 + rnd_below(511)));
		dst_p = p;
		p = mremap(b->map, b->map_len, b->map_len, MREMAP_MAYMOVE | MREMAP_FIXED, dst_p);
		count(OP_MREMAP, p == MAP_FAILED ? errno : 0);
		/* Give back the reservation around the target. The target itself is ours only if
		 * the move worked: a failed MREMAP_FIXED may already have unmapped it (the kernel
		 * clears the target first, then finds e.g. that madvise split the mapping into
		 * several VMAs: EFAULT), and another thread's mmap may sit there by now. So it is
		 * left alone: at worst a PROT_NONE reservation stays. */
		if ((char *)dst_p > (char *)dst)
			munmap(dst, (char *)dst_p - (char *)dst);
		munmap((char *)dst_p + b->map_len,
		       (char *)dst + b->map_len + 2 * MiB - ((char *)dst_p + b->map_len));
		if (p == MAP_FAILED)
			return;
		b->map = p;
		break;
	}
	verify_block(b, "after mremap");
}

void op_mprotect(void)
{
	struct block *b = pick_live();
	int sig = 0;

	if (!b || !b->map)
		return;
	if (!b->prot_ro && chance(25)) {
		/* Part of the mapping and back: splits the VMA, and a huge entry with it. */
		uint64_t off = rnd_below(b->map_len / PAGE) * PAGE;
		uint64_t len = (1 + rnd_below((b->map_len - off) / PAGE)) * PAGE;

		count(OP_MPROTECT, mprotect(b->map + off, len, PROT_READ) ? errno : 0);
		count(OP_MPROTECT, mprotect(b->map + off, len, PROT_READ | PROT_WRITE) ? errno : 0);
		verify_block(b, "after mprotect of part");
		return;
	}
	if (!b->prot_ro && chance(60)) {
		if (mprotect(b->map, b->map_len, PROT_READ)) {
			count(OP_MPROTECT, errno);
			return;
		}
		count(OP_MPROTECT, 0);
		b->prot_ro = 1;
		verify_block(b, "after mprotect(PROT_READ)");
		/* Store to a word the fill wrote (the first of a page): its frame is there. The
		 * mapping's first word may be a page of a demand range nobody touched yet, whose
		 * first touch may legitimately SIGBUS when the pools or the quota are exhausted. */
		uint64_t lo = b->wr_off > b->map_off ? b->wr_off : b->map_off;

		if (b->written && lo < b->wr_off + b->wr_len && lo < b->map_off + b->map_len) {
			volatile uint64_t *w = word_at(b, lo);

			TOUCH(sig, *w = *w);
			if (sig != SIGSEGV) {
				char vma[160];

				fail("mprotect", "store to a PROT_READ device mapping %p (block "
				     "%#llx +%#llx): %s %d code %d addr %p; VMA: %s",
				     (void *)w, (unsigned long long)b->offset,
				     (unsigned long long)b->map_off, sig ? "signal" : "no SIGSEGV",
				     sig, self->sig_code, self->sig_addr,
				     maps_line((uintptr_t)w, vma, sizeof(vma)));
			}
		}
		return;
	}
	count(OP_MPROTECT, mprotect(b->map, b->map_len, PROT_READ | PROT_WRITE |
				    (chance(30) ? PROT_EXEC : 0)) ? errno : 0);
	b->prot_ro = mprotect(b->map, b->map_len, PROT_READ | PROT_WRITE) != 0;
	verify_block(b, "after mprotect(PROT_WRITE)");
}

void op_madvise(void)
{
	static const int advice[] = { MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
				      MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK,
				      MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE,
				      MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP,
				      MADV_WIPEONFORK, MADV_KEEPONFORK, 20 /* COLD */,
				      21 /* PAGEOUT */, 22 /* POPULATE_READ */,
				      23 /* POPULATE_WRITE */, 25 /* COLLAPSE */, 77 };
	struct block *b = pick_live();
	uint64_t off, len;
	int adv = advice[rnd_below(sizeof(advice) / sizeof(advice[0]))];

	if (!b || !b->map)
		return;
	off = rnd_below(b->map_len / PAGE) * PAGE;
	len = (1 + rnd_below((b->map_len - off) / PAGE)) * PAGE;
	count(OP_MADVISE, madvise(b->map + off, len, adv) ? errno : 0);
	/* The mapping is of the file: whatever the advice, the data must still be there. */
	verify_block(b, "after madvise");
}

void op_verify(void)
{
	struct block *b = pick_block();

	if (b && b->map && !b->written && !b->prot_ro)
		fill_block(b);
	else if (b)
		verify_block(b, "verify");
	if (b && b->orphan && chance(30))
		drop_block(b); /* its file's last reference goes with the mapping */
}

/* Close the private file: unmapped blocks die, mapped ones live on through their mapping. */
void op_reopen(void)
{
	int fd;

	/* Open first: with every pool full, open() itself fails (ENOMEM: a file's page-table
	 * root comes from the pools), and this thread must keep a file. */
	fd = open(NB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	count(OP_REOPEN, fd < 0 ? errno : 0);
	if (fd < 0) {
		if (errno != ENOMEM)
			fail("reopen", "open: %s", strerror(errno));
		return;
	}
	if (close(self->fd))
		fail("close", "close: %s", strerror(errno));
	for (int i = self->nblocks - 1; i >= 0; i--) {
		struct block *b = &self->blocks[i];

		if (!b->map)
			*b = self->blocks[--self->nblocks];
		else
			b->orphan = 1;
	}
	for (int i = 0; i < self->nblocks; i++)
		verify_block(&self->blocks[i], "after close (mapping keeps the file)");
	self->fd = fd;
}

/* The same file through a second descriptor: it sees the same blocks. */
void op_dup(void)
{
	struct block *b = pick_live();
	int d = dup(self->fd);
	struct nb_query q = { 0 };

	if (d < 0)
		return;
	if (b) {
		q.offset = b->offset;
		if (dev_ioctl(d, NB_IOC_QUERY, &q) || q.size != b->size)
			fail("dup", "QUERY through a dup of the file: size %#llx",
			     (unsigned long long)q.size);
	}
	close(d);
	/* And replace a chaos file by a new one: the old one's last ioctl user may still run.
	 * One in four is read-only: everything that changes pool memory through it is EBADF. */
	d = open(NB_DEVICE_PATH, (chance(25) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (d >= 0) {
		dup2(d, chaos_fd[rnd_below(CHAOS_FDS)]);
		close(d);
	}
}
