/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Everything the Rust side may call or name, in one translation unit that bindgen reads with the
 * selected kernel's own Kbuild flags (translated for clang). The allowlist in build.rs keeps the
 * generated file to what `crates/kernel` uses.
 */
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/printk.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "helpers.h"

/*
 * Macros bindgen cannot evaluate (they use `__force` casts or expand to expressions), turned into
 * typed constants. build.rs strips the `RUST_CONST_` prefix.
 */
const gfp_t RUST_CONST_GFP_KERNEL = GFP_KERNEL;
const gfp_t RUST_CONST_GFP_ATOMIC = GFP_ATOMIC;
const gfp_t RUST_CONST_GFP_NOWAIT = GFP_NOWAIT;
const gfp_t RUST_CONST___GFP_ZERO = __GFP_ZERO;
const gfp_t RUST_CONST___GFP_NOWARN = __GFP_NOWARN;
const size_t RUST_CONST_ARCH_SLAB_MINALIGN = ARCH_SLAB_MINALIGN;
const size_t RUST_CONST_ARCH_KMALLOC_MINALIGN = ARCH_KMALLOC_MINALIGN;
const size_t RUST_CONST_PAGE_SIZE = PAGE_SIZE;
const size_t RUST_CONST_KMALLOC_MAX_SIZE = KMALLOC_MAX_SIZE;
const __poll_t RUST_CONST_EPOLLIN = EPOLLIN;
const __poll_t RUST_CONST_EPOLLOUT = EPOLLOUT;
const __poll_t RUST_CONST_EPOLLRDNORM = EPOLLRDNORM;
const __poll_t RUST_CONST_EPOLLWRNORM = EPOLLWRNORM;
const __poll_t RUST_CONST_EPOLLERR = EPOLLERR;
const __poll_t RUST_CONST_EPOLLHUP = EPOLLHUP;
const unsigned int RUST_CONST_TASK_NORMAL = TASK_NORMAL;
const unsigned int RUST_CONST_TASK_INTERRUPTIBLE = TASK_INTERRUPTIBLE;
const unsigned int RUST_CONST_TASK_UNINTERRUPTIBLE = TASK_UNINTERRUPTIBLE;
const unsigned int RUST_CONST_O_NONBLOCK = O_NONBLOCK;
const int RUST_CONST_MISC_DYNAMIC_MINOR = MISC_DYNAMIC_MINOR;
