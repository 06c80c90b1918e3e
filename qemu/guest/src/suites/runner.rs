//! Suite `runner`: a self-check of the test runner's own machinery, using only ordinary pipes
//! and `/dev/kmsg` (no module). Run it with `ktest.suites=runner` after changing the harness:
//! it shows that blocked helpers are detected, signals interrupt or restart blocking calls,
//! hangs become timeouts, panics and crashes become failures, and the kernel log is readable.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::harness::{
    ensure, ensure_bytes, ensure_eq, expect_errno, run_isolated, run_suite, Context, Ctx, Process,
    TestCase, TestResult,
};
use crate::kmsg::Kmsg;
use crate::ktap;
use crate::sys::{self, BadAddress, Errno, RawCall, SharedCounter};

/// The self-checks.
pub const TESTS: [TestCase; 9] = [
    TestCase::new(
        "helper_blocked_in_read_is_detected",
        helper_blocked_in_read_is_detected,
    ),
    TestCase::new("signal_interrupts_pipe_read", signal_interrupts_pipe_read),
    TestCase::new(
        "sa_restart_restarts_pipe_read",
        sa_restart_restarts_pipe_read,
    ),
    TestCase::new("early_exit_is_not_blocked", early_exit_is_not_blocked),
    TestCase::new("hung_test_times_out", hung_test_times_out).timeout(Duration::from_secs(20)),
    TestCase::new("panicking_test_fails", panicking_test_fails),
    TestCase::new("crashing_test_fails", crashing_test_fails),
    TestCase::new("kmsg_sees_new_records", kmsg_sees_new_records),
    TestCase::new("bad_addresses_fault", bad_addresses_fault),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "runner", &TESTS, None)
}

/// A helper blocked reading an empty pipe is seen as blocked, and gets what is written.
fn helper_blocked_in_read_is_detected(ctx: &Ctx) -> TestResult {
    let (read_end, write_end) = sys::pipe().context("pipe")?;
    let mut reader = Process::spawn(ctx, "reader", |_| {
        let mut buf = [0u8; 16];
        let n = (&read_end).read(&mut buf).context("read(pipe)")?;
        Ok(buf[..n].to_vec())
    })?;
    reader.wait_until_blocked(ctx)?;
    (&write_end).write_all(b"hi").context("write(pipe)")?;
    let got = reader.join(ctx, Duration::from_secs(5))?;
    ensure_bytes(&got, b"hi", "what the reader got")
}

/// A signal whose handler lacks SA_RESTART makes a blocked pipe read fail with EINTR.
fn signal_interrupts_pipe_read(ctx: &Ctx) -> TestResult {
    let (read_end, _write_end) = sys::pipe().context("pipe")?;
    let mut reader = Process::spawn(ctx, "reader", |_| {
        sys::catch_signal(libc::SIGUSR1, false).context("sigaction")?;
        let mut buf = [0u8; 16];
        expect_errno(
            (&read_end).read(&mut buf).map_err(Errno::from),
            Errno::EINTR,
            "read(pipe)",
        )?;
        ensure_eq!(sys::signals_caught(), 1, "signals caught");
        Ok(Vec::new())
    })?;
    reader.wait_until_blocked(ctx)?;
    reader.signal(libc::SIGUSR1)?;
    reader.join(ctx, Duration::from_secs(5)).map(drop)
}

/// With SA_RESTART the pipe read restarts, blocks again, and completes when data arrives.
fn sa_restart_restarts_pipe_read(ctx: &Ctx) -> TestResult {
    let (read_end, write_end) = sys::pipe().context("pipe")?;
    let mut reader = Process::spawn(ctx, "reader", |_| {
        sys::catch_signal(libc::SIGUSR1, true).context("sigaction")?;
        let mut buf = [0u8; 16];
        let n = (&read_end).read(&mut buf).context("read(pipe)")?;
        ensure_eq!(sys::signals_caught(), 1, "signals caught");
        Ok(buf[..n].to_vec())
    })?;
    reader.wait_until_blocked(ctx)?;
    reader.signal(libc::SIGUSR1)?;
    reader.wait_until_blocked(ctx)?;
    (&write_end).write_all(b"again").context("write(pipe)")?;
    let got = reader.join(ctx, Duration::from_secs(5))?;
    ensure_bytes(&got, b"again", "what the restarted read got")
}

/// A helper that finishes instead of blocking is reported as such.
fn early_exit_is_not_blocked(ctx: &Ctx) -> TestResult {
    let mut quick = Process::spawn(ctx, "quick", |_| Ok(b"done".to_vec()))?;
    match quick.wait_until_blocked(ctx) {
        Ok(()) => Err("wait_until_blocked accepted a process that had finished".into()),
        Err(failure) => {
            let text = failure.to_string();
            ensure!(
                text.contains("finished although"),
                "unexpected explanation: {text}"
            );
            Ok(())
        }
    }
}

/// A test that never finishes is killed at its deadline and reported as a timeout, with the
/// kernel function its process was sleeping in.
fn hung_test_times_out(ctx: &Ctx) -> TestResult {
    let outcome = run_isolated(ctx, "hang", Duration::from_secs(1), |_| {
        let (read_end, _write_end) = sys::pipe().context("pipe")?;
        let mut buf = [0u8; 1];
        let _ = (&read_end).read(&mut buf); // never returns: we hold the write end
        Ok(())
    });
    ensure!(!outcome.ok, "the hung test passed");
    ensure_eq!(outcome.directive.as_deref(), Some("timeout"), "directive");
    ctx.note(format!("diagnostics: {}", outcome.diagnostics.join(" | ")));
    ensure!(
        outcome.diagnostics.iter().any(|d| d.contains("state S")),
        "no process state in the diagnostics: {:?}",
        outcome.diagnostics
    );
    Ok(())
}

/// A panic inside a test becomes a failure carrying the panic message.
fn panicking_test_fails(ctx: &Ctx) -> TestResult {
    let outcome = run_isolated(ctx, "panic", Duration::from_secs(5), |_| {
        panic!("deliberate panic 42")
    });
    ensure!(!outcome.ok, "the panicking test passed");
    ensure!(
        outcome
            .diagnostics
            .iter()
            .any(|d| d.contains("deliberate panic 42")),
        "panic message missing: {:?}",
        outcome.diagnostics
    );
    Ok(())
}

/// A test process killed by a signal is a failure naming the signal.
fn crashing_test_fails(ctx: &Ctx) -> TestResult {
    let outcome = run_isolated(ctx, "crash", Duration::from_secs(5), |_| {
        sys::kill(sys::getpid(), libc::SIGABRT).context("kill")?;
        std::thread::sleep(Duration::from_secs(5));
        Ok(())
    });
    ensure!(!outcome.ok, "the crashing test passed");
    ensure!(
        outcome.diagnostics.iter().any(|d| d.contains("SIGABRT")),
        "signal missing: {:?}",
        outcome.diagnostics
    );
    Ok(())
}

/// After seeking to the end of /dev/kmsg only new records are read.
fn kmsg_sees_new_records(_: &Ctx) -> TestResult {
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    ensure!(
        !kmsg.read_available().context("read")?.is_empty(),
        "the kernel log is empty"
    );
    kmsg.seek_to_end().context("seek to end")?;
    ensure_eq!(
        kmsg.read_available().context("read")?.len(),
        0,
        "records right after seeking to the end"
    );
    let marker = format!("ktest-selfcheck: marker {}", sys::getpid());
    std::fs::write("/dev/kmsg", format!("<6>{marker}\n")).context("write /dev/kmsg")?;
    let texts: Vec<String> = kmsg
        .read_available()
        .context("read")?
        .into_iter()
        .map(|r| r.text)
        .collect();
    ensure_eq!(texts, [marker], "new records");
    Ok(())
}

/// Bad buffer addresses really fault (checked on a pipe), and the shared counter is shared.
fn bad_addresses_fault(ctx: &Ctx) -> TestResult {
    let (read_end, write_end) = sys::pipe().context("pipe")?;
    for bad in BadAddress::ALL {
        let result = sys::call_with_bad_address(write_end.as_fd(), RawCall::Write(8), bad);
        expect_errno(result, Errno::EFAULT, format!("write(pipe) from {bad}"))?;
    }
    (&write_end).write_all(b"12345678").context("write")?;
    for bad in BadAddress::ALL {
        let result = sys::call_with_bad_address(read_end.as_fd(), RawCall::Read(8), bad);
        expect_errno(result, Errno::EFAULT, format!("read(pipe) into {bad}"))?;
    }
    let counter = SharedCounter::new().context("mmap")?;
    let child = Process::spawn(ctx, "adder", |_| {
        counter.get().fetch_add(5, Ordering::SeqCst);
        Ok(Vec::new())
    })?;
    child.join(ctx, Duration::from_secs(5))?;
    ensure_eq!(
        counter.get().load(Ordering::SeqCst),
        5,
        "counter after the child added 5"
    );
    Ok(())
}
