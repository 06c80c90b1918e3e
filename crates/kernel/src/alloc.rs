//! Memory allocation with the flags at every call site: [`KBox`], [`KVec`], [`KVVec`].
//!
//! Kernel code must survive allocation failure and must say, at each allocation, whether it may
//! sleep. So every allocating function here returns `Result` (`ENOMEM`) and takes its [`Gfp`]
//! flags: [`Gfp::KERNEL`] in process context, [`Gfp::ATOMIC`] (or [`Gfp::NOWAIT`]) under a
//! spinlock, in an interrupt handler or in blk-mq's `queue_rq`:
//!
//! ```ignore
//! let state = KBox::new(State::default(), Gfp::KERNEL)?;
//! let mut log = KVec::new();
//! log.push(event, Gfp::ATOMIC)?; // under a spinlock
//! let ring = KVVec::<u8>::from_elem(0, 1 << 20, Gfp::KERNEL)?; // 1 MiB: kvmalloc
//! ```
//!
//! Flags are not a safety condition: `Gfp::KERNEL` in atomic context is a bug the kernel's
//! `CONFIG_DEBUG_ATOMIC_SLEEP` reports ("sleeping function called from invalid context"), not
//! undefined behaviour in Rust.
//!
//! There is no global allocator: modules do not link Rust's `alloc` crate, so its `Box`/`Vec`,
//! whose allocations could not carry flags, are not available (using them fails the link with
//! "no global memory allocator found").
//!
//! Two allocators back the containers:
//! * [`Kmalloc`] (`krealloc`/`kfree`): physically contiguous, any context; for small objects.
//! * [`KVmalloc`] (`kvmalloc`/`kvfree`): kmalloc, falling back to vmalloc for large sizes, so a
//!   1 MiB buffer does not need an order-8 contiguous block; vmalloc may sleep, so with
//!   non-sleeping flags it only tries kmalloc.
//!
//! Both honour `Layout::align()` up to `PAGE_SIZE` (see `kernel-alloc`) and count this module's
//! live blocks ([`live_allocations`]), which module unload checks, and every allocation since
//! load ([`allocations`]). While the module is loaded both are readable in debugfs:
//!
//! ```text
//! /sys/kernel/debug/<module>/live_allocations   blocks allocated and not freed
//! /sys/kernel/debug/<module>/allocations        allocations and resizes since load
//! ```
//!
//! so a test can show a code path allocates nothing (`allocations` the same before and after
//! it), and what a driver holds at idle.

mod kbox;
mod kvec;

pub use kbox::{Box, KBox, KVBox};
pub use kernel_alloc::Gfp;
pub use kvec::{KVVec, KVec, Vec};

use core::alloc::Layout;
use kernel_alloc::KernelAllocator;

// The GFP bits in `kernel-alloc` are written out by hand (that crate is host-testable and has no
// bindings); check them against the kernel actually being built for.
#[cfg(target_os = "none")]
const _: () = {
    use kernel_sys as bindings;
    assert!(Gfp::KERNEL.bits() == bindings::GFP_KERNEL);
    assert!(Gfp::ATOMIC.bits() == bindings::GFP_ATOMIC);
    assert!(Gfp::NOWAIT.bits() == bindings::GFP_NOWAIT);
    assert!(Gfp::ZERO.bits() == bindings::__GFP_ZERO);
    assert!(Gfp::NOWARN.bits() == bindings::__GFP_NOWARN);
};

/// A kernel memory allocator, as the containers use it. Implemented by [`Kmalloc`] and
/// [`KVmalloc`] only.
///
/// # Safety
///
/// `alloc` returns null or a block of at least `layout.size()` bytes aligned to
/// `layout.align()`, owned by the caller until passed to `free` with the same layout. `grow`
/// returns null (the old block untouched and still owned) or a block for `new` holding the
/// first `old.size()` bytes of the old one, which is then gone.
pub unsafe trait Allocator: private::Sealed {
    #[doc(hidden)]
    /// # Safety
    /// `flags` suit the context (a bug otherwise, not UB).
    unsafe fn alloc(layout: Layout, flags: Gfp) -> *mut u8;

    #[doc(hidden)]
    /// # Safety
    /// `ptr` is a live block of this allocator allocated with `old`; `new.align() ==
    /// old.align()` and `new.size() >= old.size()`.
    unsafe fn grow(ptr: *mut u8, old: Layout, new: Layout, flags: Gfp) -> *mut u8;

    #[doc(hidden)]
    /// # Safety
    /// `ptr` is a live block of this allocator allocated with `layout`, not used afterwards.
    unsafe fn free(ptr: *mut u8, layout: Layout);
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Kmalloc {}
    impl Sealed for super::KVmalloc {}
}

/// `kmalloc`: small, physically contiguous blocks; usable in any context with [`Gfp::ATOMIC`].
pub struct Kmalloc;

/// `kvmalloc`: large buffers that need not be physically contiguous.
pub struct KVmalloc;

static KMALLOC: KernelAllocator<backend::Kmalloc> = KernelAllocator::new();
static KVMALLOC: KernelAllocator<backend::Kvmalloc> = KernelAllocator::new();

// SAFETY: forwards to `KernelAllocator`, which serves layouts exactly (see `kernel-alloc`).
unsafe impl Allocator for Kmalloc {
    unsafe fn alloc(layout: Layout, flags: Gfp) -> *mut u8 {
        // SAFETY: the caller vouches for the flags.
        unsafe { KMALLOC.alloc_with(layout, flags) }
    }

    unsafe fn grow(ptr: *mut u8, old: Layout, new: Layout, flags: Gfp) -> *mut u8 {
        // SAFETY: `ptr` is ours with layout `old` (caller); same alignment.
        unsafe { KMALLOC.realloc_with(ptr, old, new.size(), flags) }
    }

    unsafe fn free(ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of KMALLOC with `layout` (caller).
        unsafe { KMALLOC.free(ptr, layout) }
    }
}

// SAFETY: as for `Kmalloc`; `grow` allocates, copies and frees, since a kvmalloc block is never
// resized in place.
unsafe impl Allocator for KVmalloc {
    unsafe fn alloc(layout: Layout, flags: Gfp) -> *mut u8 {
        // SAFETY: the caller vouches for the flags.
        unsafe { KVMALLOC.alloc_with(layout, flags) }
    }

    unsafe fn grow(ptr: *mut u8, old: Layout, new: Layout, flags: Gfp) -> *mut u8 {
        // SAFETY: the caller vouches for the flags.
        let fresh = unsafe { KVMALLOC.alloc_with(new, flags) };
        if !fresh.is_null() {
            // SAFETY: both blocks are live, distinct and at least `old.size()` long; the old
            // one is ours with layout `old` and is not used again.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, fresh, old.size());
                KVMALLOC.free(ptr, old);
            }
        }
        fresh
    }

    unsafe fn free(ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of KVMALLOC with `layout` (caller).
        unsafe { KVMALLOC.free(ptr, layout) }
    }
}

/// How many blocks this module has allocated and not freed (both allocators). Module unload
/// logs it, and the tests require 0.
pub fn live_allocations() -> usize {
    KMALLOC.live_allocations() + KVMALLOC.live_allocations()
}

/// How many allocations and resizes this module has made since it was loaded (both
/// allocators); never goes down.
pub fn allocations() -> usize {
    KMALLOC.allocations() + KVMALLOC.allocations()
}

/// This module's allocation counters as files in debugfs, removed on drop (module unload).
/// Host builds have no debugfs: there it is empty.
pub(crate) struct DebugfsCounters(#[cfg(target_os = "none")] *mut kernel_sys::dentry);

#[cfg(not(target_os = "none"))]
impl DebugfsCounters {
    pub(crate) fn create(_module: &core::ffi::CStr) -> Self {
        Self()
    }
}

#[cfg(target_os = "none")]
mod debugfs_counters {
    use super::*;
    use kernel_sys as bindings;

    extern "C" fn live() -> u64 {
        live_allocations() as u64
    }

    extern "C" fn total() -> u64 {
        allocations() as u64
    }

    // `static`s: the C side keeps a pointer to each for as long as its file exists.
    static LIVE: bindings::rust_counter_fn = Some(live);
    static TOTAL: bindings::rust_counter_fn = Some(total);

    impl DebugfsCounters {
        /// Creates `/sys/kernel/debug/<module>/{live_allocations,allocations}`. Best effort, as
        /// debugfs is meant to be: without debugfs (or memory) there are simply no files.
        pub(crate) fn create(module: &core::ffi::CStr) -> Self {
            // SAFETY: `module` is a NUL-terminated string, copied by debugfs.
            let dir = unsafe { bindings::rust_helper_debugfs_create_dir(module.as_ptr()) };
            if !dir.is_null() {
                for (name, get) in [(c"live_allocations", &LIVE), (c"allocations", &TOTAL)] {
                    // SAFETY: `dir` is a live directory; `get` points to a `static`, alive
                    // until the module's memory goes, after `Drop` removed the file, and
                    // `live`/`total` are callable in any context (two relaxed loads).
                    unsafe {
                        bindings::rust_helper_debugfs_create_counter(name.as_ptr(), dir, get)
                    };
                }
            }
            Self(dir)
        }
    }

    impl Drop for DebugfsCounters {
        fn drop(&mut self) {
            // SAFETY: `self.0` is null or the directory `create` made, removed only here;
            // debugfs_remove takes NULL, removes the files with it and waits for reads already
            // running, after which no read can reach `live`/`total`.
            unsafe { bindings::debugfs_remove(self.0) };
        }
    }
}

/// The kernel calls behind the allocators. Host builds (the drivers' unit tests) use the host's
/// C allocator instead, so driver logic that allocates can be tested with `cargo test`.
mod backend {
    use kernel_alloc::{Backend, Gfp};

    /// `krealloc`/`kfree`.
    pub struct Kmalloc;
    /// `kvmalloc`/`kvfree`.
    pub struct Kvmalloc;

    #[cfg(target_os = "none")]
    mod imp {
        use super::*;
        use kernel_sys as bindings;

        // SAFETY: `krealloc` and `kfree` have exactly the contract `Backend` describes:
        // krealloc(NULL, n) allocates, failure returns NULL and leaves the old block alone,
        // blocks are aligned to ARCH_KMALLOC_MINALIGN and power-of-two sizes to their size;
        // kfree accepts any pointer krealloc returned (and NULL).
        unsafe impl Backend for Kmalloc {
            const PAGE_SIZE: usize = bindings::PAGE_SIZE;
            const MIN_ALIGN: usize = bindings::ARCH_KMALLOC_MINALIGN;

            unsafe fn krealloc(ptr: *const u8, size: usize, flags: Gfp) -> *mut u8 {
                // kmalloc WARNs on sizes beyond its largest order; for Rust callers every
                // allocation is fallible, so such a request is an ordinary failure.
                if size > bindings::KMALLOC_MAX_SIZE {
                    return core::ptr::null_mut();
                }
                // SAFETY: forwarded contract: `ptr` is NULL or a live block of this backend.
                unsafe { bindings::krealloc(ptr.cast(), size, flags.bits()).cast() }
            }

            unsafe fn kfree(ptr: *const u8) {
                // SAFETY: forwarded contract.
                unsafe { bindings::kfree(ptr.cast()) }
            }
        }

        // SAFETY: kvmalloc's kmalloc path has kmalloc's alignment guarantees and its vmalloc
        // path returns page-aligned blocks, so both satisfy `Backend`'s alignment rule for
        // sizes from `kmalloc_size`. Resizing is not offered: a non-null `ptr` gets NULL, which
        // the contract allows (failure, old block intact); `KVmalloc::grow` copies instead.
        unsafe impl Backend for Kvmalloc {
            const PAGE_SIZE: usize = bindings::PAGE_SIZE;
            const MIN_ALIGN: usize = bindings::ARCH_KMALLOC_MINALIGN;

            unsafe fn krealloc(ptr: *const u8, size: usize, flags: Gfp) -> *mut u8 {
                if !ptr.is_null() || size > isize::MAX as usize {
                    return core::ptr::null_mut();
                }
                // SAFETY: a plain allocation; the caller vouches for the flags.
                unsafe { bindings::rust_helper_kvmalloc(size, flags.bits()).cast() }
            }

            unsafe fn kfree(ptr: *const u8) {
                // SAFETY: forwarded contract: NULL or a block from kvmalloc.
                unsafe { bindings::rust_helper_kvfree(ptr.cast()) }
            }
        }
    }

    #[cfg(not(target_os = "none"))]
    mod imp {
        use super::*;

        extern "C" {
            fn aligned_alloc(align: usize, size: usize) -> *mut u8;
            fn malloc_usable_size(ptr: *const u8) -> usize;
            fn free(ptr: *const u8);
        }

        /// kmalloc's promise on the host: natural alignment for power-of-two sizes up to a
        /// page, 16 bytes otherwise.
        unsafe fn host_realloc(ptr: *const u8, size: usize) -> *mut u8 {
            let align = if size.is_power_of_two() {
                size.clamp(16, 4096)
            } else {
                16
            };
            // SAFETY: C11 aligned_alloc with a power-of-two alignment and a multiple of it.
            let fresh = unsafe { aligned_alloc(align, size.next_multiple_of(align)) };
            if !fresh.is_null() && !ptr.is_null() {
                // SAFETY: both live; copy what the old block held, up to the new size.
                unsafe {
                    let old = malloc_usable_size(ptr).min(size);
                    core::ptr::copy_nonoverlapping(ptr, fresh, old);
                    free(ptr);
                }
            }
            fresh
        }

        macro_rules! host_backend {
            ($t:ty) => {
                // SAFETY: `host_realloc` gives kmalloc's alignment guarantees and semantics.
                unsafe impl Backend for $t {
                    const PAGE_SIZE: usize = 4096;
                    const MIN_ALIGN: usize = 16;
                    unsafe fn krealloc(ptr: *const u8, size: usize, _flags: Gfp) -> *mut u8 {
                        // SAFETY: forwarded contract.
                        unsafe { host_realloc(ptr, size) }
                    }
                    unsafe fn kfree(ptr: *const u8) {
                        // SAFETY: a block from `host_realloc` or NULL.
                        unsafe { free(ptr) }
                    }
                }
            };
        }
        host_backend!(Kmalloc);
        host_backend!(Kvmalloc);
    }
}
