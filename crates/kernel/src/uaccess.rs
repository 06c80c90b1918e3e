//! User memory: reading and writing the buffers system calls pass in.
//!
//! A user pointer is just a number: it may point nowhere, at kernel memory, or at a page that
//! is swapped out. Every access goes through `copy_from_user`/`copy_to_user`, which check the
//! range and handle faults; a fault becomes `EFAULT`, never an oops. Copies may sleep (page
//! faults), so they must not happen in atomic context (under a spinlock).
//!
//! Two kinds of copy: `read_slice`/`write_slice` are all-or-nothing (for ioctl arguments: a
//! half-read struct is useless), `read_some`/`write_some` report partial progress (for data
//! streams: POSIX wants a short count for the bytes moved before a fault, not `EFAULT`).

use crate::error::{code::EFAULT, code::EINVAL, code::ENOSPC, Result};
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

    /// Fills as much of `out` as user memory allows, front to back, and returns how many bytes
    /// were copied (the cursor moves past them). Less than `out.len()` means the copy ran into
    /// unmapped memory (or ran out of input): the bytes before the fault are valid. The copy
    /// may stop a few bytes short of the fault (arm64's copy routine works in 16-byte steps).
    /// `EFAULT` only if not a single byte could be copied.
    pub fn read_some(&mut self, out: &mut [u8]) -> Result<usize> {
        let want = out.len().min(self.left);
        if want == 0 {
            return Ok(0);
        }
        // SAFETY: `out` is valid for writes of `want` bytes; `copy_from_user` validates the user
        // range itself and returns the number of bytes it could not copy (the copied ones are
        // the first ones).
        let missed = unsafe {
            bindings::rust_helper_copy_from_user(
                out.as_mut_ptr().cast::<c_void>(),
                self.ptr as *const c_void,
                want as _,
            )
        } as usize;
        let copied = want - missed.min(want);
        if copied == 0 {
            return Err(EFAULT);
        }
        self.ptr += copied;
        self.left -= copied;
        Ok(copied)
    }

    /// The kernel's `simple_write_to_buffer`: fills `buf` from position `*pos` on with as much of
    /// the user's data as fits, advances `*pos` by the bytes copied and returns their number
    /// (`ENOSPC` if `*pos` is at or past the end of `buf` and there is something to write).
    pub fn write_to_buffer(&mut self, pos: &mut i64, buf: &mut [u8]) -> Result<usize> {
        let start = usize::try_from(*pos).map_err(|_| EINVAL)?;
        if self.is_empty() {
            return Ok(0);
        }
        let room = match buf.get_mut(start..) {
            Some(room) if !room.is_empty() => room,
            _ => return Err(ENOSPC),
        };
        let n = self.read_some(room)?;
        *pos += n as i64;
        Ok(n)
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

    /// Copies as much of `data` to user memory as it allows and returns how many bytes arrived
    /// (the cursor moves past them). Less than `data.len()` means the copy ran into unmapped
    /// memory (or the slice is full). `EFAULT` only if not a single byte could be copied.
    pub fn write_some(&mut self, data: &[u8]) -> Result<usize> {
        let want = data.len().min(self.left);
        if want == 0 {
            return Ok(0);
        }
        // SAFETY: `data` is valid for reads of `want` bytes; `copy_to_user` validates the user
        // range itself and returns the number of bytes it could not copy.
        let missed = unsafe {
            bindings::rust_helper_copy_to_user(
                self.ptr as *mut c_void,
                data.as_ptr().cast::<c_void>(),
                want as _,
            )
        } as usize;
        let copied = want - missed.min(want);
        if copied == 0 {
            return Err(EFAULT);
        }
        self.ptr += copied;
        self.left -= copied;
        Ok(copied)
    }

    /// The kernel's `simple_read_from_buffer`: copies what `data` holds from position `*pos` on
    /// (as much as fits), advances `*pos` by the bytes copied and returns their number: 0 at or
    /// past the end (end of file), a short count after a partial fault.
    pub fn read_from_buffer(&mut self, pos: &mut i64, data: &[u8]) -> Result<usize> {
        let start = usize::try_from(*pos).map_err(|_| EINVAL)?;
        let Some(rest) = data.get(start..) else {
            return Ok(0);
        };
        if rest.is_empty() || self.is_empty() {
            return Ok(0);
        }
        let n = self.write_some(rest)?;
        *pos += n as i64;
        Ok(n)
    }

    /// Writes a plain-data value as its bytes (e.g. an ioctl result struct).
    pub fn write<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result {
        self.write_slice(value.as_bytes())
    }
}
