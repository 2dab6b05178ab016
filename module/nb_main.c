// SPDX-License-Identifier: GPL-2.0
/*
 * numabuddy - node-local, physically contiguous memory pools with their own buddy allocator,
 * served to user space through /dev/numabuddy.
 *
 * Load follows the integration guide's order: reserve the pools (the "boot info"), then
 * mm_core brings up the NUMA node table, the buddy allocator and the kernel heap
 * (nbc_core_create), then the device appears. Unload undoes it in reverse; the module cannot
 * be unloaded while a file or mapping is open (the file holds a module reference).
 */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>

#include "nb_internal.h"
#include "nb_pin.h"
#include "nb_prezero.h"

static unsigned long pool_mb = 64;
module_param(pool_mb, ulong, 0444);
MODULE_PARM_DESC(pool_mb, "Pool size per NUMA node in MiB, reserved at load (default 64); pools/nodeN/pool_mb resizes one later");

static unsigned long long nodes = ~0ULL;
module_param(nodes, ullong, 0444);
MODULE_PARM_DESC(nodes, "Bitmask of the nodes that get a pool (default: every node with memory)");

unsigned long nb_param_aligned_runs;
module_param_named(aligned_runs, nb_param_aligned_runs, ulong, 0444);
MODULE_PARM_DESC(aligned_runs,
		 "Aligned runs of the largest block (2^max_order pages: 1 GiB by default) to take per node with alloc_contig_range, within pool_mb (default 0: chunks only)");

unsigned int nb_param_max_order = NBC_DEFAULT_MAX_ORDER;
module_param_named(max_order, nb_param_max_order, uint, 0444);
MODULE_PARM_DESC(max_order, "Largest block order, 2^order pages (default 18 = 1 GiB)");

unsigned int nb_param_fd_quota_pct = 75;
module_param_named(fd_quota_pct, nb_param_fd_quota_pct, uint, 0644);
MODULE_PARM_DESC(fd_quota_pct,
		 "Share of each node's pool one open file may hold, in percent (default 75; 100 = no limit); applies to files opened later");

#ifdef CONFIG_FAULT_INJECTION
/*
 * Debug kernels only: fail the Nth allocation this init makes (the counter behind
 * /proc/self/fail-nth, started here). Set through /proc, the count would also cover the
 * loader's own allocations, and the kernel WARNs when one of those fails (jump_label's
 * notifier on 6.1): that is the kernel's behaviour, not ours, and panic_on_warn stops the run.
 */
static unsigned int init_fail_nth;
module_param(init_fail_nth, uint, 0444);
MODULE_PARM_DESC(init_fail_nth, "Fault injection: fail the Nth allocation of module init (0: off)");
static void nb_init_fail_nth(unsigned int n) { current->fail_nth = n; }
#else
static unsigned int init_fail_nth;
static void nb_init_fail_nth(unsigned int n) { }
#endif

struct nbc_core *nb_core;
struct nb_pools nb_pools;

/* Load: reserve the pools, start mm_core, then the device (undone in reverse on error). */
static int __init nb_setup(void);

static int __init nb_init(void)
{
	int err;

	nb_init_fail_nth(init_fail_nth);
	err = nb_setup();
	nb_init_fail_nth(0);
	return err;
}

static int __init nb_setup(void)
{
	struct nbc_bootinfo bi = { 0 };
	int err;

	if (nb_param_max_order > NBC_ORDER_LIMIT) {
		pr_err("numabuddy: max_order=%u is above the limit %d\n",
		       nb_param_max_order, NBC_ORDER_LIMIT);
		return -EINVAL;
	}
	err = nb_pools_reserve(&nb_pools, pool_mb, nodes, nb_param_aligned_runs, nb_param_max_order);
	if (err)
		return err;

	bi.regions = nb_pools.regions;
	bi.nr_regions = nb_pools.nr_regions;
	bi.max_order = nb_param_max_order;
	err = nbc_core_create(&bi, &nb_core);
	if (err) {
		pr_err("numabuddy: mm_core refused the pools: %d\n", err);
		goto err_pools;
	}
	err = nb_sysfs_init();
	if (err)
		goto err_core;
	err = nb_fs_init();
	if (err)
		goto err_sysfs;
	err = nb_dev_register();
	if (err)
		goto err_fs;
	nb_debugfs_init();
	/* Last: the zeroer is an optimisation; a module without it still works. */
	if (nb_prezero_start())
		pr_warn("numabuddy: no background zeroer: allocations zero as they go\n");
	pr_info("numabuddy: %lu MiB per node on %u region(s), max order %u\n", pool_mb,
		nb_pools.nr_regions, nb_param_max_order);
	return 0;

err_fs:
	nb_fs_exit();
err_sysfs:
	nb_sysfs_exit();
err_core:
	nbc_core_destroy(nb_core);
err_pools:
	nb_pools_release(&nb_pools);
	return err;
}

static void __exit nb_exit(void)
{
	nb_prezero_stop(); /* first: it holds pool blocks while it zeroes them */
	nb_debugfs_exit();
	nb_dev_unregister();
	nb_fs_exit();
	nb_sysfs_exit(); /* waits for a resize in progress; none can start after */
	nb_pin_exit();
	/* Every file is closed (each held a module reference), so every block is free. */
	WARN_ON(nbc_core_destroy(nb_core));
	nb_pools_release(&nb_pools);
}

module_init(nb_init);
module_exit(nb_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("NUMA-node-local contiguous memory pools with a buddy allocator");
