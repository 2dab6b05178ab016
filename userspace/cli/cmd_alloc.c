// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_alloc.c - the block commands: alloc, reserve, query, migrate, export. They share one option
 * parser because they all start by allocating a block (blocks live only as long as the fd,
 * so a command cannot name a block another process made).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct alloc_args {
	nbl_alloc_opts o;
	int have_size, have_order, have_node, have_nodes, have_policy;
	uint64_t huge;
	int touch;
	int hold;          /* --hold given */
	uint64_t hold_sec; /* 0: until a signal */
	int32_t to_node;   /* migrate --to */
	int have_to;
	int dry_run;       /* print the request, send nothing */
};

enum {
	OPT_ORDER = 256, OPT_NODES, OPT_INTERLEAVE, OPT_MEMBIND, OPT_PREFERRED, OPT_LOCALALLOC,
	OPT_HUGE, OPT_CONTIG, OPT_LOW4G, OPT_NOZERO, OPT_TOUCH, OPT_HOLD, OPT_POPULATE, OPT_TO,
	OPT_DRY_RUN, OPT_PINNABLE,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "size", required_argument, NULL, 's' },
	{ "order", required_argument, NULL, OPT_ORDER },
	{ "node", required_argument, NULL, 'n' },
	{ "policy", required_argument, NULL, 'p' },
	{ "nodes", required_argument, NULL, OPT_NODES },
	{ "interleave", optional_argument, NULL, OPT_INTERLEAVE },
	{ "membind", required_argument, NULL, OPT_MEMBIND },
	{ "preferred", required_argument, NULL, OPT_PREFERRED },
	{ "localalloc", no_argument, NULL, OPT_LOCALALLOC },
	{ "huge", required_argument, NULL, OPT_HUGE },
	{ "contig", no_argument, NULL, OPT_CONTIG },
	{ "low4g", no_argument, NULL, OPT_LOW4G },
	{ "nozero", no_argument, NULL, OPT_NOZERO },
	{ "touch", no_argument, NULL, OPT_TOUCH },
	{ "hold", optional_argument, NULL, OPT_HOLD },
	{ "populate", no_argument, NULL, OPT_POPULATE },
	{ "to", required_argument, NULL, OPT_TO },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "pinnable", no_argument, NULL, OPT_PINNABLE },
	{ NULL, 0, NULL, 0 },
};

static const char alloc_help_common[] =
	"Size (one of):\n"
	"  -s, --size SIZE        bytes, binary units: 4096, 4K, 2M, 1G, 64MiB\n"
	"      --order K          a block of 2^K pages\n"
	"Placement (numactl spellings):\n"
	"  -n, --node N           node N (policy bind unless --policy says otherwise)\n"
	"  -p, --policy P         local | preferred | bind | interleave\n"
	"      --nodes LIST       node list for bind/interleave: 0,1 or 0-3 or all\n"
	"      --interleave[=LIST]  same as --policy interleave --nodes LIST (default all)\n"
	"      --membind=LIST     same as --policy bind --nodes LIST\n"
	"      --preferred=N      same as --policy preferred --node N\n"
	"      --localalloc       same as --policy local (the default)\n"
	"Block:\n"
	"      --huge 2M|1G       prefer 2 MiB or 1 GiB frames and mappings\n"
	"      --contig           one physically contiguous range\n"
	"      --low4g            only memory below 4 GiB\n"
	"      --nozero           skip zeroing (CAP_SYS_ADMIN only)\n"
	"      --pinnable         I/O-capable: O_DIRECT, io_uring, RDMA, dma-buf work on it\n"
	"                         (4 KiB mappings; FREE waits for the kernel's references)\n"
	"      --touch            write every page (after checking it reads as zero)\n"
	"      --dry-run          print the request as the module would get it; send nothing\n";

/* Takes "--opt VALUE" for an optional-argument option when VALUE looks like one. */
static const char *optional_value(int argc, char **argv, const char *(*looks)(const char *))
{
	if (optarg)
		return optarg;
	if (optind < argc && looks(argv[optind]))
		return argv[optind++];
	return NULL;
}

static const char *looks_number(const char *s)
{
	return (*s >= '0' && *s <= '9') ? s : NULL;
}

static const char *looks_nodelist(const char *s)
{
	return (looks_number(s) || !strcmp(s, "all")) ? s : NULL;
}

static int set_nodes(const char *cmd, const char *opt, const char *arg, struct alloc_args *a)
{
	if (nbl_parse_nodelist(arg, &a->o.nodemask))
		return cli_usage_error(cmd, "%s: bad node list '%s' (use e.g. 0,1 or 0-3 or all)",
				       opt, arg ? arg : "");
	a->have_nodes = 1;
	return 0;
}

static int set_policy(const char *cmd, const char *arg, struct alloc_args *a)
{
	if (nbl_parse_policy(arg, &a->o.policy))
		return cli_usage_error(cmd, "unknown policy '%s' (local, preferred, bind, interleave)",
				       arg);
	a->have_policy = 1;
	return 0;
}

/* Parses the options of @cmd; returns 0, EXIT_USAGE, or -1 after printing --help. */
static int parse_alloc_args(const char *cmd, int argc, char **argv, const char *help,
			    struct alloc_args *a)
{
	const char *v;
	uint64_t n;
	int c, ret = 0;

	memset(a, 0, sizeof(*a));
	nbl_alloc_opts_init(&a->o);
	optind = 0;
	opterr = 0;
	while (!ret && (c = getopt_long(argc, argv, "+hs:n:p:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(help, stdout);
			return -1;
		case 's':
			ret = cli_parse_size(cmd, "--size", optarg, &a->o.size);
			a->have_size = 1;
			break;
		case OPT_ORDER:
			ret = cli_parse_uint(cmd, "--order", optarg, NB_STATS_ORDERS - 1, &n);
			a->o.order = (uint32_t)n;
			a->have_order = 1;
			break;
		case 'n':
			ret = cli_parse_node(cmd, "--node", optarg, &a->o.node);
			a->have_node = 1;
			break;
		case 'p':
			ret = set_policy(cmd, optarg, a);
			break;
		case OPT_NODES:
			ret = set_nodes(cmd, "--nodes", optarg, a);
			break;
		case OPT_INTERLEAVE:
			v = optional_value(argc, argv, looks_nodelist);
			a->o.policy = NB_POLICY_INTERLEAVE;
			a->have_policy = 1;
			ret = set_nodes(cmd, "--interleave", v ? v : "all", a);
			break;
		case OPT_MEMBIND:
			a->o.policy = NB_POLICY_BIND;
			a->have_policy = 1;
			ret = set_nodes(cmd, "--membind", optarg, a);
			break;
		case OPT_PREFERRED:
			a->o.policy = NB_POLICY_PREFERRED;
			a->have_policy = 1;
			ret = cli_parse_node(cmd, "--preferred", optarg, &a->o.node);
			a->have_node = 1;
			break;
		case OPT_LOCALALLOC:
			a->o.policy = NB_POLICY_LOCAL;
			a->have_policy = 1;
			break;
		case OPT_HUGE:
			if (nbl_parse_size(optarg, &a->huge) ||
			    (a->huge != (2ULL << 20) && a->huge != (1ULL << 30)))
				ret = cli_usage_error(cmd, "--huge takes 2M or 1G, got '%s'", optarg);
			a->o.flags |= a->huge == (2ULL << 20) ? NB_ALLOC_HUGE_2M : NB_ALLOC_HUGE_1G;
			break;
		case OPT_CONTIG:
			a->o.flags |= NB_ALLOC_CONTIG;
			break;
		case OPT_LOW4G:
			a->o.flags |= NB_ALLOC_LOW4G;
			break;
		case OPT_NOZERO:
			a->o.flags |= NB_ALLOC_NOZERO;
			break;
		case OPT_POPULATE:
			a->o.flags |= NB_ALLOC_POPULATE;
			break;
		case OPT_PINNABLE:
			a->o.flags |= NB_ALLOC_PINNABLE;
			break;
		case OPT_TOUCH:
			a->touch = 1;
			break;
		case OPT_HOLD:
			a->hold = 1;
			v = optional_value(argc, argv, looks_number);
			if (v)
				ret = cli_parse_uint(cmd, "--hold", v, 1ULL << 31, &a->hold_sec);
			break;
		case OPT_TO:
			ret = cli_parse_node(cmd, "--to", optarg, &a->to_node);
			a->have_to = 1;
			break;
		case OPT_DRY_RUN:
			a->dry_run = 1;
			break;
		default:
			return cli_usage_error(cmd, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (ret)
		return ret;
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (a->have_size && a->have_order)
		return cli_usage_error(cmd, "give --size or --order, not both");
	if (!a->have_size && !a->have_order)
		return cli_usage_error(cmd, "missing --size (or --order)");
	if (a->have_size && a->o.size == 0)
		return cli_usage_error(cmd, "--size must be larger than 0");
	if (!a->have_policy)
		a->o.policy = (a->have_node || a->have_nodes) ? NB_POLICY_BIND : NB_POLICY_LOCAL;
	switch (a->o.policy) {
	case NB_POLICY_LOCAL:
		if (a->have_node || a->have_nodes)
			return cli_usage_error(cmd, "policy local takes no --node or --nodes");
		break;
	case NB_POLICY_PREFERRED:
		if (a->have_nodes && !a->have_node && a->o.nodemask &&
		    !(a->o.nodemask & (a->o.nodemask - 1)) && a->o.nodemask != NBL_NODES_ALL) {
			a->o.node = __builtin_ctzll(a->o.nodemask); /* --nodes 1 means --node 1 */
			a->o.nodemask = 0;
		} else if (a->have_nodes) {
			return cli_usage_error(cmd, "policy preferred takes one --node, not --nodes");
		} else if (!a->have_node) {
			return cli_usage_error(cmd, "policy preferred needs --node N");
		}
		break;
	case NB_POLICY_BIND:
		if (a->have_node && a->have_nodes)
			return cli_usage_error(cmd, "give --node or --nodes, not both");
		break;
	case NB_POLICY_INTERLEAVE:
		if (a->have_node)
			return cli_usage_error(cmd, "policy interleave takes --nodes, not --node");
		if (!a->have_nodes)
			a->o.nodemask = NBL_NODES_ALL;
		break;
	}
	if ((a->o.flags & NB_ALLOC_POPULATE) && strcmp(cmd, "reserve"))
		return cli_usage_error(cmd, "--populate only applies to reserve");
	if ((a->o.flags & NB_ALLOC_PINNABLE) && !strcmp(cmd, "reserve"))
		return cli_usage_error(cmd, "--pinnable does not apply to reserve (blocks only)");
	return 0;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writes every page after checking it reads as zero; returns 0, or 1 on dirty memory. */
static int touch_block(const nbl_block *b)
{
	static const unsigned char zero[4096];
	unsigned char *p = b->addr;
	uint64_t off, dirty = 0;
	double t0 = now_sec(), dt;

	for (off = 0; off < b->size; off += sizeof(zero)) {
		if (memcmp(p + off, zero, sizeof(zero)))
			dirty++;
		p[off] = 0xa5;
	}
	dt = now_sec() - t0;
	printf("touched:  %" PRIu64 " pages in %.1f ms (%.2f GiB/s)\n", b->size / sizeof(zero),
	       dt * 1e3, dt > 0 ? (double)b->size / dt / (1 << 30) : 0.0);
	if (dirty && !(b->flags & NB_ALLOC_NOZERO)) {
		printf("zeroed:   NO - %" PRIu64 " pages held old data\n", dirty);
		return 1;
	}
	printf("zeroed:   %s\n", dirty ? "no (--nozero)" : "yes");
	return 0;
}

static void print_block(const nbl_block *b, const struct alloc_args *a)
{
	char nodes[256];

	printf("offset:   0x%" PRIx64 "\n", b->offset);
	if (b->node < 0)
		printf("node:     none yet (demand paged)\n");
	else
		printf("node:     %d\n", b->node);
	printf("size:     %s (%" PRIu64 " bytes)\n", cli_bytes(b->size), b->size);
	printf("policy:   %s", nbl_policy_name(a->o.policy));
	if (a->o.policy == NB_POLICY_PREFERRED || (a->o.policy == NB_POLICY_BIND && !a->have_nodes))
		printf(" node %d", a->o.node);
	else if (a->have_nodes || a->o.policy == NB_POLICY_INTERLEAVE)
		printf(" nodes %s", a->o.nodemask == NBL_NODES_ALL ? "all" :
		       cli_format_nodemask(a->o.nodemask, nodes, sizeof(nodes)));
	printf("\naddress:  %p\n", b->addr);
}

/* Keeps the block until SIGINT/SIGTERM/SIGHUP or the timeout. */
static void hold_block(const struct alloc_args *a)
{
	struct timespec ts = { .tv_sec = (time_t)a->hold_sec };
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (a->hold_sec)
		printf("holding for %" PRIu64 " s (Ctrl-C releases it early)\n", a->hold_sec);
	else
		printf("holding until interrupted (Ctrl-C releases it)\n");
	fflush(stdout);
	do
		sig = a->hold_sec ? sigtimedwait(&set, NULL, &ts) : sigwaitinfo(&set, NULL);
	while (sig < 0 && errno == EINTR);
	printf("released%s\n", sig > 0 ? " on signal" : "");
}

static void print_query(const struct nb_query *q)
{
	int n;

	printf("q.size:   %s\n", cli_bytes(q->size));
	printf("q.node:   %d\n", q->node);
	printf("q.order:  %u (%s frames)\n", q->order, cli_bytes(4096ULL << q->order));
	printf("q.frames: %llu x 4 KiB populated\n", (unsigned long long)q->nr_frames_4k);
	printf("mapped:   4K %s, 2M %s, 1G %s\n", cli_bytes(q->mapped_4k), cli_bytes(q->mapped_2m),
	       cli_bytes(q->mapped_1g));
	printf("mapping:  %s\n", q->mapping == NB_MAPPING_PAGES ?
	       "refcounted pages (pinnable: I/O paths work)" :
	       "PFN entries (the kernel's I/O paths get EFAULT)");
	if (q->phys_addr)
		printf("phys:     0x%llx\n", (unsigned long long)q->phys_addr);
	else
		printf("phys:     hidden (needs CAP_SYS_ADMIN)\n");
	for (n = 0; n < 16; n++)
		if (q->node_bytes[n])
			printf("on node %d: %s\n", n, cli_bytes(q->node_bytes[n]));
}

static int run_block_cmd(const char *cmd, int reserve, int argc, char **argv, const char *help)
{
	struct alloc_args a;
	struct nb_query q;
	nbl_handle *h;
	nbl_block b;
	int ret;

	ret = parse_alloc_args(cmd, argc, argv, help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (!reserve && !strcmp(cmd, "query"))
		a.touch = 1;
	if (a.dry_run) {
		char nodes[64];

		printf("%s size=%llu order=%u policy=%s node=%d nodes=%s flags=0x%x\n", cmd,
		       (unsigned long long)a.o.size, a.o.order, nbl_policy_name(a.o.policy), a.o.node,
		       a.o.nodemask == NBL_NODES_ALL ? "all" :
		       cli_format_nodemask(a.o.nodemask, nodes, sizeof(nodes)), a.o.flags);
		return 0;
	}
	if (cli_open(cmd, &h))
		return 1;
	ret = reserve ? nbl_reserve(h, &a.o, &b) : nbl_alloc(h, &a.o, &b);
	if (ret) {
		nbl_close(h);
		return cli_fail(cmd, reserve ? "reserve failed" : "allocation failed", ret);
	}
	print_block(&b, &a);
	if (a.touch)
		ret = touch_block(&b);
	if (!strcmp(cmd, "query") || reserve) {
		int qr = nbl_query(h, b.offset, &q);

		if (qr)
			ret = cli_fail(cmd, "query failed", qr);
		else
			print_query(&q);
	}
	if (a.hold)
		hold_block(&a);
	nbl_free(h, &b);
	nbl_close(h);
	return ret;
}

static const char alloc_help_head[] =
	"Usage: numabuddy alloc --size SIZE [PLACEMENT] [BLOCK] [--touch] [--hold [SECONDS]]\n"
	"\n"
	"Allocate a block, map it (MAP_SHARED), print its offset, node and size.\n"
	"The block is freed when the command exits; --hold keeps it until a signal or timeout.\n"
	"\n";

int cmd_alloc(int argc, char **argv)
{
	char help[sizeof(alloc_help_head) + sizeof(alloc_help_common) + 128];

	snprintf(help, sizeof(help), "%s%s%s", alloc_help_head, alloc_help_common,
		 "      --hold [SECONDS]   keep the block until Ctrl-C / SIGTERM or SECONDS\n");
	return run_block_cmd("alloc", 0, argc, argv, help);
}

int cmd_reserve(int argc, char **argv)
{
	char help[sizeof(alloc_help_common) + 512];

	snprintf(help, sizeof(help), "%s%s%s",
		 "Usage: numabuddy reserve --size SIZE [PLACEMENT] [BLOCK] [--populate] [--touch]\n"
		 "\n"
		 "Reserve a demand-paged range: frames are taken at first touch (or now with\n"
		 "--populate). Prints the range, touches it if asked, then shows what backs it.\n\n",
		 alloc_help_common,
		 "      --populate         allocate every frame now\n"
		 "      --hold [SECONDS]   keep the range until Ctrl-C / SIGTERM or SECONDS\n");
	return run_block_cmd("reserve", 1, argc, argv, help);
}

int cmd_query(int argc, char **argv)
{
	char help[sizeof(alloc_help_common) + 512];

	snprintf(help, sizeof(help), "%s%s%s",
		 "Usage: numabuddy query --size SIZE [PLACEMENT] [BLOCK]\n"
		 "\n"
		 "Blocks belong to the file that allocated them, so query allocates one with the\n"
		 "given options, touches it, and shows NB_IOC_QUERY: node, order, frames, mapping\n"
		 "sizes, and the physical address (root only).\n\n",
		 alloc_help_common,
		 "      --hold [SECONDS]   keep the block until Ctrl-C / SIGTERM or SECONDS\n");
	return run_block_cmd("query", 0, argc, argv, help);
}

static uint64_t pattern(uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ULL;
}

int cmd_migrate(int argc, char **argv)
{
	char help[sizeof(alloc_help_common) + 512];
	struct alloc_args a;
	uint64_t *w, i, words, bad = 0, moved = 0;
	nbl_handle *h;
	nbl_block b;
	double t0;
	int ret;

	snprintf(help, sizeof(help), "%s%s",
		 "Usage: numabuddy migrate --size SIZE [--node FROM] --to NODE [BLOCK]\n"
		 "\n"
		 "Demo of NB_IOC_MIGRATE: allocate a block (on FROM), fill it with a pattern,\n"
		 "migrate it to NODE, check the pattern survived and where the block is now.\n\n",
		 alloc_help_common);
	ret = parse_alloc_args("migrate", argc, argv, help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (!a.have_to)
		return cli_usage_error("migrate", "missing --to NODE");
	if (cli_open("migrate", &h))
		return 1;
	if (!(nbl_version_info(h)->features & NB_FEAT_MIGRATE)) {
		nbl_close(h);
		return cli_fail("migrate", "module", -EOPNOTSUPP);
	}
	ret = nbl_alloc(h, &a.o, &b);
	if (ret) {
		nbl_close(h);
		return cli_fail("migrate", "allocation failed", ret);
	}
	print_block(&b, &a);
	w = b.addr;
	words = b.size / sizeof(*w);
	for (i = 0; i < words; i++)
		w[i] = pattern(i);
	t0 = now_sec();
	ret = nbl_migrate(h, &b, a.to_node, &moved);
	if (ret) {
		nbl_free(h, &b);
		nbl_close(h);
		return cli_fail("migrate", "migration failed", ret);
	}
	printf("migrated: %s to node %d in %.1f ms\n", cli_bytes(moved), a.to_node,
	       (now_sec() - t0) * 1e3);
	for (i = 0; i < words; i++)
		bad += w[i] != pattern(i);
	{
		struct nb_query q;

		ret = nbl_query(h, b.offset, &q);
		if (!ret)
			printf("now on:   node %d\n", q.node);
		if (!ret && q.node != a.to_node) {
			printf("verify:   FAILED - block reports node %d, not %d\n", q.node, a.to_node);
			bad++;
		}
	}
	if (bad)
		printf("verify:   FAILED - %" PRIu64 " words differ after migration\n", bad);
	else
		printf("verify:   ok, %" PRIu64 " words intact\n", words);
	nbl_free(h, &b);
	nbl_close(h);
	return bad || ret ? 1 : 0;
}

/* The dma-buf's name as the kernel shows it in fdinfo ("numabuddy-nodeN"), or "?". */
static const char *dmabuf_name(int fd, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(buf, len, "?");
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "name:", 5) && sscanf(line + 5, " %63s", path) == 1)
			snprintf(buf, len, "%s", path);
	if (f)
		fclose(f);
	return buf;
}

/* Runs argv with the dma-buf's fd inherited and named in the environment; its exit status. */
static int run_with_dmabuf(char **argv, int fd, uint64_t size)
{
	char v[32];
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return cli_fail("export", "fork", -errno);
	if (pid == 0) {
		snprintf(v, sizeof(v), "%d", fd);
		setenv("NUMABUDDY_DMABUF_FD", v, 1);
		snprintf(v, sizeof(v), "%" PRIu64, size);
		setenv("NUMABUDDY_DMABUF_SIZE", v, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "numabuddy export: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int cmd_export(int argc, char **argv)
{
	char help[sizeof(alloc_help_common) + 1024], name[64];
	struct alloc_args a;
	int ret, dmabuf, prog = 0, i;
	nbl_handle *h;
	nbl_block b;

	snprintf(help, sizeof(help), "%s%s%s",
		 "Usage: numabuddy export --size SIZE [PLACEMENT] [BLOCK] [--hold [SECONDS]]\n"
		 "                        [-- PROGRAM [ARGS...]]\n"
		 "\n"
		 "Allocate a pinnable block and export it as a dma-buf (NB_IOC_EXPORT_DMABUF) for\n"
		 "a driver to import (DRM PRIME, V4L2 DMABUF, RDMA). Prints the dma-buf's fd and\n"
		 "name; with PROGRAM, runs it with the fd inherited and its number and size in\n"
		 "NUMABUDDY_DMABUF_FD and NUMABUDDY_DMABUF_SIZE, and exits with its status.\n\n",
		 alloc_help_common,
		 "      --hold [SECONDS]   keep the dma-buf until Ctrl-C / SIGTERM or SECONDS\n");
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			prog = i;
			break;
		}
	if (prog && prog + 1 >= argc)
		return cli_usage_error("export", "'--' needs a program after it");
	ret = parse_alloc_args("export", prog ? prog : argc, argv, help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	a.o.flags |= NB_ALLOC_PINNABLE;
	if (a.dry_run) {
		printf("export size=%llu policy=%s node=%d flags=0x%x\n",
		       (unsigned long long)a.o.size, nbl_policy_name(a.o.policy), a.o.node,
		       a.o.flags);
		return 0;
	}
	if (cli_open("export", &h))
		return 1;
	if (!(nbl_version_info(h)->features & NB_FEAT_DMABUF)) {
		nbl_close(h);
		return cli_fail("export", "module", -EOPNOTSUPP);
	}
	ret = nbl_alloc(h, &a.o, &b);
	if (ret) {
		nbl_close(h);
		return cli_fail("export", "allocation failed", ret);
	}
	print_block(&b, &a);
	if (a.touch)
		ret = touch_block(&b);
	/* The program inherits the fd; without one, nobody else may. */
	i = nbl_export_dmabuf(h, &b, O_RDWR | (prog ? 0 : O_CLOEXEC), &dmabuf);
	if (i) {
		nbl_free(h, &b);
		nbl_close(h);
		return cli_fail("export", "export failed", i);
	}
	printf("dmabuf:   fd %d, name %s\n", dmabuf, dmabuf_name(dmabuf, name, sizeof(name)));
	if (prog)
		ret = run_with_dmabuf(argv + prog + 1, dmabuf, b.size);
	else if (a.hold)
		hold_block(&a);
	close(dmabuf);
	nbl_free(h, &b);
	nbl_close(h);
	return ret;
}
