// SPDX-License-Identifier: GPL-2.0
/*
 * device: the driver model's `struct device` (reference counts, names).
 *
 * bindgen functions: get_device put_device
 * bindgen opaque: device
 */
#include <linux/device.h>

const char *rust_helper_dev_name(const struct device *dev)
{
	return dev_name(dev);
}
