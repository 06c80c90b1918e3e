// SPDX-License-Identifier: GPL-2.0
/*
 * sched: task states, sleeping, pending signals.
 *
 * bindgen functions: schedule
 * bindgen opaque: task_struct
 *
 * task_struct is opaque: Rust never reads its fields, and under the debug kernel's options
 * clang and gcc disagree on its layout (the layout checks would fail as soon as any allowlisted
 * type reaches it, e.g. through a page's address_space).
 */
#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

const unsigned int RUST_CONST_TASK_NORMAL = TASK_NORMAL;
const unsigned int RUST_CONST_TASK_INTERRUPTIBLE = TASK_INTERRUPTIBLE;
const unsigned int RUST_CONST_TASK_UNINTERRUPTIBLE = TASK_UNINTERRUPTIBLE;

int rust_helper_signal_pending(void)
{
	return signal_pending(current);
}

unsigned int rust_helper_num_possible_cpus(void)
{
	return num_possible_cpus();
}

void rust_helper_might_sleep(void)
{
	might_sleep();
}
