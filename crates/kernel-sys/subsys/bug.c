// SPDX-License-Identifier: GPL-2.0
/* bug: the end of every Rust panic. */
#include <linux/bug.h>

/*
 * A real BUG() compiled by the kernel's compiler, so the trap instruction and its `__bug_table`
 * entry have exactly the layout this kernel expects, whatever the architecture and
 * CONFIG_GENERIC_BUG_RELATIVE_POINTERS / CONFIG_DEBUG_BUGVERBOSE say.
 */
void rust_helper_BUG(void)
{
	BUG();
}
