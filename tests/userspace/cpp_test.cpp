// SPDX-License-Identifier: GPL-2.0
/* cpp_test.cpp - numabuddy.hpp: error_code, Block ownership, Device, PoolResource. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <memory_resource>
#include <vector>

#include <unistd.h>

#include "fake_device.h"
#include "numabuddy.hpp"

namespace {

using numabuddy::AllocOptions;
using numabuddy::Block;
using numabuddy::Device;
using numabuddy::PoolResource;

struct CppTest : ::testing::Test {
	FakeDevice fake;
	Device dev;

	void SetUp() override { ASSERT_FALSE(Device::CreateWithBackend(&dev, fake.Backend())); }
};

TEST(ErrorCode, CategoryAndConditions)
{
	std::error_code ec = numabuddy::MakeError(-EACCES);
	EXPECT_STREQ("numabuddy", ec.category().name());
	EXPECT_EQ(EACCES, ec.value());
	EXPECT_TRUE(ec == std::errc::permission_denied);
	EXPECT_NE(std::string::npos, ec.message().find("group 'numabuddy'"));
	EXPECT_FALSE(numabuddy::MakeError(0));
	EXPECT_EQ(numabuddy::MakeError(ENOMEM), numabuddy::MakeError(-ENOMEM));
}

TEST(DeviceOpen, MissingDevice)
{
	Device d;
	std::error_code ec = Device::Create(&d, "/nonexistent/numabuddy");
	EXPECT_TRUE(ec == std::errc::no_such_file_or_directory);
	EXPECT_NE(std::string::npos, ec.message().find("modprobe numabuddy"));
	EXPECT_FALSE(d);
}

TEST_F(CppTest, BlockOwnsAndMoves)
{
	Block b;
	ASSERT_FALSE(dev.Alloc(AllocOptions().Size(3 * 4096).Bind(1), &b));
	ASSERT_TRUE(b);
	EXPECT_EQ(1, b.node());
	EXPECT_EQ(3u * 4096, b.size());
	auto words = b.as<uint64_t>();
	EXPECT_EQ(3u * 512, words.size());
	words[10] = 42;
	EXPECT_EQ(std::byte{42}, b.bytes()[80]);

	Block c = std::move(b);
	EXPECT_FALSE(b);
	EXPECT_TRUE(c);
	EXPECT_EQ(1u, fake.blocks.size());
	Block d;
	ASSERT_FALSE(dev.Alloc(AllocOptions().Order(0), &d));
	EXPECT_EQ(2u, fake.blocks.size());
	d = std::move(c); /* frees d's old block */
	EXPECT_EQ(1u, fake.blocks.size());
	EXPECT_EQ(42u, d.as<uint64_t>()[10]);
	{
		Block gone = std::move(d);
	}
	EXPECT_TRUE(fake.blocks.empty());
	EXPECT_EQ(0, fake.mapped);
}

TEST_F(CppTest, AllocErrorsAreErrorCodes)
{
	Block b;
	fake.fail_after = 0;
	std::error_code ec = dev.Alloc(AllocOptions().Size(4096), &b);
	EXPECT_TRUE(ec == std::errc::not_enough_memory);
	EXPECT_FALSE(b);
}

TEST_F(CppTest, BlockMigrateAndQuery)
{
	Block b;
	ASSERT_FALSE(dev.Alloc(AllocOptions().Size(4096).Preferred(0), &b));
	uint64_t moved = 0;
	EXPECT_FALSE(b.Migrate(1, &moved));
	EXPECT_EQ(1, b.node());
	struct nb_query q;
	EXPECT_FALSE(b.Query(&q));
	EXPECT_EQ(1, q.node);
	EXPECT_FALSE(b.Reset());
	EXPECT_FALSE(b);
	EXPECT_FALSE(b.Reset()) << "resetting an empty block is fine";
}

TEST_F(CppTest, BlockExportDmabuf)
{
	Block b, plain;
	ASSERT_FALSE(dev.Alloc(AllocOptions().Size(4096).Flags(NB_ALLOC_PINNABLE), &b));
	int fd = -1;
	EXPECT_FALSE(b.ExportDmabuf(&fd));
	EXPECT_GE(fd, 0);
	EXPECT_EQ(uint32_t(O_RDWR | O_CLOEXEC), fake.last_export.flags) << "the default flags";
	close(fd);
	ASSERT_FALSE(dev.Alloc(AllocOptions().Size(4096), &plain));
	EXPECT_TRUE(plain.ExportDmabuf(&fd, O_RDONLY) == std::errc::invalid_argument);
}

TEST_F(CppTest, PmrVectorLivesInPoolChunks)
{
	PoolResource pool(dev, AllocOptions().Bind(1), 64 * 1024);
	{
		std::pmr::vector<uint64_t> v(&pool);
		for (uint64_t i = 0; i < 1000; i++)
			v.push_back(i * 3);
		for (uint64_t i = 0; i < 1000; i++)
			ASSERT_EQ(i * 3, v[i]);
		/* Every byte of the vector is inside one of the fake's blocks, on node 1. */
		auto *p = reinterpret_cast<unsigned char *>(v.data());
		bool inside = false;
		for (auto &kv : fake.blocks) {
			auto *m = static_cast<unsigned char *>(kv.second.mem);
			if (p >= m && p + v.size() * 8 <= m + kv.second.req.alloc_size) {
				inside = true;
				EXPECT_EQ(1, kv.second.req.node_out);
			}
		}
		EXPECT_TRUE(inside);
		EXPECT_GE(pool.chunk_count(), 1u);
	}
	/* Only the current chunk may survive its last deallocation. */
	EXPECT_LE(pool.chunk_count(), 1u);
	pool.release();
	EXPECT_EQ(0u, pool.chunk_count());
	EXPECT_TRUE(fake.blocks.empty());
	EXPECT_EQ(0, fake.mapped);
}

TEST_F(CppTest, PoolAlignmentAndLargeRequests)
{
	PoolResource pool(dev, AllocOptions().Bind(0), 64 * 1024);
	for (size_t align : {1, 8, 16, 64, 256, 4096, 8192, 65536}) {
		void *p = pool.allocate(24, align);
		EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(p) % align) << align;
		pool.deallocate(p, 24, align);
	}
	/* Bigger than a quarter chunk: a dedicated chunk, gone as soon as it is deallocated. */
	size_t before = pool.chunk_count();
	void *big = pool.allocate(1 << 20, 64);
	EXPECT_EQ(before + 1, pool.chunk_count());
	static_cast<unsigned char *>(big)[(1 << 20) - 1] = 1;
	pool.deallocate(big, 1 << 20, 64);
	EXPECT_EQ(before, pool.chunk_count());
}

TEST_F(CppTest, PoolChunkFreedWhenEmptyAndNotCurrent)
{
	PoolResource pool(dev, AllocOptions(), 16 * 1024);
	std::vector<void *> ptrs;
	for (int i = 0; i < 10; i++)
		ptrs.push_back(pool.allocate(3500, 8)); /* 4 per chunk */
	size_t chunks = pool.chunk_count();
	EXPECT_GE(chunks, 3u);
	for (int i = 0; i < 4; i++)
		pool.deallocate(ptrs[i], 3500, 8); /* empties the first chunk */
	EXPECT_EQ(chunks - 1, pool.chunk_count());
	for (int i = 4; i < 10; i++)
		pool.deallocate(ptrs[i], 3500, 8);
	EXPECT_EQ(1u, pool.chunk_count()) << "the current chunk is kept for reuse";
}

TEST_F(CppTest, PoolFallsBackToUpstreamWhenDeviceRefuses)
{
	PoolResource pool(dev, AllocOptions(), 64 * 1024, std::pmr::new_delete_resource());
	fake.fail_after = 0;
	void *p = pool.allocate(100, 8);
	ASSERT_NE(nullptr, p);
	EXPECT_TRUE(pool.last_error() == std::errc::not_enough_memory);
	EXPECT_EQ(0u, pool.chunk_count());
	pool.deallocate(p, 100, 8); /* goes back upstream: ASan/valgrind would flag otherwise */
}

} // namespace
