// SPDX-License-Identifier: GPL-2.0
/*
 * fake_device.h - an in-memory /dev/numabuddy for the hosted tests, plugged in through
 * nbl_open_backend(). It answers like the module does (tests/vm checks the real one): blocks
 * per handle, FREE/QUERY of an unknown offset -ENOENT, non-zero reserved fields -EINVAL,
 * ALLOC_BATCH reporting a partial batch as success with done < count. Its memory is filled
 * with kPoison, not zeroed: zeroing is the module's job (the VM suite checks it), so a test
 * here can only see that the library maps the device's memory. It records what it was asked
 * (last_migrate, last_stats_node) and answers what a test sets (migrate_moved, migrate_err),
 * so a test checks what the library sent and passed back, never a value the fake echoes.
 * fail_after makes the Nth allocation from now fail with -ENOMEM.
 */
#ifndef NB_FAKE_DEVICE_H
#define NB_FAKE_DEVICE_H

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include <fcntl.h>
#include <unistd.h>

#include "numabuddy.h"

struct FakeDevice {
	nb_version version{};
	int version_err = 0;    /* VERSION answers this when non-zero */
	long fail_after = -1;   /* allocations left before -ENOMEM; -1 = never */
	uint64_t next_offset = 4096;
	int mapped = 0;         /* live mappings, to catch leaks */
	int closed = 0;
	static constexpr unsigned char kPoison = 0xa5;
	struct nb_migrate last_migrate{};
	uint64_t migrate_moved = 0; /* MIGRATE's bytes_moved answer */
	int migrate_err = 0;        /* MIGRATE fails with this (bytes_moved still set) */
	int last_stats_node = -1;
	struct nb_export_dmabuf last_export{}; /* EXPORT_DMABUF's request as it arrived */
	struct nb_compact last_compact{};      /* COMPACT's request as it arrived */
	uint64_t compact_moved = 0;            /* COMPACT's moved_bytes answer */
	int compact_err = 0;                   /* COMPACT fails with this (outputs still set) */
	struct Blk {
		void *mem;
		struct nb_alloc req;
	};
	std::map<uint64_t, Blk> blocks;

	FakeDevice()
	{
		version.abi_major = NB_ABI_MAJOR;
		version.abi_minor = NB_ABI_MINOR;
		version.features = NB_FEAT_BATCH | NB_FEAT_MIGRATE | NB_FEAT_RESERVE;
		version.nr_node_ids = 2;
		version.max_order = 18;
		version.page_size = 4096;
		version.nodes_with_pool = 0x3;
	}
	~FakeDevice()
	{
		for (auto &kv : blocks)
			free(kv.second.mem);
	}

	nbl_backend Backend()
	{
		nbl_backend be{};
		be.ioctl_fn = [](void *c, unsigned long cmd, void *arg) {
			return static_cast<FakeDevice *>(c)->Ioctl(cmd, arg);
		};
		be.mmap_fn = [](void *c, size_t len, uint64_t off, int *err) -> void * {
			return static_cast<FakeDevice *>(c)->Mmap(len, off, err);
		};
		be.munmap_fn = [](void *c, void *, size_t) {
			static_cast<FakeDevice *>(c)->mapped--;
			return 0;
		};
		be.close_fn = [](void *c) { static_cast<FakeDevice *>(c)->closed++; };
		be.ctx = this;
		return be;
	}

	int Alloc(struct nb_alloc *a)
	{
		if (a->pad || a->reserved[0] || a->reserved[1] || a->reserved[2] || a->reserved[3])
			return -EINVAL;
		if (a->offset || a->alloc_size || a->node_out || (a->size && a->order))
			return -EINVAL; /* outputs must come in zeroed; size or order */
		if (a->policy > NB_POLICY_INTERLEAVE || (a->flags & ~NB_ALLOC_FLAGS_ALL))
			return -EINVAL;
		if (a->nodemask >> version.nr_node_ids)
			return -EINVAL;
		if (fail_after == 0)
			return -ENOMEM;
		if (fail_after > 0)
			fail_after--;
		uint64_t bytes = a->size ? (a->size + 4095) & ~4095ULL : 4096ULL << a->order;
		void *mem = nullptr;
		if (posix_memalign(&mem, 4096, bytes))
			return -ENOMEM;
		memset(mem, kPoison, bytes);
		a->offset = next_offset;
		next_offset += bytes;
		a->alloc_size = bytes;
		a->node_out = a->node >= 0 ? a->node : 0;
		if (a->policy == NB_POLICY_INTERLEAVE || (a->policy == NB_POLICY_BIND && a->nodemask))
			a->node_out = __builtin_ctzll(a->nodemask);
		blocks[a->offset] = Blk{mem, *a};
		return 0;
	}

	int Ioctl(unsigned long cmd, void *arg)
	{
		switch (cmd) {
		case NB_IOC_VERSION:
			if (version_err)
				return version_err;
			*static_cast<nb_version *>(arg) = version;
			return 0;
		case NB_IOC_ALLOC:
		case NB_IOC_RESERVE:
			return Alloc(static_cast<struct nb_alloc *>(arg));
		case NB_IOC_ALLOC_BATCH: {
			auto *b = static_cast<struct nb_alloc_batch *>(arg);
			auto *reqs = reinterpret_cast<struct nb_alloc *>(b->reqs);
			if (b->entry_size != sizeof(struct nb_alloc) || b->count == 0 || b->count > 4096)
				return -EINVAL;
			/* As the module: a partial batch is success with done < count. */
			for (b->done = 0; b->done < b->count; b->done++) {
				int ret = Alloc(&reqs[b->done]);
				if (ret)
					return b->done ? 0 : ret;
			}
			return 0;
		}
		case NB_IOC_FREE: {
			auto it = blocks.find(static_cast<struct nb_free *>(arg)->offset);
			if (it == blocks.end())
				return -ENOENT;
			free(it->second.mem);
			blocks.erase(it);
			return 0;
		}
		case NB_IOC_QUERY: {
			auto *q = static_cast<struct nb_query *>(arg);
			auto it = blocks.find(q->offset);
			if (it == blocks.end())
				return -ENOENT;
			q->size = it->second.req.alloc_size;
			q->node = it->second.req.node_out;
			return 0;
		}
		case NB_IOC_MIGRATE: {
			auto *m = static_cast<struct nb_migrate *>(arg);
			auto it = blocks.find(m->offset);
			if (it == blocks.end())
				return -ENOENT;
			if (m->node < 0 || m->node >= (int)version.nr_node_ids)
				return -EINVAL;
			last_migrate = *m;
			m->bytes_moved = migrate_moved;
			if (migrate_err)
				return migrate_err;
			it->second.req.node_out = m->node;
			return 0;
		}
		case NB_IOC_STATS: {
			auto *s = static_cast<struct nb_stats *>(arg);
			if (s->node < 0 || s->node >= (int)version.nr_node_ids)
				return -EINVAL;
			last_stats_node = s->node;
			s->total_bytes = (64 << 20) + (s->node << 12);
			s->free_bytes = 32 << 20;
			return 0;
		}
		case NB_IOC_COMPACT: {
			auto *c = static_cast<struct nb_compact *>(arg);
			last_compact = *c;
			if (c->node < 0 || c->node >= (int)version.nr_node_ids)
				return -EINVAL;
			c->moved_bytes = compact_moved;
			c->run_phys = 0x40000000;
			return compact_err;
		}
		case NB_IOC_EXPORT_DMABUF: {
			/* As the module: pinnable blocks only; the fd is a real one (/dev/null). */
			auto *e = static_cast<struct nb_export_dmabuf *>(arg);
			last_export = *e;
			auto it = blocks.find(e->offset);
			if (it == blocks.end())
				return -ENOENT;
			if (!(it->second.req.flags & NB_ALLOC_PINNABLE) || e->fd)
				return -EINVAL;
			e->fd = open("/dev/null", O_RDWR | (e->flags & O_CLOEXEC));
			return e->fd < 0 ? -errno : 0;
		}
		default:
			return -ENOTTY;
		}
	}

	void *Mmap(size_t len, uint64_t off, int *err)
	{
		auto it = blocks.find(off);
		if (it == blocks.end() || len > it->second.req.alloc_size) {
			*err = -EINVAL;
			return nullptr;
		}
		mapped++;
		return it->second.mem;
	}
};

#endif /* NB_FAKE_DEVICE_H */
