// SPDX-License-Identifier: GPL-2.0
/* lib_test.cpp - the C API over the fake device, and nbl_open()'s errors on real paths. */
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
	nbl_handle *h = nullptr;

	void SetUp() override
	{
		nbl_backend be = dev.Backend();
		ASSERT_EQ(0, nbl_open_backend(&be, &h));
	}
	void TearDown() override
	{
		nbl_close(h);
		EXPECT_EQ(0, dev.mapped) << "a mapping leaked";
	}
};

TEST(Open, MissingDeviceIsENOENT)
{
	nbl_handle *h = reinterpret_cast<nbl_handle *>(1);
	EXPECT_EQ(-ENOENT, nbl_open("/nonexistent/numabuddy", &h));
	EXPECT_EQ(nullptr, h);
}

TEST(Open, RegularFileIsNotOurDevice)
{
	char path[] = "/tmp/nb_test_XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	nbl_handle *h = nullptr;
	EXPECT_EQ(-ENOTTY, nbl_open(path, &h));
	EXPECT_EQ(nullptr, h);
	unlink(path);
}

TEST(Open, DevNullIsNotOurDevice)
{
	nbl_handle *h = nullptr;
	EXPECT_EQ(-ENOTTY, nbl_open("/dev/null", &h));
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
		nbl_handle *h = nullptr;
		_exit(nbl_open(path, &h) == -EACCES ? 0 : 1);
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
	nbl_backend be = dev.Backend();
	nbl_handle *h = nullptr;
	EXPECT_EQ(-EPROTO, nbl_open_backend(&be, &h));
	EXPECT_EQ(nullptr, h);
	EXPECT_EQ(0, dev.closed) << "the caller still owns the backend on failure";
}

TEST(OpenBackend, NewerMinorIsFine)
{
	FakeDevice dev;
	dev.version.abi_minor = NB_ABI_MINOR + 5;
	nbl_backend be = dev.Backend();
	nbl_handle *h = nullptr;
	ASSERT_EQ(0, nbl_open_backend(&be, &h));
	EXPECT_EQ(uint32_t(NB_ABI_MINOR + 5), nbl_version_info(h)->abi_minor);
	nbl_close(h);
	EXPECT_EQ(1, dev.closed);
}

TEST(OpenBackend, VersionEINVALMeansNotOurDevice)
{
	FakeDevice dev;
	dev.version_err = -EINVAL;
	nbl_backend be = dev.Backend();
	nbl_handle *h = nullptr;
	EXPECT_EQ(-ENOTTY, nbl_open_backend(&be, &h));
	dev.version_err = -EFAULT;
	EXPECT_EQ(-EFAULT, nbl_open_backend(&be, &h));
}

TEST_F(LibTest, AllocMapsTheDevicesMemoryAndFreeUnmaps)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	EXPECT_EQ(-1, o.node);
	EXPECT_EQ(uint32_t(NB_POLICY_LOCAL), o.policy);
	o.size = 10000;
	nbl_block b;
	ASSERT_EQ(0, nbl_alloc(h, &o, &b));
	ASSERT_NE(nullptr, b.addr);
	EXPECT_EQ(12288u, b.size) << "rounded up to pages";
	EXPECT_EQ(1, dev.mapped);
	auto *p = static_cast<unsigned char *>(b.addr);
	for (uint64_t i = 0; i < b.size; i++)
		ASSERT_EQ(FakeDevice::kPoison, p[i]) << "the block's own memory, mapped whole";
	p[b.size - 1] = 1;
	uint64_t off = b.offset;
	EXPECT_EQ(0, nbl_free(h, &b));
	EXPECT_EQ(0, dev.mapped);
	EXPECT_EQ(nullptr, b.addr);
	EXPECT_EQ(0u, b.size);
	EXPECT_EQ(0u, dev.blocks.count(off));
	EXPECT_EQ(0, nbl_free(h, &b)) << "freeing an empty block is a no-op";
}

TEST_F(LibTest, SizeWinsOverOrder)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.size = 4096;
	o.order = 3;
	nbl_block b;
	ASSERT_EQ(0, nbl_alloc(h, &o, &b)) << "the kernel refuses size and order together";
	EXPECT_EQ(4096u, b.size);
	nbl_free(h, &b);
}

TEST_F(LibTest, NoMapLeavesMappingToCaller)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.order = 2;
	o.lib_flags = NBL_NOMAP;
	nbl_block b;
	ASSERT_EQ(0, nbl_alloc(h, &o, &b));
	EXPECT_EQ(nullptr, b.addr);
	EXPECT_EQ(16384u, b.size);
	EXPECT_EQ(0, dev.mapped);
	ASSERT_EQ(0, nbl_map(h, &b));
	EXPECT_EQ(1, dev.mapped);
	EXPECT_EQ(0, nbl_unmap(h, &b));
	EXPECT_EQ(0, dev.mapped);
	EXPECT_EQ(0, nbl_free(h, &b));
}

TEST_F(LibTest, ErrorsPassThroughAsNegativeErrno)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.size = 4096;
	o.policy = 7;
	nbl_block b;
	EXPECT_EQ(-EINVAL, nbl_alloc(h, &o, &b));
	EXPECT_EQ(nullptr, b.addr);
	o.policy = NB_POLICY_LOCAL;
	dev.fail_after = 0;
	EXPECT_EQ(-ENOMEM, nbl_alloc(h, &o, &b));
	nbl_block bogus{};
	bogus.offset = 12345 * 4096;
	bogus.size = 4096;
	EXPECT_EQ(-ENOENT, nbl_free(h, &bogus));
	struct nb_query q;
	EXPECT_EQ(-ENOENT, nbl_query(h, 999, &q));
}

TEST_F(LibTest, NodesAllBecomesNodesWithPool)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.size = 4096;
	o.policy = NB_POLICY_INTERLEAVE;
	ASSERT_EQ(0, nbl_parse_nodelist("all", &o.nodemask));
	nbl_block b;
	ASSERT_EQ(0, nbl_alloc(h, &o, &b)) << "the fake rejects masks beyond nr_node_ids";
	EXPECT_EQ(0x3u, dev.blocks[b.offset].req.nodemask);
	nbl_free(h, &b);
}

TEST_F(LibTest, BatchAllOrNothing)
{
	nbl_alloc_opts o[3];
	for (auto &x : o) {
		nbl_alloc_opts_init(&x);
		x.size = 8192;
	}
	nbl_block out[3];
	size_t failed = 99;
	ASSERT_EQ(0, nbl_alloc_batch(h, o, 3, out, &failed));
	EXPECT_EQ(3u, dev.blocks.size());
	EXPECT_EQ(3, dev.mapped);
	for (auto &b : out) {
		EXPECT_NE(nullptr, b.addr);
		EXPECT_EQ(0, nbl_free(h, &b));
	}

	o[2].policy = 9; /* the kernel allocates 0 and 1, then stops: done = 2, success */
	ASSERT_EQ(-EINVAL, nbl_alloc_batch(h, o, 3, out, &failed)) << "the entry's own errno";
	EXPECT_EQ(2u, failed);
	EXPECT_TRUE(dev.blocks.empty()) << "blocks [0, done) must be freed again";
	EXPECT_EQ(0, dev.mapped);
	for (auto &b : out)
		EXPECT_EQ(0u, b.offset);

	o[0].policy = 9; /* the first entry fails: the ioctl itself fails */
	ASSERT_EQ(-EINVAL, nbl_alloc_batch(h, o, 3, out, &failed));
	EXPECT_EQ(0u, failed);
	EXPECT_TRUE(dev.blocks.empty());
	EXPECT_EQ(-E2BIG, nbl_alloc_batch(h, o, 4097, out, &failed));
}

TEST_F(LibTest, PinnableFlagReachesTheDeviceAndExportsADmabuf)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.size = 8192;
	o.flags = NB_ALLOC_PINNABLE | NB_ALLOC_CONTIG;
	nbl_block b, plain;
	ASSERT_EQ(0, nbl_alloc(h, &o, &b));
	EXPECT_EQ(uint32_t(NB_ALLOC_PINNABLE | NB_ALLOC_CONTIG), dev.blocks.at(b.offset).req.flags);
	EXPECT_EQ(uint32_t(NB_ALLOC_PINNABLE | NB_ALLOC_CONTIG), b.flags);
	int fd = -1;
	ASSERT_EQ(0, nbl_export_dmabuf(h, &b, O_RDWR | O_CLOEXEC, &fd));
	EXPECT_GE(fd, 0);
	EXPECT_EQ(b.offset, dev.last_export.offset);
	EXPECT_EQ(uint32_t(O_RDWR | O_CLOEXEC), dev.last_export.flags);
	EXPECT_EQ(0, dev.last_export.fd) << "the output field goes in zeroed";
	EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	o.flags = 0;
	ASSERT_EQ(0, nbl_alloc(h, &o, &plain));
	fd = -7;
	EXPECT_EQ(-EINVAL, nbl_export_dmabuf(h, &plain, O_RDWR, &fd)) << "not pinnable";
	EXPECT_EQ(-7, fd) << "untouched on failure";
	EXPECT_EQ(0, nbl_free(h, &plain));
	EXPECT_EQ(0, nbl_free(h, &b));
}

TEST_F(LibTest, CompactPassesThroughTheDevice)
{
	struct nb_compact c;
	/* The module predates it: the library says so without asking. */
	EXPECT_EQ(-EOPNOTSUPP, nbl_compact(h, 0, 14, &c));
	EXPECT_EQ(0, dev.last_compact.order) << "nothing was sent";
	nbl_close(h);
	dev.version.features |= NB_FEAT_COMPACT;
	nbl_backend be = dev.Backend();
	ASSERT_EQ(0, nbl_open_backend(&be, &h));
	dev.compact_moved = 3 << 20;
	memset(&c, 0xff, sizeof(c));
	ASSERT_EQ(0, nbl_compact(h, 1, 14, &c));
	EXPECT_EQ(1, dev.last_compact.node);
	EXPECT_EQ(14u, dev.last_compact.order);
	EXPECT_EQ(0u, dev.last_compact.moved_bytes) << "outputs go in zeroed";
	EXPECT_EQ(0u, dev.last_compact.reserved[0]);
	EXPECT_EQ(3u << 20, c.moved_bytes) << "from the device";
	EXPECT_EQ(0x40000000u, c.run_phys);
	/* A failure still passes back what moved. */
	dev.compact_err = -EAGAIN;
	dev.compact_moved = 4096;
	EXPECT_EQ(-EAGAIN, nbl_compact(h, 0, 0, &c));
	EXPECT_EQ(4096u, c.moved_bytes);
	EXPECT_EQ(0u, dev.last_compact.order);
	EXPECT_EQ(-EINVAL, nbl_compact(h, 7, 9, nullptr));
}

TEST_F(LibTest, MigrateQueryStatsPassThroughTheDevice)
{
	nbl_alloc_opts o;
	nbl_alloc_opts_init(&o);
	o.size = 4096;
	o.policy = NB_POLICY_BIND;
	o.node = 0;
	nbl_block b;
	ASSERT_EQ(0, nbl_alloc(h, &o, &b));
	EXPECT_EQ(0, b.node);
	uint64_t moved = 0;
	dev.migrate_moved = 8192; /* the device's answer, not the block's size */
	ASSERT_EQ(0, nbl_migrate(h, &b, 1, &moved));
	EXPECT_EQ(b.offset, dev.last_migrate.offset) << "MIGRATE names the block";
	EXPECT_EQ(1, dev.last_migrate.node);
	EXPECT_EQ(8192u, moved) << "bytes_moved comes from the device";
	EXPECT_EQ(1, b.node);
	EXPECT_EQ(-EINVAL, nbl_migrate(h, &b, 5, nullptr));
	EXPECT_EQ(1, b.node) << "a failed migration leaves the node alone";
	/* A migration cut short still says how far it got (uapi: bytes_moved is an output). */
	dev.migrate_err = -EINTR;
	dev.migrate_moved = 4096;
	moved = 0;
	EXPECT_EQ(-EINTR, nbl_migrate(h, &b, 0, &moved));
	EXPECT_EQ(4096u, moved);
	EXPECT_EQ(1, b.node);
	/* QUERY answers what the device says now, not what the library remembers. */
	dev.blocks[b.offset].req.node_out = 0;
	struct nb_query q;
	ASSERT_EQ(0, nbl_query(h, b.offset, &q));
	EXPECT_EQ(0, q.node);
	struct nb_stats s;
	ASSERT_EQ(0, nbl_stats(h, 1, &s));
	EXPECT_EQ(1, dev.last_stats_node);
	EXPECT_EQ((64u << 20) + 4096u, s.total_bytes) << "node 1's answer";
	EXPECT_EQ(-EINVAL, nbl_stats(h, 2, &s));
	nbl_free(h, &b);
}

} // namespace
