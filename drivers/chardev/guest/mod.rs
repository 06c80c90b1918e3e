//! Suite `chardev`: the contract of `/dev/rustpipe`, a bounded byte FIFO shared by all openers.
//!
//! What the driver promises (and what each test below checks):
//!
//! * `read(count)` returns `min(count, queued)` bytes, in the order they were written; it
//!   blocks while the FIFO is empty (`EAGAIN` with `O_NONBLOCK`); `count == 0` returns 0 at once.
//! * `write(count)` accepts `min(count, free)` bytes (partial writes), blocking while the FIFO is
//!   full (`EAGAIN` with `O_NONBLOCK`).
//! * Waits are interruptible: a signal fails a blocked call with `EINTR`, or restarts it if the
//!   handler was installed with `SA_RESTART`.
//! * A bad user pointer fails with `EFAULT` and loses nothing.
//! * `poll()`: `POLLIN|POLLRDNORM` when not empty, `POLLOUT|POLLWRNORM` when not full.
//! * `lseek()` fails with `ESPIPE`.
//! * ioctls (see [`uapi`]): get/set capacity, clear, statistics; anything else `ENOTTY`.
//! * The module cannot be unloaded while a file is open, and frees everything it allocated.
//!
//! Every test leaves the FIFO empty with the default capacity; after a failed test the runner
//! restores that state (see [`restore_device`]) so one bug does not fail every later test.

pub mod device;
pub mod stress;
pub mod uapi;

use std::path::Path;
use std::time::{Duration, Instant};

use self::device::{poll_flags, Mode, Rustpipe, DEVICE, MODULE_NAME, MODULE_PATH};
use self::uapi::{
    RustpipeStats, RUSTPIPE_DEFAULT_CAPACITY, RUSTPIPE_IOC_GET_CAPACITY, RUSTPIPE_IOC_GET_STATS,
    RUSTPIPE_IOC_SET_CAPACITY, RUSTPIPE_MAX_CAPACITY,
};
use crate::devtest::{self, Driver};
use crate::harness::pattern;
use crate::harness::{
    ensure, ensure_bytes, ensure_eq, expect_errno, expect_errno_in, run_suite, Context, Ctx,
    Failure, Process, TestCase, TestResult,
};
use crate::kmsg::Kmsg;
use crate::ktap;
use crate::mem;
use crate::module;
use crate::sys::{self, BadAddress, Errno, RawCall};
use crate::uapi::{io, ior, iow};

/// The module under test and its node.
const DRIVER: Driver = Driver::new(MODULE_NAME, DEVICE);

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The tests, in the order they run. `load_module` must come first and `load_unload_50` last.
pub const TESTS: [TestCase; 32] = [
    TestCase::new("load_module", load_module)
        .timeout(secs(30))
        .setup(),
    TestCase::new(
        "device_node_is_misc_char_device",
        device_node_is_misc_char_device,
    ),
    TestCase::new(
        "write_then_read_across_two_fds",
        write_then_read_across_two_fds,
    ),
    TestCase::new(
        "fifo_order_across_small_writes",
        fifo_order_across_small_writes,
    ),
    TestCase::new("read_zero_bytes_returns_zero", read_zero_bytes_returns_zero),
    TestCase::new(
        "nonblocking_read_empty_eagain",
        nonblocking_read_empty_eagain,
    ),
    TestCase::new(
        "fill_to_capacity_then_write_eagain",
        fill_to_capacity_then_write_eagain,
    ),
    TestCase::new(
        "partial_write_returns_free_space",
        partial_write_returns_free_space,
    ),
    TestCase::new("poll_reports_fifo_state", poll_reports_fifo_state),
    TestCase::new(
        "poll_wakes_when_writer_writes",
        poll_wakes_when_writer_writes,
    )
    .timeout(secs(20)),
    TestCase::new("blocking_read_wakes_on_write", blocking_read_wakes_on_write).timeout(secs(20)),
    TestCase::new("blocking_write_wakes_on_read", blocking_write_wakes_on_read).timeout(secs(20)),
    TestCase::new(
        "signal_interrupts_blocked_read",
        signal_interrupts_blocked_read,
    )
    .timeout(secs(20)),
    TestCase::new(
        "signal_interrupts_blocked_write",
        signal_interrupts_blocked_write,
    )
    .timeout(secs(20)),
    TestCase::new(
        "sa_restart_restarts_blocked_read",
        sa_restart_restarts_blocked_read,
    )
    .timeout(secs(20)),
    TestCase::new("get_set_capacity", get_set_capacity),
    TestCase::new("shrink_below_queued_ebusy", shrink_below_queued_ebusy),
    TestCase::new(
        "resize_keeps_queued_bytes_in_order",
        resize_keeps_queued_bytes_in_order,
    ),
    TestCase::new("grow_wakes_blocked_writer", grow_wakes_blocked_writer).timeout(secs(20)),
    TestCase::new("clear_discards_queued_bytes", clear_discards_queued_bytes),
    TestCase::new("clear_wakes_blocked_writer", clear_wakes_blocked_writer).timeout(secs(20)),
    TestCase::new("stats_are_exact", stats_are_exact),
    TestCase::new("unknown_ioctls_enotty", unknown_ioctls_enotty),
    TestCase::new("ioctl_bad_pointer_efault", ioctl_bad_pointer_efault),
    TestCase::new(
        "read_bad_pointer_efault_keeps_data",
        read_bad_pointer_efault_keeps_data,
    ),
    TestCase::new(
        "write_bad_pointer_efault_adds_nothing",
        write_bad_pointer_efault_adds_nothing,
    ),
    TestCase::new(
        "read_into_partly_unmapped_buffer_short_count",
        read_into_partly_unmapped_buffer_short_count,
    ),
    TestCase::new(
        "write_from_partly_unmapped_buffer_short_count",
        write_from_partly_unmapped_buffer_short_count,
    ),
    TestCase::new("lseek_espipe", lseek_espipe),
    TestCase::new(
        "concurrent_4_writers_4_readers",
        stress::concurrent_writers_and_readers,
    )
    .timeout(secs(240)),
    TestCase::new("rmmod_while_open_busy", rmmod_while_open_busy),
    TestCase::new("load_unload_50", load_unload_50).timeout(secs(240)),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "chardev", &TESTS, Some(restore_device))
}

/// After a failed test: empty the FIFO and restore the default capacity (best effort).
pub fn restore_device(ctx: &Ctx) -> TestResult {
    if !module::is_loaded(MODULE_NAME) {
        ctx.note("chardev is not loaded; nothing to restore");
        return Ok(());
    }
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    pipe.clear().context("CLEAR")?;
    pipe.set_capacity(RUSTPIPE_DEFAULT_CAPACITY)
        .context("SET_CAPACITY(default)")?;
    ctx.note("reset /dev/rustpipe to an empty FIFO of the default capacity for the next tests");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn open(mode: Mode) -> TestResult<Rustpipe> {
    Rustpipe::open(mode).context(format!("open({DEVICE}, {mode:?})"))
}

fn open_nonblocking(mode: Mode) -> TestResult<Rustpipe> {
    Rustpipe::open_nonblocking(mode).context(format!("open({DEVICE}, {mode:?} | O_NONBLOCK)"))
}

/// One `write(data)` that must accept all of `data`.
fn write_all_at_once(pipe: &Rustpipe, data: &[u8], what: &str) -> TestResult {
    let n = pipe
        .write(data)
        .context(format!("{what}: write({})", data.len()))?;
    ensure_eq!(
        n,
        data.len(),
        "{what}: return value of write({})",
        data.len()
    );
    Ok(())
}

/// One `read(count)` that must return exactly `expected`.
fn read_expecting(pipe: &Rustpipe, count: usize, expected: &[u8], what: &str) -> TestResult {
    let got = pipe
        .read_vec(count)
        .context(format!("{what}: read({count})"))?;
    ensure_bytes(&got, expected, format!("{what}: read({count})"))
}

/// The FIFO must be empty: a non-blocking read fails with `EAGAIN`.
fn expect_empty(when: &str) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    expect_errno(
        pipe.read_vec(64),
        Errno::EAGAIN,
        format!("{when}: non-blocking read of the FIFO, which should be empty"),
    )
}

fn stats(pipe: &Rustpipe, when: &str) -> TestResult<RustpipeStats> {
    pipe.stats().context(format!("GET_STATS {when}"))
}

fn capacity(pipe: &Rustpipe, when: &str) -> TestResult<u32> {
    pipe.capacity().context(format!("GET_CAPACITY {when}"))
}

fn set_capacity(pipe: &Rustpipe, capacity: u32) -> TestResult {
    pipe.set_capacity(capacity)
        .context(format!("SET_CAPACITY({capacity})"))
}

/// Fills the empty FIFO to its capacity with a pattern; returns the bytes written.
fn fill(pipe: &Rustpipe, seed: u32) -> TestResult<Vec<u8>> {
    let capacity = capacity(pipe, "before filling the FIFO")? as usize;
    let data = pattern(capacity, seed);
    write_all_at_once(pipe, &data, "filling the empty FIFO")?;
    Ok(data)
}

// ---------------------------------------------------------------------------------------------
// Loading and the device node
// ---------------------------------------------------------------------------------------------

/// `finit_module` of chardev.ko without parameters succeeds, and the misc device appears.
fn load_module(ctx: &Ctx) -> TestResult {
    DRIVER.load(ctx, "")
}

/// `/dev/rustpipe` is a character device with the misc major (10) and the number sysfs shows.
fn device_node_is_misc_char_device(_: &Ctx) -> TestResult {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(DEVICE).context(format!("stat({DEVICE})"))?;
    ensure!(
        meta.file_type().is_char_device(),
        "{DEVICE} is not a character device (mode {:o})",
        meta.mode()
    );
    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
    ensure_eq!(
        major,
        10,
        "major number of {DEVICE} (misc devices have major 10)"
    );
    let sysfs = "/sys/class/misc/rustpipe/dev";
    let dev = std::fs::read_to_string(sysfs).context(format!("reading {sysfs}"))?;
    ensure_eq!(
        dev.trim(),
        format!("{major}:{minor}"),
        "{sysfs} vs the node's device number"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading and writing
// ---------------------------------------------------------------------------------------------

/// Bytes written through one file are read, unchanged, through another: the FIFO is shared.
fn write_then_read_across_two_fds(_: &Ctx) -> TestResult {
    let writer = open(Mode::Write)?;
    let reader = open_nonblocking(Mode::Read)?;
    let message = b"hello, rustpipe!";
    write_all_at_once(&writer, message, "writer fd")?;
    // Asking for more than is queued returns just what is queued.
    read_expecting(&reader, 64, message, "reader fd")?;
    expect_errno(
        reader.read_vec(64),
        Errno::EAGAIN,
        "second read on the reader fd (FIFO drained)",
    )
}

/// Many small writes come out in exactly the order they went in, whatever the read sizes.
fn fifo_order_across_small_writes(ctx: &Ctx) -> TestResult {
    let writer = open(Mode::Write)?;
    let reader = open_nonblocking(Mode::Read)?;
    let data = pattern(3000, 1);
    let (mut offset, mut writes) = (0, 0);
    while offset < data.len() {
        let len = (writes % 7 + 1).min(data.len() - offset);
        write_all_at_once(
            &writer,
            &data[offset..offset + len],
            &format!("small write #{writes}"),
        )?;
        offset += len;
        writes += 1;
    }
    let mut got = Vec::new();
    while got.len() < data.len() {
        let chunk = reader
            .read_vec(13)
            .context(format!("read(13) at offset {}", got.len()))?;
        ensure_eq!(
            chunk.len(),
            13.min(data.len() - got.len()),
            "bytes returned by read(13) at offset {}",
            got.len()
        );
        got.extend(chunk);
    }
    ensure_bytes(
        &got,
        &data,
        format!(
            "{} bytes from {writes} writes of 1..7 bytes, read in 13-byte reads",
            data.len()
        ),
    )?;
    ctx.note(format!(
        "{writes} writes, {} reads",
        data.len().div_ceil(13)
    ));
    expect_empty("after reading everything")
}

/// `read(count = 0)` returns 0 immediately, even on an empty FIFO in blocking mode, and
/// consumes nothing when data is queued.
fn read_zero_bytes_returns_zero(ctx: &Ctx) -> TestResult {
    // In a helper with a short deadline: a driver that waits here would otherwise hang us.
    let reader = Process::spawn(ctx, "zero-byte reader", |_| {
        let pipe = open(Mode::Read)?;
        let n = pipe
            .read(&mut [])
            .context("blocking read(0) on the empty FIFO")?;
        ensure_eq!(n, 0, "blocking read(0) on the empty FIFO");
        Ok(Vec::new())
    })?;
    reader.join(ctx, secs(3))?;

    let pipe = open_nonblocking(Mode::ReadWrite)?;
    write_all_at_once(&pipe, b"abc", "queue 3 bytes")?;
    let n = pipe.read(&mut []).context("read(0) with 3 bytes queued")?;
    ensure_eq!(n, 0, "read(0) with 3 bytes queued");
    read_expecting(&pipe, 3, b"abc", "the 3 bytes after the zero-byte read")
}

/// With `O_NONBLOCK`, reading the empty FIFO fails with `EAGAIN` (not 0, which means EOF).
fn nonblocking_read_empty_eagain(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::Read)?;
    expect_errno(
        pipe.read_vec(16),
        Errno::EAGAIN,
        "non-blocking read(16) on the empty FIFO",
    )
}

/// The FIFO holds exactly `capacity` bytes (64 KiB by default); one more byte is `EAGAIN`.
fn fill_to_capacity_then_write_eagain(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let capacity = capacity(&pipe, "of a freshly loaded module")?;
    ensure_eq!(capacity, RUSTPIPE_DEFAULT_CAPACITY, "default capacity");
    let data = fill(&pipe, 2)?;
    expect_errno(
        pipe.write(b"x"),
        Errno::EAGAIN,
        "non-blocking write(1) into the full FIFO",
    )?;
    ensure_eq!(
        stats(&pipe, "when full")?.len,
        capacity,
        "stats.len of the full FIFO"
    );
    read_expecting(
        &pipe,
        capacity as usize + 100,
        &data,
        "reading the full FIFO back",
    )?;
    expect_empty("after draining")
}

/// A write larger than the free space accepts exactly the free space, without blocking.
fn partial_write_returns_free_space(_: &Ctx) -> TestResult {
    let pipe = open(Mode::ReadWrite)?; // blocking: it must not wait for room for the rest
    let capacity = capacity(&pipe, "")? as usize;
    let first = pattern(capacity - 10, 3);
    let second = pattern(100, 4);
    write_all_at_once(&pipe, &first, "leaving 10 bytes free")?;
    let n = pipe
        .write(&second)
        .context("write(100) with 10 bytes free")?;
    ensure_eq!(n, 10, "write(100) with 10 bytes free");
    let expected = [&first[..], &second[..10]].concat();
    read_expecting(&pipe, capacity, &expected, "the FIFO's content")?;
    expect_empty("after draining")
}

// ---------------------------------------------------------------------------------------------
// poll and blocking
// ---------------------------------------------------------------------------------------------

const READABLE: libc::c_short = libc::POLLIN | libc::POLLRDNORM;
const WRITABLE: libc::c_short = libc::POLLOUT | libc::POLLWRNORM;

/// poll() with timeout 0 reports exactly: empty → writable only; partly full → both;
/// full → readable only.
fn poll_reports_fifo_state(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let expect_poll = |expected: libc::c_short, state: &str| -> TestResult {
        let got = pipe
            .poll(READABLE | WRITABLE, 0)
            .context(format!("poll() on {state}"))?;
        ensure!(
            got == expected,
            "poll() on {state}: expected {}, got {}",
            poll_flags(expected),
            poll_flags(got)
        );
        Ok(())
    };
    expect_poll(WRITABLE, "the empty FIFO")?;
    write_all_at_once(&pipe, b"x", "one byte")?;
    expect_poll(READABLE | WRITABLE, "a FIFO holding 1 byte")?;
    let capacity = capacity(&pipe, "")? as usize;
    write_all_at_once(&pipe, &pattern(capacity - 1, 5), "filling the rest")?;
    expect_poll(READABLE, "the full FIFO")?;
    let drained = pipe.read_vec(capacity).context("draining")?;
    ensure_eq!(drained.len(), capacity, "bytes drained");
    expect_poll(WRITABLE, "the drained FIFO")
}

/// A process blocked in poll(POLLIN) on the empty FIFO wakes up when another process writes.
fn poll_wakes_when_writer_writes(ctx: &Ctx) -> TestResult {
    let mut poller = Process::spawn(ctx, "poller", |ctx| {
        let pipe = open(Mode::Read)?;
        let timeout_ms = ctx.scaled(secs(5)).as_millis() as i32;
        let revents = pipe
            .poll(READABLE, timeout_ms)
            .context("poll(POLLIN|POLLRDNORM)")?;
        ensure!(
            revents != 0,
            "poll(POLLIN) timed out: the write did not wake it up"
        );
        ensure!(
            revents == READABLE,
            "revents after the write: expected {}, got {}",
            poll_flags(READABLE),
            poll_flags(revents)
        );
        Ok(Vec::new())
    })?;
    poller.wait_until_blocked(ctx)?;
    let writer = open(Mode::Write)?;
    write_all_at_once(&writer, b"ping", "the waking write")?;
    poller.join(ctx, secs(5))?;
    read_expecting(
        &open_nonblocking(Mode::Read)?,
        16,
        b"ping",
        "the written bytes",
    )
}

/// A reader blocked on the empty FIFO is woken by a write and gets exactly the written bytes.
fn blocking_read_wakes_on_write(ctx: &Ctx) -> TestResult {
    let mut reader = Process::spawn(ctx, "reader", |_| {
        let pipe = open(Mode::Read)?;
        pipe.read_vec(64).context("blocking read(64)")
    })?;
    reader.wait_until_blocked(ctx)?;
    let message = b"wake up, reader";
    write_all_at_once(&open(Mode::Write)?, message, "the waking write")?;
    let got = reader.join(ctx, secs(5))?;
    ensure_bytes(&got, message, "what the woken reader got")?;
    expect_empty("after the reader took everything")
}

/// A writer blocked on the full FIFO is woken when a reader makes room, and its data lands
/// after what was already queued.
fn blocking_write_wakes_on_read(ctx: &Ctx) -> TestResult {
    let control = open_nonblocking(Mode::ReadWrite)?;
    let queued = fill(&control, 6)?;
    let extra = pattern(100, 7);
    let mut writer = Process::spawn(ctx, "writer", |_| {
        let pipe = open(Mode::Write)?;
        let n = pipe
            .write(&extra)
            .context("blocking write(100) into the full FIFO")?;
        ensure_eq!(
            n,
            100,
            "return value of the woken write (300 bytes had been freed)"
        );
        Ok(Vec::new())
    })?;
    writer.wait_until_blocked(ctx)?;
    read_expecting(
        &control,
        300,
        &queued[..300],
        "making room while the writer waits",
    )?;
    writer.join(ctx, secs(5))?;
    let rest = [&queued[300..], &extra[..]].concat();
    read_expecting(
        &control,
        queued.len(),
        &rest,
        "the rest of the fill, then the woken writer's bytes",
    )?;
    expect_empty("after draining")
}

/// SIGUSR1 (handler without `SA_RESTART`) makes a blocked read fail with `EINTR`.
fn signal_interrupts_blocked_read(ctx: &Ctx) -> TestResult {
    let mut reader = Process::spawn(ctx, "reader", |_| {
        sys::catch_signal(libc::SIGUSR1, false).context("sigaction(SIGUSR1, no SA_RESTART)")?;
        let pipe = open(Mode::Read)?;
        expect_errno(
            pipe.read_vec(16),
            Errno::EINTR,
            "blocked read(16) hit by SIGUSR1",
        )?;
        ensure_eq!(
            sys::signals_caught(),
            1,
            "SIGUSR1 deliveries seen by the handler"
        );
        Ok(Vec::new())
    })?;
    reader.wait_until_blocked(ctx)?;
    reader.signal(libc::SIGUSR1)?;
    reader.join(ctx, secs(5))?;
    expect_empty("after the interrupted read")
}

/// SIGUSR1 (handler without `SA_RESTART`) makes a blocked write fail with `EINTR`, having
/// added nothing to the FIFO.
fn signal_interrupts_blocked_write(ctx: &Ctx) -> TestResult {
    let control = open_nonblocking(Mode::ReadWrite)?;
    let queued = fill(&control, 8)?;
    let mut writer = Process::spawn(ctx, "writer", |_| {
        sys::catch_signal(libc::SIGUSR1, false).context("sigaction(SIGUSR1, no SA_RESTART)")?;
        let pipe = open(Mode::Write)?;
        expect_errno(
            pipe.write(b"0123456789"),
            Errno::EINTR,
            "blocked write(10) hit by SIGUSR1",
        )?;
        ensure_eq!(
            sys::signals_caught(),
            1,
            "SIGUSR1 deliveries seen by the handler"
        );
        Ok(Vec::new())
    })?;
    writer.wait_until_blocked(ctx)?;
    writer.signal(libc::SIGUSR1)?;
    writer.join(ctx, secs(5))?;
    ensure_eq!(
        stats(&control, "after the interrupted write")?.len as usize,
        queued.len(),
        "stats.len"
    );
    read_expecting(
        &control,
        queued.len() + 10,
        &queued,
        "the FIFO's content (the fill only)",
    )?;
    expect_empty("after draining")
}

/// With an `SA_RESTART` handler the signal is handled and the read transparently restarts
/// (the driver returns `-ERESTARTSYS`), then completes when data arrives.
fn sa_restart_restarts_blocked_read(ctx: &Ctx) -> TestResult {
    let mut reader = Process::spawn(ctx, "reader", |_| {
        sys::catch_signal(libc::SIGUSR1, true).context("sigaction(SIGUSR1, SA_RESTART)")?;
        let pipe = open(Mode::Read)?;
        let got = match pipe.read_vec(16) {
            Err(Errno::EINTR) => {
                return Err(Failure::new(
                    "read(16) failed with EINTR although the handler has SA_RESTART: \
                     the driver must return -ERESTARTSYS when a signal interrupts its wait",
                ))
            }
            other => other.context("blocked read(16) with an SA_RESTART handler")?,
        };
        ensure_eq!(
            sys::signals_caught(),
            1,
            "SIGUSR1 deliveries seen by the handler"
        );
        Ok(got)
    })?;
    reader.wait_until_blocked(ctx)?;
    reader.signal(libc::SIGUSR1)?;
    // The handler runs, then read() starts over and blocks again.
    reader.wait_until_blocked(ctx).map_err(|f| {
        f.context("after SIGUSR1 (the read should have restarted and blocked again)")
    })?;
    write_all_at_once(&open(Mode::Write)?, b"restarted", "the waking write")?;
    let got = reader.join(ctx, secs(5))?;
    ensure_bytes(&got, b"restarted", "what the restarted read returned")?;
    expect_empty("after the read")
}

// ---------------------------------------------------------------------------------------------
// ioctls
// ---------------------------------------------------------------------------------------------

/// GET_CAPACITY / SET_CAPACITY: the valid range is 1..=1048576 and both ends really work.
fn get_set_capacity(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    ensure_eq!(
        capacity(&pipe, "")?,
        RUSTPIPE_DEFAULT_CAPACITY,
        "GET_CAPACITY (default)"
    );
    for bad in [0, RUSTPIPE_MAX_CAPACITY + 1, u32::MAX] {
        expect_errno(
            pipe.set_capacity(bad),
            Errno::EINVAL,
            format!("SET_CAPACITY({bad})"),
        )?;
    }
    ensure_eq!(
        capacity(&pipe, "after rejected SET_CAPACITY calls")?,
        RUSTPIPE_DEFAULT_CAPACITY,
        "GET_CAPACITY after the rejected SET_CAPACITY calls"
    );

    // The maximum: 1 MiB really fits, in one write.
    set_capacity(&pipe, RUSTPIPE_MAX_CAPACITY)?;
    ensure_eq!(
        capacity(&pipe, "")?,
        RUSTPIPE_MAX_CAPACITY,
        "GET_CAPACITY after SET_CAPACITY(1048576)"
    );
    ensure_eq!(
        stats(&pipe, "")?.capacity,
        RUSTPIPE_MAX_CAPACITY,
        "stats.capacity"
    );
    let big = pattern(RUSTPIPE_MAX_CAPACITY as usize, 9);
    write_all_at_once(&pipe, &big, "1 MiB into the 1 MiB FIFO")?;
    expect_errno(
        pipe.write(b"x"),
        Errno::EAGAIN,
        "one more byte into the full 1 MiB FIFO",
    )?;
    read_expecting(&pipe, big.len(), &big, "the 1 MiB back")?;

    // The minimum: a 1-byte FIFO accepts 1 byte of a 2-byte write.
    set_capacity(&pipe, 1)?;
    ensure_eq!(
        capacity(&pipe, "")?,
        1,
        "GET_CAPACITY after SET_CAPACITY(1)"
    );
    ensure_eq!(
        pipe.write(b"xy").context("write(2) into the 1-byte FIFO")?,
        1,
        "write(2) into the 1-byte FIFO"
    );
    expect_errno(
        pipe.write(b"z"),
        Errno::EAGAIN,
        "write(1) into the full 1-byte FIFO",
    )?;
    read_expecting(&pipe, 2, b"x", "the 1-byte FIFO's content")?;

    set_capacity(&pipe, RUSTPIPE_DEFAULT_CAPACITY)?;
    ensure_eq!(
        capacity(&pipe, "")?,
        RUSTPIPE_DEFAULT_CAPACITY,
        "GET_CAPACITY after restoring the default"
    );
    expect_empty("at the end")
}

/// SET_CAPACITY below the number of queued bytes fails with `EBUSY` and changes nothing;
/// exactly the queued number is allowed.
fn shrink_below_queued_ebusy(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let data = pattern(100, 10);
    write_all_at_once(&pipe, &data, "queue 100 bytes")?;
    for smaller in [99, 50, 1] {
        expect_errno(
            pipe.set_capacity(smaller),
            Errno::EBUSY,
            format!("SET_CAPACITY({smaller}) with 100 bytes queued"),
        )?;
    }
    let after = stats(&pipe, "after the rejected shrinks")?;
    ensure_eq!(
        (after.capacity, after.len),
        (RUSTPIPE_DEFAULT_CAPACITY, 100),
        "(stats.capacity, stats.len)"
    );
    set_capacity(&pipe, 100)?;
    expect_errno(
        pipe.write(b"x"),
        Errno::EAGAIN,
        "write(1) after shrinking to exactly the queued 100 bytes",
    )?;
    read_expecting(&pipe, 200, &data, "the 100 queued bytes")?;
    set_capacity(&pipe, RUSTPIPE_DEFAULT_CAPACITY)?;
    expect_empty("at the end")
}

/// Writes and reads a numbered stream through the FIFO, checking every byte read.
struct Stream<'a> {
    pipe: &'a Rustpipe,
    data: Vec<u8>,
    written: usize,
    read: usize,
}

impl Stream<'_> {
    fn write(&mut self, n: usize) -> TestResult {
        let chunk = &self.data[self.written..self.written + n];
        write_all_at_once(
            self.pipe,
            chunk,
            &format!("stream bytes {}..{}", self.written, self.written + n),
        )?;
        self.written += n;
        Ok(())
    }

    fn read(&mut self, n: usize) -> TestResult {
        let expected = &self.data[self.read..self.read + n];
        read_expecting(
            self.pipe,
            n,
            expected,
            &format!("stream bytes {}..{}", self.read, self.read + n),
        )?;
        self.read += n;
        Ok(())
    }

    fn resize(&mut self, capacity: u32) -> TestResult {
        set_capacity(self.pipe, capacity)?;
        let queued = self.written - self.read;
        let stats = stats(self.pipe, &format!("after SET_CAPACITY({capacity})"))?;
        ensure_eq!(
            (stats.capacity, stats.len as usize),
            (capacity, queued),
            "(stats.capacity, stats.len) after SET_CAPACITY({capacity})"
        );
        Ok(())
    }
}

/// Growing and shrinking keep the queued bytes, in order, including when the queued data
/// wraps around the end of a ring buffer.
fn resize_keeps_queued_bytes_in_order(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let mut s = Stream {
        pipe: &pipe,
        data: pattern(1000, 11),
        written: 0,
        read: 0,
    };
    // Grow while the queued bytes wrap around.
    s.resize(64)?;
    s.write(64)?;
    expect_errno(
        pipe.write(b"x"),
        Errno::EAGAIN,
        "write into the full 64-byte FIFO",
    )?;
    s.read(40)?;
    s.write(40)?; // 64 queued, wrapping
    s.resize(128)?;
    s.write(64)?; // 128 queued
    expect_errno(
        pipe.write(b"x"),
        Errno::EAGAIN,
        "write into the full 128-byte FIFO",
    )?;
    s.read(128)?;
    // Shrink while the queued bytes wrap around.
    s.resize(48)?;
    s.write(48)?;
    s.read(30)?;
    s.write(30)?; // 48 queued, wrapping
    s.read(18)?; // 30 queued
    s.resize(32)?;
    s.write(2)?;
    expect_errno(
        pipe.write(b"x"),
        Errno::EAGAIN,
        "write into the full 32-byte FIFO",
    )?;
    s.read(32)?;
    set_capacity(&pipe, RUSTPIPE_DEFAULT_CAPACITY)?;
    expect_empty("at the end")
}

/// A writer blocked on the full FIFO wakes when SET_CAPACITY grows it.
fn grow_wakes_blocked_writer(ctx: &Ctx) -> TestResult {
    let control = open_nonblocking(Mode::ReadWrite)?;
    set_capacity(&control, 16)?;
    let queued = fill(&control, 12)?;
    let extra = pattern(8, 13);
    let mut writer = Process::spawn(ctx, "writer", |_| {
        let n = open(Mode::Write)?
            .write(&extra)
            .context("blocking write(8) into the full FIFO")?;
        ensure_eq!(n, 8, "return value of the write woken by growing the FIFO");
        Ok(Vec::new())
    })?;
    writer.wait_until_blocked(ctx)?;
    set_capacity(&control, 32)?;
    writer.join(ctx, secs(5))?;
    read_expecting(
        &control,
        64,
        &[&queued[..], &extra[..]].concat(),
        "the FIFO's content",
    )?;
    set_capacity(&control, RUSTPIPE_DEFAULT_CAPACITY)?;
    expect_empty("at the end")
}

/// CLEAR discards the queued bytes (they are not counted as read); the FIFO then works
/// normally with no stale bytes.
fn clear_discards_queued_bytes(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    write_all_at_once(&pipe, &pattern(100, 14), "queue 100 bytes")?;
    let before = stats(&pipe, "before CLEAR")?;
    ensure_eq!(before.len, 100, "stats.len before CLEAR");
    pipe.clear().context("CLEAR")?;
    let after = stats(&pipe, "after CLEAR")?;
    ensure_eq!(after.len, 0, "stats.len after CLEAR");
    ensure_eq!(
        after.bytes_written,
        before.bytes_written,
        "stats.bytes_written (CLEAR does not reset it)"
    );
    ensure_eq!(
        after.bytes_read,
        before.bytes_read,
        "stats.bytes_read (discarded bytes were not read)"
    );
    expect_errno(pipe.read_vec(16), Errno::EAGAIN, "read after CLEAR")?;
    write_all_at_once(&pipe, b"fresh", "writing after CLEAR")?;
    read_expecting(&pipe, 16, b"fresh", "reading after CLEAR")?;
    pipe.clear().context("CLEAR of the empty FIFO")?;
    expect_empty("at the end")
}

/// A writer blocked on the full FIFO wakes when CLEAR empties it; only its bytes remain.
fn clear_wakes_blocked_writer(ctx: &Ctx) -> TestResult {
    let control = open_nonblocking(Mode::ReadWrite)?;
    fill(&control, 15)?;
    let extra = pattern(10, 16);
    let mut writer = Process::spawn(ctx, "writer", |_| {
        let n = open(Mode::Write)?
            .write(&extra)
            .context("blocking write(10) into the full FIFO")?;
        ensure_eq!(n, 10, "return value of the write woken by CLEAR");
        Ok(Vec::new())
    })?;
    writer.wait_until_blocked(ctx)?;
    control.clear().context("CLEAR")?;
    writer.join(ctx, secs(5))?;
    read_expecting(
        &control,
        64,
        &extra,
        "the FIFO after CLEAR and the woken write",
    )?;
    expect_empty("at the end")
}

/// GET_STATS reports exact counters: bytes moved (only what was really accepted/returned),
/// queued length, capacity, open files, reserved 0, and live allocations while loaded; and it
/// writes exactly 40 bytes.
fn stats_are_exact(_: &Ctx) -> TestResult {
    let a = open_nonblocking(Mode::ReadWrite)?;
    let s0 = stats(&a, "with one fd open")?;
    ensure_eq!(
        s0.open_files,
        1,
        "stats.open_files with only this test's fd open"
    );
    ensure_eq!(s0.len, 0, "stats.len of the empty FIFO");
    ensure_eq!(s0.capacity, RUSTPIPE_DEFAULT_CAPACITY, "stats.capacity");
    ensure_eq!(s0.reserved, 0, "stats.reserved");
    ensure!(
        s0.live_allocations > 0,
        "stats.live_allocations is 0 although the FIFO's buffer is allocated"
    );

    // The kernel must write sizeof(struct rustpipe_stats) = 40 bytes, not more.
    let mut raw = [0xA5u8; RustpipeStats::SIZE + 8];
    sys::ioctl_with(a.fd(), RUSTPIPE_IOC_GET_STATS, &mut raw)
        .context("GET_STATS into a guarded buffer")?;
    ensure_bytes(
        &raw[RustpipeStats::SIZE..],
        &[0xA5; 8],
        "the 8 bytes after the 40-byte struct",
    )?;
    let head: &[u8; RustpipeStats::SIZE] = raw[..RustpipeStats::SIZE].try_into().expect("40 bytes");
    ensure_eq!(
        RustpipeStats::from_ne_bytes(head).capacity,
        RUSTPIPE_DEFAULT_CAPACITY,
        "capacity in the raw bytes"
    );

    let b = open_nonblocking(Mode::Write)?;
    let c = open_nonblocking(Mode::Read)?;
    ensure_eq!(
        stats(&a, "")?.open_files,
        3,
        "stats.open_files with 3 fds open"
    );
    drop(c);
    ensure_eq!(
        stats(&a, "")?.open_files,
        2,
        "stats.open_files after closing one of 3"
    );

    write_all_at_once(&b, &pattern(123, 17), "123 bytes")?;
    let s1 = stats(&a, "after writing 123 bytes")?;
    ensure_eq!(
        s1.bytes_written - s0.bytes_written,
        123,
        "bytes_written delta after writing 123 bytes"
    );
    ensure_eq!(
        s1.bytes_read - s0.bytes_read,
        0,
        "bytes_read delta after writing"
    );
    ensure_eq!(s1.len, 123, "stats.len after writing 123 bytes");

    let got = a.read_vec(23).context("read(23)")?;
    ensure_eq!(got.len(), 23, "bytes returned by read(23)");
    let s2 = stats(&a, "after reading 23 bytes")?;
    ensure_eq!(
        s2.bytes_read - s0.bytes_read,
        23,
        "bytes_read delta after reading 23 bytes"
    );
    ensure_eq!(s2.len, 100, "stats.len after reading 23 of 123 bytes");

    // Only accepted bytes count: a write of capacity + 50 with 100 queued accepts capacity - 100.
    let capacity = s2.capacity as usize;
    let n = b
        .write(&pattern(capacity + 50, 18))
        .context("oversized write")?;
    ensure_eq!(
        n,
        capacity - 100,
        "bytes accepted by write(capacity + 50) with 100 queued"
    );
    expect_errno(b.write(b"x"), Errno::EAGAIN, "write into the full FIFO")?;
    let s3 = stats(&a, "when full")?;
    ensure_eq!(
        s3.bytes_written - s0.bytes_written,
        123 + n as u64,
        "bytes_written delta (failed writes count nothing)"
    );
    ensure_eq!(s3.len as usize, capacity, "stats.len of the full FIFO");

    a.clear().context("CLEAR")?;
    expect_errno(a.read_vec(10), Errno::EAGAIN, "read of the cleared FIFO")?;
    let s4 = stats(&a, "after CLEAR and a failed read")?;
    ensure_eq!(
        (s4.bytes_read, s4.bytes_written, s4.len),
        (s3.bytes_read, s3.bytes_written, 0),
        "(bytes_read, bytes_written, len) after CLEAR and an EAGAIN read"
    );
    Ok(())
}

/// Commands the driver does not define fail with `ENOTTY`, whatever part of the encoding is
/// wrong, and have no effect (the argument is not written, the FIFO is untouched).
fn unknown_ioctls_enotty(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    write_all_at_once(&pipe, b"survive", "queue 7 bytes")?;
    let r = b'r';
    let commands: [(&str, u32); 11] = [
        ("_IO('r', 0x00): undefined number", io(r, 0x00)),
        (
            "_IOR('r', 0x05, u32): undefined number",
            ior::<u32>(r, 0x05),
        ),
        ("_IO('r', 0xff): undefined number", io(r, 0xff)),
        (
            "_IOR('q', 0x01, u32): wrong type letter",
            ior::<u32>(b'q', 0x01),
        ),
        ("_IO('R', 0x03): wrong type letter", io(b'R', 0x03)),
        (
            "_IOR('r', 0x01, u64): GET_CAPACITY's number, wrong size",
            ior::<u64>(r, 0x01),
        ),
        (
            "_IOW('r', 0x01, u32): GET_CAPACITY's number, wrong direction",
            iow::<u32>(r, 0x01),
        ),
        (
            "_IOR('r', 0x02, u32): SET_CAPACITY's number, wrong direction",
            ior::<u32>(r, 0x02),
        ),
        (
            "_IOW('r', 0x03, u32): CLEAR's number with an argument",
            iow::<u32>(r, 0x03),
        ),
        (
            "_IOR('r', 0x04, [u8; 32]): GET_STATS's number, wrong size",
            ior::<[u8; 32]>(r, 0x04),
        ),
        ("TCGETS: a terminal ioctl", libc::TCGETS as u32),
    ];
    devtest::expect_enotty(pipe.fd(), &commands)?;
    ensure_eq!(
        capacity(&pipe, "")?,
        RUSTPIPE_DEFAULT_CAPACITY,
        "capacity after the unknown ioctls"
    );
    read_expecting(
        &pipe,
        64,
        b"survive",
        "the queued bytes after the unknown ioctls",
    )
}

/// An ioctl whose argument pointer is not valid user memory fails with `EFAULT`; a failed
/// SET_CAPACITY changes nothing.
fn ioctl_bad_pointer_efault(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let commands = [
        ("GET_CAPACITY", RUSTPIPE_IOC_GET_CAPACITY),
        ("SET_CAPACITY", RUSTPIPE_IOC_SET_CAPACITY),
        ("GET_STATS", RUSTPIPE_IOC_GET_STATS),
    ];
    let mut failures = Vec::new();
    for bad in BadAddress::ALL {
        for (name, cmd) in commands {
            let result = sys::call_with_bad_address(pipe.fd(), RawCall::Ioctl(cmd), bad);
            if let Err(f) = expect_errno(
                result,
                Errno::EFAULT,
                format!("{name} with {bad} as argument"),
            ) {
                failures.extend(f.lines().iter().cloned());
            }
        }
    }
    if !failures.is_empty() {
        return Err(Failure::from_lines(failures));
    }
    ensure_eq!(
        capacity(&pipe, "")?,
        RUSTPIPE_DEFAULT_CAPACITY,
        "capacity after SET_CAPACITY with bad pointers"
    );
    Ok(())
}

/// A read into an invalid buffer fails with `EFAULT` and leaves the data in the FIFO.
fn read_bad_pointer_efault_keeps_data(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let data = pattern(32, 19);
    write_all_at_once(&pipe, &data, "queue 32 bytes")?;
    for bad in BadAddress::ALL {
        let result = sys::call_with_bad_address(pipe.fd(), RawCall::Read(32), bad);
        expect_errno(result, Errno::EFAULT, format!("read(32) into {bad}"))?;
        ensure_eq!(
            stats(&pipe, "")?.len,
            32,
            "stats.len after read(32) into {bad}"
        );
    }
    read_expecting(&pipe, 32, &data, "the queued bytes after the failed reads")?;
    let s = stats(&pipe, "at the end")?;
    ensure_eq!(s.len, 0, "stats.len at the end");
    Ok(())
}

/// A read into a buffer whose second page is unmapped returns a short count (the bytes that
/// fit before the hole), not `EFAULT`; exactly those bytes leave the FIFO.
fn read_into_partly_unmapped_buffer_short_count(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let data = pattern(64, 23);
    write_all_at_once(&pipe, &data, "queue 64 bytes")?;
    let page = mem::page_size();
    let pages = mem::Pages::new(2).context("mmap 2 pages")?;
    pages.unmap_page(1).context("munmap the second page")?;
    let n = mem::read_raw(pipe.fd(), pages.at(page - 32), 64)
        .context("read(64) into 32 mapped bytes followed by a hole")?;
    ensure!(
        (1..=32).contains(&n),
        "read(64) across the hole returned {n}: expected a short count of at most 32 bytes"
    );
    ensure_bytes(
        &pages.read(page - 32, n),
        &data[..n],
        "the bytes read before the hole",
    )?;
    ensure_eq!(
        stats(&pipe, "after the short read")?.len as usize,
        64 - n,
        "stats.len"
    );
    read_expecting(&pipe, 64, &data[n..], "the rest, still queued")
}

/// A write from a buffer whose second page is unmapped stores the bytes before the hole and
/// returns their count.
fn write_from_partly_unmapped_buffer_short_count(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let data = pattern(32, 29);
    let page = mem::page_size();
    let pages = mem::Pages::new(2).context("mmap 2 pages")?;
    pages.fill(page - 32, &data);
    pages.unmap_page(1).context("munmap the second page")?;
    let n = mem::write_raw(pipe.fd(), pages.at(page - 32), 64)
        .context("write(64) from 32 mapped bytes followed by a hole")?;
    ensure!(
        (1..=32).contains(&n),
        "write(64) across the hole returned {n}: expected a short count of at most 32 bytes"
    );
    ensure_eq!(
        stats(&pipe, "after the short write")?.len as usize,
        n,
        "stats.len"
    );
    read_expecting(&pipe, 64, &data[..n], "exactly the bytes before the hole")
}

/// A write from an invalid buffer fails with `EFAULT` and adds nothing.
fn write_bad_pointer_efault_adds_nothing(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    let before = stats(&pipe, "before")?;
    for bad in BadAddress::ALL {
        let result = sys::call_with_bad_address(pipe.fd(), RawCall::Write(32), bad);
        expect_errno(result, Errno::EFAULT, format!("write(32) from {bad}"))?;
        let after = stats(&pipe, "")?;
        ensure_eq!(
            (after.len, after.bytes_written),
            (0, before.bytes_written),
            "(stats.len, stats.bytes_written) after write(32) from {bad}"
        );
    }
    expect_empty("after the failed writes")
}

/// The device is a stream: lseek fails with `ESPIPE`.
fn lseek_espipe(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    devtest::expect_no_seek(pipe.fd())
}

// ---------------------------------------------------------------------------------------------
// Module lifetime
// ---------------------------------------------------------------------------------------------

/// While a file is open the module holds a reference: delete_module fails and the module
/// (and the open file) keep working.
fn rmmod_while_open_busy(_: &Ctx) -> TestResult {
    let pipe = open_nonblocking(Mode::ReadWrite)?;
    match module::unload(MODULE_NAME) {
        Ok(()) => {
            return Err(Failure::new(
                "delete_module succeeded while /dev/rustpipe was open: the file operations must \
                 pin the module (owner = THIS_MODULE)",
            ))
        }
        result => expect_errno_in(
            result,
            &[Errno::EBUSY, Errno::EAGAIN],
            "delete_module(\"chardev\", O_NONBLOCK) with a file open",
        )?,
    }
    ensure!(
        module::is_loaded(MODULE_NAME),
        "chardev vanished from /proc/modules"
    );
    write_all_at_once(&pipe, b"still", "writing after the refused unload")?;
    read_expecting(&pipe, 16, b"still", "reading after the refused unload")
}

/// Checks the kernel log since `kmsg`'s position for `chardev: exit: live_allocations=0`.
fn expect_clean_exit(kmsg: &mut Kmsg, when: &str) -> TestResult {
    DRIVER.expect_clean_exit(kmsg, when)
}

/// Unloads the module used so far, then 50 times: load (every 10th time with
/// `capacity=128`), use, unload, and check the module freed everything.
fn load_unload_50(ctx: &Ctx) -> TestResult {
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end()
        .context("lseek(/dev/kmsg, 0, SEEK_END)")?;
    if module::is_loaded(MODULE_NAME) {
        module::unload_retrying(MODULE_NAME, ctx.scaled(secs(2)))
            .context("unloading chardev after the other tests")?;
        expect_clean_exit(&mut kmsg, "unload after the other tests")?;
    }
    ensure!(
        !Path::new(DEVICE).exists(),
        "{DEVICE} still exists after the module was unloaded"
    );
    let started = Instant::now();
    for cycle in 1..=50u32 {
        let (params, expected_capacity) = if cycle % 10 == 0 {
            ("capacity=128", 128)
        } else {
            ("", RUSTPIPE_DEFAULT_CAPACITY)
        };
        let at = |what: &str| format!("cycle {cycle}: {what}");
        module::load(MODULE_PATH, params).context(at("load"))?;
        {
            let pipe = Rustpipe::open_nonblocking(Mode::ReadWrite).context(at("open"))?;
            let capacity = pipe.capacity().context(at("GET_CAPACITY"))?;
            ensure_eq!(
                capacity,
                expected_capacity,
                "cycle {cycle}: capacity after loading with {params:?}"
            );
            let message = format!("cycle {cycle}");
            write_all_at_once(&pipe, message.as_bytes(), &at("write"))?;
            read_expecting(&pipe, 64, message.as_bytes(), &at("read back"))?;
            let stats = pipe.stats().context(at("GET_STATS"))?;
            ensure!(
                stats.live_allocations > 0,
                "cycle {cycle}: stats.live_allocations is 0 while loaded"
            );
        } // the file is closed here, so the module can go
        kmsg.seek_to_end()
            .context(at("lseek(/dev/kmsg, SEEK_END)"))?;
        module::unload(MODULE_NAME).context(at("delete_module"))?;
        ensure!(
            !module::is_loaded(MODULE_NAME),
            "cycle {cycle}: still in /proc/modules after delete_module"
        );
        expect_clean_exit(&mut kmsg, &at("unload"))?;
    }
    ctx.note(format!(
        "50 cycles in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
