// SPDX-License-Identifier: GPL-2.0
/*
 * time: the monotonic clock and sleeping for a while.
 *
 * bindgen functions: ktime_get msleep
 */
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/timekeeping.h>
