// SPDX-License-Identifier: GPL-2.0
/*
 * errno: the error numbers (plain macros: bindgen evaluates them itself), including the
 * kernel-internal ERESTARTSYS.
 *
 * bindgen vars: E[A-Z0-9]+ ERESTARTSYS
 */
#include <linux/errno.h>
