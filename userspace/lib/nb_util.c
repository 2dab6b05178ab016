// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * nb_util.c - the parts of libnumabuddy that never touch the device: error messages, node
 * discovery through libnuma, parsing of sizes/policies/node lists, human-readable units.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <numa.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "numabuddy.h"

/* ---- errors ---- */

/*
 * The messages answer "what do I do now?" for the errors users actually meet; anything else
 * falls back to strerror(). Which ioctl field produces which errno is in the README's table.
 */
const char *nbl_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case ENOENT:
		/* open(2) of a missing node, or an ioctl naming a block this handle lacks */
		return "not found: no " NB_DEVICE_PATH " means the numabuddy module is not loaded "
		       "(try: sudo modprobe numabuddy); for a block, the offset is not one of "
		       "this handle's blocks";
	case ENXIO:
	case ENODEV:
		return NB_DEVICE_PATH " exists but no driver answers: the numabuddy module is not "
		       "loaded (try: sudo modprobe numabuddy)";
	case EACCES:
		return "permission denied on " NB_DEVICE_PATH ": add your user to group 'numabuddy' "
		       "(installed udev rule 99-numabuddy.rules) and log in again, or run as root";
	case EBADF:
		return "this handle is read-only (no write permission on " NB_DEVICE_PATH "): it "
		       "can show stats and query blocks but not allocate, free or migrate";
	case EPERM:
		return "operation not permitted: it needs CAP_SYS_ADMIN (NOZERO allocations, bench)";
	case EPROTO:
		return "the loaded numabuddy module speaks another ABI major version than this "
		       "library: install matching module and library versions";
	case ENOTTY:
		return "not a numabuddy device, or a command this module does not know";
	case ENOMEM:
		return "not enough free pool memory on the allowed node(s) for this size and policy "
		       "(see 'numabuddy stats')";
	case EDQUOT:
		return "per-file quota on that node reached: free blocks first or raise the module's "
		       "quota parameter";
	case EINVAL:
		return "invalid argument: bad size, order, node, node list, policy or flags, "
		       "non-zero reserved fields, or a misaligned offset";
	case E2BIG:
		return "request too large, or a newer struct with unknown non-zero fields";
	case EFAULT:
		return "bad address passed to the device";
	case ERANGE:
		return "number out of range";
	case EBUSY:
		return "block busy (being migrated or still in use)";
	case EOPNOTSUPP:
		return "the loaded module does not support this feature (see 'numabuddy version')";
	default:
		return strerror(err);
	}
}

/* ---- nodes ---- */

int nbl_numa_available(void)
{
	return numa_available() >= 0;
}

int nbl_node_count(void)
{
	int n;

	if (!nbl_numa_available())
		return 1;
	n = numa_num_configured_nodes();
	return n > 0 ? n : 1;
}

int nbl_max_node(void)
{
	return nbl_numa_available() ? numa_max_node() : 0;
}

int nbl_node_of_cpu(int cpu)
{
	int node;

	if (cpu < 0)
		return -EINVAL;
	if (!nbl_numa_available())
		return 0;
	node = numa_node_of_cpu(cpu);
	return node < 0 ? -EINVAL : node;
}

int nbl_current_node(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : nbl_node_of_cpu(cpu);
}

/* ---- parsing ---- */

static int parse_u64(const char *s, const char **end, uint64_t *out)
{
	char *e;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL; /* strtoull would accept " 12", "+12" and "-12" */
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*end = e;
	*out = v;
	return 0;
}

int nbl_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTPE";
	const char *p, *u;
	uint64_t v;
	unsigned shift = 0;
	int ret;

	if (!s)
		return -EINVAL;
	ret = parse_u64(s, &p, &v);
	if (ret)
		return ret;
	if (*p && (u = strchr(units, toupper((unsigned char)*p)))) {
		shift = 10 * (unsigned)(u - units + 1);
		p++;
		if (*p == 'i' || *p == 'I')
			p++;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

static const char *const policy_names[] = {
	[NB_POLICY_LOCAL] = "local",
	[NB_POLICY_PREFERRED] = "preferred",
	[NB_POLICY_BIND] = "bind",
	[NB_POLICY_INTERLEAVE] = "interleave",
};

int nbl_parse_policy(const char *s, uint32_t *out)
{
	uint32_t i;

	if (!s)
		return -EINVAL;
	/* numactl's option spellings map to the same policies. */
	if (!strcasecmp(s, "localalloc") || !strcasecmp(s, "default"))
		s = "local";
	else if (!strcasecmp(s, "membind"))
		s = "bind";
	for (i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++) {
		if (!strcasecmp(s, policy_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *nbl_policy_name(uint32_t policy)
{
	if (policy < sizeof(policy_names) / sizeof(policy_names[0]))
		return policy_names[policy];
	return "unknown";
}

int nbl_parse_nodelist(const char *s, uint64_t *mask)
{
	uint64_t m = 0, lo, hi;
	const char *p = s;
	int ret;

	if (!s || !*s)
		return -EINVAL;
	if (!strcasecmp(s, "all")) {
		*mask = UINT64_MAX; /* NBL_NODES_ALL: nbl_alloc() narrows it to nodes with a pool */
		return 0;
	}
	for (;;) {
		ret = parse_u64(p, &p, &lo);
		if (ret)
			return -EINVAL;
		hi = lo;
		if (*p == '-') {
			p++;
			if (parse_u64(p, &p, &hi))
				return -EINVAL;
		}
		if (hi < lo || hi > 63)
			return -EINVAL;
		for (; lo <= hi; lo++)
			m |= 1ULL << lo;
		if (*p == '\0')
			break;
		if (*p++ != ',')
			return -EINVAL;
	}
	*mask = m;
	return 0;
}

/* ---- formatting ---- */

char *nbl_format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes >= (1ULL << (10 * (u + 1))))
		u++;
	if (u == 0 || (bytes & ((1ULL << (10 * u)) - 1)) == 0)
		snprintf(buf, len, "%" PRIu64 " %s", bytes >> (10 * u), units[u]);
	else
		snprintf(buf, len, "%.1f %s", (double)bytes / (double)(1ULL << (10 * u)), units[u]);
	return buf;
}
