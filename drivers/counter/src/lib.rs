//! `rustcount`: a counter per open file, read and written as text.
//!
//! The second example, after the pipe: where `rustpipe` is one FIFO shared by all, here each
//! `open()` gets a counter of its own, and the device keeps a total over all of them.
//!
//! * `write("5\n")` adds 5 to this file's counter and to the total (decimal, `0x` hex or `0`
//!   octal, as `kstrtoull` reads them); the total may not pass the `limit` parameter (`ERANGE`,
//!   nothing added). Anything that is not a number is `EINVAL`. A write is a command, not data
//!   stored at an offset, so it leaves the file position alone.
//! * `read()` returns a text report, `count <n>\nwrites <n>\ntotal <n>\n` (this file's count
//!   and number of writes, then the device's total), at file
//!   positions like a small `/proc` file: `cat` reads it to the end, `pread` and `lseek` work.
//!   Each read formats a fresh snapshot, so a report read in pieces while another process
//!   writes may mix two snapshots (as with `/proc` files).
//! * ioctls: [`uapi::GetCount`] returns this file's count as a `u64`, [`uapi::Reset`] clears it
//!   (the total keeps what was added).
//!
//! Reading top to bottom: state, module load, the file operations.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod uapi;

use core::fmt::Write as _;
use kernel::miscdev::Registration;
use kernel::prelude::*;
use kernel::str::parse_u64;

/// The device: what all open files share.
struct Counter {
    /// The sum over every file's additions, at most `limit`.
    total: Mutex<u64>,
    limit: u64,
}

/// One open file's state. Several threads may use one open file at once, so even per-open
/// state needs a lock: a `Mutex` (uncontended, one atomic operation) keeps the count and the
/// number of writes consistent with each other.
struct OpenCounter {
    state: Mutex<PerOpen>,
}

#[derive(Default)]
struct PerOpen {
    count: u64,
    writes: u64,
}

/// The loaded module: dropping it removes `/dev/rustcount`.
struct RustCount {
    _device: Registration<Counter>,
}

impl Module for RustCount {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let limit = module_params::limit.get();
        let counter = Counter {
            total: new_mutex!(0, "rustcount.total", Gfp::KERNEL)?,
            limit,
        };
        let device =
            Registration::register(c"rustcount", Arc::new(counter, Gfp::KERNEL)?, Gfp::KERNEL)?;
        pr_info!("/dev/rustcount ready, limit {limit}");
        Ok(RustCount { _device: device })
    }
}

/// Room for the longest report: three labels, three 20-digit numbers.
type Report = StackString<96>;

impl Counter {
    fn report(&self, open: &OpenCounter) -> Result<Report> {
        let (count, writes) = {
            let state = open.state.lock_interruptible()?;
            (state.count, state.writes)
        };
        let total = *self.total.lock_interruptible()?;
        let mut text = Report::new();
        // Cannot fail or truncate: the buffer holds the longest report.
        let _ = write!(text, "count {count}\nwrites {writes}\ntotal {total}\n");
        Ok(text)
    }
}

impl MiscDevice for Counter {
    type OpenFile = OpenCounter;
    const POSITIONED: bool = true;

    fn open(&self, _file: &File) -> Result<OpenCounter> {
        Ok(OpenCounter {
            state: new_mutex!(PerOpen::default(), "rustcount.open", Gfp::KERNEL)?,
        })
    }

    fn read(
        &self,
        open: &OpenCounter,
        _file: &File,
        out: &mut UserSliceWriter,
        pos: &mut i64,
    ) -> Result<usize> {
        let report = self.report(open)?;
        out.read_from_buffer(pos, report.as_bytes())
    }

    fn write(
        &self,
        open: &OpenCounter,
        _file: &File,
        input: &mut UserSliceReader,
        _pos: &mut i64,
    ) -> Result<usize> {
        // One number per write; 32 bytes hold any u64 in any base, with a newline.
        let mut text = [0u8; 32];
        let len = input.len();
        if len == 0 {
            return Ok(0);
        }
        if len > text.len() {
            return Err(EINVAL);
        }
        input.read_slice(&mut text[..len])?;
        let amount = parse_u64(&text[..len], 0)?;

        let mut total = self.total.lock_interruptible()?;
        let new_total = total
            .checked_add(amount)
            .filter(|t| *t <= self.limit)
            .ok_or(ERANGE)?;
        let mut state = open.state.lock_interruptible()?;
        state.count = state.count.checked_add(amount).ok_or(ERANGE)?;
        state.writes += 1;
        *total = new_total;
        // A command is not stored at a position: the read position stays where it was.
        Ok(len)
    }

    fn size(&self, open: &OpenCounter) -> i64 {
        self.report(open).map_or(0, |r| r.as_bytes().len() as i64)
    }

    fn ioctl(&self, open: &OpenCounter, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::GetCount::CMD => {
                let count = open.state.lock_interruptible()?.count;
                uapi::GetCount::write(arg, &count)?;
            }
            uapi::Reset::CMD => *open.state.lock_interruptible()? = PerOpen::default(),
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

kernel::module! {
    type: RustCount,
    name: "counter",
    author: "Rust driver examples",
    description: "rustcount: per-open counters with a text interface (/dev/rustcount)",
    license: "GPL",
    params: {
        limit: u64 = 1000000, "Largest total the counters may reach (writes beyond fail with ERANGE)",
    },
}
