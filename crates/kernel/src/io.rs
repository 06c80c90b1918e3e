//! Memory-mapped I/O: a mapped register window with bounds-checked accessors.
//!
//! Every access goes through the kernel's own `readl`/`writel`/`readq`/`writeq` (C helpers), so
//! ordering is the C drivers' on every architecture: a `write32` of a doorbell is ordered after
//! the CPU's earlier writes to DMA memory, and reads of DMA memory after a `read32` are ordered
//! after it. No reference to MMIO is ever created (the compiler could read through one on its
//! own).
//!
//! `IoMem<SIZE>`: `SIZE` is the least size the mapping is known to have, so
//! [`read32::<OFFSET>()`](IoMem::read32) is checked at build time; the `try_` accessors take an
//! offset computed at run time and check it against the mapping's real length (`EINVAL`).

use crate::error::{code::EINVAL, Result};
use kernel_sys as bindings;

/// A mapped MMIO window of at least `SIZE` bytes.
///
/// # Invariants
/// `addr` is the start of a live `__iomem` mapping of `len >= SIZE` bytes, valid until the owner
/// (a BAR mapping) drops this value.
pub struct IoMem<const SIZE: usize> {
    addr: *mut core::ffi::c_void,
    len: usize,
}

// SAFETY: MMIO accessors may be called from any thread; the device serialises its registers.
unsafe impl<const SIZE: usize> Send for IoMem<SIZE> {}
// SAFETY: see `Send`; `&IoMem` only offers the accessors.
unsafe impl<const SIZE: usize> Sync for IoMem<SIZE> {}

macro_rules! accessors {
    ($read:ident, $try_read:ident, $write:ident, $try_write:ident, $t:ty,
     $cread:ident, $cwrite:ident) => {
        #[doc = concat!("Reads the `", stringify!($t), "` register at `OFFSET` (checked at build time).")]
        pub fn $read<const OFFSET: usize>(&self) -> $t {
            const { assert!(OFFSET + size_of::<$t>() <= SIZE && OFFSET % size_of::<$t>() == 0) };
            // SAFETY: in bounds and aligned (checked above; `len >= SIZE`), mapping live.
            unsafe { bindings::$cread(self.addr.add(OFFSET)) }
        }

        #[doc = concat!("Reads the `", stringify!($t), "` register at `offset`; `EINVAL` if out of bounds or misaligned.")]
        pub fn $try_read(&self, offset: usize) -> Result<$t> {
            self.check::<$t>(offset)?;
            // SAFETY: in bounds and aligned (checked), mapping live.
            Ok(unsafe { bindings::$cread(self.addr.add(offset)) })
        }

        #[doc = concat!("Writes the `", stringify!($t), "` register at `OFFSET` (checked at build time).")]
        pub fn $write<const OFFSET: usize>(&self, value: $t) {
            const { assert!(OFFSET + size_of::<$t>() <= SIZE && OFFSET % size_of::<$t>() == 0) };
            // SAFETY: in bounds and aligned (checked above), mapping live.
            unsafe { bindings::$cwrite(value, self.addr.add(OFFSET)) }
        }

        #[doc = concat!("Writes the `", stringify!($t), "` register at `offset`; `EINVAL` if out of bounds or misaligned.")]
        pub fn $try_write(&self, value: $t, offset: usize) -> Result {
            self.check::<$t>(offset)?;
            // SAFETY: in bounds and aligned (checked), mapping live.
            unsafe { bindings::$cwrite(value, self.addr.add(offset)) };
            Ok(())
        }
    };
}

impl<const SIZE: usize> IoMem<SIZE> {
    /// # Safety
    /// `addr` is a live `__iomem` mapping of `len >= SIZE` bytes that outlives the value.
    pub(crate) unsafe fn new(addr: *mut core::ffi::c_void, len: usize) -> IoMem<SIZE> {
        debug_assert!(len >= SIZE);
        // INVARIANT: the caller's guarantee.
        IoMem { addr, len }
    }

    pub(crate) fn addr(&self) -> *mut core::ffi::c_void {
        self.addr
    }

    /// The mapping's real length in bytes (at least `SIZE`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a mapped BAR).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check<T>(&self, offset: usize) -> Result {
        let end = offset.checked_add(size_of::<T>()).ok_or(EINVAL)?;
        if end > self.len || !offset.is_multiple_of(size_of::<T>()) {
            return Err(EINVAL);
        }
        Ok(())
    }

    accessors!(
        read32,
        try_read32,
        write32,
        try_write32,
        u32,
        rust_helper_readl,
        rust_helper_writel
    );
    accessors!(
        read64,
        try_read64,
        write64,
        try_write64,
        u64,
        rust_helper_readq,
        rust_helper_writeq
    );
}
