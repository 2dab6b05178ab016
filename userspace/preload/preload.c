// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * preload.c - libnumabuddy-preload.so: serve an unmodified program's large anonymous memory
 * from numabuddy pool blocks. `numabuddy exec` sets the environment and LD_PRELOAD.
 *
 * What is served: malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc of at least NUMABUDDY_EXEC_MIN_SIZE bytes, and mmap(NULL, len, PROT_READ|
 * PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) of at least that size. Everything smaller goes to
 * glibc's own allocator (__libc_malloc & co.), every other mmap to the kernel. glibc 2.34
 * removed the __morecore hook, and its malloc calls mmap internally (not through the PLT),
 * so interposing the malloc family is the only door into a glibc heap. A served block is
 * one NB_IOC_ALLOC (zeroed, committed at once, like MAP_POPULATE) mapped MAP_SHARED from
 * the device, aligned to 2 MiB/1 GiB under --huge so the block's huge entries fit.
 *
 * fork: pool mappings are MAP_SHARED, so a child would see the parent's writes and the
 * parent the child's. The fork handlers give the child private memory instead: the child
 * copies every pool region into private anonymous memory and mremaps it over the same
 * addresses while the parent's forking thread waits on a pipe, so the child's copy is the
 * memory as it was at fork. The child then drops the inherited device file: the parent's
 * blocks are never freed by it, and its own large allocations come from a file of its own.
 * vfork/posix_spawn (CLONE_VM) need nothing; a raw clone() without fork handlers would
 * share pool memory with its parent.
 *
 * exec: the constructor removes this library from LD_PRELOAD, so programs the target execs
 * run on normal memory, unless NUMABUDDY_EXEC_FOLLOW=1 (`numabuddy exec --follow-exec`).
 *
 * Pool frames take no page references (GUP refuses them), so O_DIRECT, vmsplice or
 * process_vm_readv on served memory fail with EFAULT. NUMABUDDY_EXEC_SERVE=malloc|mmap and
 * the size threshold keep such buffers out of the pool.
 *
 * Files: preload.c (settings, exit), pool.c (blocks, table bookkeeping, counters),
 * malloc.c, maps.c (mmap & co.), fork.c, regions.c (the table).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/numabuddy.h>

#include "nbp.h"

/* Worker processes (stress-ng's among them) leave through _exit: report there too. */
NBP_EXPORT void _exit(int status)
{
	nbp_stats_print();
	for (;;)
		syscall(SYS_exit_group, status);
}

NBP_EXPORT void _Exit(int status) __attribute__((alias("_exit")));

__attribute__((destructor)) static void nbp_fini(void)
{
	nbp_stats_print();
}

/* ---- configuration ---- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return dflt;
	errno = 0;
	n = strtoull(v, &end, 0);
	return (errno || *end) ? dflt : n;
}

static int env_is(const char *name, const char *value)
{
	const char *v = getenv(name);

	return v && !strcmp(v, value);
}

/* Takes this library out of LD_PRELOAD, so that exec'd programs run without it. */
static void drop_from_ld_preload(void)
{
	static char buf[4096];
	const char *v = getenv("LD_PRELOAD");
	size_t n = 0;

	if (!v || strlen(v) >= sizeof(buf))
		return;
	for (const char *s = v; *s;) {
		size_t len = strcspn(s, ": ");

		if (len && !memmem(s, len, "libnumabuddy-preload", 20)) {
			if (n)
				buf[n++] = ':';
			memcpy(buf + n, s, len);
			n += len;
		}
		s += len;
		s += strspn(s, ": ");
	}
	buf[n] = '\0';
	if (n)
		setenv("LD_PRELOAD", buf, 1);
	else
		unsetenv("LD_PRELOAD");
}

__attribute__((constructor)) static void nbp_init(void)
{
	const char *v;

	nbp_malloc_init();
	v = getenv("NUMABUDDY_DEVICE");
	snprintf(nbp_cfg.device, sizeof(nbp_cfg.device), "%s", v && *v ? v : NB_DEVICE_PATH);
	v = getenv("NUMABUDDY_EXEC_POLICY");
	nbp_cfg.policy = !v || !strcmp(v, "local") ? NB_POLICY_LOCAL
		     : !strcmp(v, "preferred")  ? NB_POLICY_PREFERRED
		     : !strcmp(v, "bind")       ? NB_POLICY_BIND
		     : !strcmp(v, "interleave") ? NB_POLICY_INTERLEAVE
						: NB_POLICY_LOCAL;
	nbp_cfg.node = (int32_t)env_u64("NUMABUDDY_EXEC_NODE", (uint64_t)-1);
	nbp_cfg.nodemask = env_u64("NUMABUDDY_EXEC_NODEMASK", 0);
	v = getenv("NUMABUDDY_EXEC_HUGE");
	nbp_cfg.huge = v && !strcasecmp(v, "1G") ? NBP_1G : v && !strcasecmp(v, "2M") ? NBP_2M : 0;
	nbp_cfg.min_size = env_u64("NUMABUDDY_EXEC_MIN_SIZE", 1UL << 20);
	if (nbp_cfg.min_size < 1)
		nbp_cfg.min_size = 1;
	nbp_cfg.strict = env_is("NUMABUDDY_EXEC_STRICT", "1");
	nbp_cfg.stats = env_is("NUMABUDDY_STATS", "1");
	v = getenv("NUMABUDDY_EXEC_SERVE");
	nbp_cfg.serve_malloc = !v || !strcmp(v, "all") || !strcmp(v, "malloc");
	nbp_cfg.serve_mmap = !v || !strcmp(v, "all") || !strcmp(v, "mmap");
	nbp_cfg.fake = env_is("NUMABUDDY_EXEC_FAKE", "memfd");
	nbp_cfg.fake_limit = env_u64("NUMABUDDY_EXEC_FAKE_LIMIT", 0);
	if (!env_is("NUMABUDDY_EXEC_FOLLOW", "1"))
		drop_from_ld_preload();
	nbp_fork_init();
	nbp_cfg.ready = 1;
}
