//! Suite `lifetime`: teardown never waits for user space, and a slow user page holds up no one
//! but the task touching it.
//!
//! `rust_selftests.ko lifetime=1` registers `/dev/rust_selftest_ctl` and
//! `/dev/rust_selftest_victim` (see `crates/selftests/src/lifetime.rs`); `chardev.ko` provides
//! `/dev/rustpipe`. The tests:
//!
//! * a device is deregistered (through an ioctl on the control device) while a process holds it
//!   open: the ioctl returns at once, the node disappears, the open file keeps working, and the
//!   close frees the device state;
//! * an epoll set watches a wait queue that is then dropped: the queue detaches epoll first
//!   (`POLLFREE`), so nothing touches freed memory (KASAN on the debug kernel would say so);
//! * the module cannot be unloaded while that orphaned file is open (its `file_operations`
//!   name the module as owner);
//! * a writer whose buffer ends on a userfaultfd page stalls inside the copy: meanwhile other
//!   processes open `/dev/rustpipe` and another misc device promptly, a signal ends the writer
//!   with a short count, and exactly those bytes are in the FIFO.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use crate::devtest::{self, Driver};
use crate::harness::{
    ensure, ensure_bytes, ensure_eq, expect_errno, run_suite, Context, Ctx, Exit, Failure, Process,
    TestCase, TestResult,
};
use crate::ktap;
use crate::mem;
use crate::module;
use crate::sys::{self, Errno, Plain};
use crate::uapi::{io, ior};

const CTL: &str = "/dev/rust_selftest_ctl";
const SELFTESTS: Driver = Driver::new("rust_selftests", CTL);
const CHARDEV: Driver = Driver::new("chardev", RUSTPIPE);
const VICTIM: &str = "/dev/rust_selftest_victim";
const RUSTPIPE: &str = "/dev/rustpipe";

const MAGIC: u8 = b'S';
const CTL_REGISTER_VICTIM: u32 = io(MAGIC, 1);
const CTL_DEREGISTER_VICTIM: u32 = io(MAGIC, 2);
const CTL_STATUS: u32 = ior::<Status>(MAGIC, 3);
const VICTIM_DROP_POLL_QUEUE: u32 = io(MAGIC, 0x10);

/// `CTL_STATUS`'s record (see `crates/selftests/src/lifetime.rs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Status {
    registered: u32,
    victims_alive: u32,
    victims_freed: u32,
    reserved: u32,
    live_allocations: u64,
}

// SAFETY: integers only; every bit pattern is valid.
unsafe impl Plain for Status {}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The tests, in order: `load_modules` first, `unload_frees_everything` last.
pub const TESTS: [TestCase; 6] = [
    TestCase::new("load_modules", load_modules)
        .timeout(secs(30))
        .setup(),
    TestCase::new(
        "deregister_while_open_returns_at_once",
        deregister_while_open_returns_at_once,
    )
    .timeout(secs(30)),
    TestCase::new("epoll_on_dropped_poll_queue", epoll_on_dropped_poll_queue).timeout(secs(30)),
    TestCase::new(
        "unload_refused_while_orphaned_file_open",
        unload_refused_while_orphaned_file_open,
    )
    .timeout(secs(30)),
    TestCase::new(
        "stalled_user_copy_holds_up_nobody",
        stalled_user_copy_holds_up_nobody,
    )
    .timeout(secs(60)),
    TestCase::new("unload_frees_everything", unload_frees_everything).timeout(secs(30)),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "lifetime", &TESTS, None)
}

fn open_rw(path: &str) -> TestResult<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .context(format!("open({path}, O_RDWR)"))
}

fn wait_for(ctx: &Ctx, path: &str, present: bool) -> TestResult {
    devtest::wait_for_node(ctx, path, present)
}

fn status(ctl: &File, when: &str) -> TestResult<Status> {
    let mut s = Status::default();
    sys::ioctl_with(ctl.as_fd(), CTL_STATUS, &mut s).context(format!("CTL_STATUS {when}"))?;
    Ok(s)
}

fn read_vec(file: &File, count: usize) -> TestResult<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0; count];
    let n = (&*file).read(&mut buf).context(format!("read({count})"))?;
    buf.truncate(n);
    Ok(buf)
}

fn write_all(file: &File, data: &[u8]) -> TestResult {
    use std::io::Write;
    let n = (&*file)
        .write(data)
        .context(format!("write({})", data.len()))?;
    ensure_eq!(n, data.len(), "bytes accepted by write({})", data.len());
    Ok(())
}

/// Runs one control ioctl in a child process, so that a hang is reported, not suffered.
fn ctl_ioctl_promptly(ctx: &Ctx, cmd: u32, what: &str) -> TestResult {
    let started = Instant::now();
    let child = Process::spawn(ctx, what, move |_| {
        let ctl = open_rw(CTL)?;
        sys::ioctl_none(ctl.as_fd(), cmd).context(format!("ioctl {cmd:#x}"))?;
        Ok(Vec::new())
    })?;
    child
        .join(ctx, secs(5))
        .map_err(|f| f.context(&format!("{what} (must return at once, whatever is open)")))?;
    ctx.note(format!("{what} took {:?}", started.elapsed()));
    Ok(())
}

fn load_modules(ctx: &Ctx) -> TestResult {
    SELFTESTS.load(ctx, "lifetime=1")?;
    CHARDEV.load(ctx, "")?;
    wait_for(ctx, VICTIM, true)
}

/// Deregistering a device with a file open returns at once; the file keeps working on the
/// device state, and the close frees it.
fn deregister_while_open_returns_at_once(ctx: &Ctx) -> TestResult {
    let ctl = open_rw(CTL)?;
    let before = status(&ctl, "before")?;
    ensure_eq!(
        (before.registered, before.victims_alive),
        (1, 1),
        "(registered, victims_alive) before"
    );
    let victim = open_rw(VICTIM)?;
    write_all(&victim, b"before")?;

    ctl_ioctl_promptly(ctx, CTL_DEREGISTER_VICTIM, "CTL_DEREGISTER_VICTIM")?;
    wait_for(ctx, VICTIM, false)?;
    let orphaned = status(&ctl, "after deregistering")?;
    ensure_eq!(
        (
            orphaned.registered,
            orphaned.victims_alive,
            orphaned.victims_freed
        ),
        (0, 1, before.victims_freed),
        "(registered, victims_alive, victims_freed) with the file still open"
    );

    ensure_bytes(
        &read_vec(&victim, 64)?,
        b"before",
        "read on the orphaned file",
    )?;
    write_all(&victim, b"after")?;
    ensure_bytes(
        &read_vec(&victim, 64)?,
        b"after",
        "read back on the orphaned file",
    )?;

    drop(victim);
    let closed = status(&ctl, "after the close")?;
    ensure_eq!(
        (closed.victims_alive, closed.victims_freed),
        (0, before.victims_freed + 1),
        "(victims_alive, victims_freed) after the last close"
    );

    sys::ioctl_none(ctl.as_fd(), CTL_REGISTER_VICTIM).context("CTL_REGISTER_VICTIM")?;
    wait_for(ctx, VICTIM, true)?;
    expect_errno(
        sys::ioctl_none(ctl.as_fd(), CTL_REGISTER_VICTIM),
        Errno::EBUSY,
        "CTL_REGISTER_VICTIM while registered",
    )?;
    Ok(())
}

/// epoll keeps its entry on a polled wait queue; dropping the queue must detach it first.
fn epoll_on_dropped_poll_queue(_: &Ctx) -> TestResult {
    let victim = open_rw(VICTIM)?;
    let epoll = mem::Epoll::new().context("epoll_create1")?;
    epoll
        .add(victim.as_fd(), libc::EPOLLIN as u32)
        .context("EPOLL_CTL_ADD victim, EPOLLIN")?;
    ensure_eq!(
        epoll
            .wait(0)
            .context("epoll_wait(0) on an empty device")?
            .len(),
        0,
        "ready events with nothing written"
    );
    write_all(&victim, b"x")?;
    let events = epoll.wait(2000).context("epoll_wait after a write")?;
    ensure!(
        events.iter().any(|e| e & libc::EPOLLIN as u32 != 0),
        "epoll did not report EPOLLIN after a write: {events:?}"
    );
    ensure_bytes(&read_vec(&victim, 8)?, b"x", "read")?;

    sys::ioctl_none(victim.as_fd(), VICTIM_DROP_POLL_QUEUE).context("VICTIM_DROP_POLL_QUEUE")?;
    // The epoll set must still be usable, and closing both must touch no freed memory.
    epoll
        .wait(0)
        .context("epoll_wait after the queue was dropped")?;
    write_all(&victim, b"y")?;
    expect_errno(
        sys::ioctl_none(victim.as_fd(), VICTIM_DROP_POLL_QUEUE),
        Errno::ENOENT,
        "VICTIM_DROP_POLL_QUEUE a second time",
    )?;
    drop(epoll);
    drop(victim);
    // The state (with its dropped queue) is freed with the registration, re-registered fresh
    // so the next tests have a queue again.
    let ctl = open_rw(CTL)?;
    sys::ioctl_none(ctl.as_fd(), CTL_DEREGISTER_VICTIM).context("CTL_DEREGISTER_VICTIM")?;
    sys::ioctl_none(ctl.as_fd(), CTL_REGISTER_VICTIM).context("CTL_REGISTER_VICTIM")?;
    Ok(())
}

/// An open file pins its module, even after its device was deregistered.
fn unload_refused_while_orphaned_file_open(ctx: &Ctx) -> TestResult {
    wait_for(ctx, VICTIM, true)?;
    let victim = open_rw(VICTIM)?;
    let ctl = open_rw(CTL)?;
    sys::ioctl_none(ctl.as_fd(), CTL_DEREGISTER_VICTIM).context("CTL_DEREGISTER_VICTIM")?;
    drop(ctl);
    let result = module::unload(SELFTESTS.module);
    ensure!(
        matches!(result, Err(e) if e == Errno::EAGAIN || e == Errno::EBUSY),
        "delete_module({}) with an orphaned file open: expected EAGAIN or EBUSY, got {result:?}",
        SELFTESTS.module
    );
    write_all(&victim, b"still here")?;
    ensure_bytes(&read_vec(&victim, 64)?, b"still here", "read")?;
    drop(victim);
    let ctl = open_rw(CTL)?;
    sys::ioctl_none(ctl.as_fd(), CTL_REGISTER_VICTIM).context("CTL_REGISTER_VICTIM")?;
    Ok(())
}

/// A writer stalls inside `copy_from_user` on a userfaultfd page nobody serves (as it would on
/// a slow FUSE or network page). The driver holds its state lock across the copy, so:
/// * `open()` of this device and of another misc device must not wait: the misc core calls
///   `open` under its global lock, so an `open` taking the state lock would stall them all;
/// * a second writer waits for the lock interruptibly (state `S`, not `D`), and a signal ends
///   its wait with `EINTR`; so does a reader that was already waiting for data when the copy
///   stalled (its wake-up must not re-take the lock uninterruptibly);
/// * the stalled writer itself can only be ended by a fatal signal (a kernel-mode fault on a
///   userfaultfd page retries through other signals); the bytes copied before the trapped page
///   are stored exactly once, nothing else.
fn stalled_user_copy_holds_up_nobody(ctx: &Ctx) -> TestResult {
    let page = mem::page_size();
    let data = crate::harness::pattern(100, 31);
    let ctl = open_rw(CTL)?;
    let pipe = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(RUSTPIPE)
        .context(format!("open({RUSTPIPE}, O_NONBLOCK)"))?;
    let stats = |when: &str| -> TestResult<crate::drivers::chardev::uapi::RustpipeStats> {
        let mut raw = [0u8; crate::drivers::chardev::uapi::RustpipeStats::SIZE];
        sys::ioctl_with(
            pipe.as_fd(),
            crate::drivers::chardev::uapi::RUSTPIPE_IOC_GET_STATS,
            &mut raw,
        )
        .context(format!("GET_STATS {when}"))?;
        Ok(crate::drivers::chardev::uapi::RustpipeStats::from_ne_bytes(
            &raw,
        ))
    };
    let before = stats("before")?;
    ensure_eq!(before.len, 0, "bytes queued before the test");
    drop(ctl);

    let mut reader = Process::spawn(ctx, "waiting reader", |_| {
        sys::catch_signal(libc::SIGUSR1, false).context("sigaction(SIGUSR1, no SA_RESTART)")?;
        let pipe = open_rw(RUSTPIPE)?;
        let mut buf = [0u8; 16];
        expect_errno(
            mem::read_raw(pipe.as_fd(), buf.as_mut_ptr(), 16),
            Errno::EINTR,
            "read(16) waiting for data while a writer's copy is stalled, hit by SIGUSR1",
        )?;
        Ok(Vec::new())
    })?;
    reader.wait_until_blocked(ctx)?;

    let mut writer = Process::spawn(ctx, "stalled writer", move |_| {
        let pipe = open_rw(RUSTPIPE)?;
        let pages = mem::Pages::new(2).context("mmap 2 pages")?;
        pages.fill(page - 100, &data);
        let _trap = mem::Userfault::register(pages.at(page), page)
            .context("userfaultfd on the second page")?;
        // 100 ordinary bytes, then the trap: the copy stalls after (at most) 100 bytes.
        let n = mem::write_raw(pipe.as_fd(), pages.at(page - 100), 200)
            .context("write(200) ending on a userfaultfd page")?;
        Err(Failure::new(format!(
            "write(200) returned {n} although its copy should be stalled until SIGKILL"
        )))
    })?;
    writer.wait_until_blocked(ctx)?;

    let opener = Process::spawn(ctx, "opener", |_| {
        let started = Instant::now();
        let pipe = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(RUSTPIPE)
            .context(format!("open({RUSTPIPE})"))?;
        let ctl = open_rw(CTL)?;
        drop((pipe, ctl));
        ensure!(
            started.elapsed() < Duration::from_secs(2),
            "the opens took {:?}",
            started.elapsed()
        );
        Ok(Vec::new())
    })?;
    let opened = opener.join(ctx, secs(5));

    let mut second = Process::spawn(ctx, "second writer", |_| {
        sys::catch_signal(libc::SIGUSR1, false).context("sigaction(SIGUSR1, no SA_RESTART)")?;
        let pipe = open_rw(RUSTPIPE)?;
        expect_errno(
            mem::write_raw(pipe.as_fd(), b"zz".as_ptr(), 2),
            Errno::EINTR,
            "write(2) waiting for the lock the stalled writer holds, hit by SIGUSR1",
        )?;
        Ok(Vec::new())
    })?;
    let second_blocked = second.wait_until_blocked(ctx);
    second.signal(libc::SIGUSR1)?;
    let second_done = second.join(ctx, secs(5));
    reader.signal(libc::SIGUSR1)?;
    let reader_done = reader.join(ctx, secs(5));

    writer.signal(libc::SIGKILL)?;
    let killed = match writer.wait(ctx, secs(10)) {
        Exit::Died { status, .. } => status == sys::WaitStatus::Signaled(libc::SIGKILL),
        _ => false,
    };

    opened.map_err(|f| {
        f.context("open() of /dev/rustpipe and of another misc device while a copy is stalled")
    })?;
    second_blocked.map_err(|f| f.context("a second writer waiting for the state lock"))?;
    second_done?;
    reader_done?;
    ensure!(killed, "SIGKILL did not end the stalled writer");

    let after = stats("after the writer was killed")?;
    let n = (after.bytes_written - before.bytes_written) as usize;
    ensure!(
        (1..=100).contains(&n),
        "the killed write stored {n} bytes: expected 1..=100 (the bytes before the trapped page)"
    );
    let got = read_vec(&pipe, 4096)?;
    let expected = crate::harness::pattern(100, 31);
    ensure_bytes(&got, &expected[..n], "the FIFO after the killed write")?;
    Ok(())
}

fn unload_frees_everything(ctx: &Ctx) -> TestResult {
    SELFTESTS.unload_cleanly(ctx)?;
    CHARDEV.unload_cleanly(ctx)
}
