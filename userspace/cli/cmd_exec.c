// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_exec.c - `numabuddy exec`: run an unmodified program with libnumabuddy-preload.so,
 * which serves its large anonymous memory from pool blocks (userspace/preload/preload.c).
 * Options are numactl's where numactl has one. This command only checks the device and
 * the program, writes the preload's settings into the environment and execs.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PRELOAD_NAME "libnumabuddy-preload.so"
#ifndef NB_PRELOAD_LIBDIR
#define NB_PRELOAD_LIBDIR "/usr/local/lib"
#endif

static const char exec_help[] =
	"Usage: numabuddy exec [OPTIONS] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Run PROGRAM with its large anonymous memory in numabuddy pools, as numactl --membind\n"
	"runs one on a node: malloc/calloc/realloc/posix_memalign/aligned_alloc of at least\n"
	"--min-size bytes and anonymous private read-write mmap of that size come from pool\n"
	"blocks (through " PRELOAD_NAME "); smaller ones from glibc as usual.\n"
	"\n"
	"Placement (numactl spellings; default: the node of the allocating CPU):\n"
	"  -n, --node N           only node N (like numactl --membind=N)\n"
	"  -m, --membind LIST     only the nodes in LIST: 0,1 or 0-3 or all\n"
	"  -i, --interleave LIST  blocks round robin over LIST (per allocation, not per page)\n"
	"  -p, --preferred N      node N first, then the nearest nodes with room\n"
	"  -l, --localalloc       the allocating CPU's node, then the nearest\n"
	"      --policy P         local | preferred | bind | interleave, with --node/--nodes\n"
	"      --nodes LIST       node list for --policy bind/interleave\n"
	"Serving:\n"
	"      --huge 2M|1G       blocks of 2 MiB (1 GiB) frames, mapped with 2 MiB (1 GiB)\n"
	"                         entries where sizes allow\n"
	"      --min-size SIZE    smallest allocation served from the pool (default 1M)\n"
	"      --serve WHAT       all (default) | malloc | mmap: which calls are served\n"
	"      --fallback         when the pool or the quota is short, use normal memory and\n"
	"                         say so once on stderr (the default)\n"
	"      --strict           ... fail the allocation instead (malloc NULL, mmap ENOMEM)\n"
	"      --follow-exec      keep the preload in programs PROGRAM execs (default: they\n"
	"                         run on normal memory)\n"
	"      --stats            print bytes served per node and fallbacks at exit\n"
	"                         (same as NUMABUDDY_STATS=1)\n"
	"\n"
	"Not served: statically linked programs (a warning says so; --strict refuses them),\n"
	"memory a program gets from its own allocator without malloc or mmap through libc.\n"
	"Served memory is MAP_SHARED pool memory: O_DIRECT, vmsplice and process_vm_readv on it\n"
	"fail with EFAULT; a forked child gets a private copy. See README, \"Run any program on\n"
	"pool memory\".\n"
	"Environment: NUMABUDDY_PRELOAD names the library to use.\n";

enum {
	OPT_POLICY = 256, OPT_NODES, OPT_HUGE, OPT_MIN_SIZE, OPT_SERVE, OPT_FALLBACK, OPT_STRICT,
	OPT_FOLLOW, OPT_STATS,
};

static const struct option exec_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "node", required_argument, NULL, 'n' },
	{ "membind", required_argument, NULL, 'm' },
	{ "interleave", required_argument, NULL, 'i' },
	{ "preferred", required_argument, NULL, 'p' },
	{ "localalloc", no_argument, NULL, 'l' },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "nodes", required_argument, NULL, OPT_NODES },
	{ "huge", required_argument, NULL, OPT_HUGE },
	{ "min-size", required_argument, NULL, OPT_MIN_SIZE },
	{ "serve", required_argument, NULL, OPT_SERVE },
	{ "fallback", no_argument, NULL, OPT_FALLBACK },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "follow-exec", no_argument, NULL, OPT_FOLLOW },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ NULL, 0, NULL, 0 },
};

struct exec_args {
	uint32_t policy;
	int32_t node;
	uint64_t nodemask;
	int have_policy, have_node, have_nodes;
	uint64_t huge, min_size;
	const char *serve;
	int strict, follow, stats;
};

static int set_nodes(const char *opt, const char *arg, struct exec_args *a)
{
	if (nbl_parse_nodelist(arg, &a->nodemask))
		return cli_usage_error("exec", "%s: bad node list '%s' (use e.g. 0,1 or 0-3 or all)",
				       opt, arg);
	a->have_nodes = 1;
	return 0;
}

static int set_policy(uint32_t policy, struct exec_args *a)
{
	if (a->have_policy && a->policy != policy)
		return cli_usage_error("exec", "give one placement policy");
	a->policy = policy;
	a->have_policy = 1;
	return 0;
}

/* Checks the policy/node combination, as `numabuddy alloc` does; 0 or EXIT_USAGE. */
static int check_placement(struct exec_args *a)
{
	if (!a->have_policy)
		a->policy = (a->have_node || a->have_nodes) ? NB_POLICY_BIND : NB_POLICY_LOCAL;
	switch (a->policy) {
	case NB_POLICY_LOCAL:
		if (a->have_node || a->have_nodes)
			return cli_usage_error("exec", "policy local takes no --node or --nodes");
		break;
	case NB_POLICY_PREFERRED:
		if (!a->have_node || a->have_nodes)
			return cli_usage_error("exec", "policy preferred needs one node (--preferred N)");
		break;
	case NB_POLICY_BIND:
		if (a->have_node && a->have_nodes)
			return cli_usage_error("exec", "give --node or a node list, not both");
		break;
	case NB_POLICY_INTERLEAVE:
		if (a->have_node)
			return cli_usage_error("exec", "interleave takes a node list, not --node");
		if (!a->have_nodes)
			a->nodemask = NBL_NODES_ALL;
		break;
	}
	return 0;
}

static int parse_exec_args(int argc, char **argv, struct exec_args *a)
{
	int c, ret = 0;

	memset(a, 0, sizeof(*a));
	a->node = -1;
	a->min_size = 1 << 20;
	a->serve = "all";
	optind = 0;
	opterr = 0;
	while (!ret && (c = getopt_long(argc, argv, "+hn:m:i:p:l", exec_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(exec_help, stdout);
			return -1;
		case 'n':
			ret = cli_parse_node("exec", "--node", optarg, &a->node);
			a->have_node = 1;
			break;
		case 'm':
			ret = set_policy(NB_POLICY_BIND, a) ?: set_nodes("--membind", optarg, a);
			break;
		case 'i':
			ret = set_policy(NB_POLICY_INTERLEAVE, a) ?: set_nodes("--interleave", optarg, a);
			break;
		case 'p':
			ret = set_policy(NB_POLICY_PREFERRED, a) ?:
			      cli_parse_node("exec", "--preferred", optarg, &a->node);
			a->have_node = 1;
			break;
		case 'l':
			ret = set_policy(NB_POLICY_LOCAL, a);
			break;
		case OPT_POLICY: {
			uint32_t p;

			if (nbl_parse_policy(optarg, &p))
				return cli_usage_error("exec", "unknown policy '%s' (local, preferred, "
						       "bind, interleave)", optarg);
			ret = set_policy(p, a);
			break;
		}
		case OPT_NODES:
			ret = set_nodes("--nodes", optarg, a);
			break;
		case OPT_HUGE:
			if (nbl_parse_size(optarg, &a->huge) ||
			    (a->huge != (2ULL << 20) && a->huge != (1ULL << 30)))
				ret = cli_usage_error("exec", "--huge takes 2M or 1G, got '%s'", optarg);
			break;
		case OPT_MIN_SIZE:
			ret = cli_parse_size("exec", "--min-size", optarg, &a->min_size);
			if (!ret && !a->min_size)
				ret = cli_usage_error("exec", "--min-size must be larger than 0");
			break;
		case OPT_SERVE:
			if (strcmp(optarg, "all") && strcmp(optarg, "malloc") && strcmp(optarg, "mmap"))
				ret = cli_usage_error("exec", "--serve takes all, malloc or mmap, got "
						      "'%s'", optarg);
			a->serve = optarg;
			break;
		case OPT_FALLBACK:
			a->strict = 0;
			break;
		case OPT_STRICT:
			a->strict = 1;
			break;
		case OPT_FOLLOW:
			a->follow = 1;
			break;
		case OPT_STATS:
			a->stats = 1;
			break;
		default:
			return cli_usage_error("exec", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (ret)
		return ret;
	if (optind >= argc)
		return cli_usage_error("exec", "missing PROGRAM to run");
	return check_placement(a);
}

/* PROGRAM as execvp() would find it, into @out; 0 or -ENOENT. */
static int find_program(const char *prog, char *out, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(prog, '/')) {
		snprintf(out, len, "%s", prog);
		return access(out, X_OK) ? -errno : 0;
	}
	for (const char *s = path ? path : "/usr/local/bin:/usr/bin:/bin"; *s;) {
		size_t n = strcspn(s, ":");

		snprintf(out, len, "%.*s%s%s", (int)n, s, n ? "/" : "", prog);
		if (!access(out, X_OK))
			return 0;
		s += n;
		s += *s == ':';
	}
	return -ENOENT;
}

/* 1 when @path is an ELF executable without PT_INTERP (no dynamic loader to preload). */
static int is_static_elf(const char *path)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open(path, O_RDONLY | O_CLOEXEC), interp = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(ph)) {
		close(fd);
		return 0; /* a script, or not ours to judge: the kernel will tell */
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != sizeof(ph))
			break;
		interp |= ph.p_type == PT_INTERP;
	}
	close(fd);
	return !interp;
}

/* The preload library: $NUMABUDDY_PRELOAD, beside this binary, ../lib, then LIBDIR. */
static int find_preload(char *out, size_t len)
{
	const char *env = getenv("NUMABUDDY_PRELOAD");
	char self[PATH_MAX], cand[PATH_MAX + 64];
	ssize_t n;

	if (env && *env)
		return realpath(env, out) && len >= PATH_MAX ? 0 : -ENOENT;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0';
		const char *rel[] = { "/", "/../lib/" };

		for (unsigned i = 0; i < 2; i++) {
			snprintf(cand, sizeof(cand), "%s%s" PRELOAD_NAME, self, rel[i]);
			if (!access(cand, R_OK) && realpath(cand, out))
				return 0;
		}
	}
	snprintf(cand, sizeof(cand), NB_PRELOAD_LIBDIR "/" PRELOAD_NAME);
	return !access(cand, R_OK) && realpath(cand, out) ? 0 : -ENOENT;
}

/* Refuses nodes without a pool up front, as numactl refuses nodes that do not exist. */
static int check_nodes(nbl_handle *h, struct exec_args *a)
{
	uint64_t pools = nbl_version_info(h)->nodes_with_pool;
	char buf[256];

	if (a->nodemask == NBL_NODES_ALL)
		a->nodemask = pools;
	if (a->node >= 0 && !(pools >> a->node & 1)) {
		fprintf(stderr, "numabuddy exec: node %d has no pool (nodes with a pool: %s)\n",
			a->node, cli_format_nodemask(pools, buf, sizeof(buf)));
		return 1;
	}
	if (a->nodemask & ~pools) {
		fprintf(stderr, "numabuddy exec: nodes %s have no pool (nodes with a pool: %s)\n",
			cli_format_nodemask(a->nodemask & ~pools, buf, sizeof(buf)),
			cli_format_nodemask(pools, buf + 128, 128));
		return 1;
	}
	return 0;
}

static void setenv_u64(const char *name, uint64_t v, int hex)
{
	char buf[32];

	snprintf(buf, sizeof(buf), hex ? "0x%" PRIx64 : "%" PRIu64, v);
	setenv(name, buf, 1);
}

static const char *argv_node(int32_t n, char *buf)
{
	snprintf(buf, 16, "%d", (int)n);
	return buf;
}

int cmd_exec(int argc, char **argv)
{
	struct exec_args a;
	char prog[PATH_MAX], lib[PATH_MAX], node[16], *preload;
	const char *old;
	nbl_handle *h;
	int ret;

	ret = parse_exec_args(argc, argv, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (find_program(argv[optind], prog, sizeof(prog))) {
		fprintf(stderr, "numabuddy exec: %s: command not found\n", argv[optind]);
		return 127;
	}
	if (find_preload(lib, sizeof(lib))) {
		fprintf(stderr, "numabuddy exec: cannot find " PRELOAD_NAME " (beside numabuddy, in "
			"../lib or " NB_PRELOAD_LIBDIR "; or set NUMABUDDY_PRELOAD)\n");
		return 1;
	}
	if (is_static_elf(prog)) {
		fprintf(stderr, "numabuddy exec: %s is statically linked: the preload cannot reach "
			"it, it %s\n", prog, a.strict ? "is not run (--strict)" :
			"runs on normal memory");
		if (a.strict)
			return 1;
	}
	ret = cli_open("exec", &h);
	if (ret)
		return ret;
	ret = check_nodes(h, &a);
	nbl_close(h);
	if (ret)
		return ret;

	old = getenv("LD_PRELOAD");
	if (old && *old) {
		/* After what the user preloads: a tracer or checker there sees the calls first. */
		if (asprintf(&preload, "%s:%s", old, lib) < 0)
			return cli_fail("exec", "environment", -ENOMEM);
	} else {
		preload = lib;
	}
	setenv("LD_PRELOAD", preload, 1);
	setenv("NUMABUDDY_EXEC_POLICY", nbl_policy_name(a.policy), 1);
	setenv("NUMABUDDY_EXEC_NODE", a.node < 0 ? "-1" : argv_node(a.node, node), 1);
	setenv_u64("NUMABUDDY_EXEC_NODEMASK", a.nodemask, 1);
	setenv("NUMABUDDY_EXEC_HUGE", a.huge == (1ULL << 30) ? "1G" : a.huge ? "2M" : "0", 1);
	setenv_u64("NUMABUDDY_EXEC_MIN_SIZE", a.min_size, 0);
	setenv("NUMABUDDY_EXEC_SERVE", a.serve, 1);
	setenv("NUMABUDDY_EXEC_STRICT", a.strict ? "1" : "0", 1);
	setenv("NUMABUDDY_EXEC_FOLLOW", a.follow ? "1" : "0", 1);
	if (a.stats)
		setenv("NUMABUDDY_STATS", "1", 1);
	if (cli_device_path)
		setenv("NUMABUDDY_DEVICE", cli_device_path, 1);
	execv(prog, argv + optind);
	ret = errno;
	fprintf(stderr, "numabuddy exec: %s: %s\n", prog, strerror(ret));
	return ret == ENOENT ? 127 : 126;
}
