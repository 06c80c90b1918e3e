//! Test isolation: every test (and every helper process a test needs) runs in a forked child
//! process with a deadline.
//!
//! * A test that fails returns a [`Failure`] whose lines explain what was expected and what
//!   happened; they become KTAP diagnostics.
//! * A test that panics, crashes or hangs cannot take the runner down: the child is killed at
//!   its deadline (together with its whole process group) and the test is reported
//!   `not ok ... # timeout`, with the kernel function each process was sleeping in.
//! * Children report back through a pipe, in small frames (notes while running, then one
//!   final "passed with payload" or "failed with lines" frame).

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ktap;
use crate::procfs;
use crate::sys::{self, Errno, Fork, Pid, SysResult, WaitStatus};

// ---------------------------------------------------------------------------------------------
// Failures and assertions
// ---------------------------------------------------------------------------------------------

/// Why a test failed: one or more lines of explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    lines: Vec<String>,
}

impl Failure {
    /// A failure explained by `message` (which may span several lines).
    pub fn new(message: impl Into<String>) -> Failure {
        let message = message.into();
        let lines = message.lines().map(String::from).collect::<Vec<_>>();
        Failure::from_lines(lines)
    }

    /// A failure explained by these lines.
    pub fn from_lines(lines: Vec<String>) -> Failure {
        if lines.is_empty() {
            Failure {
                lines: vec!["(no reason given)".to_string()],
            }
        } else {
            Failure { lines }
        }
    }

    /// The explanation, line by line.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Prefixes every line with `"{prefix}: "`.
    pub fn context(self, prefix: &str) -> Failure {
        Failure {
            lines: self
                .lines
                .into_iter()
                .map(|line| format!("{prefix}: {line}"))
                .collect(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::new(message)
    }
}

/// What a test (or helper) returns.
pub type TestResult<T = ()> = Result<T, Failure>;

/// Adds "what was being done" to an error: `fd.capacity().context("GET_CAPACITY")?` fails the
/// test with `GET_CAPACITY failed: ENOTTY`.
pub trait Context<T> {
    /// Turns an error into a [`Failure`] that names the failed operation.
    fn context(self, what: impl fmt::Display) -> TestResult<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> TestResult<T> {
        self.map_err(|e| Failure::new(format!("{what} failed: {e}")))
    }
}

/// Fails the test with the formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::harness::Failure::new(format!($($message)+)));
        }
    };
}
pub(crate) use ensure;

/// Fails the test unless `got == expected`, printing both:
/// `ensure_eq!(n, 5, "read() return value")` → `read() return value: expected 5, got 3`.
macro_rules! ensure_eq {
    ($got:expr, $expected:expr, $($what:tt)+) => {
        match (&$got, &$expected) {
            (got, expected) => {
                if *got != *expected {
                    return Err($crate::harness::Failure::new(format!(
                        "{}: expected {:?}, got {:?}",
                        format_args!($($what)+),
                        expected,
                        got
                    )));
                }
            }
        }
    };
}
pub(crate) use ensure_eq;

/// Checks that `result` is the error `expected`.
pub fn expect_errno<T: fmt::Debug>(
    result: SysResult<T>,
    expected: Errno,
    what: impl fmt::Display,
) -> TestResult {
    expect_errno_in(result, &[expected], what)
}

/// Checks that `result` is one of the errors `allowed`.
pub fn expect_errno_in<T: fmt::Debug>(
    result: SysResult<T>,
    allowed: &[Errno],
    what: impl fmt::Display,
) -> TestResult {
    let expected = allowed
        .iter()
        .map(Errno::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    match result {
        Err(e) if allowed.contains(&e) => Ok(()),
        Err(e) => Err(Failure::new(format!(
            "{what}: expected {expected}, got {e}"
        ))),
        Ok(value) => Err(Failure::new(format!(
            "{what}: expected {expected}, but it succeeded (returned {value:?})"
        ))),
    }
}

/// A duration for diagnostics: `2.5 s`.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// `len` bytes of a deterministic test pattern; different `seed`s give different patterns,
/// and the pattern does not repeat every 256 bytes (so shifted data does not compare equal).
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            (i.wrapping_add(seed.wrapping_mul(7919))
                .wrapping_mul(2_654_435_761)
                >> 24) as u8
        })
        .collect()
}

/// Up to 16 bytes as hex, for diagnostics.
pub fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 16 { " ..." } else { "" };
    format!("[{}{more}]", shown.join(" "))
}

/// Checks that `got` is byte-for-byte `expected`, explaining the first difference.
pub fn ensure_bytes(got: &[u8], expected: &[u8], what: impl fmt::Display) -> TestResult {
    if got == expected {
        return Ok(());
    }
    let mut lines = Vec::new();
    if got.len() != expected.len() {
        lines.push(format!(
            "{what}: expected {} bytes, got {}",
            expected.len(),
            got.len()
        ));
    }
    if let Some(i) = got.iter().zip(expected).position(|(g, e)| g != e) {
        lines.push(format!(
            "{what}: first difference at offset {i}: expected {} got {}",
            hex(&expected[i..]),
            hex(&got[i..])
        ));
    } else {
        let shorter = got.len().min(expected.len());
        lines.push(format!(
            "{what}: the first {shorter} bytes match; expected tail {} got tail {}",
            hex(&expected[shorter..]),
            hex(&got[shorter..])
        ));
    }
    Err(Failure::from_lines(lines))
}

// ---------------------------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------------------------

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the default panic hook (which prints to stderr, i.e. into the middle of the KTAP
/// output) with one that records the message for [`take_panic_message`].
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let message = info.to_string().replace('\n', " ");
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(message);
        }
    }));
}

/// The message of the last panic (for a failure report).
pub fn take_panic_message() -> String {
    let message = LAST_PANIC.lock().ok().and_then(|mut last| last.take());
    message.unwrap_or_else(|| "panicked (no message)".to_string())
}

// ---------------------------------------------------------------------------------------------
// The context of a test
// ---------------------------------------------------------------------------------------------

/// What a test or helper gets: the timeout scale, and a way to attach notes to its report.
pub struct Ctx {
    timeout_scale: u32,
    report: Option<File>,
    only: Option<String>,
}

impl Ctx {
    /// The context of the runner itself (not inside a test process).
    pub fn new(timeout_scale: u32) -> Ctx {
        Ctx {
            timeout_scale: timeout_scale.max(1),
            report: None,
            only: None,
        }
    }

    /// The same context, running only the test named `test` of each suite
    /// (`ktest.suites=<suite>/<test>`).
    pub fn only(&self, test: &str) -> Ctx {
        Ctx {
            timeout_scale: self.timeout_scale,
            report: None,
            only: Some(test.to_string()),
        }
    }

    /// The one test to run, if the suite was named as `<suite>/<test>`.
    pub fn selected(&self) -> Option<&str> {
        self.only.as_deref()
    }

    /// `base` multiplied by `ktest.timeout_scale`.
    pub fn scaled(&self, base: Duration) -> Duration {
        base * self.timeout_scale
    }

    /// Attaches a diagnostic note to the current test's report (printed even if it passes).
    /// Outside a test process (in the runner itself) notes are dropped.
    pub fn note(&self, text: impl Into<String>) {
        if let Some(pipe) = &self.report {
            send_frame(pipe, &Frame::Note(text.into()));
        }
    }
}

/// One message from a child process to its parent.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Frame {
    /// A diagnostic note.
    Note(String),
    /// The child finished successfully with this payload.
    Passed(Vec<u8>),
    /// The child failed for these reasons.
    Failed(Vec<String>),
}

/// Serialises a frame: a tag byte, a little-endian u32 length, the data.
fn encode_frame(frame: &Frame) -> Vec<u8> {
    let (tag, data): (u8, Vec<u8>) = match frame {
        Frame::Note(text) => (b'N', text.as_bytes().to_vec()),
        Frame::Passed(payload) => (b'P', payload.clone()),
        Frame::Failed(lines) => (b'F', lines.join("\n").into_bytes()),
    };
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(tag);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// Parses the complete frames in `buf` (an incomplete or garbled tail is ignored).
fn decode_frames(mut buf: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while buf.len() >= 5 {
        let len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        let Some(data) = buf.get(5..5 + len) else {
            break;
        };
        let text = || String::from_utf8_lossy(data).into_owned();
        frames.push(match buf[0] {
            b'N' => Frame::Note(text()),
            b'P' => Frame::Passed(data.to_vec()),
            b'F' => Frame::Failed(text().lines().map(String::from).collect()),
            _ => break,
        });
        buf = &buf[5 + len..];
    }
    frames
}

fn send_frame(mut pipe: &File, frame: &Frame) {
    // If the parent is gone there is nobody to report to.
    let _ = pipe.write_all(&encode_frame(frame));
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// How a child [`Process`] ended.
pub enum Exit {
    /// It ran to the end and reported a result.
    Finished {
        /// Notes it attached.
        notes: Vec<String>,
        /// Its result.
        result: TestResult<Vec<u8>>,
    },
    /// It ended without reporting a result (crashed, or was killed by a signal).
    Died {
        /// Notes it attached before it died.
        notes: Vec<String>,
        /// How it ended.
        status: WaitStatus,
    },
    /// It did not end before the deadline and was killed.
    TimedOut {
        /// Notes it attached before it was killed.
        notes: Vec<String>,
        /// The (scaled) deadline it missed.
        timeout: Duration,
        /// Where each of its processes was when it was killed.
        diagnosis: Vec<String>,
    },
}

/// A forked child process running a closure, e.g. a reader blocked in `read()` while the test
/// writes. Dropping the handle kills the process.
pub struct Process {
    label: String,
    pid: Pid,
    leads_group: bool,
    pipe: File,
    received: Vec<u8>,
    status: Option<WaitStatus>,
}

impl Process {
    /// Forks a helper process that runs `body` and reports its result (the payload bytes it
    /// returns, or its failure). `label` names it in diagnostics ("reader", "writer 2").
    ///
    /// `body` runs in the child with a fresh [`Ctx`]; anything it captures is a copy. Do not
    /// move another [`Process`] handle into it (the copy would kill that process when dropped).
    pub fn spawn<F>(ctx: &Ctx, label: &str, body: F) -> TestResult<Process>
    where
        F: FnOnce(&Ctx) -> TestResult<Vec<u8>>,
    {
        Process::spawn_inner(ctx, label, false, body)
    }

    /// Like [`Process::spawn`], but the child leads a new process group, so that it can be
    /// killed together with every helper it forks.
    pub fn spawn_group<F>(ctx: &Ctx, label: &str, body: F) -> TestResult<Process>
    where
        F: FnOnce(&Ctx) -> TestResult<Vec<u8>>,
    {
        Process::spawn_inner(ctx, label, true, body)
    }

    fn spawn_inner<F>(ctx: &Ctx, label: &str, leads_group: bool, body: F) -> TestResult<Process>
    where
        F: FnOnce(&Ctx) -> TestResult<Vec<u8>>,
    {
        let (read_end, write_end) = sys::pipe().context("pipe")?;
        match sys::fork().context("fork")? {
            Fork::Child => {
                drop(read_end);
                if leads_group {
                    let _ = sys::setpgid(0, 0);
                }
                let child_ctx = Ctx {
                    timeout_scale: ctx.timeout_scale,
                    report: Some(write_end),
                    only: ctx.only.clone(),
                };
                let result = panic::catch_unwind(AssertUnwindSafe(|| body(&child_ctx)))
                    .unwrap_or_else(|_| Err(Failure::new(take_panic_message())));
                let frame = match result {
                    Ok(payload) => Frame::Passed(payload),
                    Err(failure) => Frame::Failed(failure.lines),
                };
                if let Some(pipe) = &child_ctx.report {
                    send_frame(pipe, &frame);
                }
                sys::exit_immediately(0)
            }
            Fork::Parent(pid) => {
                drop(write_end);
                if leads_group {
                    // Also done by the child; doing it here too closes the race where we would
                    // signal the group before the child got to run.
                    let _ = sys::setpgid(pid, pid);
                }
                let process = Process {
                    label: label.to_string(),
                    pid,
                    leads_group,
                    pipe: read_end,
                    received: Vec::new(),
                    status: None,
                };
                sys::set_nonblocking(process.pipe.as_fd()).context("set O_NONBLOCK on a pipe")?;
                Ok(process)
            }
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The name given at spawn time.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Reads whatever the child has sent so far.
    fn pump(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.pipe.read(&mut buf) {
                Ok(0) | Err(_) => break, // EOF, or EAGAIN: nothing more for now
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Has the child ended? (Never blocks.)
    pub fn is_finished(&mut self) -> bool {
        self.pump();
        if self.status.is_none() {
            match sys::wait_pid(self.pid, false) {
                Ok(None) => {}
                Ok(Some((_, status))) => self.status = Some(status),
                // ECHILD: somebody else reaped it; treat it as gone.
                Err(_) => self.status = Some(WaitStatus::Exited(-1)),
            }
            if self.status.is_some() {
                self.pump();
            }
        }
        self.status.is_some()
    }

    /// Sends signal `sig` to the child.
    pub fn signal(&self, sig: libc::c_int) -> TestResult {
        sys::kill(self.pid, sig).context(format!("kill({}, {})", self.label, sys::signal_name(sig)))
    }

    /// Waits until the child is asleep in the kernel in an interruptible wait (state `S` in
    /// `/proc/<pid>/stat`), i.e. blocked in the call under test. Waits 200 ms first, so that
    /// the child certainly got to make the call.
    ///
    /// Fails if the child finishes instead (it should have blocked), or if it is still not
    /// sleeping after 5 s × scale (e.g. stuck in an uninterruptible `D` wait).
    pub fn wait_until_blocked(&mut self, ctx: &Ctx) -> TestResult {
        std::thread::sleep(Duration::from_millis(200));
        let timeout = ctx.scaled(Duration::from_secs(5));
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_finished() {
                return Err(Failure::new(format!(
                    "{} finished although it should still be blocked: {}",
                    self.label,
                    self.summary()
                )));
            }
            let state = procfs::stat(self.pid).map(|s| s.state);
            if state == Some('S') {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let hint = if state == Some('D') {
                    " (uninterruptible sleep: the driver's wait cannot be interrupted by signals)"
                } else {
                    ""
                };
                return Err(Failure::new(format!(
                    "{} did not block within {}: {}{hint}",
                    self.label,
                    seconds(timeout),
                    procfs::describe(self.pid)
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// One line saying how a finished child ended.
    fn summary(&self) -> String {
        for frame in decode_frames(&self.received) {
            match frame {
                Frame::Passed(_) => return "it completed successfully".to_string(),
                Frame::Failed(lines) => return format!("it failed: {}", lines.join("; ")),
                Frame::Note(_) => {}
            }
        }
        match self.status {
            Some(status) => format!("it {status}"),
            None => "it is still running".to_string(),
        }
    }

    /// Waits up to `base_timeout` × scale for the child to end; kills it if it does not.
    pub fn wait(self, ctx: &Ctx, base_timeout: Duration) -> Exit {
        let timeout = ctx.scaled(base_timeout);
        self.wait_until(Instant::now() + timeout)
    }

    /// Waits until `deadline` (an absolute time, not scaled) for the child to end; kills it if
    /// it does not.
    pub fn wait_until(mut self, deadline: Instant) -> Exit {
        let timeout = deadline.saturating_duration_since(Instant::now());
        while !self.is_finished() {
            let now = Instant::now();
            if now >= deadline {
                let diagnosis = self.diagnose();
                self.kill_and_reap();
                return Exit::TimedOut {
                    notes: self.notes(),
                    timeout,
                    diagnosis,
                };
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            // Wakes up early when the child sends something; errors just mean "look again".
            let _ = sys::poll(self.pipe.as_fd(), libc::POLLIN, slice.as_millis() as i32);
        }
        let notes = self.notes();
        for frame in decode_frames(&self.received) {
            match frame {
                Frame::Passed(payload) => {
                    return Exit::Finished {
                        notes,
                        result: Ok(payload),
                    }
                }
                Frame::Failed(lines) => {
                    let result = Err(Failure::from_lines(lines));
                    return Exit::Finished { notes, result };
                }
                Frame::Note(_) => {}
            }
        }
        let status = self.status.unwrap_or(WaitStatus::Exited(-1));
        Exit::Died { notes, status }
    }

    /// Waits like [`Process::wait`] and turns every outcome but success into a failure that
    /// names the child. The child's notes are forwarded to `ctx`.
    pub fn join(self, ctx: &Ctx, base_timeout: Duration) -> TestResult<Vec<u8>> {
        let deadline = Instant::now() + ctx.scaled(base_timeout);
        self.join_until(ctx, deadline)
    }

    /// Like [`Process::join`], with an absolute deadline (not scaled).
    pub fn join_until(self, ctx: &Ctx, deadline: Instant) -> TestResult<Vec<u8>> {
        let label = self.label.clone();
        let forward = |notes: Vec<String>| {
            for note in notes {
                ctx.note(format!("{label}: {note}"));
            }
        };
        match self.wait_until(deadline) {
            Exit::Finished { notes, result } => {
                forward(notes);
                result.map_err(|failure| failure.context(&label))
            }
            Exit::Died { notes, status } => {
                forward(notes);
                Err(Failure::new(format!(
                    "{label} {status} before reporting a result"
                )))
            }
            Exit::TimedOut {
                notes,
                timeout,
                diagnosis,
            } => {
                forward(notes);
                let mut lines = vec![format!(
                    "{label} did not finish within {}; killed it",
                    seconds(timeout)
                )];
                lines.extend(diagnosis);
                Err(Failure::from_lines(lines))
            }
        }
    }

    fn notes(&self) -> Vec<String> {
        decode_frames(&self.received)
            .into_iter()
            .filter_map(|frame| match frame {
                Frame::Note(text) => Some(text),
                _ => None,
            })
            .collect()
    }

    /// Where the child (and, for a group leader, every process of its group) is right now.
    fn diagnose(&self) -> Vec<String> {
        let pids = if self.leads_group {
            procfs::group_members(self.pid)
        } else {
            vec![self.pid]
        };
        pids.into_iter().map(procfs::describe).collect()
    }

    /// Kills the child (with its group, if it leads one) and reaps it, giving up after 5 s if
    /// it cannot be killed (stuck in an uninterruptible sleep).
    fn kill_and_reap(&mut self) {
        if self.status.is_some() {
            return;
        }
        let target = if self.leads_group {
            -self.pid
        } else {
            self.pid
        };
        let _ = sys::kill(target, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

// ---------------------------------------------------------------------------------------------
// Running tests
// ---------------------------------------------------------------------------------------------

/// One test of a suite.
#[derive(Clone, Copy)]
pub struct TestCase {
    /// Its KTAP name (snake_case).
    pub name: &'static str,
    /// Its deadline before scaling.
    pub timeout: Duration,
    /// The test itself; runs in its own process.
    pub run: fn(&Ctx) -> TestResult,
    /// If this test fails, the rest of the suite cannot run and is skipped.
    pub setup: bool,
}

impl TestCase {
    /// A test with the default deadline (10 s × scale).
    pub const fn new(name: &'static str, run: fn(&Ctx) -> TestResult) -> TestCase {
        TestCase {
            name,
            timeout: Duration::from_secs(10),
            run,
            setup: false,
        }
    }

    /// The same test with deadline `timeout` (before scaling).
    pub const fn timeout(self, timeout: Duration) -> TestCase {
        TestCase { timeout, ..self }
    }

    /// The same test, marked as the suite's setup step.
    pub const fn setup(self) -> TestCase {
        TestCase {
            setup: true,
            ..self
        }
    }
}

/// The outcome of one isolated test.
pub struct Outcome {
    /// Did it pass?
    pub ok: bool,
    /// A KTAP directive for the result line (`timeout`).
    pub directive: Option<String>,
    /// Diagnostic lines (notes, then the reasons for a failure).
    pub diagnostics: Vec<String>,
}

/// Runs `body` in a new process group with a deadline of `base_timeout` × scale; afterwards
/// kills whatever is left of the group and reaps it.
pub fn run_isolated(
    ctx: &Ctx,
    name: &str,
    base_timeout: Duration,
    body: fn(&Ctx) -> TestResult,
) -> Outcome {
    let process = match Process::spawn_group(ctx, name, move |ctx| body(ctx).map(|()| Vec::new())) {
        Ok(process) => process,
        Err(failure) => {
            return Outcome {
                ok: false,
                directive: None,
                diagnostics: failure.lines,
            }
        }
    };
    let pgid = process.pid();
    let outcome = match process.wait(ctx, base_timeout) {
        Exit::Finished {
            notes,
            result: Ok(_),
        } => Outcome {
            ok: true,
            directive: None,
            diagnostics: notes,
        },
        Exit::Finished {
            mut notes,
            result: Err(failure),
        } => {
            notes.extend(failure.lines);
            Outcome {
                ok: false,
                directive: None,
                diagnostics: notes,
            }
        }
        Exit::Died { mut notes, status } => {
            notes.push(format!(
                "the test process {status} before reporting a result"
            ));
            Outcome {
                ok: false,
                directive: None,
                diagnostics: notes,
            }
        }
        Exit::TimedOut {
            mut notes,
            timeout,
            diagnosis,
        } => {
            notes.push(format!(
                "did not finish within {}; killed its processes, which were:",
                seconds(timeout)
            ));
            notes.extend(diagnosis);
            Outcome {
                ok: false,
                directive: Some("timeout".to_string()),
                diagnostics: notes,
            }
        }
    };
    let mut outcome = outcome;
    let survivors = clean_up_group(pgid);
    if !survivors.is_empty() {
        // Typically stuck in an uninterruptible wait; they may still hold the device open or
        // steal data from later tests, so the test that left them fails.
        outcome.ok = false;
        outcome.diagnostics.push(format!(
            "{} of its processes could not be killed:",
            survivors.len()
        ));
        outcome
            .diagnostics
            .extend(survivors.into_iter().map(procfs::describe));
    }
    outcome
}

/// Kills leftover helpers of a finished test (they are re-parented to us, PID 1) and reaps
/// them. Returns the processes that are still alive after 2 seconds.
fn clean_up_group(pgid: Pid) -> Vec<Pid> {
    let _ = sys::kill(-pgid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !sys::reap_exited_children() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    procfs::group_members(pgid)
}

/// Counts of a suite's results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of tests.
    pub total: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests skipped because the setup failed.
    pub skipped: usize,
}

impl Summary {
    /// Did every test run and pass?
    pub fn passed(&self) -> bool {
        self.failed == 0 && self.skipped == 0
    }
}

/// Runs a whole suite: its KTAP subtest header, then [`run_tests`]. Returns `(passed, one-line
/// summary)`, as the suites' `run` functions do.
pub fn run_suite(
    ctx: &Ctx,
    out: &ktap::Writer,
    name: &str,
    tests: &[TestCase],
    recover: Option<fn(&Ctx) -> TestResult>,
) -> (bool, String) {
    out.version();
    out.subtest(name);
    let tests = select(tests, ctx.selected());
    if let (true, Some(only)) = (tests.is_empty(), ctx.selected()) {
        out.plan(0);
        return (false, format!("{name}: no test named {only:?}"));
    }
    let summary = run_tests(ctx, out, &tests, recover);
    let text = format!(
        "{name}: {} tests, {} failed, {} skipped",
        summary.total, summary.failed, summary.skipped
    );
    (summary.passed(), text)
}

/// The tests of a suite to run: all, or only the one named `only` (none if it has no such test).
fn select(tests: &[TestCase], only: Option<&str>) -> Vec<TestCase> {
    tests
        .iter()
        .filter(|t| only.is_none_or(|o| t.name == o))
        .copied()
        .collect()
}

/// Runs `tests` one after the other, each isolated, printing the plan, diagnostics and results
/// with `out`. After a failed test `recover` (if any) runs to bring the device back to a known
/// state for the next test.
pub fn run_tests(
    ctx: &Ctx,
    out: &ktap::Writer,
    tests: &[TestCase],
    recover: Option<fn(&Ctx) -> TestResult>,
) -> Summary {
    out.plan(tests.len());
    let mut summary = Summary {
        total: tests.len(),
        ..Summary::default()
    };
    let mut skip_reason: Option<String> = None;
    for (index, test) in tests.iter().enumerate() {
        let number = index + 1;
        if let Some(reason) = &skip_reason {
            summary.skipped += 1;
            out.result(true, number, test.name, Some(&format!("SKIP {reason}")));
            continue;
        }
        let outcome = run_isolated(ctx, test.name, test.timeout, test.run);
        for line in &outcome.diagnostics {
            out.diag(&format!("{}: {line}", test.name));
        }
        out.result(outcome.ok, number, test.name, outcome.directive.as_deref());
        if outcome.ok {
            continue;
        }
        summary.failed += 1;
        if test.setup {
            skip_reason = Some(format!("{} failed", test.name));
        } else if let Some(recover) = recover {
            let recovery = run_isolated(ctx, "recover", Duration::from_secs(10), recover);
            for line in &recovery.diagnostics {
                out.diag(&format!("recover: {line}"));
            }
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frames = vec![
            Frame::Note("hello".to_string()),
            Frame::Note(String::new()),
            Frame::Passed(vec![0, 1, 2, 255]),
            Frame::Failed(vec![
                "a: expected 1, got 2".to_string(),
                "second".to_string(),
            ]),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(encode_frame).collect();
        assert_eq!(decode_frames(&bytes), frames);
    }

    #[test]
    fn incomplete_frames_are_ignored() {
        let mut bytes = encode_frame(&Frame::Note("kept".to_string()));
        let partial = encode_frame(&Frame::Passed(vec![7; 100]));
        bytes.extend_from_slice(&partial[..50]);
        assert_eq!(decode_frames(&bytes), [Frame::Note("kept".to_string())]);
        assert_eq!(decode_frames(&[b'X', 0, 0, 0, 0]), []);
    }

    #[test]
    fn a_suite_runs_all_its_tests_or_the_one_named() {
        fn pass(_: &Ctx) -> TestResult {
            Ok(())
        }
        let tests = [TestCase::new("a", pass), TestCase::new("b", pass)];
        let names = |only| {
            select(&tests, only)
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(None), ["a", "b"]);
        assert_eq!(names(Some("b")), ["b"]);
        assert!(names(Some("c")).is_empty());
    }

    fn check_eq_helper(got: u32, expected: u32) -> TestResult {
        ensure_eq!(got, expected, "value of {}", "x");
        Ok(())
    }

    #[test]
    fn ensure_eq_explains() {
        assert!(check_eq_helper(1, 1).is_ok());
        assert_eq!(
            check_eq_helper(2, 1).unwrap_err().to_string(),
            "value of x: expected 1, got 2"
        );
    }

    #[test]
    fn errno_expectations() {
        assert!(expect_errno::<usize>(Err(Errno::EAGAIN), Errno::EAGAIN, "read").is_ok());
        assert_eq!(
            expect_errno::<usize>(Err(Errno::EINVAL), Errno::EAGAIN, "read")
                .unwrap_err()
                .to_string(),
            "read: expected EAGAIN, got EINVAL"
        );
        assert_eq!(
            expect_errno(Ok(3usize), Errno::EAGAIN, "read")
                .unwrap_err()
                .to_string(),
            "read: expected EAGAIN, but it succeeded (returned 3)"
        );
        assert_eq!(
            expect_errno_in::<()>(
                Err(Errno(libc::EPERM)),
                &[Errno::EBUSY, Errno::EAGAIN],
                "rmmod"
            )
            .unwrap_err()
            .to_string(),
            "rmmod: expected EBUSY or EAGAIN, got EPERM"
        );
    }

    #[test]
    fn byte_comparison_points_at_the_difference() {
        assert!(ensure_bytes(b"abc", b"abc", "data").is_ok());
        let err = ensure_bytes(b"abX", b"abc", "data").unwrap_err();
        assert_eq!(
            err.lines(),
            ["data: first difference at offset 2: expected [63] got [58]"]
        );
        let err = ensure_bytes(b"ab", b"abc", "data").unwrap_err();
        assert_eq!(
            err.lines(),
            [
                "data: expected 3 bytes, got 2",
                "data: the first 2 bytes match; expected tail [63] got tail []"
            ]
        );
    }

    #[test]
    fn context_prefixes_every_line() {
        let failure = Failure::new("one\ntwo").context("reader");
        assert_eq!(failure.lines(), ["reader: one", "reader: two"]);
        let result: SysResult<()> = Err(Errno::ENOTTY);
        assert_eq!(
            result.context("GET_CAPACITY").unwrap_err().to_string(),
            "GET_CAPACITY failed: ENOTTY"
        );
    }

    #[test]
    fn hex_is_truncated() {
        assert_eq!(hex(&[1, 2]), "[01 02]");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(hex(&[0; 20]), format!("[{} ...]", vec!["00"; 16].join(" ")));
    }
}
