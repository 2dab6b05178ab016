// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * numabuddy.hpp - C++20 wrapper over libnumabuddy. Header-only; links against the C library.
 *
 * No exceptions: every fallible call returns a std::error_code (category "numabuddy", whose
 * messages are nbl_strerror()'s and whose conditions compare equal to std::errc values), and
 * fallible construction goes through a Create() factory. Builds with -fno-exceptions.
 *
 *   numabuddy::Device dev;
 *   if (auto ec = numabuddy::Device::Create(&dev)) { puts(ec.message().c_str()); return 1; }
 *   numabuddy::Block blk;
 *   if (auto ec = dev.Alloc(numabuddy::AllocOptions().Size(64 << 20).Bind(1), &blk)) ...
 *   std::span<uint64_t> words = blk.as<uint64_t>();
 *
 *   numabuddy::PoolResource pool(dev, numabuddy::AllocOptions().Bind(1));
 *   std::pmr::vector<double> v(&pool);   // lives in node 1's pool
 *
 * Lifetime rule (as with any allocator): a Device must outlive its Blocks and PoolResources.
 */
#ifndef NUMABUDDY_LIB_HPP
#define NUMABUDDY_LIB_HPP

#include <cstddef>
#include <cstdint>
#include <fcntl.h> // O_RDWR, O_CLOEXEC: ExportDmabuf's default
#include <memory_resource>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "numabuddy.h"

namespace numabuddy {

class ErrorCategory final : public std::error_category {
public:
	const char *name() const noexcept override { return "numabuddy"; }
	std::string message(int ev) const override { return nbl_strerror(ev); }
	std::error_condition default_error_condition(int ev) const noexcept override
	{
		return std::error_condition(ev, std::generic_category());
	}
};

inline const std::error_category &category() noexcept
{
	static const ErrorCategory cat;
	return cat;
}

/* 0 or -errno (the C API's convention) to an error_code; positive errno is accepted too. */
inline std::error_code MakeError(int ret) noexcept
{
	if (ret == 0)
		return {};
	return std::error_code(ret < 0 ? -ret : ret, category());
}

/* nbl_alloc_opts with chainable setters; starts as nbl_alloc_opts_init() leaves it. */
struct AllocOptions : nbl_alloc_opts {
	AllocOptions() noexcept { nbl_alloc_opts_init(this); }
	AllocOptions &Size(uint64_t bytes) noexcept { size = bytes; return *this; }
	AllocOptions &Order(uint32_t o) noexcept { order = o; size = 0; return *this; }
	AllocOptions &Flags(uint32_t f) noexcept { flags = f; return *this; }
	AllocOptions &Local() noexcept { policy = NB_POLICY_LOCAL; node = -1; return *this; }
	AllocOptions &Preferred(int n) noexcept { policy = NB_POLICY_PREFERRED; node = n; return *this; }
	AllocOptions &Bind(int n) noexcept
	{
		policy = NB_POLICY_BIND;
		node = n;
		nodemask = 0;
		return *this;
	}
	AllocOptions &BindMask(uint64_t mask) noexcept
	{
		policy = NB_POLICY_BIND;
		nodemask = mask;
		return *this;
	}
	AllocOptions &Interleave(uint64_t mask) noexcept
	{
		policy = NB_POLICY_INTERLEAVE;
		nodemask = mask;
		return *this;
	}
};

/* An owning, move-only handle to one mapped block; the destructor unmaps and frees it. */
class Block {
public:
	Block() noexcept = default;
	Block(const Block &) = delete;
	Block &operator=(const Block &) = delete;
	Block(Block &&o) noexcept : h_(std::exchange(o.h_, nullptr)), b_(std::exchange(o.b_, {})) {}
	Block &operator=(Block &&o) noexcept
	{
		if (this != &o) {
			Reset();
			h_ = std::exchange(o.h_, nullptr);
			b_ = std::exchange(o.b_, {});
		}
		return *this;
	}
	~Block() { Reset(); }

	explicit operator bool() const noexcept { return h_ != nullptr; }
	std::byte *data() const noexcept { return static_cast<std::byte *>(b_.addr); }
	std::size_t size() const noexcept { return static_cast<std::size_t>(b_.size); }
	std::span<std::byte> bytes() const noexcept { return {data(), size()}; }

	/* The block as an array of T. Blocks are page aligned and zero-filled by the kernel. */
	template <class T>
	std::span<T> as() const noexcept
	{
		static_assert(std::is_trivially_copyable_v<T>, "pool memory holds plain data");
		static_assert(alignof(T) <= 4096, "blocks are only page aligned");
		return {reinterpret_cast<T *>(b_.addr), size() / sizeof(T)};
	}

	uint64_t offset() const noexcept { return b_.offset; }
	int node() const noexcept { return b_.node; }
	const nbl_block &raw() const noexcept { return b_; }

	std::error_code Query(struct nb_query *out) const noexcept
	{
		return MakeError(nbl_query(h_, b_.offset, out));
	}
	std::error_code Migrate(int node, uint64_t *bytes_moved = nullptr) noexcept
	{
		return MakeError(nbl_migrate(h_, &b_, node, bytes_moved));
	}
	/* A dma-buf of this block (allocated with NB_ALLOC_PINNABLE); the caller closes *fd.
	 * It keeps the frames alive past Reset() until its last user is gone. */
	std::error_code ExportDmabuf(int *fd, uint32_t open_flags = O_RDWR | O_CLOEXEC) const noexcept
	{
		return MakeError(nbl_export_dmabuf(h_, &b_, open_flags, fd));
	}
	/* Frees now; the block becomes empty. Returns the FREE ioctl's result. */
	std::error_code Reset() noexcept
	{
		if (!h_)
			return {};
		int ret = nbl_free(h_, &b_);
		h_ = nullptr;
		return MakeError(ret);
	}
	/* Gives up ownership; the caller frees with nbl_free(). */
	nbl_block Release() noexcept
	{
		h_ = nullptr;
		return std::exchange(b_, {});
	}

private:
	friend class Device;
	Block(nbl_handle *h, const nbl_block &b) noexcept : h_(h), b_(b) {}

	nbl_handle *h_ = nullptr;
	nbl_block b_{};
};

/* One open file description of /dev/numabuddy. Move-only; closes on destruction. */
class Device {
public:
	Device() noexcept = default;
	Device(const Device &) = delete;
	Device &operator=(const Device &) = delete;
	Device(Device &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
	Device &operator=(Device &&o) noexcept
	{
		if (this != &o) {
			nbl_close(h_);
			h_ = std::exchange(o.h_, nullptr);
		}
		return *this;
	}
	~Device() { nbl_close(h_); }

	/* Opens @path (nullptr: NB_DEVICE_PATH) and checks the ABI version into *out. */
	static std::error_code Create(Device *out, const char *path = nullptr) noexcept
	{
		nbl_handle *h = nullptr;
		int ret = nbl_open(path, &h);

		if (ret)
			return MakeError(ret);
		*out = Device(h);
		return {};
	}

	/* Over a test backend (see nbl_open_backend()). */
	static std::error_code CreateWithBackend(Device *out, const nbl_backend &be) noexcept
	{
		nbl_handle *h = nullptr;
		int ret = nbl_open_backend(&be, &h);

		if (ret)
			return MakeError(ret);
		*out = Device(h);
		return {};
	}

	explicit operator bool() const noexcept { return h_ != nullptr; }
	nbl_handle *handle() const noexcept { return h_; }
	const nb_version &version() const noexcept { return *nbl_version_info(h_); }

	std::error_code Alloc(const nbl_alloc_opts &opts, Block *out) noexcept
	{
		return Make(nbl_alloc, opts, out);
	}
	std::error_code Reserve(const nbl_alloc_opts &opts, Block *out) noexcept
	{
		return Make(nbl_reserve, opts, out);
	}
	std::error_code Stats(int node, struct nb_stats *out) noexcept
	{
		return MakeError(nbl_stats(h_, node, out));
	}

private:
	explicit Device(nbl_handle *h) noexcept : h_(h) {}

	std::error_code Make(int (*fn)(nbl_handle *, const nbl_alloc_opts *, nbl_block *),
			     const nbl_alloc_opts &opts, Block *out) noexcept
	{
		nbl_alloc_opts o = opts;
		nbl_block b;

		o.lib_flags &= ~NBL_NOMAP; /* a Block is always mapped */
		int ret = fn(h_, &o, &b);
		if (ret)
			return MakeError(ret);
		*out = Block(h_, b);
		return {};
	}

	nbl_handle *h_ = nullptr;
};

/*
 * PoolResource: a std::pmr::memory_resource carving allocations out of large pool blocks
 * allocated with one AllocOptions (a node, a policy), so pmr containers live in node-local
 * pool memory.
 *
 * Carving: each chunk (default 2 MiB, or a dedicated one for a request bigger than a quarter
 * of that) starts with its own header, then a bump pointer. Nothing is allocated outside pool
 * memory: the chunk list is threaded through those headers.
 *
 * Alignment: chunks are mapped page aligned, and the bump pointer is rounded up to the
 * requested alignment as an absolute address, so any power-of-two alignment works; a request
 * whose size plus alignment slack exceeds the chunk gets a dedicated chunk sized for it.
 *
 * Deallocation: each chunk counts its live allocations. Freed space is not reused piecemeal
 * (no free lists: this is a region allocator); when a chunk's count drops to zero it is
 * returned to the kernel with NB_IOC_FREE, except the current chunk, whose bump pointer is
 * reset instead so a steady alloc/free pattern does not hit the ioctl each time. Finding the
 * chunk of a pointer is a walk of the chunk list, newest first. release() and the destructor
 * free every chunk, live or not.
 *
 * When the device refuses a chunk, the request goes to @upstream (default
 * null_memory_resource(): std::bad_alloc, which is abort() under -fno-exceptions); pass
 * new_delete_resource() to fall back to ordinary memory instead. last_error() keeps the
 * device's answer. Not thread-safe, like unsynchronized_pool_resource.
 */
class PoolResource final : public std::pmr::memory_resource {
public:
	static constexpr std::size_t kDefaultChunk = 2u << 20;

	PoolResource(Device &dev, const nbl_alloc_opts &opts, std::size_t chunk_size = kDefaultChunk,
		     std::pmr::memory_resource *upstream = std::pmr::null_memory_resource()) noexcept
		: h_(dev.handle()), opts_(opts), chunk_size_(chunk_size), upstream_(upstream)
	{
		opts_.lib_flags &= ~NBL_NOMAP;
		opts_.order = 0;
	}
	PoolResource(const PoolResource &) = delete;
	PoolResource &operator=(const PoolResource &) = delete;
	~PoolResource() override { release(); }

	void release() noexcept
	{
		while (chunks_)
			FreeChunk(chunks_);
		current_ = nullptr;
	}
	std::error_code last_error() const noexcept { return last_error_; }
	std::size_t chunk_count() const noexcept
	{
		std::size_t n = 0;
		for (Chunk *c = chunks_; c; c = c->next)
			n++;
		return n;
	}

private:
	struct Chunk {
		Chunk *next;
		nbl_block blk;    /* blk.addr == this */
		std::size_t used; /* bytes from the chunk start, header included */
		std::size_t live; /* allocations not yet deallocated */
	};
	static constexpr std::size_t kHeader = (sizeof(Chunk) + 63) & ~std::size_t(63);

	static std::uintptr_t AlignUp(std::uintptr_t v, std::size_t a) { return (v + a - 1) & ~(a - 1); }

	/* The address for @bytes at @align in @c, or nullptr if it does not fit. */
	static void *Carve(Chunk *c, std::size_t bytes, std::size_t align) noexcept
	{
		std::uintptr_t base = reinterpret_cast<std::uintptr_t>(c);
		std::uintptr_t p = AlignUp(base + c->used, align);

		if (p + bytes > base + c->blk.size || p + bytes < p)
			return nullptr;
		c->used = p + bytes - base;
		c->live++;
		return reinterpret_cast<void *>(p);
	}

	Chunk *NewChunk(std::size_t bytes) noexcept
	{
		nbl_alloc_opts o = opts_;
		nbl_block b;

		o.size = bytes;
		int ret = nbl_alloc(h_, &o, &b);
		if (ret) {
			last_error_ = MakeError(ret);
			return nullptr;
		}
		Chunk *c = static_cast<Chunk *>(b.addr);
		c->next = chunks_;
		c->blk = b;
		c->used = kHeader;
		c->live = 0;
		chunks_ = c;
		return c;
	}

	void FreeChunk(Chunk *c) noexcept
	{
		Chunk **pp = &chunks_;
		while (*pp != c)
			pp = &(*pp)->next;
		*pp = c->next;
		if (current_ == c)
			current_ = nullptr;
		nbl_block b = c->blk; /* copy out: the header dies with the mapping */
		nbl_free(h_, &b);
	}

	void *do_allocate(std::size_t bytes, std::size_t align) override
	{
		if (bytes == 0)
			bytes = 1;
		if (current_) {
			if (void *p = Carve(current_, bytes, align))
				return p;
		}
		std::size_t need = kHeader + bytes + (align > 64 ? align : 0);
		Chunk *c;
		if (need > chunk_size_ / 4 || need < bytes) {
			c = need < bytes ? nullptr : NewChunk(need); /* dedicated */
		} else {
			c = NewChunk(chunk_size_);
			if (c && current_ && current_->live == 0)
				FreeChunk(current_);
			if (c)
				current_ = c;
		}
		void *p = c ? Carve(c, bytes, align) : nullptr;
		if (p)
			return p;
		if (c && c->live == 0)
			FreeChunk(c);
		return upstream_->allocate(bytes, align);
	}

	void do_deallocate(void *p, std::size_t bytes, std::size_t align) override
	{
		std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);

		for (Chunk *c = chunks_; c; c = c->next) {
			std::uintptr_t base = reinterpret_cast<std::uintptr_t>(c);
			if (a < base + kHeader || a >= base + c->blk.size)
				continue;
			if (--c->live == 0) {
				if (c == current_)
					c->used = kHeader;
				else
					FreeChunk(c);
			}
			return;
		}
		upstream_->deallocate(p, bytes, align);
	}

	bool do_is_equal(const std::pmr::memory_resource &o) const noexcept override
	{
		return this == &o;
	}

	nbl_handle *h_;
	nbl_alloc_opts opts_;
	std::size_t chunk_size_;
	std::pmr::memory_resource *upstream_;
	Chunk *chunks_ = nullptr;
	Chunk *current_ = nullptr;
	std::error_code last_error_;
};

} // namespace numabuddy

#endif /* NUMABUDDY_LIB_HPP */
