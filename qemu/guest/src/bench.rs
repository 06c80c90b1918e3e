//! `ktest.bench=chardev`: streaming throughput of `/dev/rustpipe` against a kernel pipe (and,
//! when its module is in the initramfs, the C reference device `/dev/cfifo`).
//!
//! The same two programs move the bytes every time: a writer process `write()`s a fixed block
//! size until `ktest.bench_mib` MiB (default 64) are out, a reader process `read()`s them with
//! the same block size. Only the transport changes: a kernel pipe (`pipe(2)`, its default 64 KiB
//! buffer), or a device both open. The devices are loaded with the same capacity as the pipe's
//! buffer (`capacity=65536`), so every transport holds the same amount in flight.
//!
//! Rounds alternate the order of the transports (`a b c`, `c b a`, ...), so a slow phase of
//! the host hits each of them alike. Each round prints one line the host parses:
//!
//! ```text
//! bench: bs=65536 round=1 rustpipe 123.45 MB/s
//! ```
//!
//! MB/s are 10^6 bytes per second of the reader's wall-clock time, from before its first
//! `read()` to the last byte (both processes start together).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use crate::harness::{Ctx, Failure, Process, TestResult};
use crate::ktap;
use crate::module;
use crate::sys;

/// What `ktest.bench*` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// Which benchmark (`chardev`).
    pub name: String,
    /// Rounds per block size and transport.
    pub rounds: u32,
    /// MiB per round.
    pub mib: u32,
}

/// The capacity the devices are loaded with: a kernel pipe's default buffer (16 pages).
const CAPACITY: usize = 65536;

/// Block sizes of the reads and writes.
const BLOCK_SIZES: [usize; 2] = [65536, 4096];

/// A way to move bytes from the writer to the reader.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// `/dev/<name>`, a device both processes open.
    Device(&'static str),
    /// A kernel pipe.
    Pipe,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Device(name) => name,
            Transport::Pipe => "pipe",
        }
    }
}

fn emit(line: &str) {
    ktap::emit(&format!("bench: {line}"));
}

/// Runs the benchmark named `config.name`; prints `bench: ...` lines and `bench: done` (or
/// `bench: error: ...`).
pub fn run(config: &BenchConfig, timeout_scale: u32) {
    let ctx = Ctx::new(timeout_scale);
    let result = match config.name.as_str() {
        "chardev" => chardev(config, &ctx),
        other => Err(Failure::new(format!(
            "unknown benchmark {other:?} (known: chardev)"
        ))),
    };
    match result {
        Ok(()) => emit("done"),
        Err(failure) => emit(&format!("error: {}", failure.lines().join("; "))),
    }
}

fn load(name: &str) -> TestResult<bool> {
    let path = format!("/lib/modules/{name}.ko");
    if !std::path::Path::new(&path).exists() {
        return Ok(false);
    }
    module::load(&path, &format!("capacity={CAPACITY}"))
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(true)
}

fn chardev(config: &BenchConfig, ctx: &Ctx) -> TestResult {
    if !load("chardev")? {
        return Err(Failure::new("/lib/modules/chardev.ko is missing"));
    }
    let mut transports = vec![Transport::Device("rustpipe"), Transport::Pipe];
    if load("cfifo")? {
        transports.push(Transport::Device("cfifo"));
    }
    let total = config.mib as usize * 1024 * 1024;
    emit(&format!(
        "chardev: {} MiB per round, {} rounds, capacity {CAPACITY}, transports {}",
        config.mib,
        config.rounds,
        transports
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for bs in BLOCK_SIZES {
        for round in 1..=config.rounds {
            let mut order = transports.clone();
            if round % 2 == 0 {
                order.reverse();
            }
            for transport in order {
                let elapsed = stream(ctx, transport, bs, total)
                    .map_err(|f| f.context(&format!("{} bs={bs}", transport.name())))?;
                let mbps = total as f64 / elapsed.as_secs_f64() / 1e6;
                emit(&format!(
                    "bs={bs} round={round} {} {mbps:.2} MB/s",
                    transport.name()
                ));
            }
        }
    }
    for t in &transports {
        if let Transport::Device(_) = t {
            let module = if t.name() == "rustpipe" {
                "chardev"
            } else {
                t.name()
            };
            let _ = module::unload_retrying(module, Duration::from_secs(5));
        }
    }
    Ok(())
}

fn open(path: &str, write: bool) -> TestResult<File> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .open(path)
        .map_err(|e| Failure::new(format!("open {path}: {e}")))
}

/// Streams `total` bytes in blocks of `bs` through `transport`; returns the reader's time.
fn stream(ctx: &Ctx, transport: Transport, bs: usize, total: usize) -> TestResult<Duration> {
    let (reader_end, writer_end) = match transport {
        Transport::Pipe => {
            let (r, w) = sys::pipe().map_err(|e| Failure::new(format!("pipe: {e}")))?;
            (Some(r), Some(w))
        }
        Transport::Device(_) => (None, None),
    };
    let path = format!("/dev/{}", transport.name());
    let reader = {
        let path = path.clone();
        let reader_end = reader_end.as_ref().map(dup);
        Process::spawn(ctx, "reader", move |_| {
            let file = match reader_end {
                Some(f) => f?,
                None => open(&path, false)?,
            };
            let started = Instant::now();
            read_all(file, bs, total)?;
            Ok(started.elapsed().as_nanos().to_le_bytes().to_vec())
        })?
    };
    let writer = {
        let writer_end = writer_end.as_ref().map(dup);
        Process::spawn(ctx, "writer", move |_| {
            let file = match writer_end {
                Some(f) => f?,
                None => open(&path, true)?,
            };
            write_all(file, bs, total)?;
            Ok(Vec::new())
        })?
    };
    // The children hold their own copies; ours must go, or the reader never sees EOF.
    drop(reader_end);
    drop(writer_end);
    let timeout = Duration::from_secs(300);
    writer.join(ctx, timeout)?;
    let payload = reader.join(ctx, timeout)?;
    let nanos = u128::from_le_bytes(
        payload
            .try_into()
            .map_err(|_| Failure::new("reader sent a malformed result"))?,
    );
    Ok(Duration::from_nanos(nanos as u64))
}

fn dup(file: &File) -> TestResult<File> {
    // SAFETY: dup of an fd we own; the new fd is owned by the returned File.
    let fd = unsafe { libc::dup(file.as_raw_fd()) };
    if fd < 0 {
        return Err(Failure::new(format!("dup: {}", sys::Errno::last())));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn read_all(mut file: File, bs: usize, total: usize) -> TestResult {
    let mut buf = vec![0u8; bs];
    let mut got = 0;
    while got < total {
        let want = bs.min(total - got);
        match file.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Failure::new(format!(
                    "reader: end of file after {got} of {total} bytes"
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::new(format!("reader: read after {got} bytes: {e}"))),
        }
    }
    if buf[0] != 0x5a {
        return Err(Failure::new("reader: the data is not what was written"));
    }
    Ok(())
}

fn write_all(mut file: File, bs: usize, total: usize) -> TestResult {
    let buf = vec![0x5au8; bs];
    let mut put = 0;
    while put < total {
        let want = bs.min(total - put);
        match file.write(&buf[..want]) {
            Ok(0) => return Err(Failure::new("writer: write returned 0")),
            Ok(n) => put += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::new(format!("writer: write after {put} bytes: {e}"))),
        }
    }
    Ok(())
}
