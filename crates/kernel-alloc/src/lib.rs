//! The allocator behind the kernel crate's `KBox`/`KVec`: kmalloc alignment, GFP flags, counting.
//!
//! A module's `KBox`, `KVec`, `Arc`, ... end up here, each call with its GFP flags. The memory
//! comes from the kernel's `krealloc`/`kfree` (or `kvmalloc`/`kvfree`), but this crate never names a kernel symbol: the two calls come in
//! through the [`Backend`] trait, which `crates/kernel` implements over the real functions, and
//! which the tests below implement over `std`. That keeps the delicate part, the layout math,
//! testable on the host.
//!
//! # The kmalloc alignment rule
//!
//! `kmalloc` takes a size and no alignment. What it promises about alignment (see the comment on
//! `kmalloc` in `include/linux/slab.h`) is exactly this:
//!
//! * every block is aligned to `ARCH_KMALLOC_MINALIGN` ([`Backend::MIN_ALIGN`]: 8 on x86_64,
//!   128 on arm64 in 6.1), and
//! * a block whose size is a power of two is also aligned to its size ("natural alignment",
//!   guaranteed since Linux 5.4 even with slab debugging on).
//!
//! Nothing else. `kmalloc(96)` comes from the `kmalloc-96` cache, whose objects sit at offsets
//! 0, 96, 192, ... of a slab page, so they are only 32-byte aligned. A [`Layout`] asking for
//! 64-byte alignment therefore cannot simply be passed on as its size. [`kmalloc_size`] turns a
//! layout into a size that *forces* the alignment: pad the size to a multiple of the alignment
//! and, if the alignment exceeds `MIN_ALIGN`, round it up to a power of two, which kmalloc then
//! aligns naturally (96 bytes at align 64 becomes 128). Alignments above `PAGE_SIZE` are refused
//! (null), never served misaligned.
//!
//! # The bug this avoids
//!
//! The allocator shipped with Rust-for-Linux up to Linux 6.4 (including 6.1's
//! `rust/kernel/allocator.rs`) called `krealloc(NULL, layout.size(), GFP_KERNEL)` and ignored
//! `layout.align()`. Any type with an alignment above `ARCH_KMALLOC_MINALIGN`, e.g. a
//! `#[repr(align(64))]` cache-line-aligned struct in a `Box`, could get a misaligned block: undefined
//! behaviour in Rust, and silently wrong for anything relying on the alignment. Linux 6.5 fixed it
//! (`krealloc_aligned` in `rust/kernel/allocator.rs`) with the same padding rule as here. The mock
//! backend in the tests returns blocks aligned *only* as strongly as kmalloc guarantees, so an
//! allocator that ignored the alignment would fail them.
//!
//! # Failure is the rule
//!
//! Allocation is fallible: [`Gfp::KERNEL`] and the other composites deliberately leave out
//! [`Gfp::NOFAIL`]. A null return reaches the caller (`try_reserve`, `Box::try_new`, ...), who can
//! report `-ENOMEM`. `__GFP_NOFAIL` instead makes the kernel retry forever, possibly invoking the
//! OOM killer or hanging the caller; the kernel documents it as a last resort for code with no
//! failure policy, and it is meaningless (and warned about) in atomic context.
//!
//! # Zero-size layouts
//!
//! The kernel crate's containers never ask for zero bytes, but the allocator still behaves:
//! a zero-size layout gets a real, minimal block of `max(align, 1)` bytes. That pointer is unique,
//! aligned and non-null, and it is counted and freed exactly like any other block, so `free` has
//! no special case. (Passing 0 to the kernel instead would be wrong twice over: `kmalloc(0)` returns
//! `ZERO_SIZE_PTR`, which is not aligned past 16, and `krealloc(p, 0)` frees `p`.)
//!
//! # Counting
//!
//! [`KernelAllocator::live_allocations`] counts blocks handed out and not yet freed, which makes
//! leaks visible at module unload. [`KernelAllocator::allocations`] counts every successful
//! allocation and resize since load, which never goes down: two equal readings around some work
//! prove the work allocated nothing (a driver's I/O path, say). Each kernel module links its own
//! copy of the allocator `static`, so the counts are per module, not per kernel.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

bitflags::bitflags! {
    /// Allocation flags: the kernel's `gfp_t` (an `unsigned int`), with Linux 6.1's values from
    /// `include/linux/gfp_types.h`.
    ///
    /// Callers normally use a composite: [`Gfp::KERNEL`] where sleeping is allowed,
    /// [`Gfp::ATOMIC`] or [`Gfp::NOWAIT`] where it is not. The single bits are named after the
    /// header's `__GFP_*` macros without the prefix, except `__GFP_ATOMIC`, which is
    /// [`Gfp::ATOMIC_BIT`] because [`Gfp::ATOMIC`] is the `GFP_ATOMIC` composite. The
    /// configuration-dependent bits (`__GFP_SKIP_ZERO`, `__GFP_SKIP_KASAN_*`,
    /// `__GFP_NOLOCKDEP`) are left out.
    ///
    /// These are plain numbers copied from the header so that this crate needs no bindings;
    /// `crates/kernel` asserts at compile time that they equal the values bindgen read from the
    /// kernel's own headers, so a mismatch fails the build rather than the allocation.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Gfp: u32 {
        // Composites first, so that `Debug` prints `KERNEL | ZERO` rather than five bits.
        /// `GFP_KERNEL`: the usual flags for process context; may sleep, reclaim, do I/O.
        const KERNEL = Self::RECLAIM.bits() | Self::IO.bits() | Self::FS.bits();
        /// `GFP_ATOMIC`: cannot sleep, may dip into the atomic reserves (interrupt handlers,
        /// code under a spinlock).
        const ATOMIC = Self::HIGH.bits() | Self::ATOMIC_BIT.bits() | Self::KSWAPD_RECLAIM.bits();
        /// `GFP_NOWAIT`: cannot sleep, no access to reserves; only wakes kswapd.
        const NOWAIT = Self::KSWAPD_RECLAIM.bits();
        /// `__GFP_RECLAIM`: both direct and kswapd reclaim (`GFP_NOIO` has the same value).
        const RECLAIM = Self::DIRECT_RECLAIM.bits() | Self::KSWAPD_RECLAIM.bits();

        /// `__GFP_DMA`: allocate from `ZONE_DMA`.
        const DMA = 0x01;
        /// `__GFP_HIGHMEM`: highmem is allowed (not for kmalloc).
        const HIGHMEM = 0x02;
        /// `__GFP_DMA32`: allocate below 4 GiB (not honoured by kmalloc).
        const DMA32 = 0x04;
        /// `__GFP_MOVABLE`: the memory can be migrated.
        const MOVABLE = 0x08;
        /// `__GFP_RECLAIMABLE`: slab pages reclaimable through shrinkers.
        const RECLAIMABLE = 0x10;
        /// `__GFP_HIGH`: high priority, may use emergency reserves.
        const HIGH = 0x20;
        /// `__GFP_IO`: may start physical I/O.
        const IO = 0x40;
        /// `__GFP_FS`: may call into filesystems.
        const FS = 0x80;
        /// `__GFP_ZERO`: return zeroed memory.
        const ZERO = 0x100;
        /// `__GFP_ATOMIC` (the single bit): caller cannot sleep and is high priority.
        const ATOMIC_BIT = 0x200;
        /// `__GFP_DIRECT_RECLAIM`: may reclaim memory itself, i.e. may sleep.
        const DIRECT_RECLAIM = 0x400;
        /// `__GFP_KSWAPD_RECLAIM`: may wake kswapd when memory runs low.
        const KSWAPD_RECLAIM = 0x800;
        /// `__GFP_WRITE`: the caller intends to dirty the page.
        const WRITE = 0x1000;
        /// `__GFP_NOWARN`: no failure report in the kernel log.
        const NOWARN = 0x2000;
        /// `__GFP_RETRY_MAYFAIL`: retry harder, but still fail eventually.
        const RETRY_MAYFAIL = 0x4000;
        /// `__GFP_NOFAIL`: never fail, retry forever. In no composite; see the crate docs.
        const NOFAIL = 0x8000;
        /// `__GFP_NORETRY`: give up early under memory pressure.
        const NORETRY = 0x10000;
        /// `__GFP_MEMALLOC`: access to all reserves (memory-management internals only).
        const MEMALLOC = 0x20000;
        /// `__GFP_COMP`: compound-page metadata.
        const COMP = 0x40000;
        /// `__GFP_NOMEMALLOC`: never touch the emergency reserves.
        const NOMEMALLOC = 0x80000;
        /// `__GFP_HARDWALL`: enforce the cpuset memory policy.
        const HARDWALL = 0x100000;
        /// `__GFP_THISNODE`: only the requested NUMA node.
        const THISNODE = 0x200000;
        /// `__GFP_ACCOUNT`: charge the allocation to the memory cgroup.
        const ACCOUNT = 0x400000;
        /// `__GFP_ZEROTAGS`: zero memory tags along with the memory.
        const ZEROTAGS = 0x800000;
    }
}

/// The two kernel calls the allocator needs, with the kernel's semantics.
///
/// `crates/kernel` implements this over the real `krealloc`/`kfree` (`kmalloc` is an inline
/// function with no symbol to bind to; `krealloc(NULL, n, flags)` is the same allocation).
/// Implementors are marker types: the functions take no `self`.
///
/// # Safety
///
/// [`KernelAllocator`] hands the blocks out as Rust allocations, so implementors must guarantee:
///
/// * `PAGE_SIZE` and `MIN_ALIGN` are powers of two and `MIN_ALIGN <= PAGE_SIZE`.
/// * A non-null result of `krealloc(_, n, _)` is a block of at least `n` bytes, owned by the
///   caller until freed, aligned to `MIN_ALIGN`, and also to `n` when `n` is a power of two no
///   larger than `PAGE_SIZE`.
/// * `krealloc(ptr, n, _)` with a non-null `ptr` keeps the first `min(old, n)` bytes; on success
///   the old block is gone (unless the same pointer came back), on failure it returns null and
///   the old block is untouched.
/// * `kfree` releases a block returned by `krealloc`; `kfree(null)` does nothing.
/// * Both functions may be called from any thread, and, given flags without
///   [`Gfp::DIRECT_RECLAIM`], from atomic context.
pub unsafe trait Backend {
    /// The kernel's `PAGE_SIZE`: the largest alignment [`KernelAllocator`] serves.
    const PAGE_SIZE: usize;
    /// The kernel's `ARCH_KMALLOC_MINALIGN`: the alignment of every kmalloc block.
    const MIN_ALIGN: usize;

    /// Resizes `ptr` to `size` bytes, or allocates when `ptr` is null; null on failure, with the
    /// old block left intact.
    ///
    /// # Safety
    ///
    /// * `ptr` is null or a live block from this backend's `krealloc`; after a non-null return
    ///   the caller uses the returned pointer instead of `ptr`.
    /// * `size` is not zero (the kernel's `krealloc(p, 0)` frees `p`).
    /// * `flags` suit the calling context: without [`Gfp::DIRECT_RECLAIM`] where sleeping is
    ///   not allowed.
    unsafe fn krealloc(ptr: *const u8, size: usize, flags: Gfp) -> *mut u8;

    /// Frees a block. Never sleeps.
    ///
    /// # Safety
    ///
    /// `ptr` is null or a live block from this backend's `krealloc`, not used afterwards.
    unsafe fn kfree(ptr: *const u8);
}

/// The size to ask kmalloc for so that the block it returns is aligned to `layout.align()`.
///
/// `page_size` and `min_align` are the kernel's `PAGE_SIZE` and `ARCH_KMALLOC_MINALIGN` (powers
/// of two). The rule (see the crate docs): take `max(size, 1)` (zero-size layouts get a minimal
/// real block), pad it to a multiple of the alignment, and if the alignment is above `min_align`
/// round it up to a power of two so that kmalloc's natural alignment applies. The result is never
/// zero.
///
/// Returns `None` when no kmalloc block can be relied on: the alignment exceeds `page_size`, or
/// the size would overflow or exceed `isize::MAX` (the limit for any Rust allocation).
pub const fn kmalloc_size(layout: Layout, page_size: usize, min_align: usize) -> Option<usize> {
    let align = layout.align();
    if align > page_size {
        return None;
    }
    let size = if layout.size() == 0 { 1 } else { layout.size() };
    let Some(padded) = size.checked_next_multiple_of(align) else {
        return None;
    };
    let size = if align <= min_align {
        padded
    } else {
        // `padded` is a multiple of `align`, so the next power of two is too, and kmalloc aligns a
        // power-of-two block to its size.
        match padded.checked_next_power_of_two() {
            Some(size) => size,
            None => return None,
        }
    };
    if size > isize::MAX as usize {
        return None;
    }
    Some(size)
}

/// The kernel allocator: layouts served over a [`Backend`], with flags at every call, counting
/// live allocations.
///
/// Declare one per module:
///
/// ```no_run
/// # use kernel_alloc::{Backend, Gfp, KernelAllocator};
/// # struct KmallocBackend;
/// # unsafe impl Backend for KmallocBackend {
/// #     const PAGE_SIZE: usize = 4096;
/// #     const MIN_ALIGN: usize = 8;
/// #     unsafe fn krealloc(_: *const u8, _: usize, _: Gfp) -> *mut u8 { unimplemented!() }
/// #     unsafe fn kfree(_: *const u8) { unimplemented!() }
/// # }
/// static ALLOCATOR: KernelAllocator<KmallocBackend> = KernelAllocator::new();
/// # fn main() {}
/// ```
///
/// Every allocating call takes its flags: [`Gfp::KERNEL`] may sleep; code in atomic context
/// passes [`Gfp::ATOMIC`] or [`Gfp::NOWAIT`]. Freeing needs no flags: `kfree` never sleeps.
pub struct KernelAllocator<B: Backend> {
    /// Blocks handed out and not yet freed.
    live: AtomicUsize,
    /// Successful allocations and resizes, ever.
    total: AtomicUsize,
    /// `fn() -> B` rather than `B`: the backend is only a set of functions, so the allocator is
    /// `Send + Sync` whatever `B` is.
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> KernelAllocator<B> {
    /// Creates the allocator, with no live allocations. `const`, so it can initialise a `static`.
    ///
    /// Fails to compile if the backend's `PAGE_SIZE`/`MIN_ALIGN` break the [`Backend`] rules.
    pub const fn new() -> Self {
        const {
            assert!(B::PAGE_SIZE.is_power_of_two() && B::MIN_ALIGN.is_power_of_two());
            assert!(B::MIN_ALIGN <= B::PAGE_SIZE);
        }
        Self {
            live: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            _backend: PhantomData,
        }
    }

    /// The number of blocks allocated and not yet freed, in this module.
    ///
    /// The counter uses `Relaxed` atomics: it is a statistic that orders no other memory access.
    /// Each update is still an atomic read-modify-write, so none is lost, and once the threads
    /// that allocated have been synchronised with (e.g. at module exit) the value is exact.
    pub fn live_allocations(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The number of successful allocations and resizes ([`alloc_with`](Self::alloc_with),
    /// [`realloc_with`](Self::realloc_with)) since the allocator was created; it only grows
    /// (wrapping after `usize::MAX`). `Relaxed`, like [`live_allocations`](Self::live_allocations).
    pub fn allocations(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Allocates a block for `layout` with explicit flags, e.g. [`Gfp::ATOMIC`] in an interrupt
    /// handler; add [`Gfp::ZERO`] for zeroed memory. Returns null on failure, including when
    /// `layout.align()` exceeds `PAGE_SIZE`. Any size is accepted, zero included.
    ///
    /// # Safety
    ///
    /// `flags` must suit the calling context: without [`Gfp::DIRECT_RECLAIM`] (so not
    /// [`Gfp::KERNEL`]) where sleeping is not allowed. A non-null result must be freed with
    /// [`free`](Self::free) on this allocator, with the same layout.
    pub unsafe fn alloc_with(&self, layout: Layout, flags: Gfp) -> *mut u8 {
        let Some(size) = kmalloc_size(layout, B::PAGE_SIZE, B::MIN_ALIGN) else {
            return ptr::null_mut();
        };
        // SAFETY: a null `ptr` asks for a new block; `kmalloc_size` never returns 0; the caller
        // vouches for `flags`.
        let block = unsafe { B::krealloc(ptr::null(), size, flags) };
        if !block.is_null() {
            self.live.fetch_add(1, Ordering::Relaxed);
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        block
    }

    /// Resizes a block to `new_size` bytes (same alignment) with explicit flags. Returns null,
    /// leaving the old block intact and still owned by the caller, on failure or when the new
    /// size cannot be served at `layout.align()`. The live count is unchanged either way; a
    /// success counts in [`allocations`](Self::allocations).
    ///
    /// # Safety
    ///
    /// `ptr` is currently allocated by this allocator with `layout`; plus those of [`alloc_with`](Self::alloc_with) for `flags`.
    pub unsafe fn realloc_with(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        flags: Gfp,
    ) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let Some(size) = kmalloc_size(new_layout, B::PAGE_SIZE, B::MIN_ALIGN) else {
            return ptr::null_mut();
        };
        // SAFETY: `ptr` is a live block of this allocator, hence of `B::krealloc`; `size` is not
        // 0; the caller vouches for `flags`. Either the same block comes back (already aligned),
        // or a fresh kmalloc block of `size` bytes, which `kmalloc_size` made aligned.
        let block = unsafe { B::krealloc(ptr, size, flags) };
        if !block.is_null() {
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        block
    }

    /// Frees a block. Needs no flags: `kfree` never sleeps.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this allocator (from [`alloc_with`](Self::alloc_with) or
    /// [`realloc_with`](Self::realloc_with)) allocated with `layout`, not used afterwards.
    pub unsafe fn free(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is a live block of this allocator, i.e. of
        // `B::krealloc`, and does not use it afterwards.
        unsafe { B::kfree(ptr) };
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<B: Backend> Default for KernelAllocator<B> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::vec::Vec;

    const PAGE: usize = 4096;
    const MIN: usize = 8;

    /// A block of the mock heap: `base`/`std_layout` are what std gave us, `size` is kmalloc's.
    struct Block {
        base: *mut u8,
        std_layout: Layout,
        size: usize,
    }

    #[derive(Default)]
    struct State {
        blocks: HashMap<usize, Block>,
        fail_next: usize,
        calls: Vec<(usize, Gfp)>,
    }

    std::thread_local! {
        // Per thread, so that tests running in parallel do not see each other's blocks.
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// kmalloc emulated over std, aligning blocks *only* as much as kmalloc promises.
    struct Mock;

    impl Mock {
        fn fail_next(n: usize) {
            STATE.with_borrow_mut(|s| s.fail_next = n);
        }
        fn live_blocks() -> usize {
            STATE.with_borrow(|s| s.blocks.len())
        }
        fn calls() -> Vec<(usize, Gfp)> {
            STATE.with_borrow(|s| s.calls.clone())
        }
        /// The alignment kmalloc guarantees for `size`, and no more.
        fn guaranteed_align(size: usize) -> usize {
            if size.is_power_of_two() {
                size.max(MIN)
            } else {
                MIN
            }
        }
        fn kmalloc(size: usize, flags: Gfp) -> *mut u8 {
            let g = Self::guaranteed_align(size);
            // Take `size + g` bytes aligned to `2g` and return `base + g`: aligned to `g` and
            // deliberately *not* to `2g`.
            let std_layout = Layout::from_size_align(size + g, 2 * g).unwrap();
            // SAFETY: `std_layout` has a non-zero size.
            let base = unsafe { std::alloc::alloc(std_layout) };
            assert!(!base.is_null(), "host out of memory");
            // SAFETY: `base + g` is within the `size + g` bytes just allocated, and so is the
            // `size`-byte fill.
            let ptr = unsafe {
                let ptr = base.add(g);
                ptr.write_bytes(if flags.contains(Gfp::ZERO) { 0 } else { 0xa5 }, size);
                ptr
            };
            STATE.with_borrow_mut(|s| {
                s.blocks.insert(
                    ptr as usize,
                    Block {
                        base,
                        std_layout,
                        size,
                    },
                )
            });
            ptr
        }
    }

    // SAFETY: blocks are fresh std allocations of at least `size` bytes, aligned as kmalloc
    // promises; growth copies the old contents; failure returns null and touches nothing.
    unsafe impl Backend for Mock {
        const PAGE_SIZE: usize = PAGE;
        const MIN_ALIGN: usize = MIN;

        unsafe fn krealloc(ptr: *const u8, size: usize, flags: Gfp) -> *mut u8 {
            assert_ne!(size, 0, "krealloc(_, 0) would free the block");
            let fail = STATE.with_borrow_mut(|s| {
                s.calls.push((size, flags));
                s.fail_next
                    .checked_sub(1)
                    .map(|n| s.fail_next = n)
                    .is_some()
            });
            if fail {
                return ptr::null_mut();
            }
            if ptr.is_null() {
                return Self::kmalloc(size, flags);
            }
            let old = STATE.with_borrow(|s| s.blocks.get(&(ptr as usize)).map(|b| b.size));
            let old = old.expect("krealloc of a pointer kmalloc never returned");
            if size <= old {
                return ptr.cast_mut(); // Still fits (`ksize`): the kernel keeps the block.
            }
            let new = Self::kmalloc(size, flags);
            // SAFETY: both blocks are live, distinct, and at least `old` bytes long; `ptr` is
            // freed once and not used again.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, old);
                Self::kfree(ptr);
            }
            new
        }

        unsafe fn kfree(ptr: *const u8) {
            if ptr.is_null() {
                return;
            }
            let block = STATE.with_borrow_mut(|s| s.blocks.remove(&(ptr as usize)));
            let block = block.expect("kfree of a pointer that is not live (double free?)");
            // SAFETY: `base` was allocated by std with `std_layout` and is freed only here.
            unsafe { std::alloc::dealloc(block.base, block.std_layout) };
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn aligned(ptr: *mut u8, align: usize) -> bool {
        !ptr.is_null() && (ptr as usize).is_multiple_of(align)
    }

    const SIZES: &[usize] = &[
        0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64, 65, 96, 100, 127, 128, 129,
        255, 256, 257, 500, 1000, 1024, 1500, 2048, 3000, 4095, 4096, 4097, 5000, 8192, 10000,
    ];

    #[test]
    fn gfp_values_match_linux_6_1() {
        assert_eq!(Gfp::KERNEL.bits(), 0xcc0);
        assert_eq!(Gfp::ATOMIC.bits(), 0xa20);
        assert_eq!(Gfp::NOWAIT.bits(), 0x800);
        assert_eq!(Gfp::RECLAIM.bits(), 0xc00);
        assert_eq!(Gfp::ZERO.bits(), 0x100);
        assert_eq!(Gfp::ATOMIC_BIT.bits(), 0x200);
        assert_eq!(Gfp::NOWARN.bits(), 0x2000);
        assert_eq!(Gfp::NOFAIL.bits(), 0x8000);
        assert_eq!(Gfp::ZEROTAGS.bits(), 0x80_0000);
        assert_eq!(Gfp::all().bits(), 0xff_ffff); // 24 bits, 0x01..=0x800000, no gaps.
        for composite in [Gfp::KERNEL, Gfp::ATOMIC, Gfp::NOWAIT, Gfp::RECLAIM] {
            assert!(!composite.contains(Gfp::NOFAIL));
        }
        assert!(
            !Gfp::ATOMIC.contains(Gfp::DIRECT_RECLAIM),
            "GFP_ATOMIC must not sleep"
        );
        assert_eq!(
            std::format!("{:?}", Gfp::KERNEL | Gfp::ZERO),
            "Gfp(KERNEL | ZERO)"
        );
    }

    #[test]
    fn kmalloc_size_rule() {
        let size = |s, a| kmalloc_size(layout(s, a), PAGE, MIN);
        assert_eq!(size(0, 1), Some(1)); // Zero-size: a minimal real block.
        assert_eq!(size(0, 4096), Some(4096));
        assert_eq!(size(5, 1), Some(5));
        assert_eq!(size(5, 8), Some(8)); // Padded; MIN_ALIGN covers the alignment.
        assert_eq!(size(96, 8), Some(96));
        assert_eq!(size(96, 64), Some(128)); // kmalloc-96 is only 32-aligned.
        assert_eq!(size(24, 16), Some(32));
        assert_eq!(size(1, 4096), Some(4096));
        assert_eq!(size(4097, 4096), Some(8192));
        assert_eq!(size(1, 8192), None); // Above PAGE_SIZE.
        let huge = isize::MAX as usize - 15; // Valid layout, but its power of two is 2^63.
        assert_eq!(size(huge, 16), None);
        assert_eq!(size(huge, 8), Some(huge));
    }

    #[test]
    fn mock_aligns_only_as_much_as_kmalloc() {
        // The bench must catch an allocator that ignores `Layout::align()`: a 24-byte block is
        // 8-aligned but never 16-aligned, a 64-byte block is 64- but not 128-aligned.
        // SAFETY: fresh allocations, freed right away.
        unsafe {
            let p = Mock::krealloc(ptr::null(), 24, Gfp::KERNEL);
            assert!(aligned(p, 8) && !aligned(p, 16));
            let q = Mock::krealloc(ptr::null(), 64, Gfp::KERNEL);
            assert!(aligned(q, 64) && !aligned(q, 128));
            Mock::kfree(p);
            Mock::kfree(q);
        }
        assert_eq!(Mock::live_blocks(), 0);
    }

    #[test]
    fn every_alignment_up_to_page_size_is_honoured() {
        let a = KernelAllocator::<Mock>::new();
        let mut blocks = Vec::new();
        for shift in 0..=12 {
            let align = 1 << shift;
            for &size in SIZES {
                let l = layout(size, align);
                // SAFETY: `l` is a valid layout; the block is written within its size.
                let p = unsafe { a.alloc_with(l, Gfp::KERNEL) };
                assert!(aligned(p, align), "size {size} align {align}: {p:p}");
                // SAFETY: the block has at least `size` bytes.
                unsafe { p.write_bytes(0x5a, size) };
                blocks.push((p, l));
            }
        }
        assert_eq!(a.live_allocations(), blocks.len());
        for (p, l) in blocks {
            // SAFETY: allocated above with `l`, freed once.
            unsafe { a.free(p, l) };
        }
        assert_eq!(a.live_allocations(), 0);
        assert_eq!(Mock::live_blocks(), 0);
    }

    #[test]
    fn alignment_above_page_size_fails_cleanly() {
        let a = KernelAllocator::<Mock>::new();
        for size in [0, 1, 8192] {
            // SAFETY: valid layouts; a null result owns nothing.
            unsafe {
                assert!(a.alloc_with(layout(size, 8192), Gfp::KERNEL).is_null());
                assert!(a
                    .alloc_with(layout(size, 8192), Gfp::KERNEL | Gfp::ZERO)
                    .is_null());
            }
        }
        assert_eq!(a.live_allocations(), 0);
        assert!(Mock::calls().is_empty(), "kmalloc must not even be asked");
    }

    #[test]
    fn zero_size_layouts_get_distinct_aligned_blocks() {
        let a = KernelAllocator::<Mock>::new();
        for shift in 0..=12 {
            let l = layout(0, 1 << shift);
            // SAFETY: the blocks are freed once, with their layout, and never accessed.
            unsafe {
                let (p, q) = (a.alloc_with(l, Gfp::KERNEL), a.alloc_with(l, Gfp::KERNEL));
                assert!(aligned(p, l.align()) && aligned(q, l.align()) && p != q);
                assert_eq!(a.live_allocations(), 2);
                a.free(p, l);
                a.free(q, l);
            }
            assert_eq!(a.live_allocations(), 0);
        }
        assert!(Mock::calls().iter().all(|&(size, _)| size > 0));
        assert_eq!(Mock::live_blocks(), 0);
    }

    #[test]
    fn alloc_zeroed_zeroes() {
        let a = KernelAllocator::<Mock>::new();
        for &size in SIZES {
            let l = layout(size, 16);
            // SAFETY: the block has at least `size` bytes and is freed once.
            unsafe {
                let p = a.alloc_with(l, Gfp::KERNEL | Gfp::ZERO);
                assert!(aligned(p, 16));
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                a.free(p, l);
            }
        }
        assert!(Mock::calls()
            .iter()
            .all(|&(_, f)| f == Gfp::KERNEL | Gfp::ZERO));
        assert_eq!(a.live_allocations(), 0);
    }

    #[test]
    fn realloc_grow_and_shrink_keep_contents_and_alignment() {
        let a = KernelAllocator::<Mock>::new();
        for align in [1, 8, 16, 64, 256, 4096] {
            let pattern = |i: usize| (i * 7 + align) as u8;
            let mut l = layout(10, align);
            // SAFETY: every access stays within the current block's size; blocks are reallocated
            // with their current layout and freed once.
            unsafe {
                let mut p = a.alloc_with(l, Gfp::KERNEL);
                (0..10).for_each(|i| p.add(i).write(pattern(i)));
                for new_size in [100, 5000, 3, 20000, 1] {
                    p = a.realloc_with(p, l, new_size, Gfp::KERNEL);
                    assert!(aligned(p, align), "align {align} new_size {new_size}");
                    let kept = l.size().min(new_size);
                    assert!((0..kept).all(|i| p.add(i).read() == pattern(i)));
                    (kept..new_size).for_each(|i| p.add(i).write(pattern(i)));
                    l = layout(new_size, align);
                    assert_eq!(a.live_allocations(), 1);
                }
                a.free(p, l);
            }
        }
        assert_eq!(a.live_allocations(), 0);
        assert_eq!(Mock::live_blocks(), 0);
    }

    #[test]
    fn failed_alloc_changes_nothing() {
        let a = KernelAllocator::<Mock>::new();
        Mock::fail_next(2);
        // SAFETY: valid layouts; the one successful block is freed once.
        unsafe {
            assert!(a.alloc_with(layout(32, 8), Gfp::KERNEL).is_null());
            assert!(a
                .alloc_with(layout(32, 64), Gfp::KERNEL | Gfp::ZERO)
                .is_null());
            assert_eq!(a.live_allocations(), 0);
            let p = a.alloc_with(layout(32, 8), Gfp::KERNEL);
            assert!(!p.is_null());
            assert_eq!(a.live_allocations(), 1);
            a.free(p, layout(32, 8));
        }
        assert_eq!(a.live_allocations(), 0);
        assert_eq!(Mock::live_blocks(), 0);
    }

    #[test]
    fn allocations_counts_successes_only_and_never_goes_down() {
        let a = KernelAllocator::<Mock>::new();
        let l = layout(32, 8);
        // SAFETY: valid layouts; each successful block is freed once with its current layout.
        unsafe {
            let p = a.alloc_with(l, Gfp::KERNEL);
            let q = a.realloc_with(p, l, 64, Gfp::KERNEL);
            assert_eq!(a.allocations(), 2, "an allocation and a resize");
            Mock::fail_next(2);
            assert!(a.alloc_with(l, Gfp::ATOMIC).is_null());
            assert!(a
                .realloc_with(q, layout(64, 8), 9000, Gfp::KERNEL)
                .is_null());
            assert_eq!(a.allocations(), 2, "failures are not allocations");
            a.free(q, layout(64, 8));
        }
        assert_eq!((a.live_allocations(), a.allocations()), (0, 2));
        assert_eq!(Mock::live_blocks(), 0);
    }

    #[test]
    fn failed_realloc_leaves_old_block_intact() {
        let a = KernelAllocator::<Mock>::new();
        let l = layout(16, 64);
        // SAFETY: accesses stay within the 16-byte block, which stays owned after each failed
        // realloc and is freed once at the end.
        unsafe {
            let p = a.alloc_with(l, Gfp::KERNEL);
            p.write_bytes(0x42, 16);
            Mock::fail_next(1);
            assert!(a.realloc_with(p, l, 10_000, Gfp::KERNEL).is_null()); // kmalloc fails.
            assert!(a.realloc_with(p, l, (1 << 62) + 1, Gfp::KERNEL).is_null()); // No power of two fits isize.
            assert!(a
                .realloc_with(p, l, isize::MAX as usize - 7, Gfp::NOWAIT)
                .is_null()); // Bad layout.
            assert_eq!(
                Mock::calls().len(),
                2,
                "only the first realloc reached kmalloc"
            );
            assert_eq!(a.live_allocations(), 1);
            assert!(std::slice::from_raw_parts(p, 16).iter().all(|&b| b == 0x42));
            a.free(p, l);
        }
        assert_eq!(a.live_allocations(), 0);
        assert_eq!(Mock::live_blocks(), 0);
    }

    #[test]
    fn explicit_flags_reach_the_backend() {
        let a = KernelAllocator::<Mock>::new();
        let l = layout(40, 8);
        // SAFETY: atomic flags are fine anywhere in a test; blocks are freed once.
        unsafe {
            let p = a.alloc_with(l, Gfp::ATOMIC);
            let p = a.realloc_with(p, l, 400, Gfp::NOWAIT | Gfp::NOWARN);
            let q = a.alloc_with(l, Gfp::KERNEL);
            a.free(p, layout(400, 8));
            a.free(q, l);
        }
        let flags: Vec<Gfp> = Mock::calls().iter().map(|&(_, f)| f).collect();
        assert_eq!(flags, [Gfp::ATOMIC, Gfp::NOWAIT | Gfp::NOWARN, Gfp::KERNEL]);
        assert_eq!(a.live_allocations(), 0);
    }

    #[test]
    fn static_allocator_counts_across_threads() {
        static ALLOCATOR: KernelAllocator<Mock> = KernelAllocator::new();
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    let l = layout(8 + t, 8);
                    // SAFETY: each thread frees its own blocks once (the mock heap is per thread).
                    let blocks: Vec<_> = (0..500)
                        .map(|_| unsafe { ALLOCATOR.alloc_with(l, Gfp::KERNEL) })
                        .collect();
                    assert!(blocks.iter().all(|&p| aligned(p, 8)));
                    // SAFETY: as above.
                    blocks
                        .into_iter()
                        .for_each(|p| unsafe { ALLOCATOR.free(p, l) });
                });
            }
        });
        // `scope` joined the threads, so their relaxed updates are all visible here.
        assert_eq!(ALLOCATOR.live_allocations(), 0);
    }
}
