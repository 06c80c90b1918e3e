//! Memory allocation: the module's global allocator (kmalloc/krealloc/kfree behind Rust's
//! `GlobalAlloc`), and the fallible, flag-explicit constructors drivers use.
//!
//! Kernel code must survive allocation failure, so modules are built with `alloc`'s
//! `no_global_oom_handling`: the panicking `Box::new`, `Vec::push`, `format!` … do not exist
//! there. Drivers use [`try_box`], [`try_box_with`] and [`VecExt`] instead, which return
//! `ENOMEM`. Allocations made from atomic context must say so with [`Gfp::ATOMIC`].

use crate::error::{code::ENOMEM, Result};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use kernel_alloc::{Backend, KernelAllocator};
use kernel_sys as bindings;

pub use kernel_alloc::Gfp;
pub use rust_alloc::boxed::Box;
pub use rust_alloc::vec::Vec;

// The GFP bits in `kernel-alloc` are written out by hand (that crate is host-testable and has no
// bindings); check them against the kernel actually being built for.
const _: () = {
    assert!(Gfp::KERNEL.bits() == bindings::GFP_KERNEL);
    assert!(Gfp::ATOMIC.bits() == bindings::GFP_ATOMIC);
    assert!(Gfp::NOWAIT.bits() == bindings::GFP_NOWAIT);
    assert!(Gfp::ZERO.bits() == bindings::__GFP_ZERO);
    assert!(Gfp::NOWARN.bits() == bindings::__GFP_NOWARN);
};

/// krealloc/kfree, as `kernel-alloc` needs them.
pub struct Kmalloc;

// SAFETY: `krealloc` and `kfree` have exactly the contract `Backend` describes: krealloc(NULL, n)
// allocates, failure returns NULL and leaves the old block alone, blocks are aligned to
// ARCH_KMALLOC_MINALIGN and power-of-two sizes to their size; kfree accepts any pointer krealloc
// returned (and NULL).
unsafe impl Backend for Kmalloc {
    const PAGE_SIZE: usize = bindings::PAGE_SIZE;
    const MIN_ALIGN: usize = bindings::ARCH_KMALLOC_MINALIGN;

    unsafe fn krealloc(ptr: *const u8, size: usize, flags: Gfp) -> *mut u8 {
        // kmalloc WARNs on sizes beyond its largest order; for Rust callers every allocation is
        // fallible, so such a request is an ordinary failure (e.g. a huge `try_reserve`).
        if size > bindings::KMALLOC_MAX_SIZE {
            return core::ptr::null_mut();
        }
        // SAFETY: forwarded contract: `ptr` is NULL or a live block from this backend.
        unsafe { bindings::krealloc(ptr.cast(), size, flags.bits()).cast() }
    }

    unsafe fn kfree(ptr: *const u8) {
        // SAFETY: forwarded contract: `ptr` is NULL or a live block from this backend.
        unsafe { bindings::kfree(ptr.cast()) }
    }
}

/// The module's allocator. Each module links its own copy, so [`live_allocations`] counts this
/// module's blocks only.
pub static ALLOCATOR: KernelAllocator<Kmalloc> = KernelAllocator::new();

/// The `#[global_allocator]` that `module!` installs: forwards to [`ALLOCATOR`] with
/// `GFP_KERNEL`.
pub struct Global;

// SAFETY: forwards every call unchanged to `ALLOCATOR`, a correct `GlobalAlloc`.
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        unsafe { ALLOCATOR.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        unsafe { ALLOCATOR.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { ALLOCATOR.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        unsafe { ALLOCATOR.realloc(ptr, layout, new_size) }
    }
}

/// How many blocks this module has allocated and not freed.
pub fn live_allocations() -> usize {
    ALLOCATOR.live_allocations()
}

/// Allocates `value` on the heap with `GFP_KERNEL` (may sleep: process context only).
pub fn try_box<T>(value: T) -> Result<Box<T>> {
    try_box_with(value, Gfp::KERNEL)
}

/// Allocates `value` on the heap with explicit GFP flags (`Gfp::ATOMIC` in atomic context).
pub fn try_box_with<T>(value: T, flags: Gfp) -> Result<Box<T>> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        let ptr = NonNull::<T>::dangling().as_ptr();
        // SAFETY: for a zero-sized `T` a dangling, aligned pointer is valid for writes, and
        // `Box` never deallocates zero-sized values.
        return Ok(unsafe {
            ptr.write(value);
            Box::from_raw(ptr)
        });
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { ALLOCATOR.alloc_with(layout, flags) }.cast::<T>();
    let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
    // SAFETY: `ptr` is a fresh block with `T`'s layout from the global allocator (ALLOCATOR is
    // what `Global` forwards to), so `Box` may own it and free it through the global allocator.
    unsafe {
        ptr.as_ptr().write(value);
        Ok(Box::from_raw(ptr.as_ptr()))
    }
}

/// A raw, uninitialised heap block of a given layout, freed on drop: for code that needs
/// memory by size and alignment rather than by type (and for testing the allocator itself).
///
/// # Invariants
/// `ptr` is a live block from [`ALLOCATOR`] allocated with `layout`.
pub struct RawBlock {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl RawBlock {
    /// Allocates `layout` with `flags`; `ENOMEM` if the allocator cannot (also for alignments
    /// above PAGE_SIZE, which kmalloc cannot guarantee).
    pub fn new(layout: Layout, flags: Gfp) -> Result<Self> {
        // SAFETY: any layout is accepted by `alloc_with` (zero sizes included).
        let ptr = unsafe { ALLOCATOR.alloc_with(layout, flags) };
        // INVARIANT: a live block of `layout`.
        NonNull::new(ptr)
            .map(|ptr| Self { ptr, layout })
            .ok_or(ENOMEM)
    }

    /// The block's address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The block's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }
}

impl Drop for RawBlock {
    fn drop(&mut self) {
        // SAFETY: a live block from ALLOCATOR with this layout (type invariant).
        unsafe { ALLOCATOR.dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

// SAFETY: a heap block is not tied to a thread.
unsafe impl Send for RawBlock {}

/// An empty vector with room for `capacity` elements (`GFP_KERNEL`).
pub fn vec_with_capacity<T>(capacity: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(capacity).map_err(|_| ENOMEM)?;
    Ok(v)
}

/// Fallible growth for `Vec`: the kernel's replacement for `push`, `extend_from_slice`, ...
pub trait VecExt<T> {
    /// Appends `value`, growing the buffer if needed.
    fn try_push(&mut self, value: T) -> Result;
    /// Appends a copy of every element of `other`.
    fn try_extend_from_slice(&mut self, other: &[T]) -> Result
    where
        T: Clone;
    /// Resizes to `len` elements, filling with copies of `value`.
    fn try_resize(&mut self, len: usize, value: T) -> Result
    where
        T: Clone;
}

impl<T> VecExt<T> for Vec<T> {
    fn try_push(&mut self, value: T) -> Result {
        self.try_reserve(1).map_err(|_| ENOMEM)?;
        let len = self.len();
        // SAFETY: `try_reserve(1)` guarantees capacity > len; the slot is written before
        // `set_len` makes it part of the vector.
        unsafe {
            self.as_mut_ptr().add(len).write(value);
            self.set_len(len + 1);
        }
        Ok(())
    }

    fn try_extend_from_slice(&mut self, other: &[T]) -> Result
    where
        T: Clone,
    {
        self.try_reserve(other.len()).map_err(|_| ENOMEM)?;
        for v in other {
            self.try_push(v.clone())?;
        }
        Ok(())
    }

    fn try_resize(&mut self, len: usize, value: T) -> Result
    where
        T: Clone,
    {
        if len <= self.len() {
            self.truncate(len);
            return Ok(());
        }
        self.try_reserve(len - self.len()).map_err(|_| ENOMEM)?;
        while self.len() < len {
            self.try_push(value.clone())?;
        }
        Ok(())
    }
}
