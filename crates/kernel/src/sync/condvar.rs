//! [`CondVar`]: sleeping until another thread changes shared state (a `wait_queue_head_t`).

use super::lock::MutexGuard;
use super::LockClassKey;
use crate::alloc::{try_box, Box};
use crate::error::{code::ERESTARTSYS, Result};
use crate::file::{File, PollTable};
use core::cell::UnsafeCell;
use core::ffi::CStr;
use kernel_sys as bindings;

/// A wait queue used like a condition variable together with a [`Mutex`](super::Mutex):
///
/// ```ignore
/// let mut fifo = state.lock();
/// while fifo.is_empty() {
///     readable.wait(&mut fifo)?; // ERESTARTSYS if a signal arrives
/// }
/// ```
///
/// # Invariants
/// `wq` was initialised by `__init_waitqueue_head` and never moves (own heap block).
pub struct CondVar {
    wq: Box<UnsafeCell<bindings::wait_queue_head>>,
}

// SAFETY: the wait queue has its own internal spinlock; all operations are thread-safe.
unsafe impl Sync for CondVar {}
// SAFETY: not tied to the creating thread.
unsafe impl Send for CondVar {}

impl CondVar {
    /// Creates a wait queue. Use [`new_condvar!`](crate::new_condvar).
    pub fn new(name: &'static CStr, key: &'static LockClassKey) -> Result<Self> {
        // SAFETY: all-zeroes is a placeholder until the init below.
        let wq = try_box(UnsafeCell::new(unsafe {
            core::mem::zeroed::<bindings::wait_queue_head>()
        }))?;
        // SAFETY: `wq` is writable and will not move; `name` and `key` are 'static.
        unsafe { bindings::rust_helper_init_waitqueue_head(wq.get(), name.as_ptr(), key.as_ptr()) };
        // INVARIANT: initialised above.
        Ok(Self { wq })
    }

    /// Releases the guard's mutex, sleeps until [`notify_all`](Self::notify_all) or a signal,
    /// and takes the mutex again before returning. Wake-ups may be spurious: callers re-check
    /// their condition in a loop.
    ///
    /// Returns `ERESTARTSYS` (without sleeping) when a signal is pending, so an interrupted
    /// system call returns `EINTR` to user space or restarts, as the signal's `SA_RESTART` says.
    pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) -> Result {
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
                return Err(ERESTARTSYS);
            }
            // We are on the queue in TASK_INTERRUPTIBLE before dropping the lock, so a notify
            // that happens after the unlock wakes us (no lost wake-up).
            guard.lock.unlock_raw();
            bindings::schedule();
            guard.lock.lock_raw();
            bindings::finish_wait(self.wq.get(), &mut entry);
        }
        Ok(())
    }

    /// Sleeps, without a lock and uninterruptibly, until `done()` holds — C's `wait_event()`.
    /// Whoever makes `done()` true must call [`notify_all`](Self::notify_all) afterwards.
    /// For waits that must not be cut short, such as teardown waiting for the last user.
    pub fn wait_until(&self, done: impl Fn() -> bool) {
        // SAFETY: all-zeroes is a valid placeholder for the entry, initialised just below.
        let mut entry: bindings::wait_queue_entry = unsafe { core::mem::zeroed() };
        // SAFETY: `entry` stays on this stack frame until `finish_wait` removes it; `wq` is
        // initialised (type invariant).
        unsafe { bindings::init_wait_entry(&mut entry, 0) };
        loop {
            // SAFETY: as above. Queued before testing the condition, so a notify between the
            // test and `schedule` is not lost.
            unsafe {
                bindings::prepare_to_wait_event(
                    self.wq.get(),
                    &mut entry,
                    bindings::TASK_UNINTERRUPTIBLE as _,
                )
            };
            if done() {
                break;
            }
            // SAFETY: plain sleep; we are on the queue.
            unsafe { bindings::schedule() };
        }
        // SAFETY: removes `entry` from the queue (if a wake-up has not already).
        unsafe { bindings::finish_wait(self.wq.get(), &mut entry) };
    }

    /// Wakes every task sleeping in [`wait`](Self::wait) (and pollers).
    pub fn notify_all(&self) {
        // SAFETY: `wq` is initialised (type invariant).
        unsafe { bindings::rust_helper_wake_up_interruptible(self.wq.get()) };
    }

    /// Registers this queue with a `poll()` call, so a [`notify_all`](Self::notify_all) wakes
    /// the poller.
    pub fn poll_wait(&self, file: &File, table: &PollTable) {
        // SAFETY: `file` and `table` come from the VFS for this poll call; `wq` outlives the
        // file (it belongs to the device, which outlives its open files).
        unsafe { bindings::rust_helper_poll_wait(file.as_ptr(), self.wq.get(), table.as_ptr()) };
    }
}
