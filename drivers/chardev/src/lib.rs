//! `rustpipe`: a FIFO character device in the spirit of LDD3's scull pipe.
//!
//! `/dev/rustpipe` is one bounded byte FIFO shared by every process that opens it. `read()`
//! blocks while it is empty, `write()` while it is full (`O_NONBLOCK`: `EAGAIN`); waits are
//! interruptible, so a signal ends them with `EINTR` (or restarts them, per `SA_RESTART`).
//! `poll()`/`select()` report readiness. ioctls (see [`uapi`]) get and set the capacity, clear
//! the FIFO and read statistics. Seeking fails with `ESPIPE`.
//!
//! Semantics worth knowing, as in scull-pipe:
//! * Writes are partial: `write(n)` stores what fits and returns that count; there is no
//!   `PIPE_BUF` atomicity, so concurrent writers' bytes may interleave.
//! * There is no end of file and no `POLLHUP`: the device is not a pipe with two ends, a
//!   reader of an empty FIFO waits however many writers have closed it.
//! * A user buffer that faults part-way gives a short count for the bytes before the fault,
//!   and those bytes are moved exactly once; `EFAULT` only if nothing could be copied.
//! * The state lock is taken interruptibly and never by `open`: a copy stalled on a slow page
//!   (userfaultfd, FUSE) holds up the other readers and writers of this device only, and a
//!   signal frees them; `open()` of this and every other misc device is never held up.
//!
//! Reading top to bottom: the shared state, module load, the file operations, unload.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod fifo;
pub mod uapi;

use fifo::Fifo;
use kernel::miscdev::Registration;
use kernel::prelude::*;
use kernel::sync::atomic::{AtomicU32, Ordering};

/// What the FIFO lock protects.
struct State {
    fifo: Fifo,
    bytes_read: u64,
    bytes_written: u64,
}

/// The device: the state and the two wait queues readers and writers sleep on.
struct Pipe {
    state: Mutex<State>,
    /// Woken when bytes are added.
    readable: PollCondVar,
    /// Woken when room is made.
    writable: PollCondVar,
    /// Open files, for the statistics: counted outside the state lock so that `open` (which
    /// runs under the misc core's global lock) never waits for it.
    open_files: AtomicU32,
}

/// The loaded module: dropping it removes `/dev/rustpipe`.
struct RustPipe {
    _device: Registration<Pipe>,
}

impl Module for RustPipe {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let capacity = module_params::capacity.get();
        if capacity == 0 || capacity > uapi::MAX_CAPACITY {
            pr_err!(
                "capacity={capacity} is out of range 1..={}",
                uapi::MAX_CAPACITY
            );
            return Err(EINVAL);
        }
        let state = State {
            fifo: Fifo::new(capacity as usize)?,
            bytes_read: 0,
            bytes_written: 0,
        };
        let pipe = Pipe {
            state: new_mutex!(state, "rustpipe.state", Gfp::KERNEL)?,
            readable: new_poll_condvar!("rustpipe.readable", Gfp::KERNEL)?,
            writable: new_poll_condvar!("rustpipe.writable", Gfp::KERNEL)?,
            open_files: AtomicU32::new(0),
        };
        let pipe = Arc::new(pipe, Gfp::KERNEL)?;
        let device = Registration::register(c"rustpipe", pipe, Gfp::KERNEL)?;
        pr_info!("/dev/rustpipe ready, capacity {capacity} bytes");
        Ok(RustPipe { _device: device })
    }
}

impl MiscDevice for Pipe {
    type OpenFile = ();

    fn open(&self, _file: &File) -> Result {
        self.open_files.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, _open: (), _file: &File) {
        self.open_files.fetch_sub(1, Ordering::Relaxed);
    }

    fn read(
        &self,
        _open: &(),
        file: &File,
        out: &mut UserSliceWriter,
        _pos: &mut i64,
    ) -> Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut state = self.state.lock_interruptible()?;
        while state.fifo.is_empty() {
            if file.is_nonblocking() {
                return Err(EAGAIN);
            }
            state = self.readable.wait(state)?;
        }
        // Copy straight from the ring to user memory; only what reached the user is consumed,
        // so a bad buffer loses nothing. (Copies may fault and sleep: fine under a mutex.)
        let (first, second) = state.fifo.peek(out.len());
        let copied = copy_runs(first, second, |run| out.write_some(run))?;
        state.fifo.consume(copied);
        state.bytes_read += copied as u64;
        drop(state);
        self.writable.notify_all();
        Ok(copied)
    }

    fn write(
        &self,
        _open: &(),
        file: &File,
        input: &mut UserSliceReader,
        _pos: &mut i64,
    ) -> Result<usize> {
        if input.is_empty() {
            return Ok(0);
        }
        let mut state = self.state.lock_interruptible()?;
        while state.fifo.is_full() {
            if file.is_nonblocking() {
                return Err(EAGAIN);
            }
            state = self.writable.wait(state)?;
        }
        // Copy straight into the free part of the ring; commit only what was copied.
        let (first, second) = state.fifo.space(input.len());
        let copied = copy_runs(first, second, |run| input.read_some(run))?;
        state.fifo.commit(copied);
        state.bytes_written += copied as u64;
        drop(state);
        self.readable.notify_all();
        Ok(copied)
    }

    fn poll(&self, _open: &(), file: &File, table: &PollTable) -> PollFlags {
        self.readable.poll_wait(file, table);
        self.writable.poll_wait(file, table);
        let Ok(state) = self.state.lock_interruptible() else {
            // A signal: the caller's poll returns at once and looks again.
            return PollFlags::empty();
        };
        let mut ready = PollFlags::empty();
        if !state.fifo.is_empty() {
            ready |= PollFlags::IN | PollFlags::RDNORM;
        }
        if !state.fifo.is_full() {
            ready |= PollFlags::OUT | PollFlags::WRNORM;
        }
        ready
    }

    fn ioctl(&self, _open: &(), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        use uapi::{Clear, GetCapacity, GetStats, SetCapacity};
        match cmd {
            GetCapacity::CMD => {
                let capacity = self.state.lock_interruptible()?.fifo.capacity() as u32;
                GetCapacity::write(arg, &capacity)?;
            }
            SetCapacity::CMD => {
                let capacity = SetCapacity::read(arg)?;
                if capacity == 0 || capacity > uapi::MAX_CAPACITY {
                    return Err(EINVAL);
                }
                self.state
                    .lock_interruptible()?
                    .fifo
                    .resize(capacity as usize)?;
                self.writable.notify_all();
            }
            Clear::CMD => {
                self.state.lock_interruptible()?.fifo.clear();
                self.writable.notify_all();
            }
            GetStats::CMD => {
                let stats = {
                    let state = self.state.lock_interruptible()?;
                    uapi::Stats {
                        bytes_read: state.bytes_read,
                        bytes_written: state.bytes_written,
                        len: state.fifo.len() as u32,
                        capacity: state.fifo.capacity() as u32,
                        open_files: self.open_files.load(Ordering::Relaxed),
                        reserved: 0,
                        live_allocations: kernel::alloc::live_allocations() as u64,
                    }
                };
                GetStats::write(arg, &stats)?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

/// Copies between user memory and the ring's two runs with `copy` (which reports partial
/// progress), stopping at the first short copy. Returns the bytes moved; if none could be
/// moved, the first copy's error (`EFAULT`), or `ERESTARTSYS` when a signal cut the copy
/// short (a page fault waiting on userfaultfd or FUSE gives up for a signal).
fn copy_runs<R>(first: R, second: R, mut copy: impl FnMut(R) -> Result<usize>) -> Result<usize>
where
    R: core::ops::Deref<Target = [u8]>,
{
    let mut copied = 0;
    for run in [first, second] {
        let len = run.len();
        if len == 0 {
            break;
        }
        match copy(run) {
            Ok(n) => {
                copied += n;
                if n < len {
                    break;
                }
            }
            Err(e) if copied == 0 => {
                return Err(if kernel::task::signal_pending() {
                    ERESTARTSYS
                } else {
                    e
                })
            }
            Err(_) => break,
        }
    }
    Ok(copied)
}

kernel::module! {
    type: RustPipe,
    name: "chardev",
    author: "Rust driver examples",
    description: "rustpipe: a FIFO character device (/dev/rustpipe)",
    license: "GPL",
    params: {
        capacity: u32 = 65536, "FIFO capacity in bytes (1..=1048576; default 64 KiB, as a pipe)",
    },
}
