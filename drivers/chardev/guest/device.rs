//! A thin typed handle on `/dev/rustpipe`: every operation returns exactly what the kernel
//! returned (a value or an `errno`), so the tests can assert on it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use super::uapi::{
    RustpipeStats, RUSTPIPE_IOC_CLEAR, RUSTPIPE_IOC_GET_CAPACITY, RUSTPIPE_IOC_GET_STATS,
    RUSTPIPE_IOC_SET_CAPACITY,
};
use crate::sys::{self, Errno, SysResult};

/// The device node the driver registers (a misc device; devtmpfs creates the node).
pub const DEVICE: &str = "/dev/rustpipe";
/// The module's name, as `delete_module` and `/proc/modules` know it.
pub const MODULE_NAME: &str = "chardev";
/// The module file in the initramfs.
pub const MODULE_PATH: &str = "/lib/modules/chardev.ko";

/// How to open the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `O_RDONLY`.
    Read,
    /// `O_WRONLY`.
    Write,
    /// `O_RDWR`.
    ReadWrite,
}

/// An open file of `/dev/rustpipe`.
pub struct Rustpipe {
    file: File,
}

impl Rustpipe {
    /// Opens the device in blocking mode: reads wait while the FIFO is empty, writes while it
    /// is full.
    pub fn open(mode: Mode) -> SysResult<Rustpipe> {
        Rustpipe::open_with(mode, 0)
    }

    /// Opens the device with `O_NONBLOCK`: where a blocking call would wait, it fails with
    /// `EAGAIN` instead.
    pub fn open_nonblocking(mode: Mode) -> SysResult<Rustpipe> {
        Rustpipe::open_with(mode, libc::O_NONBLOCK)
    }

    fn open_with(mode: Mode, flags: libc::c_int) -> SysResult<Rustpipe> {
        let file = OpenOptions::new()
            .read(mode != Mode::Write)
            .write(mode != Mode::Read)
            .custom_flags(flags)
            .open(DEVICE)?;
        Ok(Rustpipe { file })
    }

    /// One `read(fd, buf, buf.len())`; returns the number of bytes read.
    pub fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        (&self.file).read(buf).map_err(Errno::from)
    }

    /// One `read()` of up to `count` bytes, returning the bytes read.
    pub fn read_vec(&self, count: usize) -> SysResult<Vec<u8>> {
        let mut buf = vec![0u8; count];
        let n = self.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// One `write(fd, data, data.len())`; returns the number of bytes accepted.
    pub fn write(&self, data: &[u8]) -> SysResult<usize> {
        (&self.file).write(data).map_err(Errno::from)
    }

    /// `RUSTPIPE_IOC_GET_CAPACITY`.
    pub fn capacity(&self) -> SysResult<u32> {
        let mut capacity = 0u32;
        sys::ioctl_with(self.fd(), RUSTPIPE_IOC_GET_CAPACITY, &mut capacity)?;
        Ok(capacity)
    }

    /// `RUSTPIPE_IOC_SET_CAPACITY`.
    pub fn set_capacity(&self, capacity: u32) -> SysResult<()> {
        let mut capacity = capacity;
        sys::ioctl_with(self.fd(), RUSTPIPE_IOC_SET_CAPACITY, &mut capacity).map(drop)
    }

    /// `RUSTPIPE_IOC_CLEAR`.
    pub fn clear(&self) -> SysResult<()> {
        sys::ioctl_none(self.fd(), RUSTPIPE_IOC_CLEAR).map(drop)
    }

    /// `RUSTPIPE_IOC_GET_STATS`.
    pub fn stats(&self) -> SysResult<RustpipeStats> {
        let mut raw = [0u8; RustpipeStats::SIZE];
        sys::ioctl_with(self.fd(), RUSTPIPE_IOC_GET_STATS, &mut raw)?;
        Ok(RustpipeStats::from_ne_bytes(&raw))
    }

    /// `poll()` for `events` with `timeout_ms`; returns `revents` (0 on timeout).
    pub fn poll(&self, events: libc::c_short, timeout_ms: i32) -> SysResult<libc::c_short> {
        sys::poll(self.fd(), events, timeout_ms)
    }

    /// The file descriptor, for raw system calls.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Names the bits of a poll mask: `POLLIN|POLLRDNORM`.
pub fn poll_flags(mask: libc::c_short) -> String {
    const NAMES: [(libc::c_short, &str); 8] = [
        (libc::POLLIN, "POLLIN"),
        (libc::POLLPRI, "POLLPRI"),
        (libc::POLLOUT, "POLLOUT"),
        (libc::POLLERR, "POLLERR"),
        (libc::POLLHUP, "POLLHUP"),
        (libc::POLLNVAL, "POLLNVAL"),
        (libc::POLLRDNORM, "POLLRDNORM"),
        (libc::POLLWRNORM, "POLLWRNORM"),
    ];
    let mut names: Vec<String> = NAMES
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, name)| name.to_string())
        .collect();
    let known = NAMES.iter().fold(0, |acc, (bit, _)| acc | bit);
    if mask & !known != 0 {
        names.push(format!("{:#x}", mask & !known));
    }
    if names.is_empty() {
        "0 (nothing)".to_string()
    } else {
        names.join("|")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_flag_names() {
        assert_eq!(
            poll_flags(libc::POLLIN | libc::POLLRDNORM),
            "POLLIN|POLLRDNORM"
        );
        assert_eq!(
            poll_flags(libc::POLLOUT | libc::POLLWRNORM),
            "POLLOUT|POLLWRNORM"
        );
        assert_eq!(poll_flags(0), "0 (nothing)");
    }

    #[test]
    fn pattern_is_deterministic_and_not_periodic() {
        use crate::harness::pattern;
        let a = pattern(1024, 1);
        assert_eq!(a, pattern(1024, 1));
        assert_ne!(a, pattern(1024, 2));
        assert_ne!(a[..256], a[256..512]);
        assert_ne!(a[..100], a[1..101]);
    }
}
