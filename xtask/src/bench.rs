//! `cargo xtask bench chardev`: streaming throughput of `/dev/rustpipe` against a kernel pipe,
//! per architecture, in one boot each.
//!
//! The guest side is `ktest.bench=chardev` (`qemu/guest/src/bench.rs`): the same writer and
//! reader programs stream N MiB through `/dev/rustpipe`, a kernel pipe and `/dev/cfifo` (a C
//! kfifo misc device, `qemu/bench/cfifo/`, built here against the same kernel) with 64 KiB and
//! 4 KiB blocks, rounds alternating the order. This side builds, boots, parses the guest's
//! `bench: bs=.. round=.. <transport> <MB/s> MB/s` lines and prints medians and ratios.
//!
//! A benchmark, not a test: under TCG on shared cores only ratios within one boot mean
//! anything, and nothing here passes or fails on a figure.

pub mod nvme;

use crate::kbuild::Built;
use crate::kernel::Kernel;
use crate::qemu::{self, Boot};
use crate::util::{self, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Rounds per transport and block size.
    pub rounds: u32,
    /// MiB per round.
    pub mib: u32,
    /// Guest CPUs.
    pub cpus: u32,
    /// Block sizes, comma-separated.
    pub bs: String,
    /// Capacity of the devices.
    pub capacity: u32,
    /// `-icount shift=N`: guest time counts instructions (deterministic; host load does not
    /// matter) instead of following the host's clock.
    pub icount: Option<u32>,
}

/// MB/s of every round: (block size, transport) → rounds in order.
type Figures = BTreeMap<(usize, String), Vec<f64>>;

/// The transports in display order.
const ORDER: [&str; 3] = ["rustpipe", "pipe", "cfifo"];

/// Builds the C reference module `cfifo.ko` for `kernel`.
fn build_cfifo(kernel: &Kernel) -> Result<Built> {
    let dir = kernel.work.join("bench/cfifo");
    util::mkdir(&dir)?;
    let src = util::root().join("qemu/bench/cfifo");
    for f in ["Kbuild", "cfifo.c"] {
        let text = util::read(&src.join(f))?;
        if util::read(&dir.join(f)).ok().as_deref() != Some(text.as_str()) {
            util::write(&dir.join(f), text)?;
        }
    }
    util::step(&format!(
        "kbuild: cfifo.ko (C reference) for {}",
        kernel.release
    ));
    util::run(
        kernel
            .make()
            .arg(format!("M={}", dir.display()))
            .arg("modules"),
    )?;
    Ok(Built {
        name: "cfifo".into(),
        ko: dir.join("cfifo.ko"),
    })
}

/// Runs the chardev benchmark on `kernel` with the modules `built`; prints its summary and
/// returns the summary lines.
pub fn chardev(kernel: &Kernel, built: &[Built], o: &Options) -> Result<Vec<String>> {
    let arch = kernel.arch;
    let mut modules: Vec<Built> = built
        .iter()
        .filter(|b| b.name == "chardev")
        .cloned()
        .collect();
    modules.push(build_cfifo(kernel)?);
    let runner = crate::testrun::build_guest(arch)?;
    let label = format!("{}-bench", kernel.label);
    let initrd = crate::testrun::initramfs(kernel, &label, &modules, &runner)?;
    let image = crate::testrun::boot_image(kernel)?;
    let log = util::root()
        .join("target/qemu")
        .join(&label)
        .join("chardev.log");
    util::step(&format!(
        "qemu: {} bench chardev ({} rounds x {} MiB, {} CPU(s)); serial log {}",
        kernel.label,
        o.rounds,
        o.mib,
        o.cpus,
        log.display()
    ));
    let started = Instant::now();
    let out = qemu::run(&Boot {
        arch,
        kernel: image,
        initrd,
        append: format!(
            "loglevel=3 ktest.bench=chardev ktest.bench_rounds={} ktest.bench_mib={} \
             ktest.bench_bs={} ktest.bench_capacity={}",
            o.rounds, o.mib, o.bs, o.capacity
        ),
        memory_mb: 1024,
        cpus: o.cpus,
        timeout: Duration::from_secs(600 + 60 * u64::from(o.rounds) * u64::from(o.mib) / 8),
        log: log.clone(),
        interactive: false,
        extra_args: match o.icount {
            Some(shift) => vec!["-icount".into(), format!("shift={shift},sleep=off")],
            None => Vec::new(),
        },
    })
    .map_err(|e| e.to_string())?;
    eprintln!("    {:.1} s", started.elapsed().as_secs_f64());
    let (figures, errors, done) = parse(&out.serial);
    let mut lines = summary(&kernel.label, &figures);
    report(&kernel.label, &mut lines, &errors, done, &out, &log);
    if !done || !errors.is_empty() || figures.is_empty() {
        return Err(format!(
            "bench chardev on {} did not complete; see {}",
            kernel.label,
            log.display()
        ));
    }
    Ok(lines)
}

/// Appends to a benchmark's summary `lines` the guest's `errors`, whether it finished (`done`)
/// and any warning or oops in its kernel log, then prints them all; returns whether the kernel
/// log was clean. Every benchmark ends this way.
pub(crate) fn report(
    label: &str,
    lines: &mut Vec<String>,
    errors: &[String],
    done: bool,
    out: &qemu::BootOutput,
    log: &std::path::Path,
) -> bool {
    for e in errors {
        lines.push(format!("{label}: guest error: {e}"));
    }
    if !done {
        lines.push(format!(
            "{label}: the benchmark did not finish{}; see {}",
            if out.timed_out { " (timed out)" } else { "" },
            log.display()
        ));
    }
    let splats = qemu::splats(&out.serial);
    if !splats.is_empty() {
        lines.push(format!(
            "{label}: the kernel log has {} warning(s)/oops(es): {}",
            splats.len(),
            splats.join(" | ")
        ));
    }
    for l in lines.iter() {
        println!("{l}");
    }
    splats.is_empty()
}

/// The guest's figures, its `bench: error:` lines, and whether it printed `bench: done`.
fn parse(serial: &str) -> (Figures, Vec<String>, bool) {
    let mut figures = Figures::new();
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
        } else if let Some((key, value)) = parse_round(rest) {
            figures.entry(key).or_default().push(value);
        }
    }
    (figures, errors, done)
}

/// `bs=65536 round=1 rustpipe 123.45 MB/s` → ((65536, "rustpipe"), 123.45).
fn parse_round(line: &str) -> Option<((usize, String), f64)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let [bs, round, name, value, "MB/s"] = w.as_slice() else {
        return None;
    };
    let bs = bs.strip_prefix("bs=")?.parse().ok()?;
    round.strip_prefix("round=")?;
    Some(((bs, name.to_string()), value.parse().ok()?))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn block(bs: usize) -> String {
    if bs.is_multiple_of(1024) {
        format!("{} KiB", bs / 1024)
    } else {
        format!("{bs} B")
    }
}

/// The summary of one architecture: a line per block size and transport (median and every
/// round), then the ratios.
fn summary(label: &str, figures: &Figures) -> Vec<String> {
    let mut lines = Vec::new();
    let mut sizes: Vec<usize> = figures.keys().map(|(bs, _)| *bs).collect();
    sizes.dedup();
    sizes.sort_by(|a, b| b.cmp(a));
    let get = |bs: usize, name: &str| figures.get(&(bs, name.to_string())).map(|v| median(v));
    for &bs in &sizes {
        for name in ORDER {
            let Some(rounds) = figures.get(&(bs, name.to_string())) else {
                continue;
            };
            let each: Vec<String> = rounds.iter().map(|v| format!("{v:.1}")).collect();
            lines.push(format!(
                "{label:8} {:>6} blocks  {name:8} {:8.1} MB/s median  (rounds: {})",
                block(bs),
                median(rounds),
                each.join(" ")
            ));
        }
    }
    for other in ["pipe", "cfifo"] {
        let ratios: Vec<String> = sizes
            .iter()
            .filter_map(|&bs| Some((bs, get(bs, "rustpipe")? / get(bs, other)?)))
            .map(|(bs, r)| format!("{r:.2} ({} blocks)", block(bs)))
            .collect();
        if !ratios.is_empty() {
            lines.push(format!(
                "{label}: ratio rustpipe/{other} = {}",
                ratios.join(", ")
            ));
        }
    }
    lines
}

/// `bench chardev` over the given architectures: one boot each, then every summary again.
pub fn run(arches: Vec<(Kernel, Vec<Built>)>, o: &Options) -> Result {
    let mut all = Vec::new();
    let mut failed = Vec::new();
    for (kernel, built) in &arches {
        match chardev(kernel, built, o) {
            Ok(lines) => all.extend(lines),
            Err(e) => failed.push(e),
        }
    }
    if arches.len() > 1 {
        println!("---- bench chardev: summary ----");
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

// ---------------------------------------------------------------------------------------------
// bench gpio
// ---------------------------------------------------------------------------------------------

/// What `bench gpio` runs.
#[derive(Clone, Debug)]
pub struct GpioOptions {
    /// Rounds (each runs every side once).
    pub rounds: u32,
    /// set+get round trips per round and side.
    pub iters: u32,
    /// As in [`Options::icount`].
    pub icount: Option<u32>,
}

/// The sides of `bench gpio` in display order: our driver, the C driver, the C driver again.
const GPIO_SIDES: [&str; 3] = ["ours", "c", "c2"];

/// Builds the C `gpio-pl061` (built into Debian's arm64 kernel) as a module against `kernel`'s
/// headers, from the unmodified file of Debian's `linux-source-6.1`: only to compare `.text`.
fn build_c_pl061(kernel: &Kernel) -> Result<std::path::PathBuf> {
    let dir = kernel.work.join("bench/gpio-pl061");
    util::mkdir(&dir)?;
    let src = crate::debugkernel::source()?.join("drivers/gpio/gpio-pl061.c");
    let text = util::read(&src)?;
    if util::read(&dir.join("gpio-pl061.c")).ok().as_deref() != Some(text.as_str()) {
        util::write(&dir.join("gpio-pl061.c"), text)?;
    }
    util::write(
        &dir.join("Kbuild"),
        "# drivers/gpio/gpio-pl061.c of linux-source-6.1, as a module (bench gpio: .text only)\n\
         obj-m := gpio-pl061.o\n",
    )?;
    util::step(&format!(
        "kbuild: gpio-pl061.ko (the C driver, from {}) for {}",
        src.display(),
        kernel.release
    ));
    util::run(
        kernel
            .make()
            .arg(format!("M={}", dir.display()))
            .arg("modules"),
    )?;
    Ok(dir.join("gpio-pl061.ko"))
}

/// The bytes of a module's executable code (the sum of its `.text*` sections, `size -A`), and
/// the part of it that is Rust's `core` library (formatting, panics) and `mem*`/`strlen`.
fn text_size(kernel: &Kernel, ko: &std::path::Path) -> Result<(u64, u64)> {
    let out =
        util::output(util::cmd(&format!("{}size", kernel.arch.cross_compile()), ["-A"]).arg(ko))?;
    Ok(sum_text(&out))
}

/// Sums the `.text*` rows of `size -A` output: (all, `core` + `mem*`/`strlen`). Section names
/// carry the function's v0-mangled name, where the crate `core` appears as `4core`.
fn sum_text(size_a: &str) -> (u64, u64) {
    let (mut all, mut core) = (0, 0);
    for l in size_a.lines() {
        let mut w = l.split_whitespace();
        let (Some(name), Some(size)) = (w.next(), w.next().and_then(|s| s.parse::<u64>().ok()))
        else {
            continue;
        };
        if name == ".text" || name.starts_with(".text.") {
            all += size;
            let f = name
                .trim_start_matches(".text.")
                .trim_start_matches("unlikely.");
            if f.contains("_4core") || ["memcpy", "memset", "memmove", "strlen"].contains(&f) {
                core += size;
            }
        }
    }
    (all, core)
}

/// `bench gpio` on `kernel` (arm64): one boot, every round printed, medians, ratios, `.text`.
pub fn gpio(kernel: &Kernel, built: &[Built], o: &GpioOptions) -> Result<Vec<String>> {
    let ours: Vec<Built> = built
        .iter()
        .filter(|b| b.name == "gpio_pl061")
        .cloned()
        .collect();
    let [ours_ko] = &ours[..] else {
        return Err("gpio_pl061.ko was not built".into());
    };
    let c_ko = build_c_pl061(kernel)?;
    let runner = crate::testrun::build_guest(kernel.arch)?;
    let label = format!("{}-bench", kernel.label);
    let initrd = crate::testrun::initramfs(kernel, &label, &ours, &runner)?;
    let image = crate::testrun::boot_image(kernel)?;
    let log = util::root()
        .join("target/qemu")
        .join(&label)
        .join("gpio.log");
    util::step(&format!(
        "qemu: {} bench gpio ({} rounds x {} round trips per side); serial log {}",
        kernel.label,
        o.rounds,
        o.iters,
        log.display()
    ));
    let started = Instant::now();
    let out = qemu::run(&Boot {
        arch: kernel.arch,
        kernel: image,
        initrd,
        append: format!(
            "loglevel=3 ktest.bench=gpio ktest.bench_rounds={} ktest.bench_iters={}",
            o.rounds, o.iters
        ),
        memory_mb: 1024,
        cpus: 1,
        timeout: Duration::from_secs(600 + u64::from(o.rounds) * u64::from(o.iters) / 200),
        log: log.clone(),
        interactive: false,
        extra_args: match o.icount {
            Some(shift) => vec!["-icount".into(), format!("shift={shift},sleep=off")],
            None => Vec::new(),
        },
    })
    .map_err(|e| e.to_string())?;
    eprintln!("    {:.1} s", started.elapsed().as_secs_f64());
    let (rounds, errors, done) = parse_gpio(&out.serial);
    let mut lines = gpio_summary(&kernel.label, &rounds);
    let ((ours_text, ours_core), (c_text, _)) =
        (text_size(kernel, &ours_ko.ko)?, text_size(kernel, &c_ko)?);
    lines.push(format!(
        "{}: .text gpio_pl061.ko {ours_text} bytes ({ours_core} of them Rust's core library: \
         formatting, panics, mem*), gpio-pl061.ko (C, built as a module) {c_text} bytes; \
         ratio {:.2}",
        kernel.label,
        ours_text as f64 / c_text as f64
    ));
    let clean_log = report(&kernel.label, &mut lines, &errors, done, &out, &log);
    if !done || !errors.is_empty() || rounds.is_empty() || !clean_log {
        return Err(format!(
            "bench gpio on {} did not complete; see {}",
            kernel.label,
            log.display()
        ));
    }
    Ok(lines)
}

/// Round trips per second of every round, by side; the guest's errors; `bench: done` seen.
fn parse_gpio(serial: &str) -> (BTreeMap<String, Vec<f64>>, Vec<String>, bool) {
    let mut rounds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let (mut errors, mut done) = (Vec::new(), false);
    for line in serial.lines() {
        let Some(rest) = line.trim_end().strip_prefix("bench: ") else {
            continue;
        };
        if rest == "done" {
            done = true;
        } else if let Some(e) = rest.strip_prefix("error: ") {
            errors.push(e.to_string());
        } else if let [round, side, value, "ops/s"] =
            rest.split_whitespace().collect::<Vec<_>>()[..]
        {
            if let (Some(_), Ok(v)) = (round.strip_prefix("round="), value.parse::<f64>()) {
                rounds.entry(side.to_string()).or_default().push(v);
            }
        }
    }
    (rounds, errors, done)
}

/// A line per side (median and every round), then `ours/c`, `ours/c2` and the C-vs-C `c2/c`.
fn gpio_summary(label: &str, rounds: &BTreeMap<String, Vec<f64>>) -> Vec<String> {
    let mut lines = Vec::new();
    for side in GPIO_SIDES {
        let Some(r) = rounds.get(side) else { continue };
        let each: Vec<String> = r.iter().map(|v| format!("{v:.0}")).collect();
        lines.push(format!(
            "{label:8} gpio set+get  {side:4} {:9.0} round trips/s median  (rounds: {})",
            median(r),
            each.join(" ")
        ));
    }
    let m = |side: &str| rounds.get(side).map(|r| median(r));
    if let (Some(ours), Some(c), Some(c2)) = (m("ours"), m("c"), m("c2")) {
        lines.push(format!(
            "{label}: ratio ours/c = {:.2}, ours/c2 = {:.2}; C-vs-C c2/c = {:.2} (the harness's noise)",
            ours / c,
            ours / c2,
            c2 / c
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rounds_and_computes_ratios() {
        let serial = "noise\nbench: chardev: 64 MiB per round\n\
                      bench: bs=65536 round=1 rustpipe 100.00 MB/s\n\
                      bench: bs=65536 round=1 pipe 50.00 MB/s\n\
                      bench: bs=65536 round=2 pipe 60.00 MB/s\n\
                      bench: bs=65536 round=2 rustpipe 110.00 MB/s\n\
                      bench: bs=65536 round=3 rustpipe 90.00 MB/s\n\
                      bench: bs=65536 round=3 pipe 40.00 MB/s\n\
                      bench: done\n";
        let (figures, errors, done) = parse(serial);
        assert!(done && errors.is_empty());
        assert_eq!(figures[&(65536, "rustpipe".into())], [100.0, 110.0, 90.0]);
        let lines = summary("arm64", &figures);
        assert_eq!(
            lines.last().unwrap(),
            "arm64: ratio rustpipe/pipe = 2.00 (64 KiB blocks)"
        );
    }

    #[test]
    fn gpio_rounds_parse_into_sides_and_ratios() {
        let serial = "bench: gpio: 100 set+get round trips\n\
                      bench: round=1 ours 200.0 ops/s\n\
                      bench: round=1 c 100.0 ops/s\n\
                      bench: round=1 c2 110.0 ops/s\n\
                      bench: round=2 c2 90.0 ops/s\n\
                      bench: round=2 c 100.0 ops/s\n\
                      bench: round=2 ours 220.0 ops/s\n\
                      bench: done\n";
        let (rounds, errors, done) = parse_gpio(serial);
        assert!(done && errors.is_empty());
        assert_eq!(rounds["ours"], [200.0, 220.0]);
        let lines = gpio_summary("arm64", &rounds);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[3],
            "arm64: ratio ours/c = 2.10, ours/c2 = 2.10; C-vs-C c2/c = 1.00 (the harness's noise)"
        );
    }

    #[test]
    fn text_sections_are_summed() {
        let size_a = "x.ko  :\nsection  size  addr\n.text  1000  0\n.text.unlikely  24  0\n\
                      .text.memcpy  100  0\n.text._RNvNtCsX_4core3fmt5write  50  0\n\
                      .rodata  500  0\n.init.text  8  0\nTotal  1532\n";
        assert_eq!(sum_text(size_a), (1174, 150));
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
