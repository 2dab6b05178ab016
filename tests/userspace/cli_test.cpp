// SPDX-License-Identifier: GPL-2.0
/*
 * cli_test.cpp - runs the numabuddy binary ($NB_CLI) and checks exit codes and messages:
 * 0 for --help, 2 with a readable message for bad input, 1 with the "module not loaded"
 * explanation when the device is missing.
 */
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "numabuddy.h"

#include "run_result.h"

namespace {

/* Runs the CLI with @args (shell-quoted by the caller), device at @device. */
Result RunCli(const std::string &args, const char *device = "/nonexistent/numabuddy")
{
	const char *cli = getenv("NB_CLI");
	std::string dir = testing::TempDir();
	std::string out = dir + "nb_cli_out", err = dir + "nb_cli_err";
	std::string cmd = std::string("NUMABUDDY_DEVICE=") + device + " " +
			  (getenv("NB_CLI_WRAP") ? std::string(getenv("NB_CLI_WRAP")) + " " : "") +
			  (cli ? cli : "numabuddy") + " " + args + " >" + out + " 2>" + err +
			  " </dev/null";
	int st = system(cmd.c_str());
	return {WIFEXITED(st) ? WEXITSTATUS(st) : 128, Slurp(out), Slurp(err)};
}

bool Has(const std::string &s, const std::string &needle)
{
	return s.find(needle) != std::string::npos;
}

TEST(Cli, TopLevelHelp)
{
	Result r = RunCli("--help");
	EXPECT_EQ(0, r.code);
	for (const char *c : {"version", "stats", "watch", "alloc", "reserve", "query", "migrate",
			      "export", "bench", "pool", "compact"})
		EXPECT_TRUE(Has(r.out, c)) << c;
	EXPECT_EQ("", r.err);
}

TEST(Cli, EveryCommandHasHelp)
{
	for (const char *c : {"version", "stats", "watch", "alloc", "reserve", "query", "migrate",
			      "export", "bench", "pool", "compact"}) {
		Result r = RunCli(std::string(c) + " --help");
		EXPECT_EQ(0, r.code) << c;
		EXPECT_TRUE(Has(r.out, std::string("Usage: numabuddy ") + c)) << c << ": " << r.out;
		EXPECT_EQ("", r.err) << c;
	}
	EXPECT_TRUE(Has(RunCli("alloc --help").out, "--interleave"));
	EXPECT_TRUE(Has(RunCli("alloc --help").out, "--hold"));
	EXPECT_TRUE(Has(RunCli("alloc --help").out, "--pinnable"));
	EXPECT_TRUE(Has(RunCli("export --help").out, "NUMABUDDY_DMABUF_FD"));
}

TEST(Cli, NoCommandIsUsage)
{
	Result r = RunCli("");
	EXPECT_EQ(2, r.code);
	EXPECT_TRUE(Has(r.err, "Usage:"));
}

struct BadInput {
	const char *args;
	const char *message;
};

class CliBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInput, ExitTwoWithReadableMessage)
{
	const BadInput &b = GetParam();
	Result r = RunCli(b.args);
	EXPECT_EQ(2, r.code) << b.args << "\n" << r.err;
	EXPECT_TRUE(Has(r.err, b.message)) << b.args << " -> " << r.err;
	EXPECT_TRUE(Has(r.err, "--help")) << "points at --help: " << r.err;
	EXPECT_EQ("", r.out);
}

INSTANTIATE_TEST_SUITE_P(
	Table, CliBadInput,
	::testing::Values(
		BadInput{"frobnicate", "unknown command 'frobnicate'"},
		BadInput{"--bogus stats", "unknown option '--bogus'"},
		BadInput{"alloc", "missing --size"},
		BadInput{"alloc --size", "unknown or incomplete option"},
		BadInput{"alloc --size 3X", "bad size '3X'"},
		BadInput{"alloc --size 1.5G", "bad size '1.5G'"},
		BadInput{"alloc --size 0", "--size must be larger than 0"},
		BadInput{"alloc --size 99999999999999999999", "too large"},
		BadInput{"alloc --size 4K --order 2", "not both"},
		BadInput{"alloc --order 21", "--order: 21 is larger than 20"},
		BadInput{"alloc --size 4K --node 64", "node id 0..63"},
		BadInput{"alloc --size 4K --node x", "node id 0..63"},
		BadInput{"alloc --size 4K --policy sideways", "unknown policy 'sideways'"},
		BadInput{"alloc --size 4K --policy local --node 1", "local takes no --node"},
		BadInput{"alloc --size 4K --policy preferred", "preferred needs --node"},
		BadInput{"alloc --size 4K --policy preferred --nodes 0,1", "one --node"},
		BadInput{"alloc --size 4K --policy interleave --node 1", "takes --nodes"},
		BadInput{"alloc --size 4K --nodes 0,,1", "bad node list '0,,1'"},
		BadInput{"alloc --size 4K --interleave=0-99", "bad node list"},
		BadInput{"alloc --size 4K --node 0 --nodes 1", "not both"},
		BadInput{"alloc --size 4K --huge 4M", "--huge takes 2M or 1G"},
		BadInput{"alloc --size 4K --hold soon", "unexpected argument 'soon'"},
		BadInput{"alloc --size 4K --populate", "only applies to reserve"},
		BadInput{"alloc --size 4K extra", "unexpected argument 'extra'"},
		BadInput{"reserve --size 4K --pinnable", "--pinnable does not apply to reserve"},
		BadInput{"export", "missing --size"},
		BadInput{"export --size 4K --", "needs a program"},
		BadInput{"export --size 4K prog", "unexpected argument 'prog'"},
		BadInput{"migrate --size 4K", "missing --to"},
		BadInput{"migrate --size 4K --to 99", "node id 0..63"},
		BadInput{"stats --node -5", "node id 0..63"},
		BadInput{"stats --interval 1", "does not apply here"},
		BadInput{"watch --interval 0", "--interval takes seconds"},
		BadInput{"watch --interval abc", "--interval takes seconds"},
		BadInput{"bench --iterations 0", "at least 1"},
		BadInput{"bench --iterations 16777217", "larger than 16777216"},
		BadInput{"bench --allocator slab", "--allocator takes"},
		BadInput{"version --json", "does not apply here"},
		BadInput{"pool --size 4G", "--size needs --node N"},
		BadInput{"pool --node 0", "--node needs --size"},
		BadInput{"pool --node 0 --size 4Q", "bad size '4Q'"},
		BadInput{"pool --node 64 --size 1G", "node id 0..63"},
		BadInput{"pool --node 0 --size 1G extra", "unexpected argument 'extra'"},
		BadInput{"pool --frob", "unknown or incomplete option"},
		BadInput{"compact", "--node is required"},
		BadInput{"compact --order 9", "--node is required"},
		BadInput{"compact --node 0 --order 21", "larger than 20"},
		BadInput{"compact --node 0 --order x", "--order"},
		BadInput{"compact --node 64", "node id 0..63"},
		BadInput{"compact --node 0 --iterations 5", "does not apply here"},
		BadInput{"compact --node 0 extra", "unexpected argument 'extra'"}));

TEST(Cli, ModuleNotLoadedIsExplained)
{
	for (const char *c : {"version", "stats", "alloc --size 64M --node 1 --huge 2M --hold",
			      "watch --count 1", "bench", "migrate --size 2M --to 1",
			      "reserve --size 2M --populate", "query --size 4K", "pool",
			      "pool --node 0 --size 1G", "compact --node 0"}) {
		Result r = RunCli(c);
		EXPECT_EQ(1, r.code) << c;
		EXPECT_TRUE(Has(r.err, "module is not loaded")) << c << ": " << r.err;
		EXPECT_TRUE(Has(r.err, "modprobe numabuddy")) << c << ": " << r.err;
	}
}

TEST(Cli, NotOurDeviceIsExplained)
{
	Result r = RunCli("stats", "/dev/null");
	EXPECT_EQ(1, r.code);
	EXPECT_TRUE(Has(r.err, "not a numabuddy device")) << r.err;
}

TEST(Cli, PermissionIsExplained)
{
	char path[] = "/tmp/nb_cli_XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	chmod(path, 0600);
	/* Root opens anything: run the CLI as nobody (util-linux setpriv). */
	if (geteuid() == 0)
		setenv("NB_CLI_WRAP", "setpriv --reuid=65534 --regid=65534 --clear-groups", 1);
	Result r = RunCli("stats", path);
	unsetenv("NB_CLI_WRAP");
	unlink(path);
	EXPECT_EQ(1, r.code) << r.err;
	EXPECT_TRUE(Has(r.err, "group 'numabuddy'")) << r.err;
}

TEST(Cli, VersionPrintsLibraryEvenWithoutModule)
{
	Result r = RunCli("version");
	EXPECT_EQ(1, r.code);
	const std::string abi = "libnumabuddy: ABI " + std::to_string(NB_ABI_MAJOR) + "." +
				std::to_string(NB_ABI_MINOR);
	EXPECT_TRUE(Has(r.out, abi)) << r.out;
	EXPECT_TRUE(Has(r.out, "libnuma:")) << r.out;
}

TEST(Cli, NumactlSpellingsParse)
{
	/* What each spelling asks the module for (--dry-run prints the request, sends nothing). */
	static const struct {
		const char *args, *request;
	} cases[] = {
		{"alloc --size 64MiB --interleave=all", "size=67108864 order=0 policy=interleave node=-1 nodes=all flags=0x0"},
		{"alloc --size 4K --interleave all", "size=4096 order=0 policy=interleave node=-1 nodes=all flags=0x0"},
		{"alloc --size 4K --interleave", "size=4096 order=0 policy=interleave node=-1 nodes=all flags=0x0"},
		{"alloc --size 4K --interleave=0,2-3", "size=4096 order=0 policy=interleave node=-1 nodes=0,2-3 flags=0x0"},
		{"alloc --size 4K --membind=0,1", "size=4096 order=0 policy=bind node=-1 nodes=0-1 flags=0x0"},
		{"alloc --size 4K --preferred=1", "size=4096 order=0 policy=preferred node=1 nodes=none flags=0x0"},
		{"alloc --size 4K --localalloc", "size=4096 order=0 policy=local node=-1 nodes=none flags=0x0"},
		{"alloc --size 4K --policy preferred --nodes 1", "size=4096 order=0 policy=preferred node=1 nodes=none flags=0x0"},
		{"alloc --size 2M --policy bind --nodes 0-1 --contig --low4g --touch", "size=2097152 order=0 policy=bind node=-1 nodes=0-1 flags=0x3"},
		{"alloc -s 1G -n 1 --huge 1G --hold 5", "size=1073741824 order=0 policy=bind node=1 nodes=none flags=0x8"},
		{"alloc --order 9 --hold --huge 2M", "size=0 order=9 policy=local node=-1 nodes=none flags=0x4"},
		{"reserve --size 2M --populate --touch", "size=2097152 order=0 policy=local node=-1 nodes=none flags=0x10"},
		{"alloc --size 64K --node 1 --pinnable", "size=65536 order=0 policy=bind node=1 nodes=none flags=0x40"},
		{"export --size 1M --node 0 --contig", "size=1048576 policy=bind node=0 flags=0x41"},
	};
	for (const auto &c : cases) {
		std::string args = std::string(c.args) + " --dry-run";
		Result r = RunCli(args.c_str());
		EXPECT_EQ(0, r.code) << c.args << ": " << r.err;
		std::string want = std::string(c.args).substr(0, std::string(c.args).find(' ')) + " " +
				   c.request + "\n";
		EXPECT_EQ(want, r.out) << c.args;
	}
	/* The other commands' spellings get as far as opening the device. */
	for (const char *c : {"stats --node 1 --json", "watch --interval 0.5 --count 2 --node 0",
			      "bench --order 3 --node 0", "export --size 1M -- true"}) {
		Result r = RunCli(c);
		EXPECT_EQ(1, r.code) << c << ": " << r.err;
		EXPECT_TRUE(Has(r.err, "module is not loaded")) << c << ": " << r.err;
	}
}

} // namespace
