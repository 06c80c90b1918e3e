// SPDX-License-Identifier: GPL-2.0
/*
 * printk: the kernel log (the level prefixes are built on the Rust side).
 *
 * bindgen functions: _printk
 */
#include <linux/printk.h>
