// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - numabuddy(1): dispatch to a subcommand, and the helpers they share.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_device_path;

static const struct cli_cmd commands[] = {
	{ "version", cmd_version, "library and module versions, features, nodes with a pool" },
	{ "stats", cmd_stats, "per-node pool usage, free blocks per order, numastat counters" },
	{ "watch", cmd_watch, "stats refreshed every few seconds" },
	{ "alloc", cmd_alloc, "allocate and map a block; optionally touch and hold it" },
	{ "reserve", cmd_reserve, "reserve a demand-paged range; frames arrive at first touch" },
	{ "query", cmd_query, "allocate a block and show what backs it (node, order, mappings)" },
	{ "migrate", cmd_migrate, "demo: fill a block, migrate it to another node, verify it" },
	{ "export", cmd_export, "allocate a pinnable block and export it as a dma-buf" },
	{ "exec", cmd_exec, "run a program with its large memory in the pools (like numactl)" },
	{ "pool", cmd_pool, "show or resize each node's pool at run time (root)" },
	{ "bench", cmd_bench, "time alloc+free pairs in the kernel (root)" },
	{ "compact", cmd_compact, "move blocks to make a free contiguous run on a node (root)" },
};
#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	unsigned i;

	fprintf(f, "Usage: numabuddy [--device PATH] COMMAND [OPTIONS]\n"
		   "\n"
		   "NUMA-aware physically contiguous memory from " NB_DEVICE_PATH ".\n"
		   "\n"
		   "Commands:\n");
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n"
		   "Run 'numabuddy COMMAND --help' for the options of one command.\n"
		   "Sizes take binary units: 4096, 4K, 2M, 1G, 64MiB.\n"
		   "Policies are numactl's: local, preferred, bind (membind), interleave.\n"
		   "The device may also be named by $NUMABUDDY_DEVICE.\n");
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "numabuddy%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'numabuddy%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
	return EXIT_USAGE;
}

int cli_fail(const char *cmd, const char *what, int err)
{
	fprintf(stderr, "numabuddy %s: %s: %s\n", cmd, what, nbl_strerror(err));
	return 1;
}

int cli_open(const char *cmd, nbl_handle **h)
{
	const char *path = cli_device_path ? cli_device_path : NB_DEVICE_PATH;
	int ret = nbl_open(cli_device_path, h);
	char what[512];

	if (!ret)
		return 0;
	if (ret == -ENOENT) {
		fprintf(stderr, "numabuddy %s: cannot open %s: no such device node - the numabuddy "
			"module is not loaded (try: sudo modprobe numabuddy)\n", cmd, path);
		return 1;
	}
	snprintf(what, sizeof(what), "cannot open %s", path);
	return cli_fail(cmd, what, ret);
}

int cli_parse_uint(const char *cmd, const char *opt, const char *arg, uint64_t max,
		   uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!arg || *arg < '0' || *arg > '9')
		return cli_usage_error(cmd, "%s needs a number, got '%s'", opt, arg ? arg : "");
	v = strtoull(arg, &end, 10);
	if (*end || errno)
		return cli_usage_error(cmd, "%s needs a number, got '%s'", opt, arg);
	if (v > max)
		return cli_usage_error(cmd, "%s: %llu is larger than %" PRIu64, opt, v, max);
	*out = v;
	return 0;
}

int cli_parse_node(const char *cmd, const char *opt, const char *arg, int32_t *out)
{
	char *end;
	long v;

	if (arg && (!strcmp(arg, "-1") || (*arg >= '0' && *arg <= '9'))) {
		errno = 0;
		v = strtol(arg, &end, 10);
		if (!*end && !errno && v >= -1 && v <= 63) {
			*out = (int32_t)v;
			return 0;
		}
	}
	return cli_usage_error(cmd, "%s needs a node id 0..63 (as numactl numbers them), got '%s'",
			       opt, arg ? arg : "");
}

int cli_parse_size(const char *cmd, const char *opt, const char *arg, uint64_t *out)
{
	int ret = nbl_parse_size(arg, out);

	if (ret == -ERANGE)
		return cli_usage_error(cmd, "%s: size '%s' is too large", opt, arg);
	if (ret)
		return cli_usage_error(cmd, "%s: bad size '%s' (use e.g. 4096, 4K, 2M, 1G, 64MiB)",
				       opt, arg ? arg : "");
	return 0;
}

char *cli_format_nodemask(uint64_t mask, char *buf, unsigned len)
{
	unsigned n = 0, lo, hi;

	buf[0] = '\0';
	for (lo = 0; lo < 64; lo = hi + 1) {
		if (!(mask & (1ULL << lo))) {
			hi = lo;
			continue;
		}
		for (hi = lo; hi + 1 < 64 && (mask & (1ULL << (hi + 1))); hi++)
			;
		n += (unsigned)snprintf(buf + n, n < len ? len - n : 0,
					hi == lo ? "%s%u" : "%s%u-%u", n ? "," : "", lo, hi);
	}
	if (!n)
		snprintf(buf, len, "none");
	return buf;
}

const char *cli_bytes(uint64_t bytes)
{
	static char bufs[8][32];
	static unsigned next;

	return nbl_format_bytes(bytes, bufs[next++ % 8], sizeof(bufs[0]));
}

int main(int argc, char **argv)
{
	int argi = 1;
	unsigned i;

	cli_device_path = getenv("NUMABUDDY_DEVICE");
	if (cli_device_path && !*cli_device_path)
		cli_device_path = NULL;
	while (argi < argc && argv[argi][0] == '-') {
		const char *a = argv[argi];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--device") && argi + 1 < argc) {
			cli_device_path = argv[argi + 1];
			argi += 2;
		} else if (!strncmp(a, "--device=", 9)) {
			cli_device_path = a + 9;
			argi++;
		} else {
			return cli_usage_error(NULL, "unknown option '%s'", a);
		}
	}
	if (argi >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (i = 0; i < NR_COMMANDS; i++) {
		if (!strcmp(argv[argi], commands[i].name))
			return commands[i].run(argc - argi, argv + argi);
	}
	return cli_usage_error(NULL, "unknown command '%s'", argv[argi]);
}
