// SPDX-License-Identifier: GPL-2.0
/*
 * migrate.cpp - the guide's buddy_migrate: move a block's contents to another node.
 *
 * Allocate on the target (bind: a migration that lands elsewhere is no migration), copy
 * through the env's frame addresses, free the source, hand back the new pfn; the caller
 * remaps. The copy runs with no lock held, with the platform's page copy (env.h), 2 MiB at a
 * time, so a SLEEP caller reschedules between chunks and a 1 GiB move never hogs the CPU.
 */
#include "core.h"

namespace nb {

constexpr u64 kMigrateChunkFrames = 512; /* 2 MiB between reschedule points */

int Core::Migrate(u64 pfn, unsigned order, int old_node, int new_node, nb_ctx ctx, u64 *new_pfn)
{
	if (new_pfn == nullptr || order > max_order_ || old_node < 0 || new_node < 0 ||
	    static_cast<unsigned>(old_node) >= node_ids_ ||
	    static_cast<unsigned>(new_node) >= node_ids_)
		return -NB_EINVAL;
	Segment *seg = FindSeg(pfn);
	if (seg == nullptr || seg->node() != old_node || !seg->IsHead(pfn, order, FrameState::kAlloc))
		return -NB_EINVAL;
	if (!numa_.HasMemory(new_node))
		return -NB_ENOMEM;

	nbc_policy bind = {};
	bind.mode = NBC_POLICY_BIND;
	bind.nodemask = 1ull << new_node;
	u64 dst;
	int rc = Alloc(order, &bind, 0, ctx, &dst, nullptr);
	if (rc != 0)
		return rc;

	u64 frames = 1ull << order;
	for (u64 f = 0; f < frames; f += kMigrateChunkFrames) {
		u64 n = Min(kMigrateChunkFrames, frames - f);
		const void *src = nb_env_frame_addr(pfn + f);
		void *to = nb_env_frame_addr(dst + f);
		NB_ASSERT(src != nullptr && to != nullptr);
		nb_env_copy_frames(to, src, n);
		if (ctx == NB_CTX_SLEEP && f + n < frames) {
			nb_env_resched();
			if (nb_env_should_abort()) {
				Free(dst, order);
				return -NB_EINTR;
			}
		}
	}
	rc = Free(pfn, order);
	if (rc != 0) {
		/* The source went away under us (the caller freed it concurrently). */
		Free(dst, order);
		return rc;
	}
	nodes_[old_node]->CountMigrateOut();
	nodes_[new_node]->CountMigrateIn();
	*new_pfn = dst;
	return 0;
}

} /* namespace nb */
