// SPDX-License-Identifier: GPL-2.0
/*
 * device: the driver model's struct device (opaque to Rust: reached through helpers).
 *
 * bindgen functions: get_device put_device
 */
#include <linux/device.h>

const char *rust_helper_dev_name(const struct device *dev)
{
	return dev_name(dev);
}
