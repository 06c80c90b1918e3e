//! `rustpipe`: a FIFO character device in the spirit of LDD3's scull pipe.
//!
//! `/dev/rustpipe` is one bounded byte FIFO shared by every process that opens it. `read()`
//! blocks while it is empty, `write()` while it is full (`O_NONBLOCK`: `EAGAIN`); waits are
//! interruptible, so a signal ends them with `EINTR` (or restarts them, per `SA_RESTART`).
//! `poll()`/`select()` report readiness. ioctls (see [`uapi`]) get and set the capacity, clear
//! the FIFO and read statistics. Seeking fails with `ESPIPE`.
//!
//! Reading top to bottom: the shared state, module load, the file operations, unload.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod fifo;
pub mod uapi;

use fifo::Fifo;
use kernel::miscdev::Registration;
use kernel::prelude::*;
use kernel::uaccess::UserSlice;

/// What the FIFO lock protects.
struct State {
    fifo: Fifo,
    bytes_read: u64,
    bytes_written: u64,
    open_files: u32,
}

/// The device: the state and the two wait queues readers and writers sleep on.
struct Pipe {
    state: Mutex<State>,
    /// Woken when bytes are added.
    readable: CondVar,
    /// Woken when room is made.
    writable: CondVar,
}

/// The loaded module: dropping it removes `/dev/rustpipe`.
struct RustPipe {
    _device: Registration<Pipe>,
}

impl Module for RustPipe {
    fn init(module: &'static ThisModule) -> Result<Self> {
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
            open_files: 0,
        };
        let pipe = Pipe {
            state: new_mutex!(state, "rustpipe.state")?,
            readable: new_condvar!("rustpipe.readable")?,
            writable: new_condvar!("rustpipe.writable")?,
        };
        let device = Registration::register(c"rustpipe", pipe, module)?;
        pr_info!("/dev/rustpipe ready, capacity {capacity} bytes");
        Ok(RustPipe { _device: device })
    }
}

impl MiscDevice for Pipe {
    type OpenFile = ();

    fn open(&self, _file: &File) -> Result {
        self.state.lock().open_files += 1;
        Ok(())
    }

    fn release(&self, _open: (), _file: &File) {
        self.state.lock().open_files -= 1;
    }

    fn read(&self, _open: &(), file: &File, out: &mut UserSliceWriter) -> Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut state = self.state.lock();
        while state.fifo.is_empty() {
            if file.is_nonblocking() {
                return Err(EAGAIN);
            }
            self.readable.wait(&mut state)?;
        }
        // Copy straight from the ring to user memory; only what reached the user is consumed,
        // so a bad buffer loses nothing. (Copies may fault and sleep: fine under a mutex.)
        let (first, second) = state.fifo.peek(out.len());
        let mut copied = 0;
        for run in [first, second] {
            if out.write_slice(run).is_err() {
                break;
            }
            copied += run.len();
        }
        if copied == 0 {
            return Err(EFAULT);
        }
        state.fifo.consume(copied);
        state.bytes_read += copied as u64;
        drop(state);
        self.writable.notify_all();
        Ok(copied)
    }

    fn write(&self, _open: &(), file: &File, input: &mut UserSliceReader) -> Result<usize> {
        if input.is_empty() {
            return Ok(0);
        }
        let mut state = self.state.lock();
        while state.fifo.is_full() {
            if file.is_nonblocking() {
                return Err(EAGAIN);
            }
            self.writable.wait(&mut state)?;
        }
        // Copy straight into the free part of the ring; commit only what was copied.
        let (first, second) = state.fifo.space(input.len());
        let mut copied = 0;
        for run in [first, second] {
            if input.read_slice(run).is_err() {
                break;
            }
            copied += run.len();
        }
        if copied == 0 {
            return Err(EFAULT);
        }
        state.fifo.commit(copied);
        state.bytes_written += copied as u64;
        drop(state);
        self.readable.notify_all();
        Ok(copied)
    }

    fn poll(&self, _open: &(), file: &File, table: &PollTable) -> PollFlags {
        self.readable.poll_wait(file, table);
        self.writable.poll_wait(file, table);
        let state = self.state.lock();
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
        match cmd {
            uapi::GET_CAPACITY => {
                let capacity = self.state.lock().fifo.capacity() as u32;
                UserSlice::new(arg, 4).writer().write(&capacity)?;
            }
            uapi::SET_CAPACITY => {
                let capacity: u32 = UserSlice::new(arg, 4).reader().read()?;
                if capacity == 0 || capacity > uapi::MAX_CAPACITY {
                    return Err(EINVAL);
                }
                self.state.lock().fifo.resize(capacity as usize)?;
                self.writable.notify_all();
            }
            uapi::CLEAR => {
                self.state.lock().fifo.clear();
                self.writable.notify_all();
            }
            uapi::GET_STATS => {
                let stats = {
                    let state = self.state.lock();
                    uapi::Stats {
                        bytes_read: state.bytes_read,
                        bytes_written: state.bytes_written,
                        len: state.fifo.len() as u32,
                        capacity: state.fifo.capacity() as u32,
                        open_files: state.open_files,
                        reserved: 0,
                        live_allocations: kernel::alloc::live_allocations() as u64,
                    }
                };
                UserSlice::new(arg, core::mem::size_of::<uapi::Stats>())
                    .writer()
                    .write(&stats)?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

kernel::module! {
    type: RustPipe,
    name: "chardev",
    author: "Rust driver examples",
    description: "rustpipe: a FIFO character device (/dev/rustpipe)",
    license: "GPL",
    params: {
        capacity: u32 = 4096, "FIFO capacity in bytes (1..=1048576)",
    },
}
