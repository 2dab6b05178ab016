// SPDX-License-Identifier: GPL-2.0
/*
 * cmd_pool.c - numabuddy pool: show or resize each node's pool at run time through
 * /sys/module/numabuddy/pools/nodeN/pool_mb (root). The module decides how much it can take
 * or give back; this reports what it did.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define POOLS_DIR "/sys/module/numabuddy/pools"

static const char pool_help[] =
	"Usage: numabuddy pool [--node N] [--size SIZE]\n"
	"\n"
	"Without --size: each node's pool size, the aligned runs of its largest block size it\n"
	"holds (aligned_runs=N at load) and the free 1 GiB blocks it can serve now.\n"
	"With --node N --size SIZE (root): resize node N's pool to SIZE (a grow rounds up to whole\n"
	"4 MiB chunks).\n"
	"Growing takes what the node can spare and keeps its free-memory margin; shrinking gives\n"
	"back only whole regions that are entirely free, never going below SIZE. The new size is\n"
	"printed; exit status 1 when it is not SIZE (partly done, or nothing could be done).\n";

/* The value of one attribute of node N, or -errno. */
static int64_t read_attr(int node, const char *attr)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), POOLS_DIR "/node%d/%s", node, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

static int write_pool_mb(int node, uint64_t mb)
{
	char path[128], buf[32];
	int fd, len, ret = 0;

	snprintf(path, sizeof(path), POOLS_DIR "/node%d/pool_mb", node);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", mb);
	if (write(fd, buf, (size_t)len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

/* 0 if the module's pools directory exists, else 1 after saying why. */
static int module_loaded(void)
{
	if (!access(POOLS_DIR, F_OK))
		return 0;
	if (errno == ENOENT)
		fprintf(stderr, "numabuddy pool: no %s - the numabuddy module is not loaded "
			"(try: sudo modprobe numabuddy)\n", POOLS_DIR);
	else
		fprintf(stderr, "numabuddy pool: %s: %s\n", POOLS_DIR, strerror(errno));
	return 1;
}

static int show_pools(void)
{
	DIR *d;
	struct dirent *e;
	int shown = 0;

	if (module_loaded())
		return 1;
	d = opendir(POOLS_DIR);
	if (!d) {
		fprintf(stderr, "numabuddy pool: %s: %s\n", POOLS_DIR, strerror(errno));
		return 1;
	}
	printf("%-6s %10s %12s %11s\n", "node", "pool_mb", "aligned_runs", "gib_blocks");
	while ((e = readdir(d))) {
		int node;

		if (sscanf(e->d_name, "node%d", &node) != 1)
			continue;
		printf("%-6d %10" PRId64 " %12" PRId64 " %11" PRId64 "\n", node,
		       read_attr(node, "pool_mb"), read_attr(node, "aligned_runs"),
		       read_attr(node, "gib_blocks"));
		shown++;
	}
	closedir(d);
	return shown ? 0 : 1;
}

int cmd_pool(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "node", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int32_t node = -1;
	uint64_t size = 0, want_mb;
	int have_size = 0, c, ret;
	int64_t before, after;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hn:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(pool_help, stdout);
			return 0;
		case 'n':
			if (cli_parse_node("pool", "--node", optarg, &node))
				return EXIT_USAGE;
			break;
		case 's':
			if (cli_parse_size("pool", "--size", optarg, &size))
				return EXIT_USAGE;
			have_size = 1;
			break;
		default:
			return cli_usage_error("pool", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("pool", "unexpected argument '%s'", argv[optind]);
	if (!have_size)
		return node >= 0 ? cli_usage_error("pool", "--node needs --size") : show_pools();
	if (node < 0)
		return cli_usage_error("pool", "--size needs --node N");
	if (size > UINT64_MAX - ((1ULL << 20) - 1))
		return cli_usage_error("pool", "--size: size is too large");
	want_mb = (size + (1ULL << 20) - 1) >> 20;
	if (module_loaded())
		return 1;
	before = read_attr(node, "pool_mb");
	if (before < 0) {
		fprintf(stderr, "numabuddy pool: node %d has no pool (only nodes with a pool at "
			"load can be resized): %s\n", node, strerror((int)-before));
		return 1;
	}
	ret = write_pool_mb(node, want_mb);
	after = read_attr(node, "pool_mb");
	printf("node %d: pool %" PRId64 " MiB (was %" PRId64 " MiB, asked %" PRIu64 " MiB)\n", node,
	       after, before, want_mb);
	if (ret == -EBUSY)
		fprintf(stderr, "numabuddy pool: node %d: nothing could be given back: every region"
			" that fits holds blocks in use\n", node);
	else if (ret == -ENOMEM)
		fprintf(stderr, "numabuddy pool: node %d: the node cannot spare more memory\n", node);
	else if (ret)
		fprintf(stderr, "numabuddy pool: node %d: %s\n", node, strerror(-ret));
	/* A grow is done when it reached SIZE: pools grow in whole 4 MiB chunks, so it may pass
	 * it by less than a chunk. A shrink never goes below SIZE, so it is done at SIZE. */
	if (ret || after < 0)
		return 1;
	return after == (int64_t)want_mb ||
	       (before < (int64_t)want_mb && after > (int64_t)want_mb) ? 0 : 1;
}
