//! User memory with holes and traps, for testing how drivers copy to and from it: anonymous
//! pages that can be unmapped one by one ([`Pages`]), and a range whose first touch stalls
//! until a signal ([`Userfault`], a userfaultfd nobody serves).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::{Errno, SysResult};

/// The page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// `n` pages of anonymous, readable and writable memory; unmapped on drop.
pub struct Pages {
    ptr: *mut u8,
    len: usize,
}

impl Pages {
    /// Maps `n` zeroed pages.
    pub fn new(n: usize) -> SysResult<Pages> {
        let len = n * page_size();
        // SAFETY: a fresh anonymous private mapping; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(Pages {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The address of byte `offset`.
    pub fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset <= self.len);
        self.ptr.wrapping_add(offset)
    }

    /// Copies `data` to `offset` (which must be mapped).
    pub fn fill(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.len);
        // SAFETY: inside our mapping, which the caller says is still mapped there.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.at(offset), data.len()) };
    }

    /// Reads `len` bytes at `offset` (which must be mapped).
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        // SAFETY: inside our mapping, which the caller says is still mapped there.
        unsafe { std::slice::from_raw_parts(self.at(offset), len).to_vec() }
    }

    /// Unmaps page `index`, leaving a hole that faults.
    pub fn unmap_page(&self, index: usize) -> SysResult<()> {
        let page = page_size();
        assert!((index + 1) * page <= self.len);
        // SAFETY: a page of our own mapping; nothing in Rust refers into it.
        if unsafe { libc::munmap(self.at(index * page).cast(), page) } != 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: our mapping (holes in it are fine to unmap again).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// A userfaultfd registered for missing-page faults on a range, and never served: the first
/// access to a page of the range (from user space or from the kernel's `copy_from_user`)
/// sleeps until a signal arrives.
pub struct Userfault {
    _fd: OwnedFd,
}

const UFFD_API: u64 = 0xaa;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
// _IOWR(0xAA, 0x3F, struct uffdio_api) and _IOWR(0xAA, 0x00, struct uffdio_register).
const UFFDIO_API: u32 = crate::uapi::ioc(3, 0xaa, 0x3f, 24);
const UFFDIO_REGISTER: u32 = crate::uapi::ioc(3, 0xaa, 0x00, 32);

impl Userfault {
    /// Traps `len` bytes (whole, not yet touched pages) at `addr`.
    pub fn register(addr: *mut u8, len: usize) -> SysResult<Userfault> {
        // SAFETY: plain system call; no flag restricts it to user-mode faults.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut api = [UFFD_API, 0, 0];
        // SAFETY: `api` is `struct uffdio_api` (three u64), read and written by the kernel.
        if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, api.as_mut_ptr()) } != 0 {
            return Err(Errno::last());
        }
        let mut reg = [addr as u64, len as u64, UFFDIO_REGISTER_MODE_MISSING, 0];
        // SAFETY: `reg` is `struct uffdio_register` (range start/len, mode, ioctls out).
        if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_REGISTER as _, reg.as_mut_ptr()) } != 0 {
            return Err(Errno::last());
        }
        Ok(Userfault { _fd: fd })
    }
}

/// An epoll instance.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> SysResult<Epoll> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(Errno::last());
        }
        Ok(Epoll {
            // SAFETY: a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd` for `events`.
    pub fn add(&self, fd: std::os::fd::BorrowedFd<'_>, events: u32) -> SysResult<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: fd.as_raw_fd() as u64,
        };
        // SAFETY: valid descriptors and event struct.
        if unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        } != 0
        {
            return Err(Errno::last());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for events; returns the ready events' masks.
    pub fn wait(&self, timeout_ms: i32) -> SysResult<Vec<u32>> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: `evs` has room for 8 events.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), evs.as_mut_ptr(), 8, timeout_ms) };
        if n < 0 {
            return Err(Errno::last());
        }
        Ok(evs[..n as usize].iter().map(|e| e.events).collect())
    }
}

/// `read(fd, addr, len)` into raw user memory.
pub fn read_raw(fd: std::os::fd::BorrowedFd<'_>, addr: *mut u8, len: usize) -> SysResult<usize> {
    // SAFETY: the kernel checks the range; a bad one is EFAULT or a short count.
    let n = unsafe { libc::read(fd.as_raw_fd(), addr.cast(), len) };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(n as usize)
}

/// `write(fd, addr, len)` from raw user memory.
pub fn write_raw(fd: std::os::fd::BorrowedFd<'_>, addr: *const u8, len: usize) -> SysResult<usize> {
    // SAFETY: as for `read_raw`.
    let n = unsafe { libc::write(fd.as_raw_fd(), addr.cast(), len) };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(n as usize)
}
