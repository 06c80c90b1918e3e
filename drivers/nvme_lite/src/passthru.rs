//! The admin queue, shared by the driver and nvme-cli's admin passthrough on `/dev/nvme-lite<N>`.
//!
//! The admin queue lives in an [`Admin`], behind a mutex: the driver's own admin commands
//! (Identify, Set Features, Create/Delete I/O SQ/CQ), the timeout handler's Abort and
//! controller reset (`reset.rs`) and user space's passthrough commands take turns on it, one
//! command at a time, as the polled queue requires. `Admin` is also the state of the
//! controller's misc device, `/dev/nvme-lite<N>` (the `<N>` of `nvme_lite<N>n1`), which takes
//! the ioctls of the C driver's controller node (`/dev/nvme0`, `<linux/nvme_ioctl.h>`):
//!
//! - `NVME_IOCTL_ADMIN_CMD` (`_IOWR('N', 0x41, struct nvme_passthru_cmd)`), what libnvme 1.3
//!   (Debian 12's nvme-cli) sends for `nvme id-ctrl` and `nvme smart-log`;
//! - `NVME_IOCTL_ADMIN64_CMD` (`_IOWR('N', 0x47, struct nvme_passthru_cmd64)`), the same with a
//!   64-bit result.
//!
//! Everything else is `ENOTTY`, as on the C node (`NVME_IOCTL_ID` is a namespace ioctl there
//! too; reset and rescan are not offered).
//!
//! # What user space may send, and why
//!
//! Like the C driver: `CAP_SYS_ADMIN` or `EACCES`; on a command the controller fails, the ioctl
//! returns the NVMe Status Field (a positive value, DNR and More bits included, phase bit not);
//! the completion's DW0 lands in `result` (0 when the command failed: our polled queue keeps
//! only the status then).
//!
//! Unlike the C driver, only three read-only opcodes pass (`EPERM` for every other one, valid
//! or not): **Identify** (0x06), **Get Log Page** (0x02) and **Get Features** (0x0a). They move
//! data from the controller to the host and change nothing the driver relies on. The others
//! would: Create/Delete I/O Queue and Abort act on queues and commands this driver owns (a
//! deleted queue under blk-mq is lost I/O), Set Features can change the number of queues or
//! interrupt coalescing behind our back, Format NVM, Sanitize, Namespace Management and
//! Firmware Commit change or remove the namespace under a mounted disk, Asynchronous Event
//! Requests would stay outstanding on a polled queue, and vendor commands are unknown.
//!
//! The command is checked before anything reaches the controller: `flags` (fused operations,
//! SGLs) must be 0 and metadata is unsupported (`EINVAL`); `data_len` may not exceed
//! [`MAX_DATA`] nor the controller's MDTS (`EINVAL`); a Get Log Page must fit its Number of
//! Dwords into `data_len` (`EINVAL`), so the controller never writes past the buffer it was
//! given. The user's buffer is checked writable first (`EFAULT`). Data moves through a
//! coherent bounce buffer of whole pages (an Identify page always fits), allocated per command
//! with `GFP_KERNEL` and freed before the ioctl returns, then through a kernel copy to user
//! memory, after the admin queue is released: no user copy (which may sleep on a page fault for
//! as long as user space likes) happens with the queue held. `timeout_ms` is ignored: the
//! driver's admin timeout (5 s) applies. A command that times out wedges the passthrough
//! (`EIO` afterwards): its buffer stays allocated until the controller is disabled (a controller
//! reset, after which passthrough works again) or shut down, since the controller may still
//! write into it.
//!
//! # Removal
//!
//! On unbind (rmmod, sysfs, surprise removal) `remove` first drops the [`Node`]: it shuts
//! user space out (a passthrough command in flight finishes first, bounded by the admin
//! timeout, never by user space; every later one fails with `ENODEV`), then deregisters the
//! node (no new opens). Once the driver's own last commands are done, [`Admin::revoke`] takes
//! the queue out of the mutex. Files still open keep the `Admin` alive but find it empty:
//! nothing of the device (registers, DMA memory) is reachable from them.

use crate::queue::{CommandError, QueuePair};
use crate::spec::{admin_opcode, Command};
use crate::{Bar0, ADMIN_TIMEOUT_MS};
use kernel::device::DeviceRef;
use kernel::dma::CoherentAllocation;
use kernel::ioctl::Iowr;
use kernel::prelude::*;
use kernel::uaccess::UserSlice;
use zerocopy::little_endian::U64;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The largest passthrough transfer: 64 KiB (16 pages, one PRP list), and never more than the
/// controller's MDTS. Identify pages and the usual logs (SMART 512 bytes, error log 4 KiB) fit
/// with room to spare.
pub const MAX_DATA: usize = 64 * 1024;

/// The memory page size (CC.MPS = 0).
const PAGE: usize = 4096;

/// `struct nvme_passthru_cmd` (`struct nvme_admin_cmd`), 72 bytes, host byte order.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PassthruCmd {
    pub opcode: u8,
    pub flags: u8,
    pub rsvd1: u16,
    pub nsid: u32,
    pub cdw2: u32,
    pub cdw3: u32,
    pub metadata: u64,
    pub addr: u64,
    pub metadata_len: u32,
    pub data_len: u32,
    pub cdw10: u32,
    pub cdw11: u32,
    pub cdw12: u32,
    pub cdw13: u32,
    pub cdw14: u32,
    pub cdw15: u32,
    pub timeout_ms: u32,
    pub result: u32,
}
const _: () = assert!(size_of::<PassthruCmd>() == 72);

/// `struct nvme_passthru_cmd64`, 80 bytes: the same up to `timeout_ms`, then a 64-bit result.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PassthruCmd64 {
    pub opcode: u8,
    pub flags: u8,
    pub rsvd1: u16,
    pub nsid: u32,
    pub cdw2: u32,
    pub cdw3: u32,
    pub metadata: u64,
    pub addr: u64,
    pub metadata_len: u32,
    pub data_len: u32,
    pub cdw10: u32,
    pub cdw11: u32,
    pub cdw12: u32,
    pub cdw13: u32,
    pub cdw14: u32,
    pub cdw15: u32,
    pub timeout_ms: u32,
    pub rsvd2: u32,
    pub result: u64,
}
const _: () = assert!(size_of::<PassthruCmd64>() == 80);

/// `NVME_IOCTL_ADMIN_CMD`.
type AdminCmd = Iowr<PassthruCmd, b'N', 0x41>;
/// `NVME_IOCTL_ADMIN64_CMD`.
type Admin64Cmd = Iowr<PassthruCmd64, b'N', 0x47>;

/// Get Log Page (figure 139; not used by the driver itself).
const GET_LOG_PAGE: u8 = 0x02;
/// Get Features.
const GET_FEATURES: u8 = 0x0a;

/// What a passthrough command asks for, whichever struct it came in.
struct Request {
    cmd: Command,
    addr: u64,
    data_len: u32,
    flags: u8,
    metadata: u64,
    metadata_len: u32,
}

macro_rules! request_from {
    ($c:expr) => {{
        let c = $c;
        let mut cmd = Command {
            opcode: c.opcode,
            ..Default::default()
        };
        cmd.nsid.set(c.nsid);
        cmd.cdw2.set(c.cdw2);
        cmd.cdw3.set(c.cdw3);
        cmd.cdw10.set(c.cdw10);
        cmd.cdw11.set(c.cdw11);
        cmd.cdw12.set(c.cdw12);
        cmd.cdw13.set(c.cdw13);
        cmd.cdw14.set(c.cdw14);
        cmd.cdw15.set(c.cdw15);
        Request {
            cmd,
            addr: c.addr,
            data_len: c.data_len,
            flags: c.flags,
            metadata: c.metadata,
            metadata_len: c.metadata_len,
        }
    }};
}

/// The admin queue while the controller is bound.
pub struct Live {
    /// The queue pair; only used with the [`Admin`] lock held.
    pub queue: QueuePair,
    bar: Arc<Bar0>,
    dev: DeviceRef,
    /// The largest passthrough transfer (min of [`MAX_DATA`] and MDTS).
    max_data: usize,
    /// User space is shut out (the node is going): passthrough fails with `ENODEV`.
    closed: bool,
    /// The buffer of a passthrough command that timed out: the controller may still write it,
    /// so it is kept until the controller is disabled (reset) or shut down; no passthrough
    /// runs meanwhile.
    stuck: Option<Bounce>,
}

impl Live {
    /// The controller was disabled (CC.EN = 0, CSTS.RDY = 0: a reset): it owns no admin command
    /// and no buffer any more. Forgets the queue's state, and a stuck passthrough command's
    /// buffer (passthrough works again once the controller is enabled).
    pub fn disabled(&mut self) {
        self.queue.reset_state();
        self.stuck = None;
    }
}

/// The controller's admin queue from probe to removal, and the state of `/dev/nvme-lite<N>`.
///
/// The one way to the admin queue: probe's commands, the timeout handler's Abort and controller
/// reset (`reset.rs`), remove's and user space's passthrough all take its lock, one command at
/// a time, as the polled queue requires. Nobody holding it waits for anything but the
/// controller, and every such wait is bounded (an admin command by [`ADMIN_TIMEOUT_MS`], a
/// reset's enable/disable by CAP.TO): a passthrough command blocks an Abort or a reset for at
/// most one admin timeout, and never waits for one itself while holding the lock.
pub struct Admin {
    live: Mutex<Option<Live>>,
}

/// What [`Admin::revoke`] hands back: to be dropped once the controller is shut down (the
/// queue memory and a stuck passthrough buffer).
pub struct Revoked {
    _queue: QueuePair,
    _stuck: Option<Bounce>,
}

impl Admin {
    /// The admin queue `queue` of the controller behind `bar`, before it is enabled.
    pub fn new(queue: QueuePair, bar: Arc<Bar0>, dev: DeviceRef, flags: Gfp) -> Result<Arc<Admin>> {
        let live = Live {
            queue,
            bar,
            dev,
            max_data: MAX_DATA,
            closed: false,
            stuck: None,
        };
        Arc::new(
            Admin {
                live: new_mutex!(Some(live), "nvme_lite.admin", flags)?,
            },
            flags,
        )
    }

    /// Records the controller's MDTS in bytes (0: no limit) for passthrough.
    pub fn set_mdts(&self, mdts_bytes: u64) {
        if let Some(live) = self.live.lock().as_mut() {
            live.max_data = match usize::try_from(mdts_bytes) {
                Ok(0) | Err(_) => MAX_DATA,
                Ok(m) => m.min(MAX_DATA),
            };
        }
    }

    /// Runs `f` with the admin queue to itself (`ENODEV` once revoked). Process context; `f`
    /// may wait for the controller, bounded.
    pub fn with<R>(&self, f: impl FnOnce(&mut Live) -> Result<R>) -> Result<R> {
        let mut live = self.live.lock();
        f(live.as_mut().ok_or(ENODEV)?)
    }

    /// Runs one of the driver's own admin commands (`ENODEV` once revoked).
    pub fn execute(
        &self,
        cmd: Command,
        timeout_ms: u64,
    ) -> core::result::Result<u32, CommandError> {
        let mut live = self.live.lock();
        let live = live.as_mut().ok_or(CommandError::Other(ENODEV))?;
        live.queue.execute_polled(&live.bar, cmd, timeout_ms)
    }

    /// Takes the admin queue away (waiting for a command in flight): from now on every
    /// command fails with `ENODEV`. Drop the result after the controller is shut down.
    pub fn revoke(&self) -> Option<Revoked> {
        self.live.lock().take().map(|l| Revoked {
            _queue: l.queue,
            _stuck: l.stuck,
        })
    }

    /// Checks, runs and copies back one passthrough command; returns the NVMe status (0:
    /// success) and the completion's DW0.
    fn passthru(&self, req: &Request) -> Result<(u16, u32)> {
        if req.flags != 0 || req.metadata != 0 || req.metadata_len != 0 {
            return Err(EINVAL);
        }
        let opcode = req.cmd.opcode;
        if !matches!(opcode, admin_opcode::IDENTIFY | GET_LOG_PAGE | GET_FEATURES) {
            return Err(EPERM);
        }
        let len = req.data_len as usize;
        if opcode == GET_LOG_PAGE {
            // Number of Dwords, zero-based: NUMDL in CDW10 31:16, NUMDU in CDW11 15:0.
            let numd = ((req.cmd.cdw11.get() & 0xffff) << 16 | req.cmd.cdw10.get() >> 16) as usize;
            if (numd + 1) * 4 > len {
                return Err(EINVAL);
            }
        }
        if len > MAX_DATA {
            return Err(EINVAL);
        }
        // The user's buffer, checked writable before the controller is asked anything.
        let mut data = KVVec::from_elem(0u8, len, Gfp::KERNEL)?;
        UserSlice::new(req.addr as usize, len)
            .writer()
            .write_slice(&data)?;

        let (status, result) = {
            let mut live = self.live.lock_interruptible()?;
            let live = live.as_mut().ok_or(ENODEV)?;
            if live.closed {
                return Err(ENODEV);
            }
            if live.stuck.is_some() {
                return Err(EIO);
            }
            if len > live.max_data {
                return Err(EINVAL);
            }
            let bounce = Bounce::new(&live.dev, len)?;
            let mut cmd = req.cmd;
            bounce.set_prps(&mut cmd);
            match live.queue.execute_polled(&live.bar, cmd, ADMIN_TIMEOUT_MS) {
                Ok(result) => {
                    bounce.data.read_into(0, &mut data)?;
                    (0, result)
                }
                Err(CommandError::Status(s)) => (s, 0),
                Err(CommandError::Timeout) => {
                    pr_err!(
                        "{}: passthrough command (opcode {opcode:#04x}) timed out; no more passthrough until a reset\n",
                        live.dev.name()
                    );
                    live.stuck = Some(bounce);
                    return Err(EIO);
                }
                Err(CommandError::Other(e)) => return Err(e),
            }
            // The bounce buffer is freed here, with the queue still held.
        };
        if status == 0 {
            UserSlice::new(req.addr as usize, len)
                .writer()
                .write_slice(&data)?;
        }
        Ok((status, result))
    }
}

/// A passthrough command's data: whole pages of coherent memory, and a PRP list page beyond
/// two pages.
struct Bounce {
    data: CoherentAllocation<u8>,
    list: Option<CoherentAllocation<U64>>,
}

impl Bounce {
    /// At least one page (an Identify page always fits), up to [`MAX_DATA`].
    fn new(dev: &DeviceRef, len: usize) -> Result<Bounce> {
        let pages = len.div_ceil(PAGE).max(1);
        let data = CoherentAllocation::<u8>::alloc(dev, pages * PAGE, Gfp::KERNEL)?;
        let list = if pages > 2 {
            let list = CoherentAllocation::<U64>::alloc(dev, PAGE / 8, Gfp::KERNEL)?;
            for i in 1..pages {
                list.try_write(i - 1, &U64::new(data.dma_handle_of(i * PAGE)?))?;
            }
            Some(list)
        } else {
            None
        };
        Ok(Bounce { data, list })
    }

    /// PRP1: the first page (page-aligned); PRP2: the second page, or the list of the others.
    fn set_prps(&self, cmd: &mut Command) {
        cmd.prp1.set(self.data.dma_handle());
        if let Some(list) = &self.list {
            cmd.prp2.set(list.dma_handle());
        } else if self.data.count() > PAGE {
            cmd.prp2.set(self.data.dma_handle() + PAGE as u64);
        }
    }
}

impl MiscDevice for Admin {
    type OpenFile = ();

    fn open(&self, _file: &File) -> Result<()> {
        Ok(())
    }

    fn ioctl(&self, _open: &(), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            AdminCmd::CMD => {
                if !kernel::task::capable_sys_admin() {
                    return Err(EACCES);
                }
                let c = AdminCmd::read(arg)?;
                let (status, result) = self.passthru(&request_from!(&c))?;
                write_result(arg + core::mem::offset_of!(PassthruCmd, result), result)?;
                Ok(status as isize) // 15 bits: the Status Field
            }
            Admin64Cmd::CMD => {
                if !kernel::task::capable_sys_admin() {
                    return Err(EACCES);
                }
                let c = Admin64Cmd::read(arg)?;
                let (status, result) = self.passthru(&request_from!(&c))?;
                write_result(
                    arg + core::mem::offset_of!(PassthruCmd64, result),
                    u64::from(result),
                )?;
                Ok(status as isize) // 15 bits: the Status Field
            }
            _ => Err(ENOTTY),
        }
    }
}

/// Writes the `result` field back, as the C driver's `put_user` does.
fn write_result<T: IntoBytes + Immutable>(addr: usize, value: T) -> Result {
    UserSlice::new(addr, size_of::<T>()).writer().write(&value)
}

/// `/dev/nvme-lite<N>` while it exists. Dropping it shuts user space out of the admin queue
/// (waiting for a passthrough command in flight), then removes the node: once the node is
/// gone, no passthrough command runs or will run.
pub struct Node {
    reg: Option<miscdev::Registration<Admin>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take() {
            if let Some(live) = reg.device().live.lock().as_mut() {
                live.closed = true;
            }
            drop(reg);
        }
    }
}

/// Registers `/dev/nvme-lite<instance>` for `admin`.
pub fn register(admin: &Arc<Admin>, instance: u32) -> Result<Node> {
    let reg = miscdev::Registration::register_fmt(
        format_args!("nvme-lite{instance}"),
        admin.clone(),
        Gfp::KERNEL,
    )?;
    Ok(Node { reg: Some(reg) })
}
