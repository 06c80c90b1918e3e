//! [`Arc`]: a reference-counted heap value, the kernel's `refcount_t` inside.

use crate::alloc::{Gfp, KBox};
use crate::error::Result;
use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;
use kernel_sys as bindings;

/// Shared ownership of a heap value: cloning adds a reference, dropping removes one, and the
/// last one frees the value, wherever and whenever that happens.
///
/// This is how state outlives the registration that made it reachable: an open file holds an
/// `Arc` of its device, so dropping the device's registration never waits for user space.
///
/// ```ignore
/// let state = Arc::new(State::new(), Gfp::KERNEL)?;
/// let other = state.clone(); // no allocation: cannot fail
/// ```
///
/// The count is a `refcount_t`: it saturates (with a warning) instead of overflowing, so a
/// leaked reference cannot wrap it around into a use-after-free.
///
/// # Invariants
/// `ptr` points to a live `ArcInner<T>` from kmalloc whose count includes this reference.
pub struct Arc<T> {
    ptr: NonNull<ArcInner<T>>,
    _owns: PhantomData<ArcInner<T>>,
}

#[repr(C)]
struct ArcInner<T> {
    refcount: UnsafeCell<bindings::refcount_t>,
    data: T,
}

// SAFETY: an `Arc<T>` gives `&T` to several threads (so `T: Sync`) and the last one drops `T`
// on whichever thread that is (so `T: Send`); the count is atomic.
unsafe impl<T: Send + Sync> Send for Arc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Arc<T> {}

impl<T> Arc<T> {
    /// Moves `value` to the heap with a count of one.
    pub fn new(value: T, flags: Gfp) -> Result<Self> {
        let inner = KBox::new(
            ArcInner {
                // SAFETY: all-zeroes is a valid `refcount_t` (an `atomic_t`); set just below.
                refcount: UnsafeCell::new(unsafe { core::mem::zeroed() }),
                data: value,
            },
            flags,
        )?;
        // SAFETY: a fresh counter nobody else sees yet.
        unsafe { bindings::rust_helper_refcount_set(inner.refcount.get(), 1) };
        // INVARIANT: a kmalloc'd `ArcInner` with one reference, ours.
        Ok(Self {
            // SAFETY: `into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(KBox::into_raw(inner)) },
            _owns: PhantomData,
        })
    }

    /// Whether two `Arc`s share one value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// Gives the reference to C as a pointer (e.g. `file->private_data`); it comes back with
    /// [`from_raw`](Self::from_raw).
    pub fn into_raw(this: Self) -> *const T {
        let this = core::mem::ManuallyDrop::new(this);
        // SAFETY: the inner block is live (type invariant); only an address is taken.
        unsafe { &raw const (*this.ptr.as_ptr()).data }
    }

    /// Takes back a reference given out by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `ptr` came from `Arc::<T>::into_raw`, and that reference is not used again.
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        let offset = core::mem::offset_of!(ArcInner<T>, data);
        // INVARIANT: the caller hands back the reference `into_raw` took out.
        Self {
            // SAFETY: `ptr` points `offset` bytes into a live `ArcInner<T>`.
            ptr: unsafe { NonNull::new_unchecked(ptr.byte_sub(offset) as *mut ArcInner<T>) },
            _owns: PhantomData,
        }
    }

    /// Borrows the value behind a pointer from [`into_raw`](Self::into_raw) without taking the
    /// reference back.
    ///
    /// # Safety
    /// `ptr` came from `Arc::<T>::into_raw` and that reference outlives `'a`.
    pub unsafe fn borrow_raw<'a>(ptr: *const T) -> &'a T {
        // SAFETY: the caller keeps the reference (hence the value) alive for `'a`.
        unsafe { &*ptr }
    }
}

impl<T> Clone for Arc<T> {
    fn clone(&self) -> Self {
        // SAFETY: the block is live and we hold a reference, so the count is at least one.
        unsafe { bindings::rust_helper_refcount_inc((*self.ptr.as_ptr()).refcount.get()) };
        // INVARIANT: the count now includes the new reference.
        Self {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Deref for Arc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: live while we hold a reference (type invariant).
        unsafe { &(*self.ptr.as_ptr()).data }
    }
}

impl<T> Drop for Arc<T> {
    fn drop(&mut self) {
        // SAFETY: the block is live; we give up our reference. `refcount_dec_and_test` has
        // release ordering, and acquire ordering when it returns true, so every other holder's
        // accesses happen before the value is dropped below.
        let last = unsafe {
            bindings::rust_helper_refcount_dec_and_test((*self.ptr.as_ptr()).refcount.get())
        };
        if last {
            // SAFETY: no reference is left: we own the block, made by `KBox::into_raw`.
            drop(unsafe { KBox::from_raw(self.ptr.as_ptr()) });
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Arc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
