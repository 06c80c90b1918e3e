//! `cargo xtask bench nvme`: `nvme_lite` against Debian's C `nvme` driver, per architecture, in
//! one boot each.
//!
//! The guest side is `ktest.bench=nvme` (`qemu/guest/src/bench/nvme.rs`): two identical QEMU
//! NVMe controllers (the test boots' pair, `nvmedisk.rs`), 4 KiB random reads at QD1 and QD32
//! and 128 KiB sequential reads through Linux AIO with `O_DIRECT`, first `nvme_lite` on one
//! controller and `nvme` on the other (`ours-c`), then `nvme` on both (`c-c`, the harness's own
//! noise), controllers swapped halfway through each. This side boots, parses the guest's
//! `bench: nvme pair=.. round=.. <workload> <side> ctrl=.. <value> <unit>` lines and prints
//! every round, the geometric mean per side, the ratios and the modules' `.text` sizes.
//!
//! A benchmark, not a test: nothing here passes or fails on a figure.

use crate::kbuild::Built;
use crate::kernel::Kernel;
use crate::qemu::{self, Boot};
use crate::util::{self, cmd, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Rounds per pairing (even: the controllers swap after half).
    pub rounds: u32,
    /// Milliseconds per measurement.
    pub millis: u32,
    /// `-icount <this>` (e.g. `shift=0,sleep=on`) instead of the host's clock.
    pub icount: Option<String>,
    /// The guest CPU the measuring thread is pinned to (default: none).
    pub cpu: Option<u32>,
}

/// The workloads in display order, as the guest names them.
const WORKLOADS: [&str; 3] = ["randread-4k-qd1", "randread-4k-qd32", "seqread-128k-qd1"];

/// Which figures: (pair, workload, side).
type Key = (String, String, String);

/// One measurement: (round, controller, value).
type Round = (u32, u32, f64);

/// Every figure: (pair, workload, side) → rounds in order; and the units.
#[derive(Default, Debug)]
struct Figures {
    values: BTreeMap<Key, Vec<Round>>,
    units: BTreeMap<String, String>,
}

/// Runs the benchmark on `kernel`; prints its summary and returns the summary lines.
pub fn nvme(kernel: &Kernel, built: &[Built], o: &Options) -> Result<Vec<String>> {
    let arch = kernel.arch;
    let modules: Vec<Built> = built
        .iter()
        .filter(|b| b.name == "nvme_lite")
        .cloned()
        .collect();
    // The initramfs brings the stock modules; the C driver must be among them.
    let stock = crate::testrun::stock_modules(kernel)?;
    if !stock.iter().any(|b| b.name == "nvme") {
        return Err(format!("{}: Debian's nvme.ko not found", kernel.label));
    }
    let runner = crate::testrun::build_guest(arch)?;
    let label = format!("{}-bench", kernel.label);
    let initrd = crate::testrun::initramfs(kernel, &label, &modules, &runner)?;
    let image = crate::testrun::boot_image(kernel)?;
    let dir = util::root().join("target/qemu").join(&label);
    let log = dir.join("nvme.log");
    util::step(&format!(
        "qemu: {} bench nvme ({} rounds x 2 pairings x 3 workloads x 2 sides x {} ms, {}); \
         serial log {}",
        kernel.label,
        o.rounds,
        o.millis,
        o.icount
            .as_ref()
            .map_or("realtime".into(), |i| format!("-icount {i}")),
        log.display()
    ));
    let mut extra_args =
        crate::nvmedisk::prepare(arch, &dir.join("nvme.img")).map_err(|e| e.to_string())?;
    if let Some(icount) = &o.icount {
        extra_args.extend(["-icount".into(), icount.clone()]);
    }
    let started = Instant::now();
    let measurements = u64::from(o.rounds) * 12;
    let out = qemu::run(&Boot {
        arch,
        kernel: image,
        initrd,
        append: format!(
            "loglevel=3 ktest.bench=nvme ktest.bench_rounds={} ktest.bench_ms={}{}",
            o.rounds,
            o.millis,
            o.cpu
                .map_or(String::new(), |c| format!(" ktest.bench_cpu={c}"))
        ),
        memory_mb: 1024,
        cpus: 2,
        timeout: Duration::from_secs(300 + 10 * measurements * u64::from(o.millis) / 1000),
        log: log.clone(),
        interactive: false,
        extra_args,
    })
    .map_err(|e| e.to_string())?;
    eprintln!("    {:.1} s", started.elapsed().as_secs_f64());
    let (figures, errors, done) = parse(&out.serial);
    let mut lines = summary(&kernel.label, &figures);
    lines.push(text_sizes(kernel, &[modules, stock].concat()));
    let clean_log = super::report(&kernel.label, &mut lines, &errors, done, &out, &log);
    if !done || !errors.is_empty() || figures.values.is_empty() || !clean_log {
        return Err(format!(
            "bench nvme on {} did not complete cleanly; see {}",
            kernel.label,
            log.display()
        ));
    }
    Ok(lines)
}

/// The guest's figures, its `bench: error:` lines, and whether it printed `bench: done`.
fn parse(serial: &str) -> (Figures, Vec<String>, bool) {
    let mut figures = Figures::default();
    let mut errors = Vec::new();
    let mut done = false;
    for line in serial.lines() {
        let Some(rest) = line.trim_end().strip_prefix("bench: ") else {
            continue;
        };
        if rest == "done" {
            done = true;
        } else if let Some(e) = rest.strip_prefix("error: ") {
            errors.push(e.to_string());
        } else if let Some(f) = parse_line(rest) {
            let (pair, round, workload, side, ctrl, value, unit) = f;
            figures.units.insert(workload.clone(), unit);
            figures
                .values
                .entry((pair, workload, side))
                .or_default()
                .push((round, ctrl, value));
        }
    }
    (figures, errors, done)
}

type Line = (String, u32, String, String, u32, f64, String);

/// `nvme pair=ours-c round=1 randread-4k-qd1 nvme_lite ctrl=0 5123.4 IOPS`.
fn parse_line(line: &str) -> Option<Line> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let ["nvme", pair, round, workload, side, ctrl, value, unit] = w.as_slice() else {
        return None;
    };
    Some((
        pair.strip_prefix("pair=")?.to_string(),
        round.strip_prefix("round=")?.parse().ok()?,
        workload.to_string(),
        side.to_string(),
        ctrl.strip_prefix("ctrl=")?.parse().ok()?,
        value.parse().ok()?,
        unit.to_string(),
    ))
}

fn geomean(values: &[f64]) -> f64 {
    let logs: f64 = values.iter().map(|v| v.ln()).sum();
    (logs / values.len() as f64).exp()
}

/// A line per pairing, workload and side (geometric mean, every round with its controller),
/// then per workload the ratio ours/C and the C-vs-C ratio beside it.
fn summary(label: &str, f: &Figures) -> Vec<String> {
    let mut lines = Vec::new();
    let mean = |pair: &str, w: &str, side: &str| {
        f.values
            .get(&(pair.into(), w.into(), side.into()))
            .map(|v| geomean(&v.iter().map(|r| r.2).collect::<Vec<_>>()))
    };
    for w in WORKLOADS {
        let unit = f.units.get(w).map_or("", String::as_str);
        for (pair, side) in [
            ("ours-c", "nvme_lite"),
            ("ours-c", "nvme"),
            ("c-c", "nvme-a"),
            ("c-c", "nvme-b"),
        ] {
            let Some(rounds) = f.values.get(&(pair.into(), w.into(), side.into())) else {
                continue;
            };
            let each: Vec<String> = rounds
                .iter()
                .map(|(_, c, v)| format!("{v:.0}@{c}"))
                .collect();
            lines.push(format!(
                "{label:7} {w:17} {pair:6} {side:9} {:9.1} {unit:4} geomean (rounds, value@controller: {})",
                mean(pair, w, side).unwrap_or(f64::NAN),
                each.join(" ")
            ));
        }
    }
    for w in WORKLOADS {
        let ratio = |pair, a, b| Some(mean(pair, w, a)? / mean(pair, w, b)?);
        if let Some(r) = ratio("ours-c", "nvme_lite", "nvme") {
            let noise =
                ratio("c-c", "nvme-a", "nvme-b").map_or("n/a".into(), |n: f64| format!("{n:.3}"));
            lines.push(format!(
                "{label}: {w:17} ratio nvme_lite/nvme = {r:.3}   (noise: C-vs-C nvme-a/nvme-b = {noise})"
            ));
        }
    }
    lines
}

/// `.text` (every `.text*` section, `size -A`) of `nvme_lite.ko` and of `nvme.ko` +
/// `nvme-core.ko`.
fn text_sizes(kernel: &Kernel, modules: &[Built]) -> String {
    let size = |name: &str| -> Option<u64> {
        let ko = &modules.iter().find(|m| m.name == name)?.ko;
        text_size(kernel, ko)
    };
    let kb = |v: Option<u64>| v.map_or("?".into(), |v| format!("{:.1} KB", v as f64 / 1000.0));
    let c = size("nvme").zip(size("nvme_core")).map(|(a, b)| a + b);
    format!(
        "{}: .text nvme_lite.ko {}; nvme.ko + nvme-core.ko {} ({} + {})",
        kernel.label,
        kb(size("nvme_lite")),
        kb(c),
        kb(size("nvme")),
        kb(size("nvme_core"))
    )
}

fn text_size(kernel: &Kernel, ko: &Path) -> Option<u64> {
    let out =
        util::output(cmd(&format!("{}size", kernel.arch.cross_compile()), ["-A"]).arg(ko)).ok()?;
    Some(
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w.len() >= 2 && (w[0] == ".text" || w[0].starts_with(".text.")))
            .filter_map(|w| w[1].parse::<u64>().ok())
            .sum(),
    )
}

/// `bench nvme` over the given architectures: one boot each, then every summary again.
pub fn run(arches: Vec<(Kernel, Vec<Built>)>, o: &Options) -> Result {
    let mut all = Vec::new();
    let mut failed = Vec::new();
    for (kernel, built) in &arches {
        match nvme(kernel, built, o) {
            Ok(lines) => all.extend(lines),
            Err(e) => failed.push(e),
        }
    }
    if arches.len() > 1 {
        println!("---- bench nvme: summary ----");
        for l in &all {
            println!("{l}");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_computes_ratios() {
        let serial = "bench: nvme: 2 rounds\n\
            bench: nvme pair=ours-c round=1 randread-4k-qd1 nvme_lite ctrl=0 100.0 IOPS\n\
            bench: nvme pair=ours-c round=1 randread-4k-qd1 nvme ctrl=1 50.0 IOPS\n\
            bench: nvme pair=ours-c round=2 randread-4k-qd1 nvme ctrl=0 200.0 IOPS\n\
            bench: nvme pair=ours-c round=2 randread-4k-qd1 nvme_lite ctrl=1 400.0 IOPS\n\
            bench: nvme pair=c-c round=1 randread-4k-qd1 nvme-a ctrl=0 10.0 IOPS\n\
            bench: nvme pair=c-c round=1 randread-4k-qd1 nvme-b ctrl=1 10.0 IOPS\n\
            bench: done\n";
        let (f, errors, done) = parse(serial);
        assert!(done && errors.is_empty());
        let ours = &f.values[&(
            "ours-c".into(),
            "randread-4k-qd1".into(),
            "nvme_lite".into(),
        )];
        assert_eq!(ours, &[(1, 0, 100.0), (2, 1, 400.0)]);
        let lines = summary("x86_64", &f);
        // geomean(100, 400) = 200, geomean(50, 200) = 100.
        assert!(
            lines
                .last()
                .unwrap()
                .contains("ratio nvme_lite/nvme = 2.000")
                && lines.last().unwrap().contains("nvme-a/nvme-b = 1.000"),
            "{lines:#?}"
        );
    }
}
