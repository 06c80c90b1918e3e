// SPDX-License-Identifier: GPL-2.0
/*
 * capability: whether the current task holds a capability (privileged ioctls).
 *
 * bindgen functions: capable
 * bindgen vars: CAP_SYS_ADMIN
 */
#include <linux/capability.h>
