//! A small client of the GPIO character device's uAPI v2 (`<linux/gpio.h>`), built on byte
//! arrays (the structs are encoded field by field at their C offsets).

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;

use crate::sys::{self, SysResult};
use crate::uapi::{ioc, IOC_READ, IOC_WRITE};

const fn iowr(nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, 0xB4, nr, size)
}

/// `struct gpiochip_info`.
pub const CHIPINFO_SIZE: usize = 68;
/// `struct gpio_v2_line_info`.
pub const LINEINFO_SIZE: usize = 256;
/// `struct gpio_v2_line_request`.
pub const REQUEST_SIZE: usize = 592;
/// `struct gpio_v2_line_event`.
pub const EVENT_SIZE: usize = 48;

const GET_CHIPINFO: u32 = ioc(IOC_READ, 0xB4, 0x01, CHIPINFO_SIZE);
const GET_LINEINFO: u32 = iowr(0x05, LINEINFO_SIZE);
const GET_LINE: u32 = iowr(0x07, REQUEST_SIZE);
const LINE_GET_VALUES: u32 = iowr(0x0E, 16);
const LINE_SET_VALUES: u32 = iowr(0x0F, 16);

/// `GPIO_V2_LINE_FLAG_*`.
pub mod flag {
    /// The line is requested (by the kernel or user space).
    pub const USED: u64 = 1 << 0;
    /// An input.
    pub const INPUT: u64 = 1 << 2;
    /// An output.
    pub const OUTPUT: u64 = 1 << 3;
    /// Edge events on rising edges.
    pub const EDGE_RISING: u64 = 1 << 4;
    /// Edge events on falling edges.
    pub const EDGE_FALLING: u64 = 1 << 5;
}

/// `GPIO_V2_LINE_EVENT_RISING_EDGE` / `FALLING_EDGE`.
pub const EVENT_RISING: u32 = 1;
/// See [`EVENT_RISING`].
pub const EVENT_FALLING: u32 = 2;

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}
fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap())
}
fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap())
}
fn get_str(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `GPIO_GET_CHIPINFO_IOCTL`.
#[derive(Debug)]
pub struct ChipInfo {
    /// `gpiochipN`.
    pub name: String,
    /// The provider's label.
    pub label: String,
    /// Number of lines.
    pub lines: u32,
}

/// `GPIO_V2_GET_LINEINFO_IOCTL`.
#[derive(Debug)]
pub struct LineInfo {
    /// Who requested the line.
    pub consumer: String,
    /// The line's offset.
    pub offset: u32,
    /// `flag::*`.
    pub flags: u64,
}

/// `/dev/gpiochipN`, open.
pub struct Chip(pub File);

impl Chip {
    /// Opens a chip's character device.
    pub fn open(path: &str) -> std::io::Result<Chip> {
        File::open(path).map(Chip)
    }

    /// The chip's name, label and line count.
    pub fn info(&self) -> SysResult<ChipInfo> {
        let mut buf = [0u8; CHIPINFO_SIZE];
        sys::ioctl_with(self.0.as_fd(), GET_CHIPINFO, &mut buf)?;
        Ok(ChipInfo {
            name: get_str(&buf[..32]),
            label: get_str(&buf[32..64]),
            lines: get_u32(&buf, 64),
        })
    }

    /// One line's state.
    pub fn line_info(&self, offset: u32) -> SysResult<LineInfo> {
        let mut buf = [0u8; LINEINFO_SIZE];
        put_u32(&mut buf, 64, offset);
        sys::ioctl_with(self.0.as_fd(), GET_LINEINFO, &mut buf)?;
        Ok(LineInfo {
            consumer: get_str(&buf[32..64]),
            offset: get_u32(&buf, 64),
            flags: get_u64(&buf, 72),
        })
    }

    /// Requests `offsets` with `flags`, outputs starting at `values` (bit i = `offsets[i]`).
    pub fn request(
        &self,
        offsets: &[u32],
        consumer: &str,
        flags: u64,
        values: Option<u64>,
    ) -> SysResult<Lines> {
        let mut buf = [0u8; REQUEST_SIZE];
        for (i, &o) in offsets.iter().take(64).enumerate() {
            put_u32(&mut buf, 4 * i, o);
        }
        let name = consumer.as_bytes();
        buf[256..256 + name.len().min(31)].copy_from_slice(&name[..name.len().min(31)]);
        put_u64(&mut buf, 288, flags);
        if let Some(values) = values {
            put_u32(&mut buf, 296, 1); // num_attrs
            put_u32(&mut buf, 320, 2); // GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES
            put_u64(&mut buf, 328, values);
            put_u64(&mut buf, 336, u64::MAX >> (64 - offsets.len().clamp(1, 64)));
        }
        put_u32(&mut buf, 560, offsets.len() as u32);
        let fd = sys::ioctl_new_fd(self.0.as_fd(), GET_LINE, &mut buf, |b| {
            get_u32(b, 588) as i32
        })?;
        Ok(Lines(File::from(fd)))
    }
}

/// A line request (`gpio_v2_line_request.fd`).
pub struct Lines(pub File);

impl Lines {
    /// The levels of the lines in `mask` (bit i = the request's i-th line).
    pub fn get(&self, mask: u64) -> SysResult<u64> {
        let mut buf = [0u8; 16];
        put_u64(&mut buf, 8, mask);
        sys::ioctl_with(self.0.as_fd(), LINE_GET_VALUES, &mut buf)?;
        Ok(get_u64(&buf, 0))
    }

    /// Drives the lines in `mask` to `bits`.
    pub fn set(&self, mask: u64, bits: u64) -> SysResult<()> {
        let mut buf = [0u8; 16];
        put_u64(&mut buf, 0, bits);
        put_u64(&mut buf, 8, mask);
        sys::ioctl_with(self.0.as_fd(), LINE_SET_VALUES, &mut buf).map(drop)
    }

    /// Waits up to `timeout_ms` for one edge event; `(id, offset)`, or `None` on timeout.
    pub fn read_event(&mut self, timeout_ms: i32) -> SysResult<Option<(u32, u32)>> {
        if sys::poll(self.0.as_fd(), libc::POLLIN, timeout_ms)? == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; EVENT_SIZE];
        self.0.read_exact(&mut buf).map_err(sys::Errno::from)?;
        Ok(Some((get_u32(&buf, 8), get_u32(&buf, 12))))
    }
}
