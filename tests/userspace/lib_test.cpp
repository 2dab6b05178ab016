// SPDX-License-Identifier: GPL-2.0
/* lib_test.cpp - the C API over the fake device, and nb_open()'s errors on real paths. */
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "fake_device.h"
#include "numabuddy.h"

namespace {

struct LibTest : ::testing::Test {
	FakeDevice dev;
	nb_handle *h = nullptr;

	void SetUp() override
	{
		nb_backend be = dev.Backend();
		ASSERT_EQ(0, nb_open_backend(&be, &h));
	}
	void TearDown() override
	{
		nb_close(h);
		EXPECT_EQ(0, dev.mapped) << "a mapping leaked";
	}
};

TEST(Open, MissingDeviceIsENOENT)
{
	nb_handle *h = reinterpret_cast<nb_handle *>(1);
	EXPECT_EQ(-ENOENT, nb_open("/nonexistent/numabuddy", &h));
	EXPECT_EQ(nullptr, h);
}

TEST(Open, RegularFileIsNotOurDevice)
{
	char path[] = "/tmp/nb_test_XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	nb_handle *h = nullptr;
	EXPECT_EQ(-ENOTTY, nb_open(path, &h));
	EXPECT_EQ(nullptr, h);
	unlink(path);
}

TEST(Open, DevNullIsNotOurDevice)
{
	nb_handle *h = nullptr;
	EXPECT_EQ(-ENOTTY, nb_open("/dev/null", &h));
}

TEST(Open, PermissionIsEACCES)
{
	char path[] = "/tmp/nb_test_XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	chmod(path, 0600); /* as the module creates /dev/numabuddy: root only */
	/* Root opens anything: check as nobody, in a child that drops its ids. */
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, nullptr) || setgid(65534) || setuid(65534)))
			_exit(3);
		nb_handle *h = nullptr;
		_exit(nb_open(path, &h) == -EACCES ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	unlink(path);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st)) << "1: not -EACCES, 3: could not drop privileges";
}

TEST(OpenBackend, AbiMajorMismatchIsEPROTO)
{
	FakeDevice dev;
	dev.version.abi_major = NB_ABI_MAJOR + 1;
	nb_backend be = dev.Backend();
	nb_handle *h = nullptr;
	EXPECT_EQ(-EPROTO, nb_open_backend(&be, &h));
	EXPECT_EQ(nullptr, h);
	EXPECT_EQ(0, dev.closed) << "the caller still owns the backend on failure";
}

TEST(OpenBackend, NewerMinorIsFine)
{
	FakeDevice dev;
	dev.version.abi_minor = NB_ABI_MINOR + 5;
	nb_backend be = dev.Backend();
	nb_handle *h = nullptr;
	ASSERT_EQ(0, nb_open_backend(&be, &h));
	EXPECT_EQ(uint32_t(NB_ABI_MINOR + 5), nb_version_info(h)->abi_minor);
	nb_close(h);
	EXPECT_EQ(1, dev.closed);
}

TEST(OpenBackend, VersionEINVALMeansNotOurDevice)
{
	FakeDevice dev;
	dev.version_err = -EINVAL;
	nb_backend be = dev.Backend();
	nb_handle *h = nullptr;
	EXPECT_EQ(-ENOTTY, nb_open_backend(&be, &h));
	dev.version_err = -EFAULT;
	EXPECT_EQ(-EFAULT, nb_open_backend(&be, &h));
}

TEST_F(LibTest, AllocMapsTheDevicesMemoryAndFreeUnmaps)
{
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	EXPECT_EQ(-1, o.node);
	EXPECT_EQ(uint32_t(NB_POLICY_LOCAL), o.policy);
	o.size = 10000;
	nb_block b;
	ASSERT_EQ(0, nb_alloc(h, &o, &b));
	ASSERT_NE(nullptr, b.addr);
	EXPECT_EQ(12288u, b.size) << "rounded up to pages";
	EXPECT_EQ(1, dev.mapped);
	auto *p = static_cast<unsigned char *>(b.addr);
	for (uint64_t i = 0; i < b.size; i++)
		ASSERT_EQ(FakeDevice::kPoison, p[i]) << "the block's own memory, mapped whole";
	p[b.size - 1] = 1;
	uint64_t off = b.offset;
	EXPECT_EQ(0, nb_free(h, &b));
	EXPECT_EQ(0, dev.mapped);
	EXPECT_EQ(nullptr, b.addr);
	EXPECT_EQ(0u, b.size);
	EXPECT_EQ(0u, dev.blocks.count(off));
	EXPECT_EQ(0, nb_free(h, &b)) << "freeing an empty block is a no-op";
}

TEST_F(LibTest, SizeWinsOverOrder)
{
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	o.size = 4096;
	o.order = 3;
	nb_block b;
	ASSERT_EQ(0, nb_alloc(h, &o, &b)) << "the kernel refuses size and order together";
	EXPECT_EQ(4096u, b.size);
	nb_free(h, &b);
}

TEST_F(LibTest, NoMapLeavesMappingToCaller)
{
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	o.order = 2;
	o.lib_flags = NB_LIB_NOMAP;
	nb_block b;
	ASSERT_EQ(0, nb_alloc(h, &o, &b));
	EXPECT_EQ(nullptr, b.addr);
	EXPECT_EQ(16384u, b.size);
	EXPECT_EQ(0, dev.mapped);
	ASSERT_EQ(0, nb_map(h, &b));
	EXPECT_EQ(1, dev.mapped);
	EXPECT_EQ(0, nb_unmap(h, &b));
	EXPECT_EQ(0, dev.mapped);
	EXPECT_EQ(0, nb_free(h, &b));
}

TEST_F(LibTest, ErrorsPassThroughAsNegativeErrno)
{
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	o.size = 4096;
	o.policy = 7;
	nb_block b;
	EXPECT_EQ(-EINVAL, nb_alloc(h, &o, &b));
	EXPECT_EQ(nullptr, b.addr);
	o.policy = NB_POLICY_LOCAL;
	dev.fail_after = 0;
	EXPECT_EQ(-ENOMEM, nb_alloc(h, &o, &b));
	nb_block bogus{};
	bogus.offset = 12345 * 4096;
	bogus.size = 4096;
	EXPECT_EQ(-ENOENT, nb_free(h, &bogus));
	struct nb_query q;
	EXPECT_EQ(-ENOENT, nb_query(h, 999, &q));
}

TEST_F(LibTest, NodesAllBecomesNodesWithPool)
{
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	o.size = 4096;
	o.policy = NB_POLICY_INTERLEAVE;
	ASSERT_EQ(0, nb_parse_nodelist("all", &o.nodemask));
	nb_block b;
	ASSERT_EQ(0, nb_alloc(h, &o, &b)) << "the fake rejects masks beyond nr_node_ids";
	EXPECT_EQ(0x3u, dev.blocks[b.offset].req.nodemask);
	nb_free(h, &b);
}

TEST_F(LibTest, BatchAllOrNothing)
{
	nb_alloc_opts o[3];
	for (auto &x : o) {
		nb_alloc_opts_init(&x);
		x.size = 8192;
	}
	nb_block out[3];
	size_t failed = 99;
	ASSERT_EQ(0, nb_alloc_batch(h, o, 3, out, &failed));
	EXPECT_EQ(3u, dev.blocks.size());
	EXPECT_EQ(3, dev.mapped);
	for (auto &b : out) {
		EXPECT_NE(nullptr, b.addr);
		EXPECT_EQ(0, nb_free(h, &b));
	}

	o[2].policy = 9; /* the kernel allocates 0 and 1, then stops: done = 2, success */
	ASSERT_EQ(-EINVAL, nb_alloc_batch(h, o, 3, out, &failed)) << "the entry's own errno";
	EXPECT_EQ(2u, failed);
	EXPECT_TRUE(dev.blocks.empty()) << "blocks [0, done) must be freed again";
	EXPECT_EQ(0, dev.mapped);
	for (auto &b : out)
		EXPECT_EQ(0u, b.offset);

	o[0].policy = 9; /* the first entry fails: the ioctl itself fails */
	ASSERT_EQ(-EINVAL, nb_alloc_batch(h, o, 3, out, &failed));
	EXPECT_EQ(0u, failed);
	EXPECT_TRUE(dev.blocks.empty());
	EXPECT_EQ(-E2BIG, nb_alloc_batch(h, o, 4097, out, &failed));
}

TEST_F(LibTest, MigrateQueryStatsPassThroughTheDevice)
{
	nb_alloc_opts o;
	nb_alloc_opts_init(&o);
	o.size = 4096;
	o.policy = NB_POLICY_BIND;
	o.node = 0;
	nb_block b;
	ASSERT_EQ(0, nb_alloc(h, &o, &b));
	EXPECT_EQ(0, b.node);
	uint64_t moved = 0;
	dev.migrate_moved = 8192; /* the device's answer, not the block's size */
	ASSERT_EQ(0, nb_migrate(h, &b, 1, &moved));
	EXPECT_EQ(b.offset, dev.last_migrate.offset) << "MIGRATE names the block";
	EXPECT_EQ(1, dev.last_migrate.node);
	EXPECT_EQ(8192u, moved) << "bytes_moved comes from the device";
	EXPECT_EQ(1, b.node);
	EXPECT_EQ(-EINVAL, nb_migrate(h, &b, 5, nullptr));
	EXPECT_EQ(1, b.node) << "a failed migration leaves the node alone";
	/* A migration cut short still says how far it got (uapi: bytes_moved is an output). */
	dev.migrate_err = -EINTR;
	dev.migrate_moved = 4096;
	moved = 0;
	EXPECT_EQ(-EINTR, nb_migrate(h, &b, 0, &moved));
	EXPECT_EQ(4096u, moved);
	EXPECT_EQ(1, b.node);
	/* QUERY answers what the device says now, not what the library remembers. */
	dev.blocks[b.offset].req.node_out = 0;
	struct nb_query q;
	ASSERT_EQ(0, nb_query(h, b.offset, &q));
	EXPECT_EQ(0, q.node);
	struct nb_stats s;
	ASSERT_EQ(0, nb_stats(h, 1, &s));
	EXPECT_EQ(1, dev.last_stats_node);
	EXPECT_EQ((64u << 20) + 4096u, s.total_bytes) << "node 1's answer";
	EXPECT_EQ(-EINVAL, nb_stats(h, 2, &s));
	nb_free(h, &b);
}

} // namespace
