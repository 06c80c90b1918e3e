// SPDX-License-Identifier: GPL-2.0
/*
 * miscdev: misc character devices (a struct miscdevice must not move once registered).
 *
 * bindgen functions: misc_register misc_deregister
 * bindgen types: miscdevice
 * bindgen opaque: device
 * bindgen no-copy: miscdevice
 */
#include <linux/miscdevice.h>

const int RUST_CONST_MISC_DYNAMIC_MINOR = MISC_DYNAMIC_MINOR;
