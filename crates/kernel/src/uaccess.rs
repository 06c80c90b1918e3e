//! User memory: reading and writing the buffers system calls pass in.
//!
//! A user pointer is just a number: it may point nowhere, at kernel memory, or at a page that
//! is swapped out. Every access goes through `copy_from_user`/`copy_to_user`, which check the
//! range and handle faults; a fault becomes `EFAULT`, never an oops. Copies may sleep (page
//! faults), so they must not happen in atomic context (under a spinlock).

use crate::error::{code::EFAULT, Result};
use core::ffi::c_void;
use kernel_sys as bindings;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A user address and length, as a system call received them.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    ptr: usize,
    len: usize,
}

impl UserSlice {
    /// Describes `len` bytes of user memory at `ptr`. Nothing is checked or touched yet.
    pub fn new(ptr: usize, len: usize) -> Self {
        Self { ptr, len }
    }

    /// A cursor that reads the slice front to back.
    pub fn reader(self) -> UserSliceReader {
        UserSliceReader {
            ptr: self.ptr,
            left: self.len,
        }
    }

    /// A cursor that writes the slice front to back.
    pub fn writer(self) -> UserSliceWriter {
        UserSliceWriter {
            ptr: self.ptr,
            left: self.len,
        }
    }
}

/// Reads user memory, advancing past what was read.
#[derive(Debug)]
pub struct UserSliceReader {
    ptr: usize,
    left: usize,
}

impl UserSliceReader {
    /// Bytes not read yet.
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Fills `out` from user memory. On a fault returns `EFAULT`; the cursor does not move, and
    /// `out` may hold a partial copy (callers must not commit it).
    pub fn read_slice(&mut self, out: &mut [u8]) -> Result {
        if out.len() > self.left {
            return Err(EFAULT);
        }
        // SAFETY: `out` is valid for writes of `out.len()` bytes; `copy_from_user` validates the
        // user range itself and returns the number of bytes it could not copy.
        let missed = unsafe {
            bindings::rust_helper_copy_from_user(
                out.as_mut_ptr().cast::<c_void>(),
                self.ptr as *const c_void,
                out.len() as _,
            )
        };
        if missed != 0 {
            return Err(EFAULT);
        }
        self.ptr += out.len();
        self.left -= out.len();
        Ok(())
    }

    /// Reads a plain-data value (any bit pattern valid, e.g. an ioctl argument struct).
    pub fn read<T: FromBytes + IntoBytes>(&mut self) -> Result<T> {
        let mut value = T::new_zeroed();
        self.read_slice(value.as_mut_bytes())?;
        Ok(value)
    }
}

/// Writes user memory, advancing past what was written.
#[derive(Debug)]
pub struct UserSliceWriter {
    ptr: usize,
    left: usize,
}

impl UserSliceWriter {
    /// Room left.
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether the slice is full.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Copies `data` to user memory. On a fault returns `EFAULT` and the cursor does not move
    /// (some bytes may have reached user memory; the caller must not count them as delivered).
    pub fn write_slice(&mut self, data: &[u8]) -> Result {
        if data.len() > self.left {
            return Err(EFAULT);
        }
        // SAFETY: `data` is valid for reads of `data.len()` bytes; `copy_to_user` validates the
        // user range itself and returns the number of bytes it could not copy.
        let missed = unsafe {
            bindings::rust_helper_copy_to_user(
                self.ptr as *mut c_void,
                data.as_ptr().cast::<c_void>(),
                data.len() as _,
            )
        };
        if missed != 0 {
            return Err(EFAULT);
        }
        self.ptr += data.len();
        self.left -= data.len();
        Ok(())
    }

    /// Writes a plain-data value as its bytes (e.g. an ioctl result struct).
    pub fn write<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result {
        self.write_slice(value.as_bytes())
    }
}

/// Anonymous memory mapped into the current process (`vm_mmap`), unmapped on drop.
///
/// For code that needs user memory of its own, such as the self-tests exercising the copy
/// routines on real user pages. Only valid in process context, in the process that created it
/// (it must not outlive the system call or module load that made it).
pub struct UserMapping {
    addr: usize,
    len: usize,
}

impl UserMapping {
    /// Maps `len` bytes of zeroed, readable and writable user memory (page-rounded by the
    /// kernel) in the current process.
    pub fn new(len: usize) -> Result<Self> {
        // SAFETY: an anonymous private mapping with no file; the kernel picks the address and
        // checks everything else.
        let addr = unsafe {
            bindings::vm_mmap(
                core::ptr::null_mut(),
                0,
                len as _,
                (bindings::PROT_READ | bindings::PROT_WRITE) as _,
                (bindings::MAP_PRIVATE | bindings::MAP_ANONYMOUS) as _,
                0,
            )
        } as usize;
        if addr >= (-(crate::error::MAX_ERRNO as isize)) as usize {
            return Err(crate::Error::from_errno(addr as isize as i32));
        }
        Ok(Self { addr, len })
    }

    /// The user address of the mapping.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// The mapping's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, once created).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Unmaps `len` bytes at `offset` inside the mapping (page-aligned), leaving a hole that
    /// faults: for testing copies that run into unmapped memory.
    pub fn unmap_range(&mut self, offset: usize, len: usize) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(crate::code::EINVAL);
        }
        // SAFETY: the range lies inside our own mapping in the current process.
        crate::error::to_result(unsafe { bindings::vm_munmap((self.addr + offset) as _, len) })
    }
}

impl Drop for UserMapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping in the current process (see the type's documentation);
        // unmapping parts that are already unmapped is harmless.
        unsafe { bindings::vm_munmap(self.addr as _, self.len) };
    }
}
