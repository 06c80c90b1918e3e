// SPDX-License-Identifier: GPL-2.0
/*
 * sync: mutexes, spinlocks, wait queues, reference counts, RCU.
 *
 * Whether a locking API is inline depends on the architecture and the configuration (the arm64
 * spinlocks are inline in Debian's arm64 kernel, exported on x86_64; with lockdep the mutex
 * functions are macros): going through a helper always works, so `crates/kernel` never needs
 * to know which case it is in.
 *
 * bindgen functions: mutex_unlock mutex_trylock
 * bindgen functions: init_wait_entry prepare_to_wait_event finish_wait __wake_up
 * bindgen functions: synchronize_rcu
 * bindgen types: lock_class_key wait_queue_entry refcount_struct
 * bindgen opaque: spinlock mutex wait_queue_head lock_class_key
 * bindgen no-copy: spinlock mutex wait_queue_head
 */
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

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
 * wake_up (TASK_NORMAL), skipping the wait queue's lock when nobody waits: the common case of a
 * read or write that wakes no one. wq_has_sleeper()'s full barrier pairs with the one in
 * prepare_to_wait*() and poll_wait(): a waiter that queued itself before re-checking the state
 * under the driver's lock is seen here, because the state was changed under that lock before
 * this call.
 */
void rust_helper_wake_up(struct wait_queue_head *wq)
{
	if (wq_has_sleeper(wq))
		wake_up(wq);
}

/* The poll-safe teardown (see PollCondVar). */

void rust_helper_wake_up_pollfree(struct wait_queue_head *wq)
{
	wake_up_pollfree(wq);
}

/* refcount_t: saturating reference counts (WARN on overflow/underflow). */
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
