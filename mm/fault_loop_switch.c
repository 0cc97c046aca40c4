// SPDX-License-Identifier: GPL-2.0
/*
 * Which loop handles user page faults on an arch that selects
 * ARCH_HAS_RUST_FAULT_LOOP: rust_fault_loop() (mm/fault_loop.rs), or the
 * arch's C loop with the rust_fault_loop=off boot parameter. See
 * include/linux/fault_loop.h.
 *
 * With CONFIG_RUST_GUP_LOOP the same choice selects GUP's retry loops:
 * mm/gup_loop.rs, or those of mm/gup.c (include/linux/gup_loop.h).
 */

#define pr_fmt(fmt) "fault_loop: " fmt

#include <linux/fault_loop.h>
#include <linux/init.h>
#include <linux/kstrtox.h>
#include <linux/printk.h>

DEFINE_STATIC_KEY_TRUE(rust_fault_loop_key);

/* A __setup() parameter: parsed after jump_label_init(), unlike early ones. */
static int __init rust_fault_loop_setup(char *arg)
{
	bool on;

	if (kstrtobool(arg, &on)) {
		pr_warn("rust_fault_loop=%s: not a boolean, ignored\n", arg);
		return 1;
	}
	if (on)
		static_branch_enable(&rust_fault_loop_key);
	else
		static_branch_disable(&rust_fault_loop_key);
	return 1;
}
__setup("rust_fault_loop=", rust_fault_loop_setup);

static int __init rust_fault_loop_report(void)
{
	pr_info("user page faults run the %s loop\n",
		rust_fault_loop_enabled() ? "Rust" : "C");
	if (IS_ENABLED(CONFIG_RUST_GUP_LOOP))
		pr_info("GUP retries in the %s loop\n",
			rust_fault_loop_enabled() ? "Rust" : "C");
	return 0;
}
late_initcall(rust_fault_loop_report);
