/* SPDX-License-Identifier: GPL-2.0 */
/*
 * c_api_check.c - the C API compiles as C99 and links from C alone (no C++ runtime): the
 * build fails otherwise. It also runs a few calls so a broken link shows up at once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "numabuddy.h"

int main(void)
{
	nb_handle *h = NULL;
	nb_alloc_opts o;
	uint64_t size = 0;
	char buf[32];
	int ret;

	nb_alloc_opts_init(&o);
	if (nb_parse_size("64MiB", &size) || size != 64ull << 20) {
		fprintf(stderr, "c_api_check: nb_parse_size\n");
		return 1;
	}
	ret = nb_open("/nonexistent/numabuddy", &h);
	if (ret != -ENOENT || h) {
		fprintf(stderr, "c_api_check: nb_open gave %d\n", ret);
		return 1;
	}
	printf("c_api_check: ok (%s; %s)\n", nb_format_bytes(size, buf, sizeof(buf)),
	       nb_policy_name(o.policy));
	return 0;
}
