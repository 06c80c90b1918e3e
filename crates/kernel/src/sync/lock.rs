//! [`Mutex`] and [`SpinLock`]: data protected by a kernel lock, reachable only through a guard.

use super::LockClassKey;
use crate::alloc::{try_box, Box};
use crate::error::{code::ERESTARTSYS, Result};
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use kernel_sys as bindings;

/// Data protected by a `struct mutex`: a sleeping lock, for process context only.
///
/// # Invariants
/// `raw` was initialised by `__mutex_init` and is never moved (it lives in its own heap block).
pub struct Mutex<T> {
    raw: Box<UnsafeCell<bindings::mutex>>,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out `&mut T` to one thread at a time, so it can be shared between
// threads whenever `T` may be sent between them.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the data (and a pointer to the C lock, which is not tied to
// the creating thread).
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// Creates a mutex around `data`. Use [`new_mutex!`](crate::new_mutex), which provides a
    /// lockdep class per creation site. Allocates (GFP_KERNEL): process context only.
    pub fn new(data: T, name: &'static CStr, key: &'static LockClassKey) -> Result<Self> {
        // SAFETY: all-zeroes is a valid placeholder for the C struct until it is initialised
        // below, before any use.
        let raw = try_box(UnsafeCell::new(unsafe {
            core::mem::zeroed::<bindings::mutex>()
        }))?;
        // SAFETY: `raw` points to writable memory that will not move; `name` and `key` are
        // 'static as lockdep requires.
        unsafe { bindings::rust_helper_mutex_init(raw.get(), name.as_ptr(), key.as_ptr()) };
        // INVARIANT: initialised above; the box keeps it in place.
        Ok(Self {
            raw,
            data: UnsafeCell::new(data),
        })
    }

    /// Sleeps until the lock is free, then takes it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // SAFETY: `raw` is an initialised mutex (type invariant).
        unsafe { bindings::rust_helper_mutex_lock(self.raw.get()) };
        MutexGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Like [`lock`](Self::lock), but a signal interrupts the wait with `ERESTARTSYS`.
    pub fn lock_interruptible(&self) -> Result<MutexGuard<'_, T>> {
        // SAFETY: `raw` is an initialised mutex (type invariant).
        let ret = unsafe { bindings::rust_helper_mutex_lock_interruptible(self.raw.get()) };
        if ret != 0 {
            return Err(ERESTARTSYS);
        }
        Ok(MutexGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Mutable access without locking: having `&mut self` proves no one else holds the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    pub(crate) fn unlock_raw(&self) {
        // SAFETY: only called by a guard (or a wait on behalf of one), i.e. while locked by us.
        unsafe { bindings::mutex_unlock(self.raw.get()) };
    }

    pub(crate) fn lock_raw(&self) {
        // SAFETY: `raw` is an initialised mutex (type invariant).
        unsafe { bindings::rust_helper_mutex_lock(self.raw.get()) };
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped.
///
/// # Invariants
/// The guard's thread holds `lock`.
pub struct MutexGuard<'a, T> {
    pub(crate) lock: &'a Mutex<T>,
    // A mutex must be released by the task that took it.
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held (type invariant), so no one else accesses the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held (type invariant), and `&mut self` makes this access unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock_raw();
    }
}

/// Data protected by a `spinlock_t`: usable in atomic context; the holder must not sleep
/// (no user copies, no `GFP_KERNEL` allocations) while holding it.
///
/// # Invariants
/// `raw` was initialised by `spin_lock_init` and is never moved (its own heap block).
pub struct SpinLock<T> {
    raw: Box<UnsafeCell<bindings::spinlock>>,
    data: UnsafeCell<T>,
}

// SAFETY: as for `Mutex`: one holder at a time gets `&mut T`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as for `Mutex`.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// Creates a spinlock around `data`. Use [`new_spinlock!`](crate::new_spinlock).
    /// Allocates (GFP_KERNEL): process context only.
    pub fn new(data: T, name: &'static CStr, key: &'static LockClassKey) -> Result<Self> {
        // SAFETY: all-zeroes is a valid placeholder until the init below.
        let raw = try_box(UnsafeCell::new(unsafe {
            core::mem::zeroed::<bindings::spinlock>()
        }))?;
        // SAFETY: `raw` is writable and will not move; `name` and `key` are 'static.
        unsafe { bindings::rust_helper_spin_lock_init(raw.get(), name.as_ptr(), key.as_ptr()) };
        // INVARIANT: initialised above; the box keeps it in place.
        Ok(Self {
            raw,
            data: UnsafeCell::new(data),
        })
    }

    /// Takes the lock (preemption off). Not for data also used by interrupt handlers: use
    /// [`lock_irqsave`](Self::lock_irqsave) for that.
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: `raw` is an initialised spinlock (type invariant).
        unsafe { bindings::rust_helper_spin_lock(self.raw.get()) };
        SpinLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock with local interrupts disabled, restoring them on unlock.
    pub fn lock_irqsave(&self) -> SpinLockIrqGuard<'_, T> {
        // SAFETY: `raw` is an initialised spinlock (type invariant).
        let flags = unsafe { bindings::rust_helper_spin_lock_irqsave(self.raw.get()) };
        SpinLockIrqGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }

    /// Mutable access without locking: `&mut self` proves no one else holds the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// Access to the data of a [`SpinLock`] taken with `lock()`; unlocks when dropped.
///
/// # Invariants
/// The guard's CPU holds `lock`.
pub struct SpinLockGuard<'a, T> {
    lock: &'a SpinLock<T>,
    _not_send: PhantomData<*mut ()>,
}

/// Access to the data of a [`SpinLock`] taken with `lock_irqsave()`.
///
/// # Invariants
/// The guard's CPU holds `lock`, with the interrupt state before locking saved in `flags`.
pub struct SpinLockIrqGuard<'a, T> {
    lock: &'a SpinLock<T>,
    flags: core::ffi::c_ulong,
    _not_send: PhantomData<*mut ()>,
}

macro_rules! spin_guard_access {
    ($guard:ident) => {
        impl<T> Deref for $guard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: the lock is held (type invariant).
                unsafe { &*self.lock.data.get() }
            }
        }

        impl<T> DerefMut for $guard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: the lock is held (type invariant) and `&mut self` is unique.
                unsafe { &mut *self.lock.data.get() }
            }
        }
    };
}
spin_guard_access!(SpinLockGuard);
spin_guard_access!(SpinLockIrqGuard);

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: held by this guard (type invariant).
        unsafe { bindings::rust_helper_spin_unlock(self.lock.raw.get()) };
    }
}

impl<T> Drop for SpinLockIrqGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: held by this guard with these saved flags (type invariant).
        unsafe { bindings::rust_helper_spin_unlock_irqrestore(self.lock.raw.get(), self.flags) };
    }
}
