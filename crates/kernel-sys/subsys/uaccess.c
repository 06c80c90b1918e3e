// SPDX-License-Identifier: GPL-2.0
/*
 * uaccess: copying to and from user memory, and mapping anonymous user memory (self-tests).
 *
 * bindgen functions: vm_mmap vm_munmap
 * bindgen vars: PROT_(READ|WRITE|NONE) MAP_(PRIVATE|ANONYMOUS)
 */
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/uaccess.h>

unsigned long rust_helper_copy_from_user(void *to, const void __user *from, unsigned long n)
{
	return copy_from_user(to, from, n);
}

unsigned long rust_helper_copy_to_user(void __user *to, const void *from, unsigned long n)
{
	return copy_to_user(to, from, n);
}

