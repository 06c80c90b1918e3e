//! `ktest.bench=nvme`: `nvme_lite` against Debian's C `nvme` driver on two identical QEMU NVMe
//! controllers (`xtask/src/nvmedisk.rs`), in one boot.
//!
//! Three measurements per driver and round, each `ktest.bench_ms` long (default 1 s) on the
//! whole disk, by Debian's fio (`--ioengine=libaio --direct=1`): 4 KiB random reads with one read
//! in flight (QD1) and with 32 (QD32), and 128 KiB sequential reads (QD1). Each prints one line
//! the host parses (and one with the reads and the NVMe interrupts they took, per CPU):
//!
//! ```text
//! bench: nvme pair=ours-c round=1 randread-4k-qd1 nvme_lite ctrl=0 5123.4 IOPS
//! ```
//!
//! Two pairings, one after the other: `ours-c` (`nvme_lite` on one controller, `nvme` on the
//! other) and `c-c` (`nvme` on both, the sides named `nvme-a` and `nvme-b`: the harness's own
//! noise). QEMU's two controllers are not equally fast, so in each pairing the sides swap
//! controllers after half the rounds (for `ours-c` by unbinding both and binding each driver to
//! the other's controller); rounds alternate which side goes first.

use std::time::Duration;

use super::{emit, BenchConfig};
use crate::devtest::Driver;
use crate::harness::{Context, Ctx, Failure, TestResult};
use crate::module;
use crate::pci;

const OURS: Driver = Driver::new("nvme_lite", "/dev/nvme_lite0n1");

/// A measurement: name, block size, reads in flight, random offsets.
struct Workload {
    name: &'static str,
    block: usize,
    depth: usize,
    random: bool,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "randread-4k-qd1",
        block: 4096,
        depth: 1,
        random: true,
    },
    Workload {
        name: "randread-4k-qd32",
        block: 4096,
        depth: 32,
        random: true,
    },
    Workload {
        name: "seqread-128k-qd1",
        block: 128 * 1024,
        depth: 1,
        random: false,
    },
];

/// Runs both pairings; unloads both drivers at the end (ours with every allocation freed).
pub fn run(config: &BenchConfig, ctx: &Ctx) -> TestResult {
    let [c0, c1] = pci::nvme_controllers()?;
    // Before any driver loads: each one may bind only its own controller.
    pci::set_override(&c0, "nvme_lite")?;
    pci::set_override(&c1, "nvme")?;
    let c_modules = module::load_stock("nvme")
        .map_err(|e| Failure::new(format!("loading Debian's nvme: {e}")))?;
    OURS.load(ctx, "")?;
    let rounds = config.rounds.max(2) & !1;
    emit(&format!(
        "nvme: {rounds} rounds x {} ms per measurement, controllers {c0} (0) and {c1} (1), \
         measuring on CPU {}",
        config.millis,
        config.cpu.map_or("any".into(), |c| c.to_string())
    ));
    let result = pairings(config, ctx, rounds, [&c0, &c1]);
    let unloaded = OURS.unload_cleanly(ctx);
    let c_unloaded = module::unload_all(&c_modules, ctx.scaled(Duration::from_secs(5)))
        .context(format!("rmmod {c_modules:?}"));
    result?;
    unloaded?;
    c_unloaded
}

fn pairings(config: &BenchConfig, ctx: &Ctx, rounds: u32, ctrl: [&str; 2]) -> TestResult {
    let period = Duration::from_millis(config.millis.into());
    // ours-c: nvme_lite starts on controller 0.
    let mut disks = [
        pci::wait_bound(ctx, ctrl[0], "nvme_lite")?,
        pci::wait_bound(ctx, ctrl[1], "nvme")?,
    ];
    let sides = ["nvme_lite", "nvme"];
    for round in 1..=rounds {
        if round == rounds / 2 + 1 {
            pci::unbind("nvme_lite", ctrl[0])?;
            pci::unbind("nvme", ctrl[1])?;
            pci::wait_unbound(ctx, ctrl[0])?;
            pci::wait_unbound(ctx, ctrl[1])?;
            let c = pci::rebind(ctx, ctrl[0], None, "nvme")?;
            let ours = pci::rebind(ctx, ctrl[1], None, "nvme_lite")?;
            disks = [ours, c];
        }
        let at = if round <= rounds / 2 { [0, 1] } else { [1, 0] };
        if round == 1 || round == rounds / 2 + 1 {
            describe(&disks);
        }
        one_round("ours-c", round, sides, &disks, at, period, config.cpu)?;
    }
    // c-c: nvme_lite's controller (1 by now) goes to the C driver too.
    pci::unbind("nvme_lite", ctrl[1])?;
    pci::wait_unbound(ctx, ctrl[1])?;
    pci::rebind(ctx, ctrl[1], None, "nvme")?;
    let by_ctrl = [
        pci::wait_bound(ctx, ctrl[0], "nvme")?,
        pci::wait_bound(ctx, ctrl[1], "nvme")?,
    ];
    for round in 1..=rounds {
        let at = if round <= rounds / 2 { [0, 1] } else { [1, 0] };
        let disks = [by_ctrl[at[0]].clone(), by_ctrl[at[1]].clone()];
        one_round(
            "c-c",
            round,
            ["nvme-a", "nvme-b"],
            &disks,
            at,
            period,
            config.cpu,
        )?;
    }
    // Leave controller 1 free again (the module unloads next).
    pci::unbind("nvme", ctrl[1])?;
    pci::wait_unbound(ctx, ctrl[1])
}

/// Prints what the block layer made of each disk: I/O scheduler, hardware queues, tags.
fn describe(disks: &[String; 2]) {
    for disk in disks {
        let name = disk.trim_start_matches("/dev/");
        let attr = |a: &str| {
            std::fs::read_to_string(format!("/sys/block/{name}/{a}"))
                .map_or("?".into(), |s| s.trim().to_string())
        };
        let hw_queues = std::fs::read_dir(format!("/sys/block/{name}/mq")).map_or(0, |d| d.count());
        emit(&format!(
            "  ({disk}: scheduler {}, {hw_queues} hardware queue(s), nr_requests {}, \
             max_sectors_kb {})",
            attr("queue/scheduler"),
            attr("queue/nr_requests"),
            attr("queue/max_sectors_kb")
        ));
    }
}

/// One round: every workload on both sides (`disks[i]` is side `i`'s disk, on controller
/// `at[i]`), odd rounds side 0 first, even rounds side 1 first.
#[allow(clippy::too_many_arguments)]
fn one_round(
    pair: &str,
    round: u32,
    sides: [&str; 2],
    disks: &[String; 2],
    at: [usize; 2],
    period: Duration,
    cpu: Option<usize>,
) -> TestResult {
    let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
    for w in &WORKLOADS {
        for i in order {
            let before = interrupts();
            let (value, unit, ios) = measure(&disks[i], w, period, cpu)
                .context(format!("{pair} round {round} {} on {}", w.name, disks[i]))?;
            let after = interrupts();
            emit(&format!(
                "nvme pair={pair} round={round} {} {} ctrl={} {value:.1} {unit}",
                w.name, sides[i], at[i]
            ));
            let per_cpu: Vec<String> = after
                .iter()
                .zip(before.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| (a - b).to_string())
                .collect();
            let total: u64 = after.iter().sum::<u64>() - before.iter().sum::<u64>();
            emit(&format!(
                "  ({ios} reads, {total} NVMe interrupts = {:.2} per read; per CPU {})",
                total as f64 / ios.max(1) as f64,
                per_cpu.join(" ")
            ));
        }
    }
    Ok(())
}

/// Interrupts of every NVMe vector so far (lines of `/proc/interrupts` naming `nvme`: both
/// drivers' queues), per CPU. Only one disk is busy at a time, so a difference is that disk's.
fn interrupts() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let cpus = text
        .lines()
        .next()
        .map_or(0, |l| l.split_whitespace().count());
    let mut sum = vec![0u64; cpus];
    for line in text.lines().skip(1).filter(|l| l.contains("nvme")) {
        let counts = line.split_whitespace().skip(1).take(cpus);
        for (s, c) in sum.iter_mut().zip(counts) {
            *s += c.parse::<u64>().unwrap_or(0);
        }
    }
    sum
}

/// Runs workload `w` on `disk` for `period` with Debian's fio (`libaio`, `O_DIRECT`, the whole
/// disk; random offsets from fio's fixed seed, so both sides of a round read the same blocks),
/// its measuring process on CPU `cpu` if given. Returns IOPS (4 KiB) or MB/s (10^6 bytes/s),
/// and the number of reads.
fn measure(
    disk: &str,
    w: &Workload,
    period: Duration,
    cpu: Option<usize>,
) -> TestResult<(f64, &'static str, u64)> {
    let mut args = vec![
        format!("--name={}", w.name),
        format!("--filename={disk}"),
        "--ioengine=libaio".into(),
        "--direct=1".into(),
        format!("--rw={}", if w.random { "randread" } else { "read" }),
        format!("--bs={}", w.block),
        format!("--iodepth={}", w.depth),
        format!("--runtime={}ms", period.as_millis()),
        "--time_based".into(),
        "--output-format=terse".into(),
    ];
    if let Some(cpu) = cpu {
        args.push(format!("--cpus_allowed={cpu}"));
    }
    let out = std::process::Command::new(FIO)
        .args(&args)
        .output()
        .context(format!("run {FIO}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(Failure::new(format!(
            "fio {args:?} failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    // Terse version 3: 5 error, 6 read KiB, 7 read bandwidth KiB/s, 8 read IOPS, 9 runtime ms
    // (1-based).
    let line = text
        .lines()
        .find(|l| l.starts_with("3;"))
        .unwrap_or_default();
    let field = |i: usize| -> Option<f64> { line.split(';').nth(i - 1)?.parse().ok() };
    let (Some(error), Some(kib), Some(iops), Some(ms)) = (field(5), field(6), field(8), field(9))
    else {
        return Err(Failure::new(format!(
            "no terse v3 line in fio's output:\n{text}"
        )));
    };
    if error != 0.0 || ms <= 0.0 {
        return Err(Failure::new(format!("fio reported error {error}:\n{text}")));
    }
    let ios = (kib * 1024.0 / w.block as f64) as u64;
    Ok(if w.block == 4096 {
        (iops, "IOPS", ios)
    } else {
        (kib * 1024.0 / (ms / 1000.0) / 1e6, "MB/s", ios)
    })
}

/// Debian's fio (`xtask/src/guesttools.rs`).
const FIO: &str = "/usr/bin/fio";
