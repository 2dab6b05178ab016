// SPDX-License-Identifier: GPL-2.0
/*
 * preload_test.cpp - libnumabuddy-preload.so on the host, and `numabuddy exec`'s command
 * line. The preload runs over its memfd backend (NUMABUDDY_EXEC_FAKE=memfd), which maps
 * MAP_SHARED exactly as the device does, so fork, fallback and exec behave as in the VM;
 * nb_preload_target reads what is pool memory from /proc/self/maps, not from the preload.
 * The library and the target are found beside $NB_CLI (the build directory).
 */
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "run_result.h"

namespace {

std::string BuildDir()
{
	std::string cli = getenv("NB_CLI") ? getenv("NB_CLI") : "./numabuddy";
	size_t slash = cli.rfind('/');
	return slash == std::string::npos ? "." : cli.substr(0, slash);
}

Result RunShell(const std::string &cmd)
{
	std::string dir = testing::TempDir();
	std::string out = dir + "nb_preload_out", err = dir + "nb_preload_err";
	int st = system((cmd + " >" + out + " 2>" + err + " </dev/null").c_str());
	return {WIFEXITED(st) ? WEXITSTATUS(st) : 128, Slurp(out), Slurp(err)};
}

/* nb_preload_target CASES under the preload, fake backend, with extra environment @env. */
Result Target(const std::string &cases, const std::string &env = "")
{
	std::string b = BuildDir();
	return RunShell("env NUMABUDDY_EXEC_FAKE=memfd LD_PRELOAD=" + b + "/libnumabuddy-preload.so " +
		   env + " " + b + "/nb_preload_target " + cases);
}

size_t Count(const std::string &s, const std::string &needle)
{
	size_t n = 0;
	for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1))
		n++;
	return n;
}

TEST(Preload, ServesLargeAllocationsOnly)
{
	Result r = Target("malloc calloc realloc memalign mmap madvise");
	EXPECT_EQ(0, r.code) << r.out << r.err;
	EXPECT_EQ(6u, Count(r.out, "ok ")) << r.out;
	EXPECT_EQ("", r.err);
}

TEST(Preload, MinSizeMovesTheThreshold)
{
	/* With the threshold above 3 MiB, the malloc case's 3 MiB block is normal memory. */
	Result r = Target("malloc", "NUMABUDDY_EXEC_MIN_SIZE=4194304");
	EXPECT_EQ(1, r.code);
	EXPECT_NE(std::string::npos, r.out.find("FAIL malloc 3 MiB not in the pool")) << r.out;
}

TEST(Preload, ServeMallocLeavesMmapAlone)
{
	Result r = Target("malloc", "NUMABUDDY_EXEC_SERVE=malloc");
	EXPECT_EQ(0, r.code) << r.out;
	r = Target("mmap", "NUMABUDDY_EXEC_SERVE=malloc");
	EXPECT_NE(std::string::npos, r.out.find("FAIL mmap anonymous mmap not served")) << r.out;
}

TEST(Preload, ForkedChildGetsPrivateMemory)
{
	Result r = Target("fork forkhole");
	EXPECT_EQ(0, r.code) << r.out << r.err;
	EXPECT_NE(std::string::npos, r.out.find("ok fork\n"));
	EXPECT_NE(std::string::npos, r.out.find("ok forkhole\n"));
}

TEST(Preload, ThreadsShareTheTable)
{
	Result r = Target("threads");
	EXPECT_EQ(0, r.code) << r.out << r.err;
}

TEST(Preload, FallbackWarnsOnce)
{
	Result r = Target("exhaust", "NUMABUDDY_EXEC_FAKE_LIMIT=8388608 NUMABUDDY_STATS=1");
	EXPECT_EQ(0, r.code) << r.out << r.err;
	EXPECT_EQ(1u, Count(r.err, "numabuddy: no pool memory")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("using normal memory")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find(" node0=8388608 fallbacks=2 ")) << r.err;
}

TEST(Preload, StrictFailsAllocations)
{
	Result r = Target("strict", "NUMABUDDY_EXEC_FAKE_LIMIT=8388608 NUMABUDDY_EXEC_STRICT=1 "
				    "NUMABUDDY_STATS=1");
	EXPECT_EQ(0, r.code) << r.out << r.err;
	EXPECT_EQ(1u, Count(r.err, "numabuddy: no pool memory")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("refused=2")) << r.err;
}

TEST(Preload, StatsAtExitAndUnderStatsOnly)
{
	Result r = Target("malloc", "NUMABUDDY_STATS=1");
	EXPECT_NE(std::string::npos, r.err.find("numabuddy-stats: pid=")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find(" blocks=2 node0=6291456 fallbacks=0")) << r.err;
	EXPECT_EQ("", Target("malloc").err);
}

TEST(Preload, ExecDropsThePreloadUnlessAsked)
{
	/* The target reports the LD_PRELOAD it would hand to a program it execs. */
	Result r = Target("exec", "LD_PRELOAD=/lib/other.so:" + BuildDir() +
					  "/libnumabuddy-preload.so");
	EXPECT_NE(std::string::npos, r.out.find("exec: LD_PRELOAD=/lib/other.so\n")) << r.out;
	r = Target("exec", "NUMABUDDY_EXEC_FOLLOW=1");
	EXPECT_NE(std::string::npos, r.out.find("libnumabuddy-preload.so")) << r.out;
}

/* ---- numabuddy exec's command line ---- */

Result Cli(const std::string &args, const std::string &device = "/nonexistent/numabuddy")
{
	return RunShell("NUMABUDDY_DEVICE=" + device + " " + BuildDir() + "/numabuddy exec " + args);
}

TEST(CliExec, Help)
{
	Result r = Cli("--help");
	EXPECT_EQ(0, r.code);
	for (const char *o : {"--node", "--membind", "--interleave", "--preferred", "--huge",
			      "--min-size", "--fallback", "--strict", "--follow-exec"})
		EXPECT_NE(std::string::npos, r.out.find(o)) << o;
}

TEST(CliExec, BadCommandLines)
{
	for (const char *a : {"", "--node", "--node x -- true", "--huge 4M -- true",
			      "--min-size 0 -- true", "--serve some -- true",
			      "--node 1 --nodes 0 -- true", "--localalloc --node 1 -- true",
			      "--interleave 0,1 --preferred 1 -- true", "--bogus -- true"}) {
		Result r = Cli(a);
		EXPECT_EQ(2, r.code) << a;
		EXPECT_NE(std::string::npos, r.err.find("Try 'numabuddy exec --help'")) << a << r.err;
	}
}

TEST(CliExec, MissingProgramIs127)
{
	Result r = Cli("-- /nonexistent/program");
	EXPECT_EQ(127, r.code);
	EXPECT_NE(std::string::npos, r.err.find("command not found")) << r.err;
}

TEST(CliExec, MissingDeviceExplains)
{
	Result r = Cli("--node 0 -- true");
	EXPECT_EQ(1, r.code);
	EXPECT_NE(std::string::npos, r.err.find("module is not loaded")) << r.err;
}

TEST(CliExec, PreloadNotFound)
{
	Result r = RunShell("NUMABUDDY_PRELOAD=/nonexistent.so " + BuildDir() + "/numabuddy exec true");
	EXPECT_EQ(1, r.code);
	EXPECT_NE(std::string::npos, r.err.find("cannot find libnumabuddy-preload.so")) << r.err;
}

TEST(CliExec, StaticProgramRefusedUnderStrict)
{
	std::string st = BuildDir() + "/numabuddy-static"; /* `make test` builds it first */
	ASSERT_EQ(0, access(st.c_str(), X_OK)) << st << " not built";
	Result r = Cli("--strict -- " + st + " --help");
	EXPECT_EQ(1, r.code);
	EXPECT_NE(std::string::npos, r.err.find("is statically linked")) << r.err;
}

} // namespace
