/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for kernel APIs that are macros or static inline functions, so Rust cannot call them
 * directly. They are compiled by Kbuild (with the kernel's own compiler and flags) into every
 * module. Whether a given API is inline depends on the architecture and the configuration (the
 * arm64 spinlocks are inline in Debian's arm64 kernel, exported on x86_64): going through a
 * helper always works, so `crates/kernel` never needs to know which case it is in.
 */
#ifndef RUST_KERNEL_HELPERS_H
#define RUST_KERNEL_HELPERS_H

#include <linux/fs.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

void rust_helper_BUG(void);

unsigned long rust_helper_copy_from_user(void *to, const void __user *from, unsigned long n);
unsigned long rust_helper_copy_to_user(void __user *to, const void *from, unsigned long n);
unsigned long rust_helper_clear_user(void __user *to, unsigned long n);

void rust_helper_mutex_init(struct mutex *lock, const char *name, struct lock_class_key *key);
void rust_helper_mutex_lock(struct mutex *lock);
int rust_helper_mutex_lock_interruptible(struct mutex *lock);
void rust_helper_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key);
void rust_helper_spin_lock(spinlock_t *lock);
void rust_helper_spin_unlock(spinlock_t *lock);
unsigned long rust_helper_spin_lock_irqsave(spinlock_t *lock);
void rust_helper_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags);

void rust_helper_init_waitqueue_head(struct wait_queue_head *wq, const char *name,
				     struct lock_class_key *key);
void rust_helper_wake_up_interruptible(struct wait_queue_head *wq);
void rust_helper_poll_wait(struct file *file, struct wait_queue_head *wq, poll_table *pt);
int rust_helper_signal_pending(void);

/* compat_ptr_ioctl, or NULL on kernels without CONFIG_COMPAT (where it is a macro for NULL). */
typedef long (*rust_ioctl_fn)(struct file *, unsigned int, unsigned long);
rust_ioctl_fn rust_helper_compat_ptr_ioctl(void);

unsigned int rust_helper_file_flags(const struct file *file);
void *rust_helper_file_private(const struct file *file);
void rust_helper_file_set_private(struct file *file, void *data);
void rust_helper_might_sleep(void);

/* kvmalloc family: kmalloc, falling back to vmalloc for large sizes. */
void *rust_helper_kvmalloc(size_t size, gfp_t flags);
void *rust_helper_kvrealloc(const void *p, size_t oldsize, size_t newsize, gfp_t flags);
void rust_helper_kvfree(const void *p);

/* refcount_t: saturating reference counts (WARN on overflow/underflow). */
void rust_helper_refcount_set(refcount_t *r, unsigned int n);
void rust_helper_refcount_inc(refcount_t *r);
bool rust_helper_refcount_dec_and_test(refcount_t *r);

/* Wait queues: plain wake_up (TASK_NORMAL), and the poll-safe teardown. */
void rust_helper_wake_up(struct wait_queue_head *wq);
void rust_helper_wake_up_pollfree(struct wait_queue_head *wq);

#endif
