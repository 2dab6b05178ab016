// SPDX-License-Identifier: GPL-2.0
/*
 * blocks.c - nb_fuzz's private blocks: each thread's own file, on which it knows exactly which
 * blocks are live (allocate, reserve, free, query, migrate, batch), and the other ioctls:
 * stats, version, raw commands, bad pointers, the copy-out undo, bench and walk.
 */
#include "fuzz.h"

/* ---- private blocks --------------------------------------------------------------------- */

uint64_t rand_size(void)
{
	static const uint64_t sizes[] = { PAGE, 2 * PAGE, 3 * PAGE, 16 * PAGE, 64 * 1024 + 100,
					  MiB, 2 * MiB, 2 * MiB + PAGE, 4 * MiB, 6 * MiB + 3 * PAGE };
	uint64_t s = sizes[rnd_below(sizeof(sizes) / sizeof(sizes[0]))];

	if (chance(20))
		s = 1 + rnd_below(opt_max_block);
	return s > opt_max_block ? opt_max_block : s;
}

void rand_policy(struct nb_alloc *a)
{
	a->policy = rnd_below(4);
	a->node = chance(30) ? -1 : (int)rnd_below(nr_nodes);
	if (chance(40))
		a->nodemask = rnd() & ((1ULL << nr_nodes) - 1);
	if (a->policy == NB_POLICY_BIND && chance(50))
		a->nodemask = pool_nodes;
}

uint32_t rand_flags(int reserve)
{
	uint32_t f = 0;

	if (!reserve && chance(15))
		f |= NB_ALLOC_CONTIG;
	if (chance(10))
		f |= NB_ALLOC_LOW4G;
	if (chance(15))
		f |= NB_ALLOC_HUGE_2M;
	if (reserve && chance(30))
		f |= NB_ALLOC_POPULATE;
	if (chance(3))
		f |= NB_ALLOC_NOZERO;
	if (!reserve && chance(15))
		f |= NB_ALLOC_PINNABLE; /* mapped with page references: the kpath ops pin them */
	return f;
}

struct block *pick_block(void)
{
	return self->nblocks ? &self->blocks[rnd_below(self->nblocks)] : NULL;
}

struct block *pick_live(void)
{
	for (int tries = 0; tries < 4; tries++) {
		struct block *b = pick_block();

		if (b && !b->orphan)
			return b;
	}
	return NULL;
}

void drop_block(struct block *b)
{
	if (b->map)
		munmap(b->map, b->map_len);
	*b = self->blocks[--self->nblocks];
}


static void add_block(const struct nb_alloc *a, int reserve)
{
	struct block *b;

	if (a->alloc_size < (a->size ? a->size : PAGE << a->order) || (a->offset & (PAGE - 1)) ||
	    (a->alloc_size & (PAGE - 1)) || a->node_out < -1 || a->node_out >= nr_nodes ||
	    (!reserve && a->node_out < 0))
		fail("alloc-result", "size %#llx order %u -> offset %#llx alloc_size %#llx node %d",
		     (unsigned long long)a->size, a->order, (unsigned long long)a->offset,
		     (unsigned long long)a->alloc_size, a->node_out);
	if (self->nblocks == BLOCKS_MAX) {
		struct nb_free f = { .offset = a->offset };

		if (dev_ioctl(self->fd, NB_IOC_FREE, &f))
			fail("free-live", "freeing surplus block %#llx: %s",
			     (unsigned long long)a->offset, strerror(errno));
		return;
	}
	b = &self->blocks[self->nblocks++];
	memset(b, 0, sizeof(*b));
	b->offset = a->offset;
	b->size = a->alloc_size;
	b->node = a->node_out;
	b->flags = a->flags;
	b->reserve = reserve;
	b->id = ((uint64_t)self->proc << 48) ^ ((uint64_t)self->idx << 40) ^ self->next_id++;
	if (chance(70) && !map_block(b, 1))
		fill_block(b);
}

void op_alloc(int reserve)
{
	struct nb_alloc a = { 0 };
	int err;

	if (chance(85))
		a.size = rand_size();
	else
		a.order = rnd_below(max_order < 12 ? max_order + 1 : 12);
	rand_policy(&a);
	a.flags = rand_flags(reserve);
	err = dev_ioctl(self->fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, &a);
	if (!err) {
		add_block(&a, reserve);
		return;
	}
	/* A valid request may only be refused for lack of memory, quota or offset space. */
	if (err == EINVAL) {
		int valid_nodes = a.node < nr_nodes && !(a.nodemask >> nr_nodes);
		int ok_flags = !((a.flags & (NB_ALLOC_CONTIG | NB_ALLOC_PINNABLE)) && reserve);

		if (valid_nodes && ok_flags && a.policy <= 3)
			fail("alloc-einval", "valid %s size %#llx order %u policy %u node %d mask %#llx flags %#x refused with EINVAL",
			     reserve ? "reserve" : "alloc", (unsigned long long)a.size, a.order,
			     a.policy, a.node, (unsigned long long)a.nodemask, a.flags);
	}
}

void free_block(struct block *b, const char *how)
{
	struct nb_free f = { .offset = b->offset };
	int err = dev_ioctl(self->fd, NB_IOC_FREE, &f), sig = 0;

	if (err) {
		fail("free-live", "%s: FREE of live block %#llx: %s", how,
		     (unsigned long long)b->offset, strerror(err));
		return;
	}
	/* The uapi: a later access through an old mapping gets SIGBUS. */
	if (b->map) {
		volatile char *p = b->map + rnd_below(b->map_len);

		TOUCH(sig, (void)*p);
		if (sig != SIGBUS)
			fail("stale-mapping", "%s: read of freed block %#llx through old mapping: %s",
			     how, (unsigned long long)b->offset,
			     sig ? "wrong signal" : "no SIGBUS");
	}
	drop_block(b);
}

void op_free(void)
{
	struct block *b = pick_live();

	if (b) {
		verify_block(b, "before free");
		free_block(b, "free");
	}
}

void op_free_random(void)
{
	struct nb_free f = { .offset = rnd_below(4) ? rnd_below(256) * PAGE : rnd() };
	int err;

	if (chance(20))
		f.reserved[rnd_below(3)] = rnd();
	for (int i = 0; i < self->nblocks; i++)
		if (!self->blocks[i].orphan && self->blocks[i].offset == f.offset && !f.reserved[0] &&
		    !f.reserved[1] && !f.reserved[2]) {
			free_block(&self->blocks[i], "free-random");
			return;
		}
	err = dev_ioctl(self->fd, NB_IOC_FREE, &f);
	if (!err)
		fail("free-random", "FREE of %#llx (no block of ours starts there) succeeded",
		     (unsigned long long)f.offset);
}

void op_query(void)
{
	struct nb_query q = { 0 };
	struct block *b = pick_live();
	int err;

	if (b && chance(80)) {
		q.offset = b->offset;
		err = dev_ioctl(self->fd, NB_IOC_QUERY, &q);
		if (err || q.size != b->size ||
		    q.flags != (b->reserve ? b->flags : b->flags & ~NB_ALLOC_POPULATE))
			fail("query", "block %#llx size %#llx flags %#x: err %d size %#llx flags %#x",
			     (unsigned long long)b->offset, (unsigned long long)b->size, b->flags,
			     err, (unsigned long long)q.size, q.flags);
		return;
	}
	q.offset = chance(50) ? rnd_below(1024) * PAGE : rnd();
	dev_ioctl(self->fd, NB_IOC_QUERY, &q);
}

void op_migrate(void)
{
	struct nb_migrate m = { 0 };
	struct block *b = pick_live();
	int err;

	m.node = chance(90) ? (int)rnd_below(nr_nodes) : (int)rnd();
	if (!b) {
		m.offset = rnd_below(64) * PAGE;
		dev_ioctl(self->fd, NB_IOC_MIGRATE, &m);
		return;
	}
	m.offset = b->offset;
	err = dev_ioctl(self->fd, NB_IOC_MIGRATE, &m);
	/* A pinnable block another thread's kernel-path op references right now: EBUSY. */
	if (err && err != ENOMEM && err != EDQUOT &&
	    !(err == EBUSY && (b->flags & NB_ALLOC_PINNABLE)) &&
	    !(err == EINVAL && (m.node < 0 || m.node >= nr_nodes || !((pool_nodes >> m.node) & 1))))
		fail("migrate", "MIGRATE of live block %#llx to node %d: %s",
		     (unsigned long long)b->offset, m.node, strerror(err));
	if (m.bytes_moved > b->size)
		fail("migrate", "moved %llu bytes of a %llu byte block",
		     (unsigned long long)m.bytes_moved, (unsigned long long)b->size);
	verify_block(b, "after migrate");
}

void op_stats(int fd)
{
	struct nb_stats s = { .node = chance(90) ? (int)rnd_below(nr_nodes) : (int)rnd() };
	int err = dev_ioctl(fd, NB_IOC_STATS, &s);

	if (!err && (s.free_bytes > s.total_bytes || s.low_free_bytes > s.low_total_bytes))
		fail("stats", "node %d free %llu > total %llu", s.node,
		     (unsigned long long)s.free_bytes, (unsigned long long)s.total_bytes);
}

void op_version(int fd)
{
	struct nb_version v = { 0 };
	int err = dev_ioctl(fd, NB_IOC_VERSION, &v);

	if (err || v.abi_major != NB_ABI_MAJOR || v.page_size != PAGE)
		fail("version", "err %d major %u page %u", err, v.abi_major, v.page_size);
}

void op_batch(int fd, int private)
{
	struct nb_alloc reqs[8];
	struct nb_alloc_batch bt = { 0 };
	unsigned n = 1 + rnd_below(8);
	int err;

	memset(reqs, 0, sizeof(reqs));
	for (unsigned i = 0; i < n; i++) {
		reqs[i].size = rand_size() / (1 + rnd_below(4));
		if (!reqs[i].size)
			reqs[i].order = rnd_below(4);
		rand_policy(&reqs[i]);
		reqs[i].flags = rand_flags(0) & ~NB_ALLOC_NOZERO;
	}
	bt.reqs = (uintptr_t)reqs;
	bt.count = n;
	bt.entry_size = sizeof(struct nb_alloc);
	if (!private && chance(40)) {
		switch (rnd_below(5)) {
		case 0: bt.count = chance(50) ? 0 : 4097 + rnd_below(10); break;
		case 1: bt.entry_size = rnd_below(2 * sizeof(struct nb_alloc)); break;
		case 2: bt.reqs = chance(50) ? 0 : rnd(); break;
		case 3: bt.pad = 1; break;
		default: bt.done = 1; break;
		}
	}
	err = dev_ioctl(fd, NB_IOC_ALLOC_BATCH, &bt);
	if (!private)
		return;
	if (!err && (bt.done == 0 || bt.done > n))
		fail("batch", "success with done=%u of %u", bt.done, n);
	for (unsigned i = 0; !err && i < bt.done; i++)
		add_block(&reqs[i], 0);
}

/* A random command: our magic or another, any number, direction and size; random contents. */
void op_raw_ioctl(int fd)
{
	static __thread unsigned char buf[3 * PAGE];
	unsigned dir = rnd_below(4), nr = rnd_below(12), size, type = chance(85) ? NB_IOC_MAGIC : rnd_below(256);
	unsigned long cmd;
	void *arg = buf;

	size = chance(70) ? rnd_below(400) : rnd_below(_IOC_SIZEMASK + 1);
	if (size > sizeof(buf))
		size = rnd_below(sizeof(buf));
	if (chance(10))
		nr = rnd_below(256);
	cmd = _IOC(dir, type, nr, size);
	if (chance(50)) {
		memset(buf, 0, sizeof(buf));
		/* Mostly-zero structs with a few random fields get past the reserved checks. */
		for (int i = rnd_below(4); i > 0; i--)
			((uint32_t *)buf)[rnd_below(16)] = chance(50) ? (uint32_t)rnd() : rnd_below(8);
		if (nr == 1 || nr == 5) { /* keep allocation sizes small */
			((struct nb_alloc *)buf)->size &= 0xfffff;
			((struct nb_alloc *)buf)->order &= 7;
		}
		if (nr == 8)
			((struct nb_bench *)buf)->iterations &= 0x3ff;
	} else {
		for (unsigned i = 0; i < sizeof(buf) / 8; i++)
			((uint64_t *)buf)[i] = rnd();
	}
	if (chance(10))
		arg = chance(50) ? NULL : (void *)(uintptr_t)rnd();
	/* An EXPORT_DMABUF that got through made a dma-buf: close it, it pins a block. */
	if (dev_ioctl(fd, cmd, arg) == 0 && cmd == NB_IOC_EXPORT_DMABUF && arg == buf)
		close(((struct nb_export_dmabuf *)buf)->fd);
}

/* Valid commands with pointers the kernel must refuse. */
void op_bad_ptr(int fd)
{
	static const unsigned long cmds[] = { NB_IOC_VERSION, NB_IOC_ALLOC, NB_IOC_FREE,
					      NB_IOC_ALLOC_BATCH, NB_IOC_QUERY, NB_IOC_RESERVE,
					      NB_IOC_MIGRATE, NB_IOC_STATS, NB_IOC_WALK,
					      NB_IOC_EXPORT_DMABUF, NB_IOC_COMPACT };
	void *ptrs[] = { NULL, (void *)1, (void *)(uintptr_t)0xffff888000000000ULL,
			 (void *)(uintptr_t)0xfffffffffffff000ULL, (void *)(uintptr_t)-1ULL,
			 (void *)(uintptr_t)0x00007ffffffff000ULL };
	unsigned long cmd = cmds[rnd_below(sizeof(cmds) / sizeof(cmds[0]))];
	int err = dev_ioctl(fd, cmd, ptrs[rnd_below(sizeof(ptrs) / sizeof(ptrs[0]))]);
	/* A read-only chaos file refuses pool-changing commands before reading the struct. */
	int rdonly_refusal = err == EBADF && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY &&
			     (E(EBADF) & cmd_errnos(_IOC_NR(cmd)));

	if (err != EFAULT && err != ENOTTY && !rdonly_refusal)
		fail("bad-pointer", "cmd %#lx with a bad pointer: %s", cmd, strerror(err));
}

/* ALLOC/RESERVE whose result cannot be copied out (read-only page): EFAULT, and no block may
 * stay behind on the file (the dispatcher's undo). Private file: nobody else changes it. */
void op_undo(void)
{
	struct nb_alloc a = { .size = PAGE * (1 + rnd_below(64)), .policy = NB_POLICY_LOCAL,
			      .node = -1 };
	uint64_t before, after;
	int reserve = chance(30), err;

	if (!self->ro_page)
		return;
	if (reserve)
		a.flags = NB_ALLOC_POPULATE;
	if (mprotect(self->ro_page, PAGE, PROT_READ | PROT_WRITE))
		return;
	memcpy(self->ro_page, &a, sizeof(a));
	mprotect(self->ro_page, PAGE, PROT_READ);
	before = nb_test_fd_bytes(self->fd, nr_nodes);
	err = dev_ioctl(self->fd, reserve ? NB_IOC_RESERVE : NB_IOC_ALLOC, self->ro_page);
	after = nb_test_fd_bytes(self->fd, nr_nodes);
	if (err != EFAULT && err != ENOMEM && err != EDQUOT)
		fail("copyout-undo", "%s into a read-only struct: %s", reserve ? "RESERVE" : "ALLOC",
		     err ? strerror(err) : "success");
	if (after != before)
		fail("copyout-undo", "file holds %llu bytes after a refused %s, %llu before",
		     (unsigned long long)after, reserve ? "RESERVE" : "ALLOC",
		     (unsigned long long)before);
}

void op_bench(int fd)
{
	struct nb_bench b = { .allocator = rnd_below(3), .order = rnd_below(12),
			      .node = chance(90) ? (int)rnd_below(nr_nodes) : (int)rnd(),
			      .iterations = rnd_below(512) };

	dev_ioctl(fd, NB_IOC_BENCH, &b);
}

/* Compaction of a node while the other threads use their blocks: every block keeps its data
 * (op_verify, the faults of every other op), and the answer is consistent with itself. */
void op_compact(int fd)
{
	struct nb_compact c = { .node = chance(90) ? (int)rnd_below(nr_nodes) : (int)rnd(),
				.order = chance(90) ? 1 + rnd_below(max_order) : rnd_below(64) };

	if (dev_ioctl(fd, NB_IOC_COMPACT, &c) == 0 && c.run_phys != ~0ULL &&
	    c.run_phys % (PAGE << (c.order ? c.order : (unsigned)max_order)))
		fail("compact", "run %#llx not aligned to order %u",
		     (unsigned long long)c.run_phys, c.order);
}

void op_walk(int fd)
{
	struct nb_walk w = { 0 };
	struct block *b = pick_block();

	if (b && b->map && chance(70))
		w.addr = (uintptr_t)b->map + rnd_below(b->map_len);
	else
		w.addr = chance(50) ? rnd() : (uintptr_t)&w;
	dev_ioctl(fd, NB_IOC_WALK, &w);
}
