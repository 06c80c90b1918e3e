//! `/dev/nvme-lite0`: the admin passthrough nvme-cli uses (`NVME_IOCTL_ADMIN_CMD` and
//! `NVME_IOCTL_ADMIN64_CMD` of `<linux/nvme_ioctl.h>`), driven with raw ioctls: what the
//! controller returns, what the driver refuses, and the node's lifetime across unbind and
//! rmmod.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::time::Duration;

use super::{run_tool, DISK, DRIVER, SIZE};
use crate::devtest;
use crate::harness::{ensure, ensure_eq, expect_errno, Context, Ctx, Process, TestResult};
use crate::kmsg::Kmsg;
use crate::sys::{self, BadAddress, Errno, RawCall};
use crate::uapi::{ioc, IOC_READ, IOC_WRITE};

/// The admin node of controller 0, the one `nvme_lite` binds (controller 1 is the C driver's:
/// `driver_override`), instance 0 as its disk `nvme_lite0n1`.
pub const NODE: &str = "/dev/nvme-lite0";

/// `NVME_IOCTL_ADMIN_CMD`: `_IOWR('N', 0x41, struct nvme_passthru_cmd)` (72 bytes).
pub const ADMIN_CMD: u32 = ioc(IOC_READ | IOC_WRITE, b'N', 0x41, 72);
/// `NVME_IOCTL_ADMIN64_CMD`: `_IOWR('N', 0x47, struct nvme_passthru_cmd64)` (80 bytes).
pub const ADMIN64_CMD: u32 = ioc(IOC_READ | IOC_WRITE, b'N', 0x47, 80);

/// The driver's documented limit on `data_len` (`MAX_DATA` in `src/passthru.rs`).
const MAX_DATA: u32 = 64 * 1024;

/// Admin opcodes.
const IDENTIFY: u8 = 0x06;
const GET_LOG_PAGE: u8 = 0x02;
const GET_FEATURES: u8 = 0x0a;

/// A passthrough command (the fields both structs share), encoded into the 72- or 80-byte
/// argument in host byte order.
#[derive(Clone, Copy, Default)]
pub struct Cmd {
    pub opcode: u8,
    pub flags: u8,
    pub nsid: u32,
    pub metadata: u64,
    pub addr: u64,
    pub metadata_len: u32,
    pub data_len: u32,
    pub cdw10: u32,
    pub cdw11: u32,
}

impl Cmd {
    fn encode<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        b[0] = self.opcode;
        b[1] = self.flags;
        b[4..8].copy_from_slice(&self.nsid.to_ne_bytes());
        b[16..24].copy_from_slice(&self.metadata.to_ne_bytes());
        b[24..32].copy_from_slice(&self.addr.to_ne_bytes());
        b[32..36].copy_from_slice(&self.metadata_len.to_ne_bytes());
        b[36..40].copy_from_slice(&self.data_len.to_ne_bytes());
        b[40..44].copy_from_slice(&self.cdw10.to_ne_bytes());
        b[44..48].copy_from_slice(&self.cdw11.to_ne_bytes());
        b
    }
}

/// Where `result` sits: after `timeout_ms` in the 72-byte struct, after `rsvd2` in the 80-byte.
const RESULT32: usize = 68;
const RESULT64: usize = 72;

/// `NVME_IOCTL_ADMIN_CMD` with `cmd` as it is (its `addr` and `data_len` untouched): the
/// ioctl's return value (the NVMe status, 0 for success) and `result`.
fn admin_raw(file: &File, cmd: &Cmd) -> sys::SysResult<(i32, u32)> {
    let mut arg: [u8; 72] = cmd.encode();
    let ret = sys::ioctl_with(file.as_fd(), ADMIN_CMD, &mut arg)?;
    Ok((ret, u32::from_ne_bytes(arg[RESULT32..].try_into().unwrap())))
}

/// `NVME_IOCTL_ADMIN_CMD` with `data` as the buffer (`addr`/`data_len` set to it).
fn admin(file: &File, cmd: &Cmd, data: &mut [u8]) -> sys::SysResult<(i32, u32)> {
    let mut arg: [u8; 72] = cmd.encode();
    let ret = sys::ioctl_with_buffer(file.as_fd(), ADMIN_CMD, &mut arg, data, |a, addr, len| {
        a[24..32].copy_from_slice(&addr.to_ne_bytes());
        a[36..40].copy_from_slice(&len.to_ne_bytes());
    })?;
    Ok((ret, u32::from_ne_bytes(arg[RESULT32..].try_into().unwrap())))
}

/// `NVME_IOCTL_ADMIN64_CMD` with `data` as the buffer.
fn admin64(file: &File, cmd: &Cmd, data: &mut [u8]) -> sys::SysResult<(i32, u64)> {
    let mut arg: [u8; 80] = cmd.encode();
    let ret = sys::ioctl_with_buffer(file.as_fd(), ADMIN64_CMD, &mut arg, data, |a, addr, len| {
        a[24..32].copy_from_slice(&addr.to_ne_bytes());
        a[36..40].copy_from_slice(&len.to_ne_bytes());
    })?;
    Ok((ret, u64::from_ne_bytes(arg[RESULT64..].try_into().unwrap())))
}

fn open_node(path: &str) -> TestResult<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .context(format!("open({path})"))
}

fn identify_ctrl() -> Cmd {
    Cmd {
        opcode: IDENTIFY,
        cdw10: 1, // CNS 01h: Identify Controller
        ..Default::default()
    }
}

/// An ASCII Identify field without its padding.
fn ascii(field: &[u8]) -> String {
    String::from_utf8_lossy(field)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

/// The node is a character device of the misc major (10), created with the disk.
pub fn node_is_a_misc_device(_: &Ctx) -> TestResult {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(NODE).context(format!("stat {NODE}"))?;
    ensure!(
        meta.file_type().is_char_device(),
        "{NODE} is not a character device"
    );
    let misc = std::fs::read_to_string("/proc/misc").context("read /proc/misc")?;
    ensure!(
        misc.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("nvme-lite0")),
        "/proc/misc does not list nvme-lite0:\n{misc}"
    );
    Ok(())
}

/// Identify Controller through `NVME_IOCTL_ADMIN_CMD` returns status 0 and the page QEMU
/// was configured with (`-device nvme,serial=rustnvme0`: PCI vendor 1b36, model "QEMU NVMe
/// Ctrl"); `NVME_IOCTL_ADMIN64_CMD` returns the same page; a 512-byte buffer gets the first
/// 512 bytes (the controller always writes a whole page: into the driver's bounce buffer).
/// Identify Namespace 1 says what the disk's size in sysfs says.
pub fn identify_via_admin_cmd(_: &Ctx) -> TestResult {
    let f = open_node(NODE)?;
    let mut page = vec![0u8; 4096];
    let (status, _) = admin(&f, &identify_ctrl(), &mut page).context("ADMIN_CMD Identify")?;
    ensure_eq!(status, 0, "Identify Controller status");
    ensure_eq!(u16::from_le_bytes([page[0], page[1]]), 0x1b36, "VID");
    ensure_eq!(ascii(&page[4..24]), "rustnvme0", "serial number");
    ensure_eq!(ascii(&page[24..64]), "QEMU NVMe Ctrl", "model number");
    ensure!(page[516..520] != [0; 4], "Identify Controller: NN is 0");

    let mut page64 = vec![0u8; 4096];
    let (status, _) = admin64(&f, &identify_ctrl(), &mut page64).context("ADMIN64_CMD Identify")?;
    ensure_eq!(status, 0, "Identify Controller status (64)");
    ensure!(page64 == page, "ADMIN64_CMD returned another Identify page");

    let mut short = vec![0xeeu8; 512];
    let (status, _) = admin(&f, &identify_ctrl(), &mut short).context("Identify, 512 bytes")?;
    ensure_eq!(status, 0, "Identify into 512 bytes: status");
    ensure!(
        short[..] == page[..512],
        "512-byte Identify differs from the page's start"
    );

    let mut ns = vec![0u8; 4096];
    let cmd = Cmd {
        opcode: IDENTIFY,
        nsid: 1,
        cdw10: 0, // CNS 00h: Identify Namespace
        ..Default::default()
    };
    let (status, _) = admin(&f, &cmd, &mut ns).context("Identify Namespace")?;
    ensure_eq!(status, 0, "Identify Namespace status");
    let nsze = u64::from_le_bytes(ns[0..8].try_into().unwrap());
    let sectors: u64 = std::fs::read_to_string("/sys/block/nvme_lite0n1/size")
        .context("read size")?
        .trim()
        .parse()
        .context("parse size")?;
    let lbads = ns[128 + 4 * (ns[26] & 0xf) as usize + 2];
    ensure_eq!(
        nsze << lbads >> 9,
        sectors,
        "NSZE (in 512-byte sectors) vs sysfs size"
    );
    ensure_eq!(sectors << 9, SIZE, "disk size");
    Ok(())
}

/// The SMART / Health log (Get Log Page 02h, all namespaces, 512 bytes) is the controller's:
/// the composite temperature is plausible (kelvin), and the read commands the suite has sent
/// so far are counted. Get Features (Number of Queues) answers in `result`, both widths.
pub fn get_log_page_and_features(_: &Ctx) -> TestResult {
    let f = open_node(NODE)?;
    let mut log = vec![0u8; 512];
    let smart = Cmd {
        opcode: GET_LOG_PAGE,
        nsid: 0xffff_ffff,
        cdw10: (127 << 16) | 0x02, // NUMDL: 128 dwords (zero-based), LID 02h
        ..Default::default()
    };
    let (status, _) = admin(&f, &smart, &mut log).context("Get Log Page (SMART)")?;
    ensure_eq!(status, 0, "SMART log status");
    let kelvin = u16::from_le_bytes([log[1], log[2]]);
    ensure!(
        (273..373).contains(&kelvin),
        "composite temperature {kelvin} K"
    );
    let host_reads = u64::from_le_bytes(log[64..72].try_into().unwrap());
    ensure!(host_reads > 0, "SMART log: 0 host read commands");

    let queues = Cmd {
        opcode: GET_FEATURES,
        cdw10: 0x07, // FID 07h: Number of Queues, current value
        ..Default::default()
    };
    let (status, result) = admin(&f, &queues, &mut []).context("Get Features (queues)")?;
    ensure_eq!(status, 0, "Get Features status");
    ensure!(result != 0, "Number of Queues: result 0 (no I/O queue?)");
    let (status, result64) = admin64(&f, &queues, &mut []).context("Get Features (64)")?;
    ensure_eq!(status, 0, "Get Features status (64)");
    ensure_eq!(result64, u64::from(result), "64-bit result");
    Ok(())
}

/// A command the controller fails returns its NVMe status as a positive value, not an errno:
/// Identify with a reserved CNS and Get Log Page of a log QEMU does not have both return
/// Invalid Field in Command with Do Not Retry (0x4002), as the C driver would pass it on.
pub fn controller_errors_are_positive_status(_: &Ctx) -> TestResult {
    let f = open_node(NODE)?;
    let mut page = vec![0u8; 4096];
    let bad_cns = Cmd {
        cdw10: 0xff,
        ..identify_ctrl()
    };
    let (status, _) = admin(&f, &bad_cns, &mut page).context("Identify CNS ffh")?;
    ensure_eq!(status, 0x4002, "Identify CNS ffh: status");
    let bad_log = Cmd {
        opcode: GET_LOG_PAGE,
        nsid: 0xffff_ffff,
        cdw10: (127 << 16) | 0xbf,
        ..Default::default()
    };
    let (status, _) = admin(&f, &bad_log, &mut page[..512]).context("Get Log Page bfh")?;
    ensure_eq!(status, 0x4002, "Get Log Page bfh: status");
    // The queue still works.
    let (status, _) = admin(&f, &identify_ctrl(), &mut page).context("Identify after")?;
    ensure_eq!(status, 0, "Identify after the failures");
    Ok(())
}

/// Malformed or refused commands get an errno and never reach the controller: opcodes that
/// would change the driver's queues, the namespace or the controller (`EPERM`), flags,
/// metadata, a data length over the limit or too short for the log asked for (`EINVAL`), a
/// NULL, near-NULL or unmapped data buffer or argument (`EFAULT`), unknown ioctls
/// (`ENOTTY`, `NVME_IOCTL_ID` included, as on the C driver's controller node). The queue
/// still answers afterwards.
pub fn rejects_bad_commands(_: &Ctx) -> TestResult {
    let f = open_node(NODE)?;
    let mut page = vec![0u8; 4096];
    for (opcode, what) in [
        (0x00, "Delete I/O SQ"),
        (0x01, "Create I/O SQ"),
        (0x04, "Delete I/O CQ"),
        (0x05, "Create I/O CQ"),
        (0x08, "Abort"),
        (0x09, "Set Features"),
        (0x0c, "Asynchronous Event Request"),
        (0x10, "Firmware Commit"),
        (0x80, "Format NVM"),
        (0x84, "Sanitize"),
        (0xc0, "vendor specific"),
    ] {
        let cmd = Cmd {
            opcode,
            cdw10: 1,
            ..Default::default()
        };
        expect_errno(admin(&f, &cmd, &mut page), Errno(libc::EPERM), what)?;
    }
    let cases: [(Cmd, &str); 4] = [
        (
            Cmd {
                flags: 1,
                ..identify_ctrl()
            },
            "flags 1 (fused)",
        ),
        (
            Cmd {
                flags: 0x40,
                ..identify_ctrl()
            },
            "flags 40h (SGL)",
        ),
        (
            Cmd {
                metadata_len: 8,
                ..identify_ctrl()
            },
            "metadata_len 8",
        ),
        (
            Cmd {
                metadata: 0x1000,
                ..identify_ctrl()
            },
            "metadata pointer",
        ),
    ];
    for (cmd, what) in cases {
        expect_errno(admin(&f, &cmd, &mut page), Errno::EINVAL, what)?;
    }
    let mut big = vec![0u8; MAX_DATA as usize + 4096];
    expect_errno(
        admin(&f, &identify_ctrl(), &mut big),
        Errno::EINVAL,
        "data_len 68 KiB",
    )?;
    let huge = Cmd {
        addr: page.as_ptr() as u64,
        data_len: u32::MAX,
        ..identify_ctrl()
    };
    expect_errno(admin_raw(&f, &huge), Errno::EINVAL, "data_len 4 GiB - 1")?;
    let log_too_long = Cmd {
        opcode: GET_LOG_PAGE,
        nsid: 0xffff_ffff,
        cdw10: (1023 << 16) | 0x02, // 4 KiB of log
        ..Default::default()
    };
    expect_errno(
        admin(&f, &log_too_long, &mut page[..512]),
        Errno::EINVAL,
        "Get Log Page of 4 KiB into 512 bytes",
    )?;
    for (addr, what) in [(0u64, "NULL data buffer"), (1, "data buffer at 0x1")] {
        let cmd = Cmd {
            addr,
            data_len: 4096,
            ..identify_ctrl()
        };
        expect_errno(admin_raw(&f, &cmd), Errno::EFAULT, what)?;
    }
    let unmapped = {
        let pages = crate::mem::Pages::new(1).context("mmap")?;
        pages.at(0) as u64
    };
    let cmd = Cmd {
        addr: unmapped,
        data_len: 4096,
        ..identify_ctrl()
    };
    expect_errno(admin_raw(&f, &cmd), Errno::EFAULT, "unmapped data buffer")?;
    for cmd in [ADMIN_CMD, ADMIN64_CMD] {
        for bad in BadAddress::ALL {
            expect_errno(
                sys::call_with_bad_address(f.as_fd(), RawCall::Ioctl(cmd), bad),
                Errno::EFAULT,
                format!("ioctl {cmd:#x} with the argument at {bad}"),
            )?;
        }
    }
    devtest::expect_enotty(
        f.as_fd(),
        &[
            ("NVME_IOCTL_ID", ioc(0, b'N', 0x40, 0)),
            ("NVME_IOCTL_RESET", ioc(0, b'N', 0x44, 0)),
            (
                "NVME_IOCTL_ADMIN_CMD, 64-byte size",
                ioc(IOC_READ | IOC_WRITE, b'N', 0x41, 64),
            ),
            ("'N' 0x49", ioc(IOC_READ | IOC_WRITE, b'N', 0x49, 8)),
            ("another type", ioc(IOC_READ, b'r', 0x41, 4)),
        ],
    )?;
    let mut io_cmd = [0u8; 72];
    expect_errno(
        sys::ioctl_with(
            f.as_fd(),
            ioc(IOC_READ | IOC_WRITE, b'N', 0x43, 72),
            &mut io_cmd,
        ),
        Errno::ENOTTY,
        "NVME_IOCTL_IO_CMD",
    )?;
    let (status, _) = admin(&f, &identify_ctrl(), &mut page).context("Identify after")?;
    ensure_eq!(status, 0, "Identify after the rejected commands");
    ensure_eq!(ascii(&page[4..24]), "rustnvme0", "serial number after");
    Ok(())
}

/// Passthrough needs `CAP_SYS_ADMIN` (as in the C driver): a child that gave up root (and with
/// it every capability) gets `EACCES` on a descriptor opened before.
pub fn needs_cap_sys_admin(ctx: &Ctx) -> TestResult {
    let f = open_node(NODE)?;
    let child = Process::spawn(ctx, "unprivileged", move |_| {
        sys::setuid(65534).context("setuid(65534)")?;
        let mut page = vec![0u8; 4096];
        expect_errno(
            admin(&f, &identify_ctrl(), &mut page),
            Errno(libc::EACCES),
            "ADMIN_CMD without CAP_SYS_ADMIN",
        )?;
        expect_errno(
            admin64(&f, &identify_ctrl(), &mut page),
            Errno(libc::EACCES),
            "ADMIN64_CMD without CAP_SYS_ADMIN",
        )?;
        ensure!(page.iter().all(|&b| b == 0), "the buffer was written");
        Ok(Vec::new())
    })?;
    child.join(ctx, Duration::from_secs(10))?;
    Ok(())
}

/// The node's lifetime is the binding's: while a thread sends Identify after Identify on a
/// descriptor, the function is unbound through sysfs; the thread's commands succeed until they
/// fail with `ENODEV` (never another error: a command in flight finishes before the admin
/// queue goes), the node disappears with the disk, binding again creates the next
/// controller's node (`nvme-lite1`) which answers, and after rmmod no node is left. The module
/// is loaded again at the end (instance 0 again).
pub fn node_follows_the_binding(ctx: &Ctx) -> TestResult {
    let bdf = bound_function()?;
    let f = open_node(NODE)?;
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    let hammer = {
        let f = f.try_clone().context("dup")?;
        std::thread::spawn(move || -> Result<u32, String> {
            let mut page = vec![0u8; 4096];
            let start = std::time::Instant::now();
            let mut ok = 0;
            while start.elapsed() < Duration::from_secs(20) {
                match admin(&f, &identify_ctrl(), &mut page) {
                    Ok((0, _)) => ok += 1,
                    Ok((status, _)) => return Err(format!("Identify {ok}: status {status:#x}")),
                    Err(e) if e == Errno(libc::ENODEV) => return Ok(ok),
                    Err(e) => return Err(format!("Identify {ok}: {e}")),
                }
            }
            Err(format!("{ok} Identify commands in 20 s and no ENODEV"))
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let unbind = format!("{}/unbind", DRIVER.node);
    std::fs::write(&unbind, &bdf).context(format!("write {bdf} to {unbind}"))?;
    devtest::wait_for_node(ctx, NODE, false)?;
    devtest::wait_for_node(ctx, DISK, false)?;
    match hammer.join() {
        Ok(Ok(n)) => ensure!(n > 0, "no Identify succeeded before the unbind"),
        Ok(Err(e)) => return Err(crate::harness::Failure::new(e)),
        Err(_) => return Err(crate::harness::Failure::new("the Identify thread panicked")),
    }
    let mut page = vec![0u8; 4096];
    expect_errno(
        admin(&f, &identify_ctrl(), &mut page),
        Errno(libc::ENODEV),
        "ADMIN_CMD after unbind",
    )?;
    expect_errno(
        admin64(&f, &identify_ctrl(), &mut page),
        Errno(libc::ENODEV),
        "ADMIN64_CMD after unbind",
    )?;
    drop(f);
    let bind = format!("{}/bind", DRIVER.node);
    std::fs::write(&bind, &bdf).context(format!("write {bdf} to {bind}"))?;
    devtest::wait_for_node(ctx, "/dev/nvme-lite1", true)?;
    let f = open_node("/dev/nvme-lite1")?;
    let (status, _) = admin(&f, &identify_ctrl(), &mut page).context("Identify on nvme-lite1")?;
    ensure_eq!(status, 0, "Identify on nvme-lite1");
    ensure_eq!(
        ascii(&page[4..24]),
        "rustnvme0",
        "serial number on nvme-lite1"
    );
    drop(f);
    let lines = devtest::log_since(&mut kmsg)?;
    ensure!(
        lines.iter().any(|l| l.contains("admin node nvme-lite1")),
        "no `admin node nvme-lite1` line:\n{}",
        lines.join("\n")
    );
    DRIVER.unload_cleanly(ctx)?;
    devtest::wait_for_node(ctx, "/dev/nvme-lite1", false)?;
    let misc = std::fs::read_to_string("/proc/misc").context("read /proc/misc")?;
    ensure!(
        !misc.contains("nvme-lite"),
        "/proc/misc still lists a node after rmmod:\n{misc}"
    );
    DRIVER.load(ctx, "")?;
    devtest::wait_for_node(ctx, DISK, true)?;
    devtest::wait_for_node(ctx, NODE, true)?;
    Ok(())
}

/// The PCI address of the one function bound to the driver (`0000:01:00.0`).
fn bound_function() -> TestResult<String> {
    let bound: Vec<String> = std::fs::read_dir(DRIVER.node)
        .context(format!("read_dir({})", DRIVER.node))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(':') && n.contains('.'))
        .collect();
    ensure_eq!(
        bound.len(),
        1,
        "PCI functions bound to nvme_lite ({bound:?})"
    );
    Ok(bound[0].clone())
}

/// For the surprise-removal test: the admin node (created right after the disk), opened
/// before the controller goes.
pub fn open_before_removal(ctx: &Ctx) -> TestResult<File> {
    devtest::wait_for_node(ctx, NODE, true)?;
    open_node(NODE)
}

/// After a surprise removal: the node is gone and the descriptor opened before gets `ENODEV`.
pub fn expect_gone_after_removal(ctx: &Ctx, f: &File) -> TestResult {
    devtest::wait_for_node(ctx, NODE, false)?;
    let mut page = vec![0u8; 4096];
    expect_errno(
        admin(f, &identify_ctrl(), &mut page),
        Errno(libc::ENODEV),
        "ADMIN_CMD after the surprise removal",
    )
}

/// Debian's nvme-cli (in the initramfs with its libraries).
const NVME: &str = "/usr/sbin/nvme";

/// `key : value` lines of nvme-cli's normal output, keys and values trimmed.
fn fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str, text: &str) -> TestResult<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| crate::harness::Failure::new(format!("no `{key}` line in:\n{text}")))
}

/// `nvme id-ctrl /dev/nvme-lite0` prints the controller QEMU was given: PCI vendor 0x1b36,
/// serial `rustnvme0`, model `QEMU NVMe Ctrl`, and the firmware revision the driver logged at
/// probe (read here with a raw Identify).
pub fn nvme_cli_id_ctrl(_: &Ctx) -> TestResult {
    let text = run_tool(NVME, &["id-ctrl", NODE])?;
    let f = fields(&text);
    ensure_eq!(field(&f, "vid", &text)?, "0x1b36", "vid");
    ensure_eq!(field(&f, "sn", &text)?, "rustnvme0", "sn");
    ensure_eq!(field(&f, "mn", &text)?, "QEMU NVMe Ctrl", "mn");
    let node = open_node(NODE)?;
    let mut page = vec![0u8; 4096];
    admin(&node, &identify_ctrl(), &mut page).context("Identify")?;
    ensure_eq!(field(&f, "fr", &text)?, ascii(&page[64..72]), "fr");
    Ok(())
}

/// `nvme smart-log /dev/nvme-lite0` prints the SMART / Health log: no critical warning, and
/// the same host read command count as a raw Get Log Page sent right before (no I/O between).
pub fn nvme_cli_smart_log(_: &Ctx) -> TestResult {
    let node = open_node(NODE)?;
    let mut log = vec![0u8; 512];
    let smart = Cmd {
        opcode: GET_LOG_PAGE,
        nsid: 0xffff_ffff,
        cdw10: (127 << 16) | 0x02,
        ..Default::default()
    };
    admin(&node, &smart, &mut log).context("Get Log Page (SMART)")?;
    let host_reads = u64::from_le_bytes(log[64..72].try_into().unwrap());
    let text = run_tool(NVME, &["smart-log", NODE])?;
    let f = fields(&text);
    ensure_eq!(
        field(&f, "critical_warning", &text)?,
        "0",
        "critical_warning"
    );
    let printed: String = field(&f, "host_read_commands", &text)?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    ensure_eq!(printed, host_reads.to_string(), "host_read_commands");
    ensure!(host_reads > 0, "host_read_commands is 0");
    Ok(())
}

/// Passthrough and timeout recovery share the admin queue: while a thread sends Identify after
/// Identify on the node, the host throttles the drive (QMP `block_set_io_throttle`) so that a
/// read is held, and the timeout handler sends its Abort and then resets the controller (which
/// recreates the I/O queues with Set Features and Create I/O CQ/SQ), each taking the admin
/// queue in turn with the passthrough commands. Nothing deadlocks or starves: the held read
/// ends well within a minute, the log shows the abort, the reset and its end in that order,
/// every Identify returns the controller's page (never an error: no reset runs while a
/// passthrough command holds the queue, and none runs during a reset) in under 15 s each, some
/// of them while the read was held, and Identify and I/O work after the throttle is lifted.
pub fn passthrough_across_a_controller_reset(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    DRIVER.load(ctx, "")?;
    devtest::wait_for_node(ctx, DISK, true)?;
    devtest::wait_for_node(ctx, NODE, true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut throttled = false;
    let mut hammer = None;
    let result = (|| -> TestResult {
        let path = format!("{}/queue/io_timeout", super::SYSFS);
        std::fs::write(&path, "2000").context(format!("write 2000 to {path}"))?;
        let node = open_node(NODE)?;
        hammer = Some({
            let stop = stop.clone();
            std::thread::spawn(move || -> Result<(u32, Duration), String> {
                let mut page = vec![0u8; 4096];
                let (mut n, mut slowest) = (0u32, Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    let t = std::time::Instant::now();
                    let r = admin(&node, &identify_ctrl(), &mut page);
                    slowest = slowest.max(t.elapsed());
                    match r {
                        Ok((0, _)) if ascii(&page[4..24]) == "rustnvme0" => n += 1,
                        Ok((0, _)) => return Err(format!("Identify {n}: wrong serial")),
                        Ok((s, _)) => return Err(format!("Identify {n}: status {s:#x}")),
                        Err(e) => return Err(format!("Identify {n}: {e}")),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok((n, slowest))
            })
        });
        let f = super::open_direct(false)?;
        let mut r = super::Aligned::new(4096, 0);
        devtest::host_request("throttle nvme0")?;
        throttled = true;
        let off = super::PATTERN_OFFSETS[1];
        let start = std::time::Instant::now();
        let took = loop {
            ensure!(
                start.elapsed() < Duration::from_secs(60),
                "no read was held within 60 s of asking the host to throttle the drive"
            );
            let t = std::time::Instant::now();
            let res = f.read_at(r.buf(), off);
            let took = t.elapsed();
            if took >= Duration::from_millis(1500) {
                if let Err(e) = res {
                    ctx.note(format!("the held read failed with {e} after {took:?}"));
                }
                break took;
            }
            res.context("a read before the throttle held one")?;
            std::thread::sleep(Duration::from_millis(50));
        };
        ensure!(
            took < Duration::from_secs(60),
            "the held read ended after {took:?}"
        );
        let lines = devtest::log_since(&mut kmsg)?;
        let at = |what: &str| lines.iter().position(|l| l.contains(what));
        ensure!(
            matches!(
                (at("timeout, aborting"), at("timeout, reset controller"), at("reset done")),
                (Some(a), Some(r), Some(d)) if a < r && r < d
            ),
            "expected \"timeout, aborting\", then \"timeout, reset controller\", then \
             \"reset done\" in the log:\n{}",
            lines.join("\n")
        );
        devtest::host_request("unthrottle nvme0")?;
        throttled = false;
        stop.store(true, Ordering::Relaxed);
        let (n, slowest) = match hammer.take().map(|h| h.join()) {
            Some(Ok(Ok(v))) => v,
            Some(Ok(Err(e))) => return Err(crate::harness::Failure::new(e)),
            _ => return Err(crate::harness::Failure::new("the Identify thread panicked")),
        };
        ctx.note(format!(
            "{n} Identify commands across the abort and reset, the slowest {slowest:?}"
        ));
        ensure!(n > 0, "no Identify completed");
        ensure!(
            slowest < Duration::from_secs(15),
            "an Identify took {slowest:?}"
        );
        // Afterwards: passthrough answers and a read returns the host's data (a request may
        // still be held until the host has lifted the throttle: retried for up to 60 s).
        let node = open_node(NODE)?;
        let mut page = vec![0u8; 4096];
        let (status, _) = admin(&node, &identify_ctrl(), &mut page).context("Identify after")?;
        ensure_eq!(status, 0, "Identify after the reset");
        let start = std::time::Instant::now();
        loop {
            match f.read_at(r.buf(), off) {
                Ok(4096) => break,
                res => ensure!(
                    start.elapsed() < Duration::from_secs(60),
                    "reads still fail 60 s after lifting the throttle: {res:?}"
                ),
            }
        }
        crate::harness::ensure_bytes(r.buf(), &super::host_pattern(off), "read after the reset")?;
        let lines = devtest::log_since(&mut kmsg)?;
        ensure!(
            !lines.iter().any(|l| l.contains("passthrough command")),
            "a passthrough command failed in the kernel:\n{}",
            lines.join("\n")
        );
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = hammer {
        let _ = h.join();
    }
    if throttled {
        let _ = devtest::host_request("unthrottle nvme0");
    }
    let unloaded = DRIVER.unload_cleanly(ctx);
    result?;
    unloaded
}
