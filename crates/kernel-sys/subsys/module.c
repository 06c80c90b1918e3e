// SPDX-License-Identifier: GPL-2.0
/*
 * module: `struct module` (only ever behind a pointer) and module parameters.
 *
 * bindgen types: module kernel_param kernel_param_ops kparam_array
 * bindgen vars: param_ops_byte param_ops_short param_ops_ushort param_ops_int param_ops_uint
 * bindgen vars: param_ops_long param_ops_ulong param_ops_ullong param_ops_bool param_ops_charp
 * bindgen vars: param_array_ops
 * bindgen opaque: module
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
