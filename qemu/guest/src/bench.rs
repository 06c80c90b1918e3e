//! `ktest.bench=chardev`: streaming throughput of `/dev/rustpipe` against a kernel pipe (and,
//! when its module is in the initramfs, the C reference device `/dev/cfifo`).
//!
//! The same two programs move the bytes every time: a writer process `write()`s a fixed block
//! size until `ktest.bench_mib` MiB (default 64) are out, a reader process `read()`s them with
//! the same block size. Only the transport changes: a kernel pipe (`pipe(2)`, its default 64 KiB
//! buffer), or a device both open. The devices are loaded with the same capacity as the pipe's
//! buffer (`capacity=65536`, or `ktest.bench_capacity`), so every transport holds the same
//! amount in flight. Block sizes: 64 KiB and 4 KiB (or `ktest.bench_bs`).
//!
//! Rounds alternate the order of the transports (`a b c`, `c b a`, ...), so a slow phase of
//! the host hits each of them alike. Each round prints one line the host parses:
//!
//! ```text
//! bench: bs=65536 round=1 rustpipe 123.45 MB/s
//! ```
//!
//! With two or more CPUs the writer runs on CPU 0 and the reader on CPU 1 (pinned), so every
//! run has the same placement.
//!
//! MB/s are 10^6 bytes per second of the reader's wall-clock time, from before its first
//! `read()` to the last byte (both processes start together).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use crate::harness::{Ctx, Failure, Process, TestResult};

mod nvme;
use crate::ktap;
use crate::module;
use crate::sys;

/// What `ktest.bench*` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// Which benchmark (`chardev`, `gpio`).
    pub name: String,
    /// Rounds per block size and transport.
    pub rounds: u32,
    /// MiB per round.
    pub mib: u32,
    /// Block sizes of the reads and writes (default 64 KiB and 4 KiB).
    pub block_sizes: Vec<usize>,
    /// The capacity the devices are loaded with (default: a kernel pipe's default buffer, 16
    /// pages, 64 KiB).
    pub capacity: usize,
    /// `gpio`: set+get round trips per round.
    pub iters: u32,
    /// Milliseconds per measurement (`nvme`).
    pub millis: u32,
    /// The CPU the measuring thread runs on (`nvme`; default: wherever the scheduler puts it).
    pub cpu: Option<usize>,
}

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

pub(crate) fn emit(line: &str) {
    ktap::emit(&format!("bench: {line}"));
}

/// Runs the benchmark named `config.name`; prints `bench: ...` lines and `bench: done` (or
/// `bench: error: ...`).
pub fn run(config: &BenchConfig, timeout_scale: u32) {
    let ctx = Ctx::new(timeout_scale);
    let result = match config.name.as_str() {
        "chardev" => chardev(config, &ctx),
        "gpio" => crate::drivers::gpio_pl061::bench::run(config.rounds, config.iters, &ctx),
        "nvme" => nvme::run(config, &ctx),
        other => Err(Failure::new(format!(
            "unknown benchmark {other:?} (known: chardev, gpio, nvme)"
        ))),
    };
    match result {
        Ok(()) => emit("done"),
        Err(failure) => emit(&format!("error: {}", failure.lines().join("; "))),
    }
}

fn load(name: &str, capacity: usize) -> TestResult<bool> {
    let path = format!("/lib/modules/{name}.ko");
    if !std::path::Path::new(&path).exists() {
        return Ok(false);
    }
    module::load(&path, &format!("capacity={capacity}"))
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(true)
}

fn chardev(config: &BenchConfig, ctx: &Ctx) -> TestResult {
    if !load("chardev", config.capacity)? {
        return Err(Failure::new("/lib/modules/chardev.ko is missing"));
    }
    let mut transports = vec![Transport::Device("rustpipe"), Transport::Pipe];
    if load("cfifo", config.capacity)? {
        transports.push(Transport::Device("cfifo"));
    }
    let total = config.mib as usize * 1024 * 1024;
    emit(&format!(
        "chardev: {} MiB per round, {} rounds, capacity {}, transports {}",
        config.mib,
        config.rounds,
        config.capacity,
        transports
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for &bs in &config.block_sizes {
        for round in 1..=config.rounds {
            let mut order = transports.clone();
            if round % 2 == 0 {
                order.reverse();
            }
            for transport in order {
                let run = stream(ctx, transport, bs, total)
                    .map_err(|f| f.context(&format!("{} bs={bs}", transport.name())))?;
                let mbps = total as f64 / run.elapsed.as_secs_f64() / 1e6;
                emit(&format!(
                    "bs={bs} round={round} {} {mbps:.2} MB/s",
                    transport.name()
                ));
                emit(&format!("  ({})", run.detail));
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

/// Streams `total` bytes in blocks of `bs` through `transport`.
fn stream(ctx: &Ctx, transport: Transport, bs: usize, total: usize) -> TestResult<Run> {
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
            pin_to_cpu(1)?;
            let file = match reader_end {
                Some(f) => f?,
                None => open(&path, false)?,
            };
            let started = Instant::now();
            let calls = read_all(file, bs, total)?;
            let elapsed = started.elapsed().as_nanos() as u64;
            Ok(result(elapsed, calls))
        })?
    };
    let writer = {
        let writer_end = writer_end.as_ref().map(dup);
        Process::spawn(ctx, "writer", move |_| {
            pin_to_cpu(0)?;
            let file = match writer_end {
                Some(f) => f?,
                None => open(&path, true)?,
            };
            let calls = write_all(file, bs, total)?;
            Ok(result(0, calls))
        })?
    };
    // The children hold their own copies; ours must go, or the reader never sees EOF.
    drop(reader_end);
    drop(writer_end);
    let timeout = Duration::from_secs(300);
    let w = decode(&writer.join(ctx, timeout)?)?;
    let r = decode(&reader.join(ctx, timeout)?)?;
    Ok(Run {
        elapsed: Duration::from_nanos(r[0]),
        detail: format!(
            "reader {} reads, {}+{} context switches; writer {} writes, {}+{}",
            r[1], r[2], r[3], w[1], w[2], w[3]
        ),
    })
}

/// What one streaming run measured.
struct Run {
    /// The reader's time.
    elapsed: Duration,
    /// System calls and context switches (voluntary+involuntary) of both sides.
    detail: String,
}

/// A child's report: elapsed ns, system calls, voluntary and involuntary context switches.
fn result(elapsed: u64, calls: u64) -> Vec<u8> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    [
        elapsed,
        calls,
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    ]
    .iter()
    .flat_map(|v| v.to_le_bytes())
    .collect()
}

fn decode(payload: &[u8]) -> TestResult<[u64; 4]> {
    if payload.len() != 32 {
        return Err(Failure::new("a child sent a malformed result"));
    }
    let mut out = [0u64; 4];
    for (v, chunk) in out.iter_mut().zip(payload.chunks(8)) {
        *v = u64::from_le_bytes(chunk.try_into().unwrap());
    }
    Ok(out)
}

/// Pins the calling process to CPU `cpu` modulo the number of CPUs: the writer on CPU 0, the
/// reader on CPU 1, so that every run sees the same placement (where the scheduler would put
/// them varies from run to run, and so would the figures).
fn pin_to_cpu(cpu: usize) -> TestResult {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes the bit of a CPU number below CPU_SETSIZE inside `set`.
    unsafe { libc::CPU_SET(cpu % online, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling process.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if ret != 0 {
        return Err(Failure::new(format!(
            "sched_setaffinity(CPU {}): {}",
            cpu % online,
            sys::Errno::last()
        )));
    }
    Ok(())
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

/// Reads `total` bytes; returns the number of `read()` calls.
fn read_all(mut file: File, bs: usize, total: usize) -> TestResult<u64> {
    let mut buf = vec![0u8; bs];
    let (mut got, mut calls) = (0, 0);
    while got < total {
        let want = bs.min(total - got);
        calls += 1;
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
    Ok(calls)
}

/// Writes `total` bytes; returns the number of `write()` calls.
fn write_all(mut file: File, bs: usize, total: usize) -> TestResult<u64> {
    let buf = vec![0x5au8; bs];
    let (mut put, mut calls) = (0, 0);
    while put < total {
        let want = bs.min(total - put);
        calls += 1;
        match file.write(&buf[..want]) {
            Ok(0) => return Err(Failure::new("writer: write returned 0")),
            Ok(n) => put += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Failure::new(format!(
                    "writer: write after {put} bytes: {e}"
                )))
            }
        }
    }
    Ok(calls)
}
