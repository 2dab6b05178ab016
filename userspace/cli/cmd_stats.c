// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_stats.c - the observation commands: version, stats, watch, bench; and compact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Simple commands take only these; each parser adds its own letters. */
struct simple_args {
	int32_t node;
	int have_node;
	int json;
	uint64_t interval_ms;
	uint64_t count;
	uint64_t order, iterations;
	const char *allocator;
};

enum { OPT_JSON = 256, OPT_INTERVAL, OPT_COUNT, OPT_ORDER, OPT_ITER, OPT_ALLOCATOR };

static const struct option simple_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "node", required_argument, NULL, 'n' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "order", required_argument, NULL, OPT_ORDER },
	{ "iterations", required_argument, NULL, OPT_ITER },
	{ "allocator", required_argument, NULL, OPT_ALLOCATOR },
	{ NULL, 0, NULL, 0 },
};

/* @allowed lists the long options @cmd accepts; anything else is a usage error. */
static int parse_simple(const char *cmd, int argc, char **argv, const char *allowed,
			const char *help, struct simple_args *a)
{
	int c, idx, ret = 0;
	char *end;
	double sec;

	memset(a, 0, sizeof(*a));
	a->interval_ms = 2000;
	a->iterations = 100000;
	a->allocator = "both";
	optind = 0;
	opterr = 0;
	while (!ret && (c = getopt_long(argc, argv, "+hn:", simple_opts, &idx)) != -1) {
		const char *name = NULL;

		if (c == 'h') {
			fputs(help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_usage_error(cmd, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		name = c == 'n' ? "node" : simple_opts[idx].name;
		if (!strstr(allowed, name))
			return cli_usage_error(cmd, "option '--%s' does not apply here", name);
		switch (c) {
		case 'n':
			ret = cli_parse_node(cmd, "--node", optarg, &a->node);
			a->have_node = 1;
			break;
		case OPT_JSON:
			a->json = 1;
			break;
		case OPT_INTERVAL:
			sec = strtod(optarg, &end);
			if (*end || end == optarg || !(sec >= 0.1 && sec <= 86400))
				ret = cli_usage_error(cmd, "--interval takes seconds (0.1 to 86400), "
						      "got '%s'", optarg);
			a->interval_ms = (uint64_t)(sec * 1000);
			break;
		case OPT_COUNT:
			ret = cli_parse_uint(cmd, "--count", optarg, UINT32_MAX, &a->count);
			break;
		case OPT_ORDER:
			ret = cli_parse_uint(cmd, "--order", optarg, NB_STATS_ORDERS - 1, &a->order);
			break;
		case OPT_ITER:
			ret = cli_parse_uint(cmd, "--iterations", optarg, 1ULL << 24, &a->iterations);
			if (!ret && !a->iterations)
				ret = cli_usage_error(cmd, "--iterations must be at least 1");
			break;
		case OPT_ALLOCATOR:
			a->allocator = optarg;
			if (strcmp(optarg, "numabuddy") && strcmp(optarg, "kernel") &&
			    strcmp(optarg, "both"))
				ret = cli_usage_error(cmd, "--allocator takes numabuddy, kernel or "
						      "both, got '%s'", optarg);
			break;
		}
	}
	if (!ret && optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return ret;
}

static const char *feature_names[] = { "huge-2m", "huge-1g", "reserve", "migrate", "batch",
				       "bench", "pinnable", "dmabuf", "compact" };

int cmd_version(int argc, char **argv)
{
	static const char help[] =
		"Usage: numabuddy version\n"
		"\n"
		"Print the library's ABI, and the loaded module's ABI, features, node ids,\n"
		"the nodes that have a pool, the largest block and the page size.\n";
	const struct nb_version *v;
	struct simple_args a;
	char nodes[256];
	nbl_handle *h;
	unsigned i;
	int ret;

	ret = parse_simple("version", argc, argv, "", help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	printf("libnumabuddy: ABI %d.%d\n", NB_ABI_MAJOR, NB_ABI_MINOR);
	printf("libnuma:      %s, %d node(s) configured, this CPU on node %d\n",
	       nbl_numa_available() ? "NUMA available" : "no NUMA", nbl_node_count(),
	       nbl_current_node());
	if (cli_open("version", &h))
		return 1;
	v = nbl_version_info(h);
	printf("module:       ABI %u.%u\n", v->abi_major, v->abi_minor);
	printf("features:    ");
	for (i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (v->features & (1ULL << i))
			printf(" %s", feature_names[i]);
	printf("%s\n", v->features ? "" : " none");
	printf("node ids:     0..%u\n", v->nr_node_ids ? v->nr_node_ids - 1 : 0);
	printf("pools on:     %s\n", cli_format_nodemask(v->nodes_with_pool, nodes, sizeof(nodes)));
	printf("max order:    %u (%s blocks)\n", v->max_order,
	       cli_bytes((uint64_t)v->page_size << v->max_order));
	printf("page size:    %u\n", v->page_size);
	nbl_close(h);
	return 0;
}

/* The size of an order-@k block, short: 4K, 8K, ... 2M, ... 1G. */
static const char *order_label(unsigned k, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	uint64_t kib = 4ULL << k;
	unsigned u = 0;

	while (kib >= 1024 && u + 1 < sizeof(units) - 1) {
		kib >>= 10;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 "%c", kib, units[u]);
	return buf;
}

static int largest_free_order(const struct nb_stats *s)
{
	int k;

	for (k = (int)s->nr_orders - 1; k >= 0; k--)
		if (s->free_blocks[k])
			return k;
	return -1;
}

static void print_stats_text(const struct nb_stats *s)
{
	unsigned k, n = s->nr_orders <= NB_STATS_ORDERS ? s->nr_orders : NB_STATS_ORDERS;
	char lbl[16];

	printf("node %d: total %s, free %s (%.1f%%), below 4 GiB: %s free of %s\n", s->node,
	       cli_bytes(s->total_bytes), cli_bytes(s->free_bytes),
	       s->total_bytes ? 100.0 * (double)s->free_bytes / (double)s->total_bytes : 0.0,
	       cli_bytes(s->low_free_bytes), cli_bytes(s->low_total_bytes));
	printf("  free blocks:");
	for (k = 0; k < n; k++)
		printf(" %s:%llu", order_label(k, lbl, sizeof(lbl)), s->free_blocks[k]);
	printf("\n  numastat:    numa_hit %llu  numa_miss %llu  numa_foreign %llu"
	       "  interleave_hit %llu  local_node %llu  other_node %llu\n",
	       s->numa_hit, s->numa_miss, s->numa_foreign, s->interleave_hit, s->local_node,
	       s->other_node);
	printf("  migrations:  in %llu  out %llu\n", s->migrate_in, s->migrate_out);
	printf("  compaction:  %llu runs, %llu failed, %s moved in %.3f ms\n", s->compactions,
	       s->compact_failures, cli_bytes(s->compact_moved_bytes), (double)s->compact_ns / 1e6);
	printf("  this file:   %s of a %s quota\n", cli_bytes(s->fd_bytes),
	       cli_bytes(s->fd_quota_bytes));
	printf("  zeroed:      %s of the free bytes cleared ahead by the background zeroer",
	       cli_bytes(s->zeroed_bytes));
	printf(", %s of it in blocks of 2 MiB or more\n", cli_bytes(s->zeroed_huge_bytes));
	printf("  in flight:   %s freed but still referenced (pinnable blocks)\n",
	       cli_bytes(s->inflight_bytes));
}

static void print_stats_json(const struct nb_stats *s, int first)
{
	unsigned k, n = s->nr_orders <= NB_STATS_ORDERS ? s->nr_orders : NB_STATS_ORDERS;

	printf("%s\n    {\"node\": %d, \"total_bytes\": %llu, \"free_bytes\": %llu"
	       ", \"low_total_bytes\": %llu, \"low_free_bytes\": %llu,\n"
	       "     \"free_blocks\": [",
	       first ? "" : ",", s->node, s->total_bytes, s->free_bytes, s->low_total_bytes,
	       s->low_free_bytes);
	for (k = 0; k < n; k++)
		printf("%s%llu", k ? ", " : "", s->free_blocks[k]);
	printf("],\n     \"numa_hit\": %llu, \"numa_miss\": %llu"
	       ", \"numa_foreign\": %llu, \"interleave_hit\": %llu"
	       ", \"local_node\": %llu, \"other_node\": %llu,\n"
	       "     \"migrate_in\": %llu, \"migrate_out\": %llu"
	       ", \"fd_bytes\": %llu, \"fd_quota_bytes\": %llu,\n"
	       "     \"compactions\": %llu, \"compact_failures\": %llu"
	       ", \"compact_moved_bytes\": %llu, \"compact_ns\": %llu,\n"
	       "     \"zeroed_bytes\": %llu, \"zeroed_huge_bytes\": %llu, \"inflight_bytes\": %llu}",
	       s->numa_hit, s->numa_miss, s->numa_foreign, s->interleave_hit, s->local_node,
	       s->other_node, s->migrate_in, s->migrate_out, s->fd_bytes, s->fd_quota_bytes,
	       s->compactions, s->compact_failures, s->compact_moved_bytes, s->compact_ns,
	       s->zeroed_bytes, s->zeroed_huge_bytes, s->inflight_bytes);
}

/* The nodes to report: --node, or every node with a pool. */
static uint64_t nodes_to_show(nbl_handle *h, const struct simple_args *a)
{
	return a->have_node ? 1ULL << a->node : nbl_version_info(h)->nodes_with_pool;
}

int cmd_stats(int argc, char **argv)
{
	static const char help[] =
		"Usage: numabuddy stats [--node N] [--json]\n"
		"\n"
		"Per node with a pool: total and free bytes (all and below 4 GiB), free blocks per\n"
		"order as /proc/buddyinfo shows them, numastat counters, migrations.\n"
		"\n"
		"  -n, --node N   only node N\n"
		"      --json     machine-readable, bytes as plain numbers\n";
	struct simple_args a;
	struct nb_stats s;
	uint64_t mask;
	nbl_handle *h;
	int node, ret, first = 1, failed = 0;

	ret = parse_simple("stats", argc, argv, "node json", help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (cli_open("stats", &h))
		return 1;
	mask = nodes_to_show(h, &a);
	if (a.json)
		printf("{\"nodes\": [");
	for (node = 0; node < 64; node++) {
		if (!(mask & (1ULL << node)))
			continue;
		ret = nbl_stats(h, node, &s);
		if (ret) {
			char what[64];

			snprintf(what, sizeof(what), "node %d", node);
			cli_fail("stats", what, ret);
			failed = 1;
			continue;
		}
		if (a.json)
			print_stats_json(&s, first);
		else
			print_stats_text(&s);
		first = 0;
	}
	if (a.json)
		printf("\n]}\n");
	else if (first && !failed)
		printf("no node has a pool\n");
	nbl_close(h);
	return failed;
}

int cmd_watch(int argc, char **argv)
{
	static const char help[] =
		"Usage: numabuddy watch [--interval SECONDS] [--count N] [--node N]\n"
		"\n"
		"Print pool usage per node every SECONDS (default 2), N times (default: until\n"
		"interrupted). Columns: total, free, used %, largest free block, numa_hit,\n"
		"numa_miss, migrations in/out.\n";
	struct simple_args a;
	struct nb_stats s;
	uint64_t mask, i;
	nbl_handle *h;
	char lbl[16];
	int node, ret;

	ret = parse_simple("watch", argc, argv, "interval count node", help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (cli_open("watch", &h))
		return 1;
	mask = nodes_to_show(h, &a);
	for (i = 0; !a.count || i < a.count; i++) {
		struct timespec ts = { .tv_sec = (time_t)(a.interval_ms / 1000),
				       .tv_nsec = (long)(a.interval_ms % 1000) * 1000000L };
		time_t now = time(NULL);
		char stamp[32];

		if (i)
			nanosleep(&ts, NULL);
		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[J");
		strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
		printf("%s  %-4s %10s %10s %6s %8s %12s %12s %8s %8s\n", stamp, "node", "total",
		       "free", "used", "largest", "numa_hit", "numa_miss", "mig_in", "mig_out");
		for (node = 0; node < 64; node++) {
			int k;

			if (!(mask & (1ULL << node)))
				continue;
			ret = nbl_stats(h, node, &s);
			if (ret) {
				printf("          %-4d %s\n", node, nbl_strerror(ret));
				continue;
			}
			k = largest_free_order(&s);
			printf("          %-4d %10s %10s %5.1f%% %8s %12llu %12llu"
			       " %8llu %8llu\n",
			       node, cli_bytes(s.total_bytes), cli_bytes(s.free_bytes),
			       s.total_bytes ? 100.0 * (double)(s.total_bytes - s.free_bytes) /
						       (double)s.total_bytes : 0.0,
			       k < 0 ? "-" : order_label((unsigned)k, lbl, sizeof(lbl)), s.numa_hit,
			       s.numa_miss, s.migrate_in, s.migrate_out);
		}
		fflush(stdout);
	}
	nbl_close(h);
	return 0;
}

static int bench_one(nbl_handle *h, uint32_t allocator, const struct simple_args *a, int node)
{
	struct nb_bench b;
	int ret;

	memset(&b, 0, sizeof(b));
	b.allocator = allocator;
	b.order = (uint32_t)a->order;
	b.node = node;
	b.iterations = a->iterations;
	ret = nbl_bench(h, &b);
	if (ret)
		return cli_fail("bench", allocator ? "kernel allocator" : "numabuddy", ret);
	printf("%-10s order %2u node %d: %llu alloc+free pairs in %.3f ms, "
	       "%.1f ns per pair, %llu failures\n",
	       allocator ? "kernel" : "numabuddy", b.order, node, b.iterations,
	       (double)b.elapsed_ns / 1e6, (double)b.elapsed_ns / (double)b.iterations,
	       b.failures);
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	static const char help[] =
		"Usage: numabuddy bench [--allocator numabuddy|kernel|both] [--order K] [--node N]\n"
		"                       [--iterations N]\n"
		"\n"
		"Time N alloc+free pairs of order K on node N inside the kernel (NB_IOC_BENCH,\n"
		"CAP_SYS_ADMIN): numabuddy's allocator, the kernel's alloc_pages_node, or both.\n"
		"Defaults: both, order 0, this CPU's node, 100000 iterations (at most 16777216).\n";
	struct simple_args a;
	nbl_handle *h;
	int node, ret = 0;

	ret = parse_simple("bench", argc, argv, "allocator order node iterations", help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	node = a.have_node ? a.node : nbl_current_node();
	if (cli_open("bench", &h))
		return 1;
	if (!(nbl_version_info(h)->features & NB_FEAT_BENCH)) {
		nbl_close(h);
		return cli_fail("bench", "module", -EOPNOTSUPP);
	}
	if (strcmp(a.allocator, "kernel"))
		ret |= bench_one(h, NB_BENCH_NUMABUDDY, &a, node);
	if (strcmp(a.allocator, "numabuddy"))
		ret |= bench_one(h, NB_BENCH_KERNEL, &a, node);
	nbl_close(h);
	return ret;
}

int cmd_compact(int argc, char **argv)
{
	static const char help[] =
		"Usage: numabuddy compact --node N [--order K]\n"
		"\n"
		"Make one free physically contiguous block of 2^K pages on node N by moving the\n"
		"blocks of every open file out of one aligned run of that size (NB_IOC_COMPACT,\n"
		"CAP_SYS_ADMIN). Their mappings are zapped and fault back in; pinnable blocks,\n"
		"page-table pages and the module's own memory do not move. Default order: the\n"
		"module's max order. Exit 1 if no run could be emptied (EBUSY: each holds an\n"
		"unmovable frame; EAGAIN: the run changed meanwhile, try again).\n";
	struct simple_args a;
	struct nb_compact c;
	nbl_handle *h;
	int ret;

	ret = parse_simple("compact", argc, argv, "node order", help, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (!a.have_node)
		return cli_usage_error("compact", "--node is required");
	if (cli_open("compact", &h))
		return 1;
	if (a.order > nbl_version_info(h)->max_order) {
		unsigned max = nbl_version_info(h)->max_order;

		nbl_close(h);
		return cli_usage_error("compact", "--order is at most %u (the module's max order)",
				       max);
	}
	ret = nbl_compact(h, a.node, (unsigned)a.order, &c);
	nbl_close(h);
	if (ret) {
		if (c.moved_bytes)
			fprintf(stderr, "numabuddy compact: %s moved before the error\n",
				cli_bytes(c.moved_bytes));
		return cli_fail("compact", "compaction", ret);
	}
	if (c.run_phys == ~0ULL)
		printf("node %d: a free block of order %llu existed already; nothing moved\n",
		       a.node, (unsigned long long)a.order);
	else
		printf("node %d: run at 0x%llx free; %s moved in %llu blocks, %.3f ms "
		       "(%u of %u runs movable)\n",
		       a.node, (unsigned long long)c.run_phys, cli_bytes(c.moved_bytes),
		       (unsigned long long)c.moved_blocks, (double)c.elapsed_ns / 1e6,
		       c.runs_movable, c.runs);
	return 0;
}
