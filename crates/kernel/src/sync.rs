//! Sharing and waiting: [`Arc`] (reference-counted ownership), [`Mutex`] (sleeping),
//! [`SpinLock`] (atomic context, with [`SpinLock::lock_irqsave`] for data interrupt handlers
//! share), [`CondVar`] (a wait queue to sleep on until another thread changes the state a lock
//! protects) and [`PollCondVar`] (one that `poll()` may register with).
//!
//! Each lock owns its C object (`struct mutex`, `spinlock_t`, `wait_queue_head_t`) in a heap
//! block of its own, so the Rust value can move freely while the C object, which lockdep and the
//! wait lists point into, never does. Create them with [`new_mutex!`](crate::new_mutex),
//! [`new_spinlock!`](crate::new_spinlock) and [`new_condvar!`](crate::new_condvar): the macros
//! give every creation site its own lockdep class, as C's `mutex_init()` does.

mod arc;
pub mod atomic;
mod condvar;
mod lock;

pub use arc::Arc;
pub use condvar::{CondVar, PollCondVar};
pub use lock::{Mutex, MutexGuard, SpinLock, SpinLockGuard};

use core::cell::UnsafeCell;
use kernel_sys as bindings;

/// A lockdep class: one static per place where locks are created.
#[repr(transparent)]
pub struct LockClassKey(UnsafeCell<bindings::lock_class_key>);

// SAFETY: lockdep only uses the key's address and synchronises its own accesses.
unsafe impl Sync for LockClassKey {}

impl LockClassKey {
    /// A key for a `static`.
    pub const fn new() -> Self {
        // SAFETY: `lock_class_key` is plain data for which all-zeroes is the initial state
        // (C statics are zero-initialised).
        Self(UnsafeCell::new(unsafe { core::mem::zeroed() }))
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::lock_class_key {
        self.0.get()
    }
}

impl Default for LockClassKey {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates a [`Mutex`] with its own lockdep class: `new_mutex!(value, "name", Gfp::KERNEL)?`.
#[macro_export]
macro_rules! new_mutex {
    ($value:expr, $name:literal, $flags:expr) => {{
        static KEY: $crate::sync::LockClassKey = $crate::sync::LockClassKey::new();
        $crate::sync::Mutex::new($value, $crate::__cstr!($name), &KEY, $flags)
    }};
}

/// Creates a [`SpinLock`] with its own lockdep class:
/// `new_spinlock!(value, "name", Gfp::KERNEL)?`.
#[macro_export]
macro_rules! new_spinlock {
    ($value:expr, $name:literal, $flags:expr) => {{
        static KEY: $crate::sync::LockClassKey = $crate::sync::LockClassKey::new();
        $crate::sync::SpinLock::new($value, $crate::__cstr!($name), &KEY, $flags)
    }};
}

/// Creates a [`CondVar`] with its own lockdep class: `new_condvar!("name", Gfp::KERNEL)?`.
#[macro_export]
macro_rules! new_condvar {
    ($name:literal, $flags:expr) => {{
        static KEY: $crate::sync::LockClassKey = $crate::sync::LockClassKey::new();
        $crate::sync::CondVar::new($crate::__cstr!($name), &KEY, $flags)
    }};
}

/// Creates a [`PollCondVar`] with its own lockdep class:
/// `new_poll_condvar!("name", Gfp::KERNEL)?`.
#[macro_export]
macro_rules! new_poll_condvar {
    ($name:literal, $flags:expr) => {{
        static KEY: $crate::sync::LockClassKey = $crate::sync::LockClassKey::new();
        $crate::sync::PollCondVar::new($crate::__cstr!($name), &KEY, $flags)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cstr {
    ($s:expr) => {
        match ::core::ffi::CStr::from_bytes_with_nul(::core::concat!($s, "\0").as_bytes()) {
            Ok(s) => s,
            Err(_) => ::core::panic!("string literal with a NUL inside"),
        }
    };
}
