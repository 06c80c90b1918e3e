//! Memory-mapped I/O: [`IoMem`], a device's register window of at least `SIZE` bytes with
//! bounds-checked accessors, typed registers ([`Reg8`]) to read a register map like the
//! datasheet's table, and [`IoRegion`], a window a driver requests and maps itself (PCI BARs are
//! mapped by [`pci::Bar`](crate::pci::Bar)).
//!
//! Every access goes through the kernel's own `readb`/`writeb`/`readl`/`writel`/`readq`/
//! `writeq` (C helpers), so ordering is the C drivers' on every architecture: a write (a
//! doorbell) is ordered after the CPU's earlier writes to DMA memory, and reads of DMA memory
//! after a read are ordered after it. No Rust reference to device memory is ever created: the
//! compiler cannot invent, merge or drop accesses with side effects.
//!
//! ```ignore
//! /// 0x400 - Direction (1 = output).
//! const DIR: Reg8<0x400, ReadWrite> = Reg8::new();
//! io.write(DIR, io.read(DIR) | 1);   // typed register: offset checked at build time
//! let cap = bar.read64::<0x0>();      // plain offsets, checked at build time too
//! io.try_write8(value, offset)?;      // or at run time: EINVAL when out of range
//! ```

use crate::error::{code::*, Result};
use core::ffi::{c_void, CStr};
use core::marker::PhantomData;
use kernel_sys as bindings;

/// A register that can be read (its access marker).
pub trait Readable {}
/// A register that can be written (its access marker).
pub trait Writable {}

/// Access marker: read and write.
pub struct ReadWrite;
/// Access marker: reads only (writes have no effect in the datasheet).
pub struct ReadOnly;
/// Access marker: writes only (reads return nothing meaningful, e.g. an interrupt clear).
pub struct WriteOnly;

impl Readable for ReadWrite {}
impl Writable for ReadWrite {}
impl Readable for ReadOnly {}
impl Writable for WriteOnly {}

/// An 8-bit register at byte offset `OFFSET` of a register window, with access `A`
/// ([`ReadWrite`], [`ReadOnly`] or [`WriteOnly`]). A zero-sized name: the offset is part of the
/// type, so [`IoMem::read`]/[`IoMem::write`] check it against the window at build time.
pub struct Reg8<const OFFSET: usize, A>(PhantomData<A>);

impl<const OFFSET: usize, A> Reg8<OFFSET, A> {
    /// Names the register.
    pub const fn new() -> Self {
        Self(PhantomData)
    }

    /// Its byte offset in the window.
    pub const OFFSET: usize = OFFSET;
}

impl<const OFFSET: usize, A> Default for Reg8<OFFSET, A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const OFFSET: usize, A> Clone for Reg8<OFFSET, A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<const OFFSET: usize, A> Copy for Reg8<OFFSET, A> {}

/// A mapped MMIO window of at least `SIZE` bytes. Owned by what mapped it ([`IoRegion`], a PCI
/// BAR), which hands out `&IoMem`.
///
/// # Invariants
/// `addr` is the start of a live `__iomem` mapping of `len >= SIZE` bytes, valid as long as
/// this value.
pub struct IoMem<const SIZE: usize> {
    addr: *mut c_void,
    len: usize,
}

// SAFETY: MMIO accessors may be called from any CPU; exclusion where a driver needs it (a
// read-modify-write) is the driver's lock's job, not a memory-safety matter.
unsafe impl<const SIZE: usize> Send for IoMem<SIZE> {}
// SAFETY: see `Send`; `&IoMem` only offers single, complete register accesses.
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
    pub(crate) unsafe fn new(addr: *mut c_void, len: usize) -> IoMem<SIZE> {
        debug_assert!(len >= SIZE);
        // INVARIANT: the caller's guarantee.
        IoMem { addr, len }
    }

    pub(crate) fn addr(&self) -> *mut c_void {
        self.addr
    }

    /// The mapping's real length in bytes (at least `SIZE`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, once mapped).
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

    /// Reads register `R` (offset checked at build time).
    pub fn read<const OFFSET: usize, A: Readable>(&self, _reg: Reg8<OFFSET, A>) -> u8 {
        self.read8::<OFFSET>()
    }

    /// Writes register `R` (offset checked at build time).
    pub fn write<const OFFSET: usize, A: Writable>(&self, _reg: Reg8<OFFSET, A>, value: u8) {
        self.write8::<OFFSET>(value)
    }

    accessors!(
        read8,
        try_read8,
        write8,
        try_write8,
        u8,
        rust_helper_readb,
        rust_helper_writeb
    );
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

/// A register window a driver requested and mapped itself (`request_mem_region` +
/// `ioremap`): dropping it unmaps it and releases the range. Derefs to [`IoMem`].
///
/// # Invariants
/// `io` maps `start..start + SIZE`, which this value requested; both are undone only by `drop`.
pub struct IoRegion<const SIZE: usize> {
    io: IoMem<SIZE>,
    start: u64,
}

impl<const SIZE: usize> IoRegion<SIZE> {
    /// Requests the physical range `start..start + SIZE` under `name` (`EBUSY` if another
    /// driver holds it) and maps it.
    ///
    /// # Safety
    /// `start..start + SIZE` is device memory (registers) of a device the caller is bound to,
    /// not RAM the kernel uses: mapping and accessing it must not corrupt memory.
    pub unsafe fn map(start: u64, name: &'static CStr) -> Result<Self> {
        let size = SIZE as u64;
        // SAFETY: a plain range request; `name` outlives the request ('static).
        let res = unsafe { bindings::rust_helper_request_mem_region(start, size, name.as_ptr()) };
        if res.is_null() {
            return Err(EBUSY);
        }
        // SAFETY: the range is device memory (the caller's guarantee) and now ours.
        let addr = unsafe { bindings::rust_helper_ioremap(start, SIZE) };
        if addr.is_null() {
            // SAFETY: requested just above.
            unsafe { bindings::rust_helper_release_mem_region(start, size) };
            return Err(ENOMEM);
        }
        // INVARIANT: requested and mapped above; the mapping lives until `drop`.
        Ok(Self {
            // SAFETY: a live mapping of SIZE bytes, unmapped only in `drop`.
            io: unsafe { IoMem::new(addr, SIZE) },
            start,
        })
    }
}

impl<const SIZE: usize> core::ops::Deref for IoRegion<SIZE> {
    type Target = IoMem<SIZE>;
    fn deref(&self) -> &IoMem<SIZE> {
        &self.io
    }
}

impl<const SIZE: usize> Drop for IoRegion<SIZE> {
    fn drop(&mut self) {
        // SAFETY: mapped and requested by `map` (type invariant); nothing uses them after this.
        unsafe {
            bindings::rust_helper_iounmap(self.io.addr());
            bindings::rust_helper_release_mem_region(self.start, SIZE as u64);
        }
    }
}
