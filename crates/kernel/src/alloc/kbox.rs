//! [`KBox`]: one heap value, allocated with explicit flags.

use super::{Allocator, Gfp, KVmalloc, Kmalloc};
use crate::error::{code::ENOMEM, Result};
use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::ptr::NonNull;

/// An owned heap value, freed on drop: `Box<T, A>` with the allocator as a type parameter.
/// Use the aliases [`KBox`] (kmalloc) and [`KVBox`] (kvmalloc).
///
/// ```ignore
/// let b = KBox::new([0u8; 256], Gfp::KERNEL)?;
/// let pinned = KBox::pin(State::new(), Gfp::KERNEL)?; // never moves again
/// ```
///
/// # Invariants
/// `ptr` is a live block of `A` with `T`'s layout holding an initialised `T` (for a zero-sized
/// `T`, a dangling aligned pointer that is never freed).
pub struct Box<T, A: Allocator = Kmalloc> {
    ptr: NonNull<T>,
    _owns: PhantomData<(T, A)>,
}

/// A [`Box`] from kmalloc.
pub type KBox<T> = Box<T, Kmalloc>;
/// A [`Box`] from kvmalloc, for large values.
pub type KVBox<T> = Box<T, KVmalloc>;

// SAFETY: a box owns its value like a `T` would.
unsafe impl<T: Send, A: Allocator> Send for Box<T, A> {}
// SAFETY: `&Box<T>` only gives `&T`.
unsafe impl<T: Sync, A: Allocator> Sync for Box<T, A> {}

impl<T, A: Allocator> Box<T, A> {
    /// Moves `value` to the heap; `ENOMEM` if the allocation fails.
    pub fn new(value: T, flags: Gfp) -> Result<Self> {
        let slot = Self::new_uninit(flags)?;
        Ok(Box::write(slot, value))
    }

    /// Room on the heap for a `T`, to be filled with [`Box::write`].
    pub fn new_uninit(flags: Gfp) -> Result<Box<MaybeUninit<T>, A>> {
        let layout = Layout::new::<T>();
        let ptr = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: the caller's flags; a non-zero size.
            NonNull::new(unsafe { A::alloc(layout, flags) })
                .ok_or(ENOMEM)?
                .cast()
        };
        // INVARIANT: a fresh block of `MaybeUninit<T>`'s layout (any contents are valid).
        Ok(Box {
            ptr,
            _owns: PhantomData,
        })
    }

    /// Moves `value` to the heap, pinned: it will not move until dropped.
    pub fn pin(value: T, flags: Gfp) -> Result<Pin<Self>> {
        Ok(Self::into_pin(Self::new(value, flags)?))
    }

    /// Pins a box: the value never moves again (a box's value does not move with the box).
    pub fn into_pin(b: Self) -> Pin<Self> {
        // SAFETY: the value lives in its heap block until dropped; `Box` offers no way to move
        // it out of a `Pin<Box>` (no `Unpin`-free `DerefMut` is reachable through `Pin`).
        unsafe { Pin::new_unchecked(b) }
    }

    /// Gives up ownership: the pointer must come back through [`from_raw`](Self::from_raw).
    pub fn into_raw(b: Self) -> *mut T {
        ManuallyDrop::new(b).ptr.as_ptr()
    }

    /// Takes back a pointer from [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `ptr` came from `Box::<T, A>::into_raw` and is not used otherwise afterwards.
    pub unsafe fn from_raw(ptr: *mut T) -> Self {
        // INVARIANT: the caller returns what `into_raw` gave out.
        Box {
            // SAFETY: `into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _owns: PhantomData,
        }
    }

    /// Moves the value out, freeing the block.
    pub fn into_inner(b: Self) -> T {
        let b = ManuallyDrop::new(b);
        // SAFETY: the value is initialised (type invariant) and read once; the block is then
        // freed without dropping the value again.
        unsafe {
            let value = b.ptr.as_ptr().read();
            Self::free(b.ptr);
            value
        }
    }

    /// # Safety
    /// `ptr` is the block of a box being destroyed, whose value was dropped or moved out.
    unsafe fn free(ptr: NonNull<T>) {
        let layout = Layout::new::<T>();
        if layout.size() != 0 {
            // SAFETY: a live block of `A` with this layout (type invariant).
            unsafe { A::free(ptr.as_ptr().cast(), layout) };
        }
    }
}

impl<T, A: Allocator> Box<MaybeUninit<T>, A> {
    /// Initialises the slot with `value`.
    pub fn write(b: Self, value: T) -> Box<T, A> {
        let ptr = Box::into_raw(b);
        // SAFETY: the slot is ours and sized for `T`; after the write it holds a valid `T`, and
        // `MaybeUninit<T>` has `T`'s layout, so the block is a valid `Box<T, A>` block.
        unsafe {
            (*ptr).write(value);
            Box::from_raw(ptr.cast::<T>())
        }
    }
}

impl<T, A: Allocator> Deref for Box<T, A> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: an initialised `T` owned by the box (type invariant).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T, A: Allocator> DerefMut for Box<T, A> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the access unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T, A: Allocator> Drop for Box<T, A> {
    fn drop(&mut self) {
        // SAFETY: the value is initialised and dropped once, then its block is freed.
        unsafe {
            core::ptr::drop_in_place(self.ptr.as_ptr());
            Self::free(self.ptr);
        }
    }
}

impl<T: fmt::Debug, A: Allocator> fmt::Debug for Box<T, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
