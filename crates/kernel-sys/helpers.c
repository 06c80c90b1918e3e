// SPDX-License-Identifier: GPL-2.0
/* See helpers.h: C bodies for kernel APIs that are macros or static inline functions. */
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include <linux/mm.h>

#include "helpers.h"

/*
 * The end of every Rust panic: a real BUG() compiled by the kernel's compiler, so the trap
 * instruction and its `__bug_table` entry have exactly the layout this kernel expects, whatever
 * the architecture and CONFIG_GENERIC_BUG_RELATIVE_POINTERS / CONFIG_DEBUG_BUGVERBOSE say.
 */
void rust_helper_BUG(void)
{
	BUG();
}

unsigned long rust_helper_copy_from_user(void *to, const void __user *from, unsigned long n)
{
	return copy_from_user(to, from, n);
}

unsigned long rust_helper_copy_to_user(void __user *to, const void *from, unsigned long n)
{
	return copy_to_user(to, from, n);
}

unsigned long rust_helper_clear_user(void __user *to, unsigned long n)
{
	return clear_user(to, n);
}

void rust_helper_mutex_init(struct mutex *lock, const char *name, struct lock_class_key *key)
{
	__mutex_init(lock, name, key);
}

/* With lockdep (DEBUG_LOCK_ALLOC) these are macros around the _nested variants. */
void rust_helper_mutex_lock(struct mutex *lock)
{
	mutex_lock(lock);
}

int rust_helper_mutex_lock_interruptible(struct mutex *lock)
{
	return mutex_lock_interruptible(lock);
}

void rust_helper_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key)
{
#ifdef CONFIG_DEBUG_SPINLOCK
	__raw_spin_lock_init(spinlock_check(lock), name, key, LD_WAIT_CONFIG);
#else
	spin_lock_init(lock);
#endif
}

void rust_helper_spin_lock(spinlock_t *lock)
{
	spin_lock(lock);
}

void rust_helper_spin_unlock(spinlock_t *lock)
{
	spin_unlock(lock);
}

unsigned long rust_helper_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void rust_helper_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

void rust_helper_init_waitqueue_head(struct wait_queue_head *wq, const char *name,
				     struct lock_class_key *key)
{
	__init_waitqueue_head(wq, name, key);
}

/*
 * wake_up_interruptible(), minus the queue's spinlock (irqsave/irqrestore) when nobody sleeps
 * on it: the common case while data streams, where every read or write would otherwise lock
 * and unlock an empty queue. wq_has_sleeper()'s full barrier pairs with the one in
 * prepare_to_wait*() (set_current_state): a waiter queues itself before it re-checks its
 * condition, so either it sees the change the caller made before this call, or this sees it.
 */
void rust_helper_wake_up_interruptible(struct wait_queue_head *wq)
{
	if (wq_has_sleeper(wq))
		wake_up_interruptible(wq);
}

void rust_helper_poll_wait(struct file *file, struct wait_queue_head *wq, poll_table *pt)
{
	poll_wait(file, wq, pt);
}

int rust_helper_signal_pending(void)
{
	return signal_pending(current);
}

void rust_helper_might_sleep(void)
{
	might_sleep();
}

unsigned int rust_helper_file_flags(const struct file *file)
{
	return file->f_flags;
}

void *rust_helper_file_private(const struct file *file)
{
	return file->private_data;
}

void rust_helper_file_set_private(struct file *file, void *data)
{
	file->private_data = data;
}

rust_ioctl_fn rust_helper_compat_ptr_ioctl(void)
{
	return compat_ptr_ioctl;
}

void *rust_helper_kvmalloc(size_t size, gfp_t flags)
{
	return kvmalloc(size, flags);
}

void *rust_helper_kvrealloc(const void *p, size_t oldsize, size_t newsize, gfp_t flags)
{
	return kvrealloc(p, oldsize, newsize, flags);
}

void rust_helper_kvfree(const void *p)
{
	kvfree(p);
}

void rust_helper_refcount_set(refcount_t *r, unsigned int n)
{
	refcount_set(r, n);
}

void rust_helper_refcount_inc(refcount_t *r)
{
	refcount_inc(r);
}

bool rust_helper_refcount_dec_and_test(refcount_t *r)
{
	return refcount_dec_and_test(r);
}

void rust_helper_wake_up(struct wait_queue_head *wq)
{
	wake_up(wq);
}

void rust_helper_wake_up_pollfree(struct wait_queue_head *wq)
{
	wake_up_pollfree(wq);
}
