// SPDX-License-Identifier: GPL-2.0
/*
 * nb_exec_cxx.cpp - an ordinary C++ program, heavy on std::vector and std::map, run under
 * `numabuddy exec` in the VM. It knows nothing of numabuddy except how to check, from the
 * kernel's side, where its big buffers landed: /proc/self/maps (a mapping of
 * /dev/numabuddy?) and walk.h (page-table entry sizes, node of each frame from sysfs).
 *
 *   nb_exec_cxx NODE HUGE     NODE: where the big buffers must be; HUGE 1: expect 2 MiB
 *                             entries. Exits 0 when every check passes.
 */
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "walk.h"

namespace {

int failures;

void Check(bool ok, const char *name, const char *why)
{
	printf("%s %s%s%s\n", ok ? "ok" : "FAIL", name, ok ? "" : " ", ok ? "" : why);
	failures += !ok;
}

/* True when /proc/self/maps says @p lies in a mapping of /dev/numabuddy. */
bool InDevice(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;
	int n;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &n) < 2)
			continue;
		if ((uintptr_t)p >= lo && (uintptr_t)p < hi) {
			found = strstr(line + n, "/dev/numabuddy") != nullptr;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* The buffer is pool memory, every mapped byte on @node, with 2 MiB entries if @huge. */
void CheckPlacement(const std::string &name, const void *p, size_t len, int node, bool huge)
{
	struct walk_sum s = {};
	char buf[512], why[600];
	uintptr_t lo = (uintptr_t)p & ~4095UL;

	if (walk_range(lo, (uintptr_t)p + len, &s)) {
		Check(false, name.c_str(), "NB_IOC_WALK failed");
		return;
	}
	walk_format(&s, buf, sizeof(buf));
	printf("cxx-walk %s len=%zu %s\n", name.c_str(), len, buf);
	uint64_t mapped = s.pte + s.pmd + s.pud;
	snprintf(why, sizeof(why), "%s", buf);
	Check(InDevice(p), (name + "-pool").c_str(), "not a mapping of /dev/numabuddy");
	Check(mapped > 0 && s.node[node] == mapped, (name + "-node").c_str(), why);
	if (huge)
		Check(s.pmd > 0, (name + "-2m").c_str(), "no 2 MiB entries");
}

uint64_t Mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	return x ^ (x >> 29);
}

} // namespace

int main(int argc, char **argv)
{
	int node = argc > 1 ? atoi(argv[1]) : 0;
	bool huge = argc > 2 && atoi(argv[2]);
	setvbuf(stdout, nullptr, _IOLBF, 0);

	/* 32 MiB of vector, a sorted copy, checksums that must agree. */
	std::vector<uint64_t> v(4 << 20);
	for (size_t i = 0; i < v.size(); i++)
		v[i] = Mix(i);
	std::vector<uint64_t> w(v);
	std::sort(w.begin(), w.end());
	uint64_t sum_v = std::accumulate(v.begin(), v.end(), uint64_t{0});
	Check(std::is_sorted(w.begin(), w.end()) &&
	      std::accumulate(w.begin(), w.end(), uint64_t{0}) == sum_v, "vector-sort", "mismatch");

	/* A map of vectors grown by push_back, some past the threshold, most not. */
	std::map<uint32_t, std::vector<uint32_t>> m;
	for (uint32_t k = 0; k < 400; k++) {
		size_t n = k % 10 == 0 ? 400000 + k : 1000 + k;
		for (size_t i = 0; i < n; i++)
			m[k].push_back((uint32_t)Mix(k * 1000003ULL + i));
	}
	bool ok = true;
	for (auto &[k, vec] : m) {
		size_t n = k % 10 == 0 ? 400000 + k : 1000 + k;
		ok &= vec.size() == n && vec[n - 1] == (uint32_t)Mix(k * 1000003ULL + n - 1);
	}
	Check(ok, "map-of-vectors", "contents wrong");

	/* Many small nodes: all glibc, interleaved with the big ones above. */
	std::map<uint64_t, uint64_t> small;
	for (uint64_t i = 0; i < 100000; i++)
		small[Mix(i)] = i;
	ok = small.size() == 100000;
	for (uint64_t i = 0; i < 100000; i += 997)
		ok &= small.at(Mix(i)) == i;
	Check(ok, "map-small-nodes", "lookup failed");

	CheckPlacement("vector", v.data(), v.size() * 8, node, huge);
	CheckPlacement("vector-copy", w.data(), w.size() * 8, node, huge);
	CheckPlacement("map-vector", m[10].data(), m[10].size() * 4, node, false);

	/* fork: the child works on its copy; the parent must not see its writes. */
	pid_t pid = fork();
	if (pid == 0) {
		bool same = std::accumulate(v.begin(), v.end(), uint64_t{0}) == sum_v;
		std::fill(v.begin(), v.end(), 7);
		m[10].assign(500000, 7);
		std::vector<uint64_t> mine(4 << 20, 1); /* the child's own allocation */
		_exit(same && std::accumulate(mine.begin(), mine.end(), uint64_t{0}) == mine.size()
			      ? 0 : 1);
	}
	int st = 0;
	Check(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "fork-child", "child saw wrong data or failed");
	Check(std::accumulate(v.begin(), v.end(), uint64_t{0}) == sum_v && m[10].size() == 400010,
	      "fork-parent-private", "the child's writes reached the parent");
	CheckPlacement("vector-after-fork", v.data(), v.size() * 8, node, huge);
	return failures ? 1 : 0;
}
