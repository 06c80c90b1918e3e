//! Memory-mapped I/O: [`IoMem`], a device's register window of `SIZE` bytes, and typed
//! registers ([`Reg8`]) to read a register map like the datasheet's table.
//!
//! Accesses go through the kernel's own `readb`/`writeb` (C helpers), so they get the barriers
//! C drivers get on every architecture (on arm64, `writeb` orders earlier memory writes before
//! the device sees the register write; `readb` orders the read before later memory reads).
//! Nothing ever takes a Rust reference to device memory: the compiler cannot invent or merge
//! accesses with side effects.
//!
//! ```ignore
//! /// 0x400 - Direction (1 = output).
//! const DIR: Reg8<0x400, ReadWrite> = Reg8::new();
//! let io: IoMem<0x1000> = adev.iomap()?;
//! io.write(DIR, io.read(DIR) | 1); // offsets checked against SIZE at build time
//! io.try_read8(offset)?;           // or at run time (EINVAL when out of range)
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

/// A mapped window of `SIZE` bytes of device registers, owned: dropping it unmaps it and
/// releases the address range.
///
/// # Invariants
/// `addr` is an `ioremap` mapping of at least `SIZE` bytes of the physical range `start..start +
/// SIZE`, which this value requested with `request_mem_region`; both are undone only by `drop`.
pub struct IoMem<const SIZE: usize> {
    addr: *mut c_void,
    start: u64,
}

// SAFETY: the mapping is kernel-global (not tied to a thread), and `readb`/`writeb` may be
// issued from any CPU; exclusion where a driver needs it (read-modify-write) is the driver's
// lock's job, not a memory-safety matter.
unsafe impl<const SIZE: usize> Send for IoMem<SIZE> {}
// SAFETY: as above: `&IoMem` only allows single, complete register accesses.
unsafe impl<const SIZE: usize> Sync for IoMem<SIZE> {}

impl<const SIZE: usize> IoMem<SIZE> {
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
        // INVARIANT: requested and mapped above.
        Ok(Self { addr, start })
    }

    /// Reads register `R` (offset checked at build time).
    pub fn read<const OFFSET: usize, A: Readable>(&self, _reg: Reg8<OFFSET, A>) -> u8 {
        const { assert!(OFFSET < SIZE, "register outside the window") };
        // SAFETY: in bounds (checked at build time).
        unsafe { self.readb_unchecked(OFFSET) }
    }

    /// Writes register `R` (offset checked at build time).
    pub fn write<const OFFSET: usize, A: Writable>(&self, _reg: Reg8<OFFSET, A>, value: u8) {
        const { assert!(OFFSET < SIZE, "register outside the window") };
        // SAFETY: in bounds (checked at build time).
        unsafe { self.writeb_unchecked(OFFSET, value) }
    }

    /// Reads the byte at `offset`, checked at run time: `EINVAL` outside the window.
    pub fn try_read8(&self, offset: usize) -> Result<u8> {
        if offset >= SIZE {
            return Err(EINVAL);
        }
        // SAFETY: in bounds (checked above).
        Ok(unsafe { self.readb_unchecked(offset) })
    }

    /// Writes the byte at `offset`, checked at run time: `EINVAL` outside the window.
    pub fn try_write8(&self, offset: usize, value: u8) -> Result {
        if offset >= SIZE {
            return Err(EINVAL);
        }
        // SAFETY: in bounds (checked above).
        unsafe { self.writeb_unchecked(offset, value) };
        Ok(())
    }

    /// # Safety
    /// `offset < SIZE`.
    unsafe fn readb_unchecked(&self, offset: usize) -> u8 {
        // SAFETY: `addr` maps `SIZE` bytes (type invariant) and `offset < SIZE`.
        unsafe { bindings::rust_helper_readb(self.addr.cast::<u8>().add(offset).cast()) }
    }

    /// # Safety
    /// `offset < SIZE`.
    unsafe fn writeb_unchecked(&self, offset: usize, value: u8) {
        // SAFETY: `addr` maps `SIZE` bytes (type invariant) and `offset < SIZE`.
        unsafe { bindings::rust_helper_writeb(value, self.addr.cast::<u8>().add(offset).cast()) }
    }
}

impl<const SIZE: usize> Drop for IoMem<SIZE> {
    fn drop(&mut self) {
        // SAFETY: mapped and requested by `map` (type invariant); nothing uses them after this.
        unsafe {
            bindings::rust_helper_iounmap(self.addr);
            bindings::rust_helper_release_mem_region(self.start, SIZE as u64);
        }
    }
}
