// SPDX-License-Identifier: GPL-2.0
/*
 * Harness self-test module: its init warns, nothing else. The VM boots with panic_on_warn=1,
 * so loading it must end the run with a WARNING splat and no NB-VM-END, and run.sh must fail.
 */
#include <linux/bug.h>
#include <linux/init.h>
#include <linux/module.h>

static int __init nb_warn_init(void)
{
	WARN_ON(1);
	return 0;
}

static void __exit nb_warn_exit(void)
{
}

module_init(nb_warn_init);
module_exit(nb_warn_exit);
MODULE_DESCRIPTION("numabuddy VM harness self-test: WARN on load");
MODULE_LICENSE("GPL");
