/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cli.h - shared pieces of the numabuddy command-line tool.
 *
 * Exit codes: 0 success, 1 the operation failed (device, kernel, verification),
 * 2 bad command line (the message says what and points at --help).
 */
#ifndef NUMABUDDY_CLI_H
#define NUMABUDDY_CLI_H

#include <stdint.h>

#include "numabuddy.h"

#define EXIT_USAGE 2

struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

extern const char *cli_device_path; /* --device, $NUMABUDDY_DEVICE, or NULL */

/* "numabuddy CMD: MSG\nTry 'numabuddy CMD --help'." on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "numabuddy CMD: WHAT: <nbl_strerror>" on stderr; returns 1. */
int cli_fail(const char *cmd, const char *what, int err);
/* Opens the device or explains why not (module not loaded, group missing). 0 or 1. */
int cli_open(const char *cmd, nbl_handle **h);

/* Strict number parsers for options: 0 or EXIT_USAGE after printing the error. */
int cli_parse_node(const char *cmd, const char *opt, const char *arg, int32_t *out);
int cli_parse_uint(const char *cmd, const char *opt, const char *arg, uint64_t max,
		   uint64_t *out);
int cli_parse_size(const char *cmd, const char *opt, const char *arg, uint64_t *out);

/* Node list as numactl prints it ("0-2,5"), "none" when empty. */
char *cli_format_nodemask(uint64_t mask, char *buf, unsigned len);
/* Human bytes into a static rotating buffer: fine for a handful per printf. */
const char *cli_bytes(uint64_t bytes);

int cmd_version(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_alloc(int argc, char **argv);
int cmd_reserve(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_pool(int argc, char **argv);
int cmd_compact(int argc, char **argv);

#endif /* NUMABUDDY_CLI_H */
