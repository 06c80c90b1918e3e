//! [`CondVar`]: sleeping until another thread changes shared state (a `wait_queue_head_t`), and
//! [`PollCondVar`], the one a `poll()` may register with.

use super::lock::MutexGuard;
use super::LockClassKey;
use crate::alloc::{Gfp, KBox};
use crate::error::{code::ERESTARTSYS, Result};
use crate::file::{File, PollTable};
use core::cell::UnsafeCell;
use core::ffi::CStr;
use kernel_sys as bindings;

/// A wait queue used like a condition variable together with a [`Mutex`](super::Mutex):
///
/// ```ignore
/// let mut fifo = state.lock_interruptible()?;
/// while fifo.is_empty() {
///     fifo = readable.wait(fifo)?; // ERESTARTSYS if a signal arrives
/// }
/// ```
///
/// # Invariants
/// `wq` was initialised by `__init_waitqueue_head` and never moves (own heap block).
pub struct CondVar {
    wq: KBox<UnsafeCell<bindings::wait_queue_head>>,
}

// SAFETY: the wait queue has its own internal spinlock; all operations are thread-safe.
unsafe impl Sync for CondVar {}
// SAFETY: not tied to the creating thread.
unsafe impl Send for CondVar {}

impl CondVar {
    /// Creates a wait queue. Use [`new_condvar!`](crate::new_condvar). The C object is
    /// allocated with `flags`.
    pub fn new(name: &'static CStr, key: &'static LockClassKey, flags: Gfp) -> Result<Self> {
        // SAFETY: all-zeroes is a placeholder until the init below.
        let wq = KBox::new(
            UnsafeCell::new(unsafe { core::mem::zeroed::<bindings::wait_queue_head>() }),
            flags,
        )?;
        // SAFETY: `wq` is writable and will not move; `name` and `key` are 'static.
        unsafe { bindings::rust_helper_init_waitqueue_head(wq.get(), name.as_ptr(), key.as_ptr()) };
        // INVARIANT: initialised above.
        Ok(Self { wq })
    }

    /// Releases the guard's mutex, sleeps until [`notify_all`](Self::notify_all) or a signal,
    /// and takes the mutex again, returning the new guard. Wake-ups may be spurious: callers
    /// re-check their condition in a loop.
    ///
    /// Both the sleep and the re-locking are interruptible (as C's `wait_event_interruptible`
    /// followed by `mutex_lock_interruptible` in LDD3's scull): a signal makes it return
    /// `ERESTARTSYS` with the mutex released, so an interrupted system call returns `EINTR` to
    /// user space or restarts, as the signal's `SA_RESTART` says, even while another task holds
    /// the mutex for a long time (e.g. stalled in a user copy).
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> Result<MutexGuard<'a, T>> {
        let lock = guard.lock;
        // SAFETY: all-zeroes is a valid placeholder for the entry, initialised just below.
        let mut entry: bindings::wait_queue_entry = unsafe { core::mem::zeroed() };
        // SAFETY: `entry` lives on this stack frame until `finish_wait` removed it from the
        // queue below, on every path; `wq` is initialised (type invariant).
        unsafe {
            bindings::init_wait_entry(&mut entry, 0);
            let ret = bindings::prepare_to_wait_event(
                self.wq.get(),
                &mut entry,
                bindings::TASK_INTERRUPTIBLE as _,
            );
            if ret != 0 {
                bindings::finish_wait(self.wq.get(), &mut entry);
                return Err(ERESTARTSYS); // `guard` drops here: unlocked.
            }
        }
        // We are on the queue in TASK_INTERRUPTIBLE before dropping the lock, so a notify that
        // happens after the unlock wakes us (no lost wake-up).
        drop(guard);
        // SAFETY: on the queue (above); `finish_wait` takes the entry off before it goes.
        unsafe {
            bindings::schedule();
            bindings::finish_wait(self.wq.get(), &mut entry);
        }
        lock.lock_interruptible()
    }

    /// Wakes every task sleeping in [`wait`](Self::wait) (C's `wake_up`: interruptible and
    /// uninterruptible sleepers alike).
    pub fn notify_all(&self) {
        // SAFETY: `wq` is initialised (type invariant).
        unsafe { bindings::rust_helper_wake_up(self.wq.get()) };
    }
}

/// A [`CondVar`] that `poll()`/`select()`/`epoll` may wait on.
///
/// `epoll` keeps its entry on a polled wait queue for as long as the file stays in the epoll
/// set, which can be longer than the queue lives. Dropping a `PollCondVar` therefore first
/// tells every such waiter to let go (`wake_up_pollfree`: epoll removes its entry on
/// `POLLFREE`) and then waits for an RCU grace period, after which no epoll callback can still
/// be looking at the queue. Only this type offers [`poll_wait`](Self::poll_wait): a plain
/// `CondVar` cannot be polled, so it can be dropped at any time.
pub struct PollCondVar {
    inner: CondVar,
}

impl PollCondVar {
    /// Creates a pollable wait queue. Use [`new_poll_condvar!`](crate::new_poll_condvar).
    pub fn new(name: &'static CStr, key: &'static LockClassKey, flags: Gfp) -> Result<Self> {
        Ok(Self {
            inner: CondVar::new(name, key, flags)?,
        })
    }

    /// Registers this queue with a `poll()` call, so a [`notify_all`](CondVar::notify_all)
    /// wakes the poller.
    pub fn poll_wait(&self, file: &File, table: &PollTable) {
        // SAFETY: `file` and `table` come from the VFS for this poll call; `wq` is initialised,
        // and any entry the poller leaves on it is removed before it is freed (see `Drop`).
        unsafe {
            bindings::rust_helper_poll_wait(file.as_ptr(), self.inner.wq.get(), table.as_ptr())
        };
    }
}

impl core::ops::Deref for PollCondVar {
    type Target = CondVar;
    fn deref(&self) -> &CondVar {
        &self.inner
    }
}

impl Drop for PollCondVar {
    fn drop(&mut self) {
        // SAFETY: `wq` is initialised. `wake_up_pollfree` makes every epoll waiter remove its
        // entry; after `synchronize_rcu` none can still be running its callback on the queue,
        // which may then be freed (by `inner`'s drop, after this).
        unsafe {
            bindings::rust_helper_wake_up_pollfree(self.inner.wq.get());
            bindings::synchronize_rcu();
        }
    }
}
