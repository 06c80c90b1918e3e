//! [`Mutex`] and [`SpinLock`]: data protected by a kernel lock, reachable only through a guard.

use super::LockClassKey;
use crate::alloc::{Gfp, KBox};
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
    raw: KBox<UnsafeCell<bindings::mutex>>,
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
    /// lockdep class per creation site. The C lock is allocated with `flags`.
    pub fn new(
        data: T,
        name: &'static CStr,
        key: &'static LockClassKey,
        flags: Gfp,
    ) -> Result<Self> {
        // SAFETY: all-zeroes is a valid placeholder for the C struct until it is initialised
        // below, before any use.
        let raw = KBox::new(
            UnsafeCell::new(unsafe { core::mem::zeroed::<bindings::mutex>() }),
            flags,
        )?;
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

    /// Takes the lock if it is free; `None` at once if it is not.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // SAFETY: `raw` is an initialised mutex (type invariant).
        if unsafe { bindings::mutex_trylock(self.raw.get()) } == 0 {
            return None;
        }
        Some(MutexGuard {
            lock: self,
            _not_send: PhantomData,
        })
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
        // SAFETY: the guard's task holds the lock (type invariant).
        unsafe { bindings::mutex_unlock(self.lock.raw.get()) };
    }
}

/// Data protected by a `spinlock_t`: usable in atomic context; the holder must not sleep
/// (no user copies, no `GFP_KERNEL` allocations) while holding it.
///
/// # Invariants
/// `raw` was initialised by `spin_lock_init` and is never moved (its own heap block).
pub struct SpinLock<T> {
    raw: KBox<UnsafeCell<bindings::spinlock>>,
    data: UnsafeCell<T>,
}

// SAFETY: as for `Mutex`: one holder at a time gets `&mut T`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as for `Mutex`.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// Creates a spinlock around `data`. Use [`new_spinlock!`](crate::new_spinlock). The C
    /// lock is allocated with `flags`.
    pub fn new(
        data: T,
        name: &'static CStr,
        key: &'static LockClassKey,
        flags: Gfp,
    ) -> Result<Self> {
        // SAFETY: all-zeroes is a valid placeholder until the init below.
        let raw = KBox::new(
            UnsafeCell::new(unsafe { core::mem::zeroed::<bindings::spinlock>() }),
            flags,
        )?;
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

    /// Runs `f` on the data with the lock held and local interrupts disabled (C's
    /// `spin_lock_irqsave` … `spin_unlock_irqrestore`), for data an interrupt handler also
    /// touches.
    ///
    /// A closure rather than a guard: the interrupt state must be restored in the reverse order
    /// it was saved. With guards, safe code could drop the outer one first and re-enable
    /// interrupts while still holding the inner lock, so an interrupt handler taking that lock
    /// would deadlock on its own CPU. Nested calls here always unwind in order:
    ///
    /// ```ignore
    /// a.lock_irqsave(|a| b.lock_irqsave(|b| core::mem::swap(a, b)));
    /// ```
    ///
    /// The guard-based API this replaces let this compile:
    ///
    /// ```compile_fail,E0061
    /// # fn f(x: &kernel::sync::SpinLock<u32>, y: &kernel::sync::SpinLock<u32>) {
    /// let a = x.lock_irqsave();
    /// let b = y.lock_irqsave();
    /// drop(a); // would re-enable interrupts while `y` is held
    /// # }
    /// ```
    pub fn lock_irqsave<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: `raw` is an initialised spinlock (type invariant).
        let flags = unsafe { bindings::rust_helper_spin_lock_irqsave(self.raw.get()) };
        /// Unlocks on every way out of `f` (including a panic's, for what it is worth).
        struct Restore<'a, T>(&'a SpinLock<T>, core::ffi::c_ulong);
        impl<T> Drop for Restore<'_, T> {
            fn drop(&mut self) {
                // SAFETY: locked above by this call with these saved flags; every lock taken
                // inside `f` was released before `f` returned.
                unsafe { bindings::rust_helper_spin_unlock_irqrestore(self.0.raw.get(), self.1) };
            }
        }
        let _restore = Restore(self, flags);
        // SAFETY: the lock is held until `_restore` drops, after `f` is done with the data.
        f(unsafe { &mut *self.data.get() })
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

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: held by this guard (type invariant).
        unsafe { bindings::rust_helper_spin_unlock(self.lock.raw.get()) };
    }
}
