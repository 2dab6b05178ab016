// SPDX-License-Identifier: GPL-2.0
/*
 * touch.c - nb_fuzz touching memory that may legitimately vanish (the signal handler behind
 * TOUCH, in fuzz.h) and the patterns it writes into private blocks and verifies.
 */
#include "fuzz.h"

/* ---- touching memory that may legitimately vanish ---------------------------------------- */

/* The /proc/self/maps line covering addr, for failure messages ("none" if unmapped). */
const char *maps_line(uintptr_t addr, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi;

	while (f && fgets(buf, (int)len, f)) {
		if (sscanf(buf, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) {
			buf[strcspn(buf, "\n")] = 0;
			fclose(f);
			return buf;
		}
	}
	if (f)
		fclose(f);
	snprintf(buf, len, "none");
	return buf;
}

void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (self && self->in_touch) {
		self->in_touch = 0;
		self->sig_code = si->si_code;
		self->sig_addr = si->si_addr;
		siglongjmp(self->jb, sig);
	}
	char buf[160];
	int n = snprintf(buf, sizeof(buf),
			 "NB-TEST-FAIL fuzz-unexpected-signal seed=%llu sig=%d addr=%p op=%s\n",
			 (unsigned long long)opt_seed, sig, si->si_addr,
			 self ? op_name[self->cur] : "-");
	if (write(1, buf, n) < 0)
		_exit(8);
	atomic_fetch_add(&G->failures, 1);
	_exit(7);
}

/* ---- patterns --------------------------------------------------------------------------- */

static uint64_t pattern(uint64_t id, uint64_t boff)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ULL ^ boff;

	return splitmix64(&x) | 1; /* never zero */
}

/* Pattern words: every word of the first page of the filled window, the first and last word
 * of each other page. Sampling keeps large blocks affordable under TCG. */
static int sampled(uint64_t win_lo, uint64_t boff)
{
	uint64_t pg = boff & ~(PAGE - 1);

	return pg == win_lo || boff == pg || boff == pg + PAGE - 8;
}

/* Next sampled word after boff, for a window whose first page is win_lo. */
static uint64_t next_word(uint64_t win_lo, uint64_t boff)
{
	uint64_t pg = boff & ~(PAGE - 1);

	if (pg == win_lo)
		return boff + 8;
	return boff == pg ? pg + PAGE - 8 : pg + PAGE;
}

#define FOR_EACH_WORD(win_lo, lo, hi, boff) \
	for (uint64_t boff = (lo); boff < (hi); boff = next_word((win_lo), boff)) \
		if (sampled((win_lo), boff))

volatile uint64_t *word_at(struct block *b, uint64_t boff)
{
	return (volatile uint64_t *)(b->map + (boff - b->map_off));
}

/* Check a freshly mapped block reads as zero, then write the pattern. Returns the signal. */
int fill_block(struct block *b)
{
	int sig = 0;
	uint64_t lo = b->map_off, hi = b->map_off + b->map_len;

	TOUCH(sig, {
		if (!(b->flags & NB_ALLOC_NOZERO) && !b->written && !b->partial) {
			FOR_EACH_WORD(lo, lo, hi, boff) {
				uint64_t v = *word_at(b, boff);

				if (v) {
					fail("not-zero", "fresh block %#llx (+%#llx) reads %#llx",
					     (unsigned long long)b->offset,
					     (unsigned long long)boff, (unsigned long long)v);
					break;
				}
			}
		}
		FOR_EACH_WORD(lo, lo, hi, boff)
			*word_at(b, boff) = pattern(b->id, boff);
	});
	if (sig == SIGBUS && b->reserve && !(b->flags & NB_ALLOC_POPULATE)) {
		/* A demand-paged range whose first touch found no frame (pool or quota
		 * exhausted by the other threads) gets SIGBUS, like tmpfs at its limit. */
		b->written = 0;
		b->partial = 1;
		return sig;
	}
	if (sig) {
		char vma[160];

		fail("fill-signal", "signal %d code %d at %p filling live block %#llx; VMA: %s",
		     sig, self->sig_code, self->sig_addr, (unsigned long long)b->offset,
		     maps_line((uintptr_t)self->sig_addr, vma, sizeof(vma)));
		return sig;
	}
	b->written = 1;
	b->wr_off = lo;
	b->wr_len = hi - lo;
	return 0;
}

/* Verify the pattern over the part of the written window that is still mapped. */
void verify_block(struct block *b, const char *when)
{
	uint64_t lo, hi;
	int sig = 0;

	if (!b->map || !b->written)
		return;
	lo = b->wr_off > b->map_off ? b->wr_off : b->map_off;
	hi = b->wr_off + b->wr_len;
	if (b->map_off + b->map_len < hi)
		hi = b->map_off + b->map_len;
	if (lo >= hi)
		return;
	TOUCH(sig, {
		/* The fill sampled from wr_off: check exactly those words still mapped. */
		for (uint64_t boff = b->wr_off; boff < hi; boff = next_word(b->wr_off, boff)) {
			if (boff < lo || !sampled(b->wr_off, boff))
				continue;
			uint64_t v = *word_at(b, boff);

			if (v != pattern(b->id, boff)) {
				fail("data", "%s: block %#llx (size %#llx flags %#x) +%#llx reads %#llx, want %#llx",
				     when, (unsigned long long)b->offset,
				     (unsigned long long)b->size, b->flags,
				     (unsigned long long)boff, (unsigned long long)v,
				     (unsigned long long)pattern(b->id, boff));
				break;
			}
		}
	});
	if (sig) {
		char vma[160], why[512] = "";
		struct nb_query q = { .offset = b->offset };
		FILE *f = fopen("/sys/kernel/debug/numabuddy/counters", "r");
		int qerr = dev_ioctl(self->fd, NB_IOC_QUERY, &q);

		/* Which errno the fault handler turned into SIGBUS, and what the block is now. */
		if (f) {
			char line[96];
			size_t len = 0;

			while (fgets(line, sizeof(line), f) && len < sizeof(why) - sizeof(line))
				if (!strncmp(line, "sigbus_", 7))
					len += snprintf(why + len, sizeof(why) - len, "%.*s; ",
							(int)strcspn(line, "\n"), line);
			fclose(f);
		}
		fail("verify-signal", "%s: signal %d code %d at %p reading live block %#llx; VMA: %s; "
		     "%s flags %#x; QUERY: err %d size %#llx node %d mapping %u frames %llu mapped 4K %llu 2M %llu; %s",
		     when, sig, self->sig_code, self->sig_addr, (unsigned long long)b->offset,
		     maps_line((uintptr_t)self->sig_addr, vma, sizeof(vma)),
		     b->reserve ? "reserve" : "alloc", b->flags, qerr, (unsigned long long)q.size,
		     q.node, q.mapping, (unsigned long long)q.nr_frames_4k,
		     (unsigned long long)q.mapped_4k, (unsigned long long)q.mapped_2m, why);
	}
}
