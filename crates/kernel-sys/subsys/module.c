// SPDX-License-Identifier: GPL-2.0
/*
 * module: `struct module` (only ever behind a pointer) and module parameters.
 *
 * bindgen types: module kernel_param kernel_param_ops
 * bindgen vars: param_ops_uint param_ops_int param_ops_bool
 * bindgen opaque: module
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
