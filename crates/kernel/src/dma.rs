//! DMA: the addressing mask of a device and coherent allocations (memory the CPU and the device
//! both access, mapped for the device for as long as it is allocated: queues, Identify pages).
//!
//! Memory the device writes is read with volatile loads, one element at a time
//! ([`CoherentAllocation::read`]); nothing here hands out a reference into it. Elements are
//! `zerocopy` types: any bytes the device writes are a valid value.

use crate::alloc::{Gfp, KBox};
use crate::device::{Device, DeviceRef};
use crate::error::{code::*, to_result, Result};
use core::mem::{size_of, MaybeUninit};
use kernel_sys as bindings;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A bus address, as the device sees memory.
pub type DmaAddr = u64;

/// Sets the streaming and coherent DMA masks of `dev` to `bits` bits.
pub fn set_mask_and_coherent(dev: &Device, bits: u32) -> Result {
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    // SAFETY: `dev` is live (type invariant of `Device`).
    to_result(unsafe { bindings::rust_helper_dma_set_mask_and_coherent(dev.as_raw(), mask) })
}

/// Orders the CPU's reads of DMA memory (`dma_rmb`): read a completion's phase bit, then this,
/// then the rest of the entry.
pub fn rmb() {
    // SAFETY: a barrier, no preconditions.
    unsafe { bindings::rust_helper_dma_rmb() }
}

/// Orders the CPU's writes to DMA memory (`dma_wmb`). Not needed before an MMIO doorbell write
/// (`writel` orders those).
pub fn wmb() {
    // SAFETY: a barrier, no preconditions.
    unsafe { bindings::rust_helper_dma_wmb() }
}

/// `count` elements of `T` in coherent DMA memory, zeroed at allocation.
///
/// Freed (`dma_free_coherent`) when dropped; it holds a reference on the device. The owner must
/// make sure the device no longer accesses the memory by then (the queue deleted, the controller
/// disabled): a driver keeps its allocations in its per-device data, which `pci::Driver::remove`
/// drops after it has shut the device down.
///
/// # Invariants
/// `cpu` is a live coherent allocation of `count * size_of::<T>()` bytes for `dev`, at bus
/// address `handle`, page-aligned (`dma_alloc_coherent` returns whole pages).
pub struct CoherentAllocation<T: FromBytes + IntoBytes + Immutable> {
    dev: DeviceRef,
    cpu: *mut T,
    handle: DmaAddr,
    count: usize,
}

// SAFETY: the memory is only accessed with volatile element copies, from any thread; `T` is
// plain data.
unsafe impl<T: FromBytes + IntoBytes + Immutable + Send> Send for CoherentAllocation<T> {}
// SAFETY: see `Send`.
unsafe impl<T: FromBytes + IntoBytes + Immutable + Sync> Sync for CoherentAllocation<T> {}

impl<T: FromBytes + IntoBytes + Immutable> CoherentAllocation<T> {
    /// Allocates `count` zeroed elements for `dev` (`flags`: `Gfp::KERNEL` in probe).
    pub fn alloc(dev: &Device, count: usize, flags: Gfp) -> Result<Self> {
        let size = count.checked_mul(size_of::<T>()).ok_or(EOVERFLOW)?;
        if size == 0 {
            return Err(EINVAL);
        }
        let mut handle: bindings::dma_addr_t = 0;
        let flags = flags | Gfp::ZERO;
        // SAFETY: `dev` is live; `handle` is a valid out-pointer.
        let cpu = unsafe {
            bindings::rust_helper_dma_alloc_coherent(dev.as_raw(), size, &mut handle, flags.bits())
        };
        if cpu.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: allocated above, zeroed (__GFP_ZERO; dma_alloc_coherent zeroes anyway).
        Ok(Self {
            dev: dev.to_ref(),
            cpu: cpu.cast(),
            handle: handle as DmaAddr,
            count,
        })
    }

    /// The bus address of element 0, to program into the device.
    pub fn dma_handle(&self) -> DmaAddr {
        self.handle
    }

    /// The bus address of element `i`; `EINVAL` past the end.
    pub fn dma_handle_of(&self, i: usize) -> Result<DmaAddr> {
        if i >= self.count {
            return Err(EINVAL);
        }
        Ok(self.handle + (i * size_of::<T>()) as u64)
    }

    /// The number of elements.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Copies element `i` out (a volatile read: the device may have written it). Panics past
    /// the end, like slice indexing; see [`try_read`](Self::try_read).
    pub fn read(&self, i: usize) -> T {
        assert!(i < self.count, "DMA element {i} of {}", self.count);
        // SAFETY: in bounds (checked), live allocation, `T: FromBytes` accepts any bytes; the
        // pointer is aligned (page-aligned start, whole elements).
        unsafe { self.cpu.add(i).read_volatile() }
    }

    /// Copies element `i` out; `EINVAL` past the end.
    pub fn try_read(&self, i: usize) -> Result<T> {
        if i >= self.count {
            return Err(EINVAL);
        }
        Ok(self.read(i))
    }

    /// Copies element `i` into a new heap box (for large elements such as 4 KiB Identify
    /// pages, which do not belong on the kernel stack).
    pub fn read_boxed(&self, i: usize, flags: Gfp) -> Result<KBox<T>> {
        if i >= self.count {
            return Err(EINVAL);
        }
        let slot: KBox<MaybeUninit<T>> = KBox::new_uninit(flags)?;
        let dst = KBox::into_raw(slot).cast::<u8>();
        // SAFETY: in bounds (checked); `src` is the live element, `dst` a fresh block of
        // `size_of::<T>()` bytes; byte-wise volatile copies; afterwards every byte of `dst` is
        // initialised and `T: FromBytes` makes them a valid `T`, so the block is a `KBox<T>`.
        unsafe {
            let src = self.cpu.add(i).cast::<u8>();
            for b in 0..size_of::<T>() {
                dst.add(b).write(src.add(b).read_volatile());
            }
            Ok(KBox::from_raw(dst.cast::<T>()))
        }
    }

    /// Copies elements `start..start + out.len()` into `out` (volatile reads, one element at a
    /// time); `EINVAL` past the end. For a bounce buffer whose command has completed.
    pub fn read_into(&self, start: usize, out: &mut [T]) -> Result {
        let end = start.checked_add(out.len()).ok_or(EINVAL)?;
        if end > self.count {
            return Err(EINVAL);
        }
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.read(start + i);
        }
        Ok(())
    }

    /// Writes element `i` (a volatile write). Panics past the end; see
    /// [`try_write`](Self::try_write).
    pub fn write(&self, i: usize, value: &T) {
        assert!(i < self.count, "DMA element {i} of {}", self.count);
        // SAFETY: in bounds, live, aligned; `T: IntoBytes + Immutable` is plain data.
        unsafe { self.cpu.add(i).write_volatile(value.read_copy()) }
    }

    /// Writes element `i`; `EINVAL` past the end.
    pub fn try_write(&self, i: usize, value: &T) -> Result {
        if i >= self.count {
            return Err(EINVAL);
        }
        self.write(i, value);
        Ok(())
    }
}

/// Bitwise copy of a plain-data value (`T: FromBytes + IntoBytes` need not be `Copy`).
trait ReadCopy: Sized {
    fn read_copy(&self) -> Self;
}

impl<T: FromBytes + IntoBytes + Immutable> ReadCopy for T {
    fn read_copy(&self) -> Self {
        T::read_from_bytes(self.as_bytes()).unwrap_or_else(|_| unreachable!())
    }
}

impl<T: FromBytes + IntoBytes + Immutable> Drop for CoherentAllocation<T> {
    fn drop(&mut self) {
        // SAFETY: allocated for `dev` with this size and handle (type invariant), not used after.
        unsafe {
            bindings::rust_helper_dma_free_coherent(
                self.dev.as_raw(),
                self.count * size_of::<T>(),
                self.cpu.cast(),
                self.handle as bindings::dma_addr_t,
            )
        };
    }
}
