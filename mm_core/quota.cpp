// SPDX-License-Identifier: GPL-2.0
//
// quota.cpp - per-node charges of one space.
#include "quota.h"

namespace nb {

namespace {
bool BadNode(int node) { return node < 0 || node >= NBC_MAX_NODES; }
} // namespace

void Quotas::Init()
{
	for (int n = 0; n < NBC_MAX_NODES; n++) {
		used_[n] = 0;
		quota_[n] = NBC_SPACE_NO_QUOTA;
	}
}

int Quotas::Charge(int node, u64 bytes)
{
	NB_ASSERT(!BadNode(node));
	if (BadNode(node))
		return -NB_EINVAL;
	if (bytes > quota_[node] || used_[node] > quota_[node] - bytes)
		return -NB_EDQUOT;
	used_[node] += bytes;
	return 0;
}

void Quotas::Uncharge(int node, u64 bytes)
{
	NB_ASSERT(!BadNode(node) && used_[node] >= bytes);
	if (!BadNode(node))
		used_[node] -= bytes;
}

// Refuses a request before anything is allocated for it: otherwise a hopeless ALLOC takes
// frames and gives them back one by one, and one whose frames fall back to 4 KiB sizes an
// extent array for the whole request first.
int Quotas::CheckRoom(u64 mask, u64 bytes, u64 pool_bytes) const
{
	u64 left = 0;
	for (u64 m = mask; m; m &= m - 1) {
		unsigned n = Ctz64(m);
		if (n >= NBC_MAX_NODES)
			break;
		u64 room = quota_[n] - Min(used_[n], quota_[n]);
		left = room > ~0ull - left ? ~0ull : left + room;
	}
	if (bytes > pool_bytes)
		return -NB_ENOMEM;
	return bytes > left ? -NB_EDQUOT : 0;
}

int Quotas::Set(int node, u64 bytes)
{
	if (BadNode(node))
		return -NB_EINVAL;
	quota_[node] = bytes;
	return 0;
}

u64 Quotas::Get(int node) const { return BadNode(node) ? 0 : quota_[node]; }

u64 Quotas::Used(int node) const { return BadNode(node) ? 0 : used_[node]; }

} // namespace nb
