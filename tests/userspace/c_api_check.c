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
	nbl_handle *h = NULL;
	nbl_alloc_opts o;
	uint64_t size = 0;
	char buf[32];
	int ret;

	nbl_alloc_opts_init(&o);
	if (nbl_parse_size("64MiB", &size) || size != 64ull << 20) {
		fprintf(stderr, "c_api_check: nbl_parse_size\n");
		return 1;
	}
	ret = nbl_open("/nonexistent/numabuddy", &h);
	if (ret != -ENOENT || h) {
		fprintf(stderr, "c_api_check: nbl_open gave %d\n", ret);
		return 1;
	}
	printf("c_api_check: ok (%s; %s)\n", nbl_format_bytes(size, buf, sizeof(buf)),
	       nbl_policy_name(o.policy));
	return 0;
}
