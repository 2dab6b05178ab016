// SPDX-License-Identifier: GPL-2.0
//
// quota.h - what a space holds on each node and what it may hold.
//
// Every frame a space takes is charged to its node before it becomes reachable and uncharged
// when it goes back; nbc_space_set_quota limits the charge per node (no limit by default).
// Not thread-safe: the owner (nb::Space) serialises every call with its lock.
#ifndef NB_QUOTA_H
#define NB_QUOTA_H

#include "base.h"
#include "nbc_space.h"

namespace nb {

class Quotas {
public:
	// No charge, no quota anywhere.
	void Init();
	// -EDQUOT if `bytes` more on `node` would pass its quota; -EINVAL for a bad node.
	int Charge(int node, u64 bytes);
	void Uncharge(int node, u64 bytes);
	// Whether `bytes` could be had on the nodes of `mask` at all: -ENOMEM beyond
	// `pool_bytes`, their pools' size now (pools resize: the caller reads it from the core
	// each time), -EDQUOT beyond what is left of the quota on them.
	int CheckRoom(u64 mask, u64 bytes, u64 pool_bytes) const;
	int Set(int node, u64 bytes);
	u64 Get(int node) const;
	u64 Used(int node) const;

private:
	u64 used_[NBC_MAX_NODES] = {};
	u64 quota_[NBC_MAX_NODES] = {};
};

} // namespace nb

#endif // NB_QUOTA_H
