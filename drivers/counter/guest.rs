//! Suite `counter`: `/dev/rustcount`, per-open counters read as text at file positions.
//! Loaded with `limit=1000`; the tests' additions stay below it but for the one that must not.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use crate::devtest::{self, Driver};
use crate::harness::{ensure_eq, expect_errno, run_suite, Context, Ctx, TestCase, TestResult};
use crate::ktap;
use crate::sys::{self, Errno};
use crate::uapi::{io, ior};

const DRIVER: Driver = Driver::new("counter", "/dev/rustcount");
const GET_COUNT: u32 = ior::<u64>(b'c', 1);
const RESET: u32 = io(b'c', 2);

/// The tests, in order.
pub const TESTS: [TestCase; 7] = [
    TestCase::new("load_with_limit_1000", |ctx| DRIVER.load(ctx, "limit=1000")).setup(),
    TestCase::new("counters_are_per_open_file", counters_are_per_open_file),
    TestCase::new(
        "report_reads_to_eof_and_seeks",
        report_reads_to_eof_and_seeks,
    ),
    TestCase::new("bad_input_changes_nothing", bad_input_changes_nothing),
    TestCase::new(
        "threads_sharing_a_file_lose_no_update",
        threads_sharing_a_file,
    ),
    TestCase::new("ioctls", ioctls),
    TestCase::new("unload_frees_everything", |ctx| DRIVER.unload_cleanly(ctx)),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "counter", &TESTS, None)
}

fn open() -> TestResult<File> {
    let f = OpenOptions::new().read(true).write(true).open(DRIVER.node);
    f.context(format!("open({})", DRIVER.node))
}

fn add(f: &File, text: &str) -> TestResult {
    let n = (&*f)
        .write(text.as_bytes())
        .context(format!("write({text:?})"))?;
    ensure_eq!(n, text.len(), "bytes taken by write({text:?})");
    Ok(())
}

fn report(f: &File) -> TestResult<String> {
    let mut buf = [0u8; 128];
    let n = f.read_at(&mut buf, 0).context("pread(128, 0)")?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn counters_are_per_open_file(_: &Ctx) -> TestResult {
    let (a, b) = (open()?, open()?);
    add(&a, "5\n")?;
    add(&b, "0x3")?;
    add(&b, "010")?; // octal 8
    ensure_eq!(
        report(&a)?,
        "count 5\nwrites 1\ntotal 16\n",
        "file A's report"
    );
    ensure_eq!(
        report(&b)?,
        "count 11\nwrites 2\ntotal 16\n",
        "file B's report"
    );
    Ok(())
}

fn report_reads_to_eof_and_seeks(_: &Ctx) -> TestResult {
    let mut f = open()?;
    add(&f, "7")?;
    let whole = report(&f)?;
    // `cat`-style: small reads advance the position until read returns 0.
    let (mut text, mut chunk) = (Vec::new(), [0u8; 4]);
    while let n @ 1.. = f.read(&mut chunk).context("read(4)")? {
        text.extend_from_slice(&chunk[..n]);
    }
    ensure_eq!(
        String::from_utf8_lossy(&text),
        whole,
        "the report read 4 bytes at a time"
    );
    let len = whole.len() as u64;
    ensure_eq!(
        f.seek(SeekFrom::Start(6)).context("SEEK_SET 6")?,
        6,
        "position"
    );
    let mut rest = String::new();
    f.read_to_string(&mut rest).context("read after SEEK_SET")?;
    ensure_eq!(rest, whole[6..], "the report from offset 6");
    ensure_eq!(
        f.seek(SeekFrom::End(-6)).context("SEEK_END -6")?,
        len - 6,
        "position"
    );
    expect_errno(
        sys::lseek(f.as_fd(), -1, libc::SEEK_SET),
        Errno::EINVAL,
        "lseek(-1)",
    )?;
    Ok(())
}

fn bad_input_changes_nothing(_: &Ctx) -> TestResult {
    let f = open()?;
    add(&f, "9")?;
    let before = report(&f)?;
    let total = |r: &str| r.lines().last().unwrap_or_default().to_string();
    for (text, errno) in [
        ("abc", Errno::EINVAL),
        ("-1", Errno::EINVAL),
        ("99999999999999999999", Errno(libc::ERANGE)),
        ("0x1000000000000000000000000000000", Errno::EINVAL), // longer than a number can be
        ("2000", Errno(libc::ERANGE)),                        // past limit=1000
    ] {
        expect_errno(
            (&f).write(text.as_bytes()).map_err(Errno::from),
            errno,
            format!("write({text:?})"),
        )?;
    }
    ensure_eq!(
        total(&report(&f)?),
        total(&before),
        "total after the rejected writes"
    );
    ensure_eq!((&f).write(b"").context("write(0)")?, 0, "write of nothing");
    Ok(())
}

/// One open file used by 4 threads at once: its counter needs the driver's lock.
fn threads_sharing_a_file(_: &Ctx) -> TestResult {
    let f = open()?;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..25).try_for_each(|_| (&f).write(b"1").map(drop))))
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("worker panicked"))
    })
    .context("concurrent writes")?;
    ensure_eq!(
        report(&f)?.lines().next(),
        Some("count 100"),
        "count after 4 × 25 writes"
    );
    Ok(())
}

fn ioctls(_: &Ctx) -> TestResult {
    let f = open()?;
    add(&f, "4")?;
    let mut count = 0u64;
    sys::ioctl_with(f.as_fd(), GET_COUNT, &mut count).context("GET_COUNT")?;
    ensure_eq!(count, 4, "GET_COUNT");
    sys::ioctl_none(f.as_fd(), RESET).context("RESET")?;
    sys::ioctl_with(f.as_fd(), GET_COUNT, &mut count).context("GET_COUNT after RESET")?;
    ensure_eq!(count, 0, "GET_COUNT after RESET");
    devtest::expect_enotty(
        f.as_fd(),
        &[
            ("_IO('c', 9)", io(b'c', 9)),
            ("GET_COUNT's number, wrong size", ior::<u32>(b'c', 1)),
        ],
    )
}
