//! `lifetime=1`: two misc devices for the guest's `lifetime` suite, which checks that teardown
//! never waits for user space.
//!
//! * `/dev/rust_selftest_victim`: a small byte store (write appends, read takes from the front)
//!   whose state counts itself alive and freed, with a [`PollCondVar`] that `poll`/`epoll`
//!   register with and that an ioctl on the victim file drops.
//! * `/dev/rust_selftest_ctl`: ioctls that register and deregister the victim while user space
//!   may hold it open, and report the counters.
//!
//! The suite opens the victim, deregisters it through the control device (which must return at
//! once), keeps using the open file, and checks that closing it frees the state.

use kernel::ioctl::{Io, Ior};
use kernel::miscdev::Registration;
use kernel::prelude::*;
use kernel::sync::atomic::{AtomicU32, Ordering};
use kernel::zerocopy::{Immutable, IntoBytes};

/// The ioctl type letter of both devices.
pub const MAGIC: u8 = b'S';
/// `_IO('S', 1)` on the control device: register the victim (`EBUSY` if it is).
pub type CtlRegisterVictim = Io<MAGIC, 1>;
/// `_IO('S', 2)` on the control device: deregister the victim (`ENOENT` if it is not).
pub type CtlDeregisterVictim = Io<MAGIC, 2>;
/// `_IOR('S', 3, struct status)` on the control device.
pub type CtlStatus = Ior<Status, MAGIC, 3>;
/// `_IO('S', 0x10)` on a victim file: drop the victim's poll queue (`ENOENT` if it is gone).
pub type VictimDropPollQueue = Io<MAGIC, 0x10>;

/// What `CTL_STATUS` returns.
#[derive(Clone, Copy, Default, IntoBytes, Immutable)]
#[zerocopy(crate = "kernel::zerocopy")]
#[repr(C)]
pub struct Status {
    /// 1 while `/dev/rust_selftest_victim` is registered.
    pub registered: u32,
    /// Victim states created and not yet freed.
    pub victims_alive: u32,
    /// Victim states freed since the module was loaded.
    pub victims_freed: u32,
    /// Always 0.
    pub reserved: u32,
    /// The module's live heap blocks.
    pub live_allocations: u64,
}

static VICTIMS_ALIVE: AtomicU32 = AtomicU32::new(0);
static VICTIMS_FREED: AtomicU32 = AtomicU32::new(0);

/// The victim's state: shared by the registration and every open file.
struct Victim {
    data: Mutex<KVec<u8>>,
    /// `None` once `VICTIM_DROP_POLL_QUEUE` dropped it (pollers must have been detached).
    queue: Mutex<Option<PollCondVar>>,
}

impl Victim {
    fn new() -> Result<Arc<Self>> {
        let victim = Victim {
            data: new_mutex!(KVec::new(), "selftest.victim.data", Gfp::KERNEL)?,
            queue: new_mutex!(
                Some(new_poll_condvar!("selftest.victim.queue", Gfp::KERNEL)?),
                "selftest.victim.queue_lock",
                Gfp::KERNEL
            )?,
        };
        VICTIMS_ALIVE.fetch_add(1, Ordering::Relaxed);
        Arc::new(victim, Gfp::KERNEL)
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        VICTIMS_ALIVE.fetch_sub(1, Ordering::Relaxed);
        VICTIMS_FREED.fetch_add(1, Ordering::Relaxed);
    }
}

impl MiscDevice for Victim {
    type OpenFile = ();

    fn open(&self, _file: &File) -> Result {
        Ok(())
    }

    fn read(
        &self,
        _open: &(),
        _file: &File,
        out: &mut UserSliceWriter,
        _pos: &mut i64,
    ) -> Result<usize> {
        let mut data = self.data.lock_interruptible()?;
        let n = out.len().min(data.len());
        let copied = if n == 0 {
            0
        } else {
            out.write_some(&data[..n])?
        };
        let len = data.len();
        data.copy_within(copied.., 0);
        data.truncate(len - copied);
        Ok(copied)
    }

    fn write(
        &self,
        _open: &(),
        _file: &File,
        input: &mut UserSliceReader,
        _pos: &mut i64,
    ) -> Result<usize> {
        let mut chunk = [0u8; 256];
        let n = input.len().min(chunk.len());
        let n = if n == 0 {
            0
        } else {
            input.read_some(&mut chunk[..n])?
        };
        self.data
            .lock_interruptible()?
            .extend_from_slice(&chunk[..n], Gfp::KERNEL)?;
        if let Some(queue) = &*self.queue.lock_interruptible()? {
            queue.notify_all();
        }
        Ok(n)
    }

    fn poll(&self, _open: &(), file: &File, table: &PollTable) -> PollFlags {
        if let Some(queue) = &*self.queue.lock() {
            queue.poll_wait(file, table);
        }
        let mut ready = PollFlags::OUT | PollFlags::WRNORM;
        if !self.data.lock().is_empty() {
            ready |= PollFlags::IN | PollFlags::RDNORM;
        }
        ready
    }

    fn ioctl(&self, _open: &(), _file: &File, cmd: u32, _arg: usize) -> Result<isize> {
        match cmd {
            VictimDropPollQueue::CMD => {
                // Dropping the queue detaches every epoll entry on it first (PollCondVar).
                let queue = self.queue.lock_interruptible()?.take().ok_or(ENOENT)?;
                drop(queue);
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// The control device: owns the victim's registration.
struct Ctl {
    victim: Mutex<Option<Registration<Victim>>>,
}

impl MiscDevice for Ctl {
    type OpenFile = ();

    fn open(&self, _file: &File) -> Result {
        Ok(())
    }

    fn ioctl(&self, _open: &(), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            CtlRegisterVictim::CMD => {
                let mut victim = self.victim.lock_interruptible()?;
                if victim.is_some() {
                    return Err(EBUSY);
                }
                *victim = Some(register_victim()?);
            }
            CtlDeregisterVictim::CMD => {
                let registration = self.victim.lock_interruptible()?.take().ok_or(ENOENT)?;
                // Removes the device node and returns, whatever files are still open.
                drop(registration);
            }
            CtlStatus::CMD => {
                let status = Status {
                    registered: self.victim.lock_interruptible()?.is_some() as u32,
                    victims_alive: VICTIMS_ALIVE.load(Ordering::Relaxed),
                    victims_freed: VICTIMS_FREED.load(Ordering::Relaxed),
                    reserved: 0,
                    live_allocations: kernel::alloc::live_allocations() as u64,
                };
                CtlStatus::write(arg, &status)?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

fn register_victim() -> Result<Registration<Victim>> {
    Registration::register(c"rust_selftest_victim", Victim::new()?, Gfp::KERNEL)
}

/// The two registrations, for as long as the module is loaded.
pub struct Devices {
    _ctl: Registration<Ctl>,
}

impl Devices {
    /// Registers the control device and, through it, the victim.
    pub fn register() -> Result<Self> {
        let ctl = Ctl {
            victim: new_mutex!(Some(register_victim()?), "selftest.ctl.victim", Gfp::KERNEL)?,
        };
        let ctl = Registration::register(
            c"rust_selftest_ctl",
            Arc::new(ctl, Gfp::KERNEL)?,
            Gfp::KERNEL,
        )?;
        pr_info!("lifetime=1: /dev/rust_selftest_ctl and /dev/rust_selftest_victim ready");
        Ok(Self { _ctl: ctl })
    }
}
