//! [`KVec`] and [`KVVec`]: growable arrays whose every growth names its flags.

use super::{Allocator, Gfp, KVmalloc, Kmalloc};
use crate::error::{code::ENOMEM, Result};
use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

/// A growable array, `Vec<T, A>` with the allocator as a type parameter. Use the aliases
/// [`KVec`] (kmalloc: small arrays, any context) and [`KVVec`] (kvmalloc: large buffers).
///
/// Every method that may allocate takes [`Gfp`] flags and returns `ENOMEM` on failure, leaving
/// the vector as it was:
///
/// ```ignore
/// let mut v = KVec::new();
/// v.push(1u32, Gfp::KERNEL)?;
/// v.extend_from_slice(&[2, 3], Gfp::ATOMIC)?; // e.g. under a spinlock
/// assert_eq!(&v[..], &[1, 2, 3]);
/// ```
///
/// # Invariants
/// `ptr` is a live block of `A` with the layout of `[T; cap]` when `cap > 0` and `T` is not
/// zero-sized, dangling otherwise; the first `len <= cap` elements are initialised.
pub struct Vec<T, A: Allocator = Kmalloc> {
    ptr: NonNull<T>,
    cap: usize,
    len: usize,
    _owns: PhantomData<(T, A)>,
}

/// A [`Vec`] from kmalloc.
pub type KVec<T> = Vec<T, Kmalloc>;
/// A [`Vec`] from kvmalloc: kmalloc for small sizes, vmalloc (not physically contiguous)
/// beyond, so a large buffer needs no high-order allocation.
pub type KVVec<T> = Vec<T, KVmalloc>;

// SAFETY: the vector owns its elements like a `[T]` would.
unsafe impl<T: Send, A: Allocator> Send for Vec<T, A> {}
// SAFETY: `&Vec<T>` only gives `&[T]`.
unsafe impl<T: Sync, A: Allocator> Sync for Vec<T, A> {}

impl<T, A: Allocator> Vec<T, A> {
    const IS_ZST: bool = core::mem::size_of::<T>() == 0;

    /// An empty vector; allocates nothing.
    pub const fn new() -> Self {
        // INVARIANT: no capacity, nothing initialised.
        Self {
            ptr: NonNull::dangling(),
            cap: if Self::IS_ZST { usize::MAX } else { 0 },
            len: 0,
            _owns: PhantomData,
        }
    }

    /// An empty vector with room for `capacity` elements.
    pub fn with_capacity(capacity: usize, flags: Gfp) -> Result<Self> {
        let mut v = Self::new();
        v.reserve(capacity, flags)?;
        Ok(v)
    }

    /// A vector of `len` copies of `value`.
    pub fn from_elem(value: T, len: usize, flags: Gfp) -> Result<Self>
    where
        T: Clone,
    {
        let mut v = Self::with_capacity(len, flags)?;
        v.resize(len, value, flags)?;
        Ok(v)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements it can hold without allocating.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Makes room for at least `additional` more elements.
    pub fn reserve(&mut self, additional: usize, flags: Gfp) -> Result {
        let needed = self.len.checked_add(additional).ok_or(ENOMEM)?;
        if needed <= self.cap {
            return Ok(());
        }
        // Amortised growth: at least double, so pushing n elements costs O(n) copies.
        let new_cap = needed.max(self.cap.saturating_mul(2)).max(4);
        let new_layout = Layout::array::<T>(new_cap).map_err(|_| ENOMEM)?;
        let ptr = if self.cap == 0 {
            // SAFETY: the caller's flags; `new_layout` is not zero-sized (T is not a ZST here).
            unsafe { A::alloc(new_layout, flags) }
        } else {
            // Checked when `cap` was set.
            let old_layout = Layout::array::<T>(self.cap).map_err(|_| ENOMEM)?;
            // SAFETY: our block has `old_layout` (type invariant); same alignment, larger.
            unsafe { A::grow(self.ptr.as_ptr().cast(), old_layout, new_layout, flags) }
        };
        // On failure the old block is untouched and still ours.
        self.ptr = NonNull::new(ptr).ok_or(ENOMEM)?.cast();
        // INVARIANT: a block for `[T; new_cap]` holding the `len` elements moved along.
        self.cap = new_cap;
        Ok(())
    }

    /// Appends `value`.
    pub fn push(&mut self, value: T, flags: Gfp) -> Result {
        self.reserve(1, flags)?;
        // SAFETY: `reserve` made `len < cap`; the slot is written before it is counted.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the element at the old `len - 1` was initialised and is no longer counted.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    /// Appends a copy of every element of `other`.
    pub fn extend_from_slice(&mut self, other: &[T], flags: Gfp) -> Result
    where
        T: Clone,
    {
        self.reserve(other.len(), flags)?;
        for v in other {
            // Cannot fail: the room is reserved.
            self.push(v.clone(), flags)?;
        }
        Ok(())
    }

    /// Resizes to `len` elements, appending copies of `value` or dropping the tail.
    pub fn resize(&mut self, len: usize, value: T, flags: Gfp) -> Result
    where
        T: Clone,
    {
        if len <= self.len {
            self.truncate(len);
            return Ok(());
        }
        self.reserve(len - self.len, flags)?;
        while self.len < len {
            self.push(value.clone(), flags)?;
        }
        Ok(())
    }

    /// Drops the elements from `len` on.
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            drop(self.pop());
        }
    }

    /// Drops every element; keeps the capacity.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// The elements as a slice.
    pub fn as_slice(&self) -> &[T] {
        self
    }

    /// The elements as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self
    }
}

impl<T, A: Allocator> Default for Vec<T, A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, A: Allocator> Deref for Vec<T, A> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements at an aligned, non-null pointer (type invariant).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T, A: Allocator> DerefMut for Vec<T, A> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the access unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T, A: Allocator> Drop for Vec<T, A> {
    fn drop(&mut self) {
        self.clear();
        if !Self::IS_ZST && self.cap > 0 {
            // SAFETY: our block, with the layout it was allocated with (checked then).
            unsafe {
                let layout = Layout::array::<T>(self.cap).unwrap_unchecked();
                A::free(self.ptr.as_ptr().cast(), layout);
            }
        }
    }
}

impl<T: fmt::Debug, A: Allocator> fmt::Debug for Vec<T, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live counter is global: tests that check it must not overlap.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn grows_keeps_order_and_frees() {
        let _serial = SERIAL.lock();
        let before = crate::alloc::live_allocations();
        {
            let mut v = KVec::new();
            for i in 0..1000u32 {
                v.push(i, Gfp::KERNEL).unwrap();
            }
            assert!(v.iter().copied().eq(0..1000));
            assert_eq!(v.pop(), Some(999));
            v.truncate(10);
            v.extend_from_slice(&[7, 8], Gfp::ATOMIC).unwrap();
            assert_eq!(&v[8..], &[8, 9, 7, 8]);
            let mut w = KVVec::from_elem(0xa5u8, 100_000, Gfp::KERNEL).unwrap();
            w.resize(3, 0, Gfp::KERNEL).unwrap();
            assert_eq!(&w[..], &[0xa5; 3]);
            assert_eq!(crate::alloc::live_allocations(), before + 2);
        }
        assert_eq!(crate::alloc::live_allocations(), before);
    }

    #[test]
    fn absurd_reservations_fail_cleanly() {
        let _serial = SERIAL.lock();
        let mut v = KVec::<u64>::new();
        v.push(1, Gfp::KERNEL).unwrap();
        assert_eq!(v.reserve(usize::MAX, Gfp::KERNEL), Err(ENOMEM));
        assert_eq!(v.reserve(usize::MAX / 4, Gfp::KERNEL), Err(ENOMEM));
        assert_eq!(&v[..], &[1]);
    }

    #[test]
    fn zero_sized_elements_never_allocate() {
        let mut v = KVec::<()>::new();
        for _ in 0..10 {
            v.push((), Gfp::ATOMIC).unwrap();
        }
        assert_eq!(v.len(), 10);
    }
}
