//! `cargo xtask qemu-test`: the modules, the guest test runner and busybox go into an
//! initramfs; QEMU boots the kernel with it; the guest prints KTAP; the host parses it, scans the
//! kernel log for splats, checks the `.ko` files with modinfo/readelf and prints a summary.
//!
//! Two boots per architecture: the main one (self-tests and driver tests), which must end with
//! a clean kernel log, and one that panics a module on purpose and checks the exact oops.

use crate::arch::Arch;
use crate::cpio::Cpio;
use crate::guesttools;
use crate::kbuild::Built;
use crate::kernel::Kernel;
use crate::ktap::{self, Outcome};
use crate::nvmedisk;
use crate::qemu::{self, Boot};
use crate::util::{self, cmd, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One test's result, as the summary shows it.
#[derive(Clone, Debug)]
pub struct Record {
    /// `<arch>.<suite>.<test>`.
    pub name: String,
    /// Whether it passed (a skip counts as a failure: a test that did not run did not pass).
    pub passed: bool,
    /// Why it failed.
    pub notes: Vec<String>,
}

impl Record {
    fn new(label: &str, name: &str, passed: bool, notes: Vec<String>) -> Record {
        Record {
            name: format!("{label}.{name}"),
            passed,
            notes,
        }
    }

    /// A passed record with no label prefix.
    pub fn passed(name: &str) -> Record {
        Record {
            name: name.to_string(),
            passed: true,
            notes: Vec::new(),
        }
    }

    /// A failed record with no label prefix (a step that could not run).
    pub fn failed(name: &str, notes: Vec<String>) -> Record {
        Record {
            name: name.to_string(),
            passed: false,
            notes,
        }
    }
}

/// Options of a QEMU test run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only this driver's suite (plus the self-tests).
    pub driver: Option<String>,
    /// Multiplies every timeout (slow kernels).
    pub timeout_scale: u32,
    /// Names the kernel in test names and log paths: `x86_64`, `arm64`, `x86_64-debug`.
    pub label: String,
}

/// Where a run's files go: `target/qemu/<label>/`.
fn run_dir(label: &str) -> PathBuf {
    util::root().join("target/qemu").join(label)
}

/// Builds the in-guest runner (`qemu/guest`, a static musl binary).
pub fn build_guest(arch: Arch) -> Result<PathBuf> {
    util::step(&format!(
        "cargo: guest test runner for {}",
        arch.guest_target()
    ));
    util::run(
        cmd(
            "cargo",
            [
                "build",
                "--quiet",
                "--release",
                "-p",
                "guest",
                "--target",
                arch.guest_target(),
            ],
        )
        .current_dir(util::root())
        .env_remove("RUSTFLAGS"),
    )?;
    Ok(util::root()
        .join("target")
        .join(arch.guest_target())
        .join("release/ktest"))
}

/// The manifest (`Cargo.toml` text) of the driver whose package is `name`.
fn manifest(name: &str) -> Option<String> {
    let dirs = std::fs::read_dir(util::root().join("drivers")).ok()?;
    for dir in dirs.flatten() {
        let Ok(manifest) = std::fs::read_to_string(dir.path().join("Cargo.toml")) else {
            continue;
        };
        let package = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string());
        if package.as_deref() == Some(name) {
            return Some(manifest);
        }
    }
    None
}

/// The architectures whose test machine has driver `name`'s device, from its manifest:
///
/// ```toml
/// [package.metadata.ktest]
/// arches = ["arm64"]
/// ```
///
/// `None` (no such line): every architecture.
fn suite_arches(name: &str) -> Option<Vec<String>> {
    let manifest = manifest(name)?;
    let list = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("arches = "))?;
    Some(
        list.trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|a| a.trim().trim_matches('"').to_string())
            .filter(|a| !a.is_empty())
            .collect(),
    )
}

/// Whether module `name` has a suite of its own: not if its manifest says `suite = false` under
/// `[package.metadata.ktest]` (a test helper module, loaded by another driver's suite).
fn has_suite(name: &str) -> bool {
    !manifest(name).is_some_and(|m| m.lines().any(|l| l.trim() == "suite = false"))
}

/// Whether driver `name`'s suite is requested on `arch` (see [`suite_arches`]).
fn suite_runs_on(name: &str, arch: Arch) -> bool {
    suite_arches(name).is_none_or(|arches| arches.iter().any(|a| a == arch.name()))
}

/// The busybox binary for guests of `arch`.
fn busybox(arch: Arch) -> Result<PathBuf> {
    match arch {
        Arch::X86_64 => Ok(PathBuf::from("/bin/busybox")),
        Arch::Arm64 => crate::deps::file_from_package("busybox-static:arm64", "bin/busybox"),
    }
}

/// Writes the initramfs for `kernel`: `/init` (the runner), busybox, the `modules`, the
/// kernel's own modules the suites load ([`STOCK_MODULES`], with its `modules.builtin` list
/// for those it has built in), and the Debian tools the suites use ([`guesttools::TOOLS`]).
pub fn initramfs(
    kernel: &Kernel,
    label: &str,
    modules: &[Built],
    runner: &Path,
) -> Result<PathBuf> {
    let arch = kernel.arch;
    let mut c = Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
        c.dir(d, 0o755);
    }
    c.char_dev("dev/console", 0o600, 5, 1);
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    c.file("init", 0o755, &read(runner)?);
    let bb = busybox(arch)?;
    c.file("bin/busybox", 0o755, &read(&bb)?);
    for applet in [
        "sh", "ls", "cat", "dmesg", "insmod", "rmmod", "lsmod", "mount", "poweroff", "dd", "grep",
        "head", "tail", "echo", "ps", "kill", "sleep", "umount",
    ] {
        c.symlink(&format!("bin/{applet}"), "busybox");
    }
    guesttools::add(arch, &mut c)?;
    for m in modules.iter().chain(&stock_modules(kernel)?) {
        c.file(&format!("lib/modules/{}.ko", m.name), 0o644, &read(&m.ko)?);
    }
    if let Some(list) = builtin_modules(kernel) {
        c.file("lib/modules/modules.builtin", 0o644, &read(&list)?);
    }
    let path = run_dir(label).join("initramfs.cpio");
    util::write(&path, c.finish())?;
    Ok(path)
}

/// The image QEMU boots: on x86_64 the ELF vmlinux inside the bzImage (skips ~4 s of XZ
/// decompression under TCG), extracted once and cached next to it.
pub fn boot_image(kernel: &Kernel) -> Result<PathBuf> {
    let image = kernel.image.clone().ok_or_else(|| {
        format!(
            "no bootable image known for {}: pass --kernel-image",
            kernel.release
        )
    })?;
    if kernel.arch != Arch::X86_64 {
        return Ok(image);
    }
    let vmlinux = kernel.work.join("vmlinux");
    match crate::vmlinux::ensure_vmlinux(&image, &vmlinux) {
        Ok(()) => Ok(vmlinux),
        Err(e) => {
            eprintln!("note: booting the compressed image ({e})");
            Ok(image)
        }
    }
}

/// The kernel's own modules that driver suites load (`module::load_stock` in the guest), and
/// the architectures that want them (`None`: all): on arm64, `gpio_keys` (the `virt` power
/// button on PL061 line 3) and `evdev` (its `/dev/input/eventN`); ext4 for the NVMe suite's
/// file system (a module in Debian's kernels), with `crc32c_generic`, which ext4's metadata
/// checksums request through the crypto API rather than as a module dependency; Debian's C
/// NVMe driver `nvme` (the NVMe suite binds it to the second controller, then swaps; `cargo
/// xtask bench nvme` measures against it).
const STOCK_MODULES: &[(&str, Option<Arch>)] = &[
    ("gpio_keys", Some(Arch::Arm64)),
    ("evdev", Some(Arch::Arm64)),
    ("ext4", None),
    ("crc32c_generic", None),
    ("nvme", None),
];

/// The [`STOCK_MODULES`] for `kernel` and the modules they depend on (`modinfo -F depends`),
/// where the kernel ships them as modules: Debian's package tree next to the image, or the
/// build tree of a kernel built here (the debug kernel). A module the kernel has built in is
/// not found and not needed. They go into the initramfs only; they are not ours, so no module
/// check runs on them.
pub fn stock_modules(kernel: &Kernel) -> Result<Vec<Built>> {
    let mut trees = vec![kernel.kdir.clone()];
    if let Some(root) = kernel
        .image
        .as_ref()
        .and_then(|i| i.parent()?.parent().map(Path::to_path_buf))
    {
        let tree = root
            .join("lib/modules")
            .join(&kernel.release)
            .join("kernel");
        if tree.is_dir() {
            trees = vec![tree];
        }
    }
    let mut found: Vec<Built> = Vec::new();
    let mut wanted: Vec<String> = STOCK_MODULES
        .iter()
        .filter(|(_, arch)| arch.is_none_or(|a| a == kernel.arch))
        .map(|(name, _)| name.to_string())
        .collect();
    while let Some(name) = wanted.pop() {
        if found.iter().any(|b| b.name == name) {
            continue;
        }
        let Some(ko) = trees.iter().find_map(|t| find_module(t, &name)) else {
            continue;
        };
        let depends = util::output(cmd("modinfo", ["-F", "depends"]).arg(&ko))?;
        wanted.extend(
            depends
                .trim()
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_")),
        );
        found.push(Built { name, ko });
    }
    Ok(found)
}

/// Where `kernel`'s own modules are: Debian's package tree next to the image
/// (`lib/modules/<release>/`), or the build tree of a kernel built here.
fn module_tree(kernel: &Kernel) -> PathBuf {
    kernel
        .image
        .as_ref()
        .and_then(|i| i.parent()?.parent().map(Path::to_path_buf))
        .map(|root| root.join("lib/modules").join(&kernel.release))
        .filter(|tree| tree.is_dir())
        .unwrap_or_else(|| kernel.kdir.clone())
}

/// `kernel`'s list of the modules it has built in, if it has one.
fn builtin_modules(kernel: &Kernel) -> Option<PathBuf> {
    Some(module_tree(kernel).join("modules.builtin")).filter(|p| p.is_file())
}

/// The file of module `name` (`-` and `_` are the same in module names) under `dir`.
fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            let file_type = entry.file_type().ok()?;
            if file_type.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "ko")
                && path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| s.replace('-', "_") == name)
            {
                return Some(path);
            }
        }
    }
    None
}

/// Runs the QEMU tests of one architecture; returns one record per test.
pub fn run(kernel: &Kernel, modules: &[Built], opts: &Options) -> Result<Vec<Record>> {
    let arch = kernel.arch;
    let label = opts.label.as_str();
    let scale = opts.timeout_scale.max(1);
    let mut records = ko_checks(kernel, label, modules);
    let runner = build_guest(arch)?;
    let initrd = initramfs(kernel, label, modules, &runner)?;
    let image = boot_image(kernel)?;
    // q35 hot-plugs behind its root ports through ACPI by default; a kernel without ACPI (the
    // debug kernel) then sees an empty slot. This hands the ports to native PCIe hotplug.
    let machine_args: Vec<String> = if arch == Arch::X86_64 && !kernel.enabled("ACPI") {
        vec![
            "-global".into(),
            "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off".into(),
        ]
    } else {
        Vec::new()
    };
    let boot = |name: &str, suites: &str, timeout: u32| {
        boot(
            arch,
            label,
            &image,
            &initrd,
            name,
            suites,
            timeout * scale,
            scale,
            &machine_args,
        )
    };

    let mut suites = vec!["selftests".to_string()];
    for m in modules
        .iter()
        .filter(|m| m.name != "rust_selftests" && has_suite(&m.name))
    {
        if opts.driver.as_ref().is_none_or(|d| *d == m.name) {
            if suite_runs_on(&m.name, arch) {
                suites.push(m.name.clone());
            } else {
                eprintln!(
                    "note: {} has no device on {arch}: its suite runs on {} only",
                    m.name,
                    suite_arches(&m.name).unwrap_or_default().join(", ")
                );
            }
        }
    }
    // Teardown and stalled-copy tests of the abstractions, across modules.
    if opts.driver.is_none() {
        suites.push("lifetime".into());
    }
    let kmemleak = kernel.enabled("DEBUG_KMEMLEAK");
    if kmemleak {
        suites.push("kmemleak".into());
    }
    let main = boot("main", &suites.join(","), 600)?;
    records.extend(ktap_records(label, &main));
    let splats = qemu::splats(&without_kmemleak(&main.serial));
    records.push(Record::new(
        label,
        "main_boot.kernel_log_clean",
        splats.is_empty(),
        splats,
    ));
    if kmemleak {
        records.push(kmemleak_check(label, &main.serial, modules));
    }
    if suites.iter().any(|s| s == "nvme_lite") {
        // The host's half of the NVMe suite: what the guest left in the image.
        let image = run_dir(label).join("main-nvme.img");
        for (name, check) in [
            (
                "nvme_lite.host_finds_guest_pattern",
                nvmedisk::check_guest_pattern(&image),
            ),
            (
                "nvme_lite.host_e2fsck_clean",
                nvmedisk::check_file_system(&image),
            ),
        ] {
            let notes = check.err().into_iter().collect::<Vec<_>>();
            records.push(Record::new(label, name, notes.is_empty(), notes));
        }
    }

    if suites.iter().any(|s| s == "nvme_lite")
        && kernel.enabled("HOTPLUG_PCI_PCIE")
        && kernel.enabled("PROVE_LOCKING")
    {
        // The guest suite leaves surprise removal out of a lockdep boot: 6.1's pciehp trips
        // lockdep on every removal, which would turn lockdep off for the rest of the boot.
        let unplug = boot("unplug", UNPLUG_TEST, 180)?;
        records.extend(ktap_records(label, &unplug));
        records.extend(unplug_checks(label, &unplug.serial, modules));
    }

    let panic = boot("panic", "panic", 120)?;
    records.extend(ktap_records(label, &panic));
    records.extend(panic_checks(label, &panic.serial));

    if kernel.enabled("KASAN") && kmemleak {
        let planted = boot("planted", "planted,kmemleak", 120)?;
        records.extend(ktap_records(label, &planted));
        records.extend(planted_checks(label, &planted.serial, modules));
    }
    if kernel.enabled("DEBUG_ATOMIC_SLEEP") {
        let atomic = boot("atomic_sleep", "atomic_sleep", 120)?;
        records.extend(ktap_records(label, &atomic));
        records.extend(atomic_sleep_checks(label, &atomic.serial));
    }
    Ok(records)
}

/// The serial log without kmemleak's report (judged by [`kmemleak_check`] instead: leaks of
/// the kernel's own are not this project's to fail on).
fn without_kmemleak(serial: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in serial.lines() {
        if line.contains("---- kmemleak ----") {
            inside = true;
        } else if line.contains("---- end kmemleak ----") {
            inside = false;
        } else if !inside && !line.contains("new suspected memory leak") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Unreferenced objects allocated by our modules: their backtrace names one of them, or shows
/// a bare address (no symbol: code of a module that was unloaded; only ours are ever loaded).
fn kmemleak_check(label: &str, serial: &str, modules: &[Built]) -> Record {
    let name = "kmemleak.no_leaks_from_our_modules";
    let Some(start) = serial.find("---- kmemleak ----") else {
        return Record::new(label, name, false, vec!["no kmemleak report".into()]);
    };
    let report = &serial[start..];
    let report = &report[..report
        .find("---- end kmemleak ----")
        .unwrap_or(report.len())];
    let mut ours = Vec::new();
    let mut others = 0;
    for object in report.split("unreferenced object").skip(1) {
        let from_us = object.lines().any(|l| {
            let l = l.trim();
            modules.iter().any(|m| l.contains(&format!("[{}]", m.name)))
                || (l.starts_with("[<")
                    && l.split_whitespace()
                        .nth(1)
                        .is_some_and(|s| s.starts_with("0x")))
        });
        if from_us {
            ours.push(format!("unreferenced object{}", object.trim_end()));
        } else {
            others += 1;
        }
    }
    if !ours.is_empty() && others > 0 {
        ours.push(format!(
            "({others} unreferenced objects of the kernel itself, not counted)"
        ));
    }
    Record::new(label, name, ours.is_empty(), ours)
}

/// The planted-bugs boot: the out-of-bounds write in Rust code is reported by KASAN, precisely,
/// the leaked block by kmemleak, and nothing else goes wrong.
fn planted_checks(label: &str, serial: &str, modules: &[Built]) -> Vec<Record> {
    let log = kernel_log(serial);
    let report = log
        .lines()
        .find(|l| l.contains("BUG: KASAN: slab-out-of-bounds in"))
        .unwrap_or_default();
    let names_fn = report.contains("planted_out_of_bounds_write");
    let write = log.lines().any(|l| l.contains("Write of size 1 at addr"));
    // lockdep's report (one block, to the end of its backtrace) is expected here too.
    let (lockdep, rest) = cut_report(
        log,
        "WARNING: possible circular locking dependency detected",
    );
    let inversion =
        lockdep.contains("selftest.planted_a") && lockdep.contains("selftest.planted_b");
    let others: Vec<String> = qemu::splats(&without_kmemleak(&rest))
        .into_iter()
        .filter(|s| !s.contains("KASAN"))
        .collect();
    // The leak check must fail here: the planted leak is ours.
    let leak = kmemleak_check(label, serial, modules);
    let leak_found = !leak.passed
        && leak
            .notes
            .iter()
            .any(|n| n.starts_with("unreferenced object"));
    let note = |ok: bool, what: String| if ok { vec![] } else { vec![what] };
    vec![
        Record::new(label, "planted.kasan_reports_rust_oob_write", names_fn, note(names_fn, format!(
            "expected `BUG: KASAN: slab-out-of-bounds in ...planted_out_of_bounds_write`, got `{report}`"
        ))),
        Record::new(label, "planted.kasan_write_of_size_1", write, note(write, "no `Write of size 1 at addr` line".into())),
        Record::new(label, "planted.kmemleak_reports_rust_leak", leak_found, note(leak_found, "kmemleak did not report the leaked block as ours".into())),
        Record::new(label, "planted.lockdep_reports_rust_lock_inversion", inversion, note(inversion, format!(
            "expected lockdep's circular-dependency report naming selftest.planted_a and selftest.planted_b, got:\n{lockdep}"
        ))),
        Record::new(label, "planted.no_other_splats", others.is_empty(), others),
    ]
}

/// What the `unplug` boot runs: the NVMe suite's surprise removal, alone.
const UNPLUG_TEST: &str = "nvme_lite/surprise_removal_fails_io_and_unloads";

/// The unplug boot (a lockdep kernel with PCIe native hotplug): lockdep's one report is the
/// kernel's own, pciehp's `reset_lock` against `pci_rescan_remove_lock` as it removes the
/// slot's devices, with no frame of our modules in it, and nothing else goes wrong (KASAN,
/// UBSAN and the rest stay on after lockdep turns itself off).
fn unplug_checks(label: &str, serial: &str, modules: &[Built]) -> Vec<Record> {
    let (report, rest) = cut_report(
        kernel_log(serial),
        "WARNING: possible circular locking dependency detected",
    );
    let ours: Vec<&str> = report
        .lines()
        .filter(|l| modules.iter().any(|m| l.contains(&format!("[{}]", m.name))))
        .collect();
    let found = report.contains("pci_rescan_remove_lock")
        && report.contains("reset_lock")
        && report.contains("pciehp_unconfigure_device")
        && ours.is_empty();
    let others = qemu::splats(&rest);
    vec![
        Record::new(
            label,
            "unplug.lockdep_report_is_pciehps_own",
            found,
            if found {
                vec![]
            } else {
                vec![format!(
                    "expected lockdep's circular-dependency report on pciehp's reset_lock and \
                     pci_rescan_remove_lock from pciehp_unconfigure_device, with no frame of our \
                     modules (found: {ours:?}), got:\n{report}"
                )]
            },
        ),
        Record::new(label, "unplug.no_other_splats", others.is_empty(), others),
    ]
}

/// The atomic-sleep boot: `GFP_KERNEL` under a spinlock in Rust code is reported by
/// `CONFIG_DEBUG_ATOMIC_SLEEP`, naming the lock held and our module in the backtrace, and
/// nothing else goes wrong.
fn atomic_sleep_checks(label: &str, serial: &str) -> Vec<Record> {
    let (report, rest) = cut_report(
        kernel_log(serial),
        "BUG: sleeping function called from invalid context",
    );
    let found = report.contains("in_atomic(): 1")
        && report.contains("selftest.atomic_sleep")
        && report.contains("[rust_selftests]");
    let others = qemu::splats(&rest);
    vec![
        Record::new(
            label,
            "atomic_sleep.reports_gfp_kernel_under_rust_spinlock",
            found,
            if found {
                vec![]
            } else {
                vec![format!(
                    "expected `BUG: sleeping function called from invalid context` with in_atomic(): 1, \
                     the held lock selftest.atomic_sleep and a [rust_selftests] frame, got:
{report}"
                )]
            },
        ),
        Record::new(
            label,
            "atomic_sleep.no_other_splats",
            others.is_empty(),
            others,
        ),
    ]
}

/// Splits `log` into one kernel report, from the first line containing `start` through the
/// last frame of its `Call Trace:` (x86_64, frames between `<TASK>` and `</TASK>`) or `Call
/// trace:` (arm64, no end marker): the frames are the indented lines after it. Returns the
/// report (empty if there is none) and everything else.
fn cut_report(log: &str, start: &str) -> (String, String) {
    enum State {
        Before,
        Report,
        Frames,
        After,
    }
    let (mut report, mut rest) = (String::new(), String::new());
    let mut state = State::Before;
    for line in log.lines() {
        state = match state {
            State::Before if line.contains(start) => State::Report,
            State::Report
                if line
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("call trace:") =>
            {
                State::Frames
            }
            State::Frames if !line.starts_with(' ') => State::After,
            s => s,
        };
        let out = match state {
            State::Report | State::Frames => &mut report,
            State::Before | State::After => &mut rest,
        };
        out.push_str(line);
        out.push('\n');
    }
    (report, rest)
}

/// A finished boot.
struct BootRun {
    name: String,
    serial: String,
    timed_out: bool,
    log: PathBuf,
}

#[allow(clippy::too_many_arguments)]
fn boot(
    arch: Arch,
    label: &str,
    image: &Path,
    initrd: &Path,
    name: &str,
    suites: &str,
    timeout: u32,
    scale: u32,
    machine_args: &[String],
) -> Result<BootRun> {
    let log = run_dir(label).join(format!("{name}.log"));
    util::step(&format!(
        "qemu: {label} boot `{name}` (suites: {suites}); serial log {}",
        log.display()
    ));
    let started = Instant::now();
    let out = qemu::run(&Boot {
        arch,
        kernel: image.to_path_buf(),
        initrd: initrd.to_path_buf(),
        append: format!("loglevel=3 ktest.suites={suites} ktest.timeout_scale={scale}"),
        memory_mb: 1024,
        cpus: 2,
        timeout: Duration::from_secs(timeout.into()),
        log: log.clone(),
        interactive: false,
        extra_args: [
            machine_args.to_vec(),
            nvmedisk::prepare(arch, &run_dir(label).join(format!("{name}-nvme.img")))
                .map_err(|e| e.to_string())?,
        ]
        .concat(),
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "    {name}: {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if out.timed_out { " (TIMED OUT)" } else { "" }
    );
    let ktap_path = log.with_extension("ktap");
    util::write(&ktap_path, ktap_text(&out.serial))?;
    Ok(BootRun {
        name: name.to_string(),
        serial: out.serial,
        timed_out: out.timed_out,
        log,
    })
}

/// The kernel log the guest dumped at the end of a boot.
fn kernel_log(serial: &str) -> &str {
    let start = serial.find("---- kernel log ----").unwrap_or(serial.len());
    let end = serial[start..]
        .find("---- end kernel log ----")
        .map_or(serial.len(), |e| start + e);
    &serial[start..end]
}

/// The KTAP part of a serial log: from the first `KTAP version 1` to the kernel-log dump.
fn ktap_text(serial: &str) -> String {
    let start = serial.find("KTAP version 1").unwrap_or(serial.len());
    let end = serial[start..]
        .find("---- kernel log ----")
        .map_or(serial.len(), |e| start + e);
    serial[start..end].to_string()
}

/// One record per KTAP test of a boot; a boot without results or that timed out fails.
fn ktap_records(arch: &str, run: &BootRun) -> Vec<Record> {
    let mut out = Vec::new();
    match ktap::parse(&ktap_text(&run.serial)) {
        Ok(results) if !results.is_empty() => {
            for r in results {
                let (passed, mut notes) = match r.outcome {
                    Outcome::Pass => (true, Vec::new()),
                    Outcome::Fail => (false, Vec::new()),
                    Outcome::Skip(why) => (false, vec![format!("skipped: {why}")]),
                };
                if !passed {
                    notes.extend(r.diagnostics);
                }
                out.push(Record::new(arch, &r.name, passed, notes));
            }
        }
        Ok(_) => out.push(Record::new(
            arch,
            &format!("{}_boot.results", run.name),
            false,
            vec![format!("no test results in {}", run.log.display())],
        )),
        Err(e) => out.push(Record::new(
            arch,
            &format!("{}_boot.ktap", run.name),
            false,
            vec![e],
        )),
    }
    if run.timed_out {
        out.push(Record::new(
            arch,
            &format!("{}_boot.finished", run.name),
            false,
            vec![format!(
                "the guest did not power off in time; see {}",
                run.log.display()
            )],
        ));
    }
    out
}

/// The panic boot: the exact report the panic handler must produce.
fn panic_checks(arch: &str, serial: &str) -> Vec<Record> {
    let has = |needle: &str| serial.lines().any(|l| l.contains(needle));
    let message = "rust_selftests: panicked at crates/selftests/src/lib.rs:";
    let line = serial
        .lines()
        .find(|l| l.contains(message))
        .unwrap_or_default();
    let message_ok = line.ends_with(": deliberate panic requested by trigger_panic=1");
    let bug_ok = serial
        .lines()
        .any(|l| l.contains("kernel BUG at ") && l.contains("rust_selftests/subsys/bug.c:"));
    let trace_ok = has("kernel5panic5panic") && has("init_module+") && has("[rust_selftests]");
    // Counted in the kernel-log dump only: the console shows the same report once more.
    let bugs = kernel_log(serial).matches("kernel BUG at").count();
    let note = |ok: bool, what: &str| {
        if ok {
            Vec::new()
        } else {
            vec![what.to_string()]
        }
    };
    vec![
        Record::new(arch, "panic.message_at_emerg", message_ok, note(message_ok, &format!("expected `{message}<line>:<col>: deliberate panic requested by trigger_panic=1`, got `{line}`"))),
        Record::new(arch, "panic.bug_report", bug_ok, note(bug_ok, "no `kernel BUG at .../rust_selftests/subsys/bug.c:N!` line")),
        Record::new(arch, "panic.backtrace_names_rust_frames", trace_ok, note(trace_ok, "the oops backtrace does not name kernel::panic::panic and init_module of rust_selftests")),
        Record::new(arch, "panic.exactly_one_oops", bugs == 1, note(bugs == 1, &format!("{bugs} `kernel BUG` reports"))),
    ]
}

/// modinfo/readelf checks of every built module.
fn ko_checks(kernel: &Kernel, label: &str, modules: &[Built]) -> Vec<Record> {
    let arch = kernel.arch;
    let mut out = Vec::new();
    // The modules compiled, so every gcc-vs-bindgen layout assertion held (see layout.rs).
    match crate::layout::count(kernel) {
        Ok(n) => out.push(Record::new(
            label,
            &format!("layout.gcc_matches_bindgen_{n}_checks"),
            n > 0,
            vec![],
        )),
        Err(e) => out.push(Record::new(
            label,
            "layout.gcc_matches_bindgen",
            false,
            vec![e],
        )),
    }
    for m in modules {
        let field = |f: &str| {
            util::output(cmd("modinfo", ["-F", f]).arg(&m.ko))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let sections = util::output(cmd("readelf", ["-SW"]).arg(&m.ko)).unwrap_or_default();
        let modinfo_sections = sections
            .lines()
            .filter(|l| l.contains(" .modinfo "))
            .count();
        let mut check = |name: &str, ok: bool, why: String| {
            out.push(Record::new(
                label,
                &format!("ko.{}.{name}", m.name),
                ok,
                if ok { vec![] } else { vec![why] },
            ));
        };
        let license = field("license");
        check(
            "license_gpl",
            license == "GPL",
            format!("license `{license}`"),
        );
        let vermagic = field("vermagic");
        let ok = vermagic.split_whitespace().next() == Some(kernel.release.as_str());
        check(
            "vermagic",
            ok,
            format!("vermagic `{vermagic}`, kernel {}", kernel.release),
        );
        check(
            "one_modinfo_section",
            modinfo_sections == 1,
            format!("{modinfo_sections} .modinfo sections"),
        );
        let unused = unreferenced_helpers(arch, &m.ko);
        check(
            "links_only_called_helpers",
            unused.is_empty(),
            format!("C helpers nothing calls: {}", unused.join(" ")),
        );
        if kernel.enabled("RETPOLINE") {
            let r = field("retpoline");
            check("retpoline", r == "Y", format!("retpoline `{r}`"));
        }
        let objdump = format!("{}objdump", arch_prefix(arch));
        let disasm =
            |args: &[&str]| util::output(cmd(&objdump, args).arg(&m.ko)).unwrap_or_default();
        match arch {
            Arch::X86_64 if kernel.enabled("RETHUNK") => {
                // Return thunks: no function may end in a plain `ret`.
                let text = disasm(&["-d", "--no-show-raw-insn"]);
                let rets = text
                    .lines()
                    .filter(|l| l.split_whitespace().nth(1) == Some("ret"))
                    .count();
                check(
                    "no_bare_ret",
                    rets == 0,
                    format!("{rets} bare `ret` instructions"),
                );
            }
            Arch::Arm64 if kernel.enabled("ARM64_PTR_AUTH_KERNEL") => {
                // pac-ret: the Rust entry point signs and authenticates its return address.
                let text = disasm(&["-d", "--disassemble=init_module"]);
                let ok = text.contains("paciasp") && text.contains("autiasp");
                check("pac_ret", ok, "init_module lacks paciasp/autiasp".into());
            }
            _ => {}
        }
    }
    out
}

/// The `rust_helper_*` functions defined in `ko` that no relocation refers to: C helpers linked
/// into a module that does not call them (and with them, their kernel symbols).
fn unreferenced_helpers(arch: Arch, ko: &Path) -> Vec<String> {
    let readelf = |args: &[&str]| {
        util::output(cmd(&format!("{}readelf", arch_prefix(arch)), args).arg(ko))
            .unwrap_or_default()
    };
    // `readelf -r` lines: offset, info, type, symbol value, symbol name [+ addend].
    let relocs = readelf(&["-rW"]);
    let referenced: std::collections::BTreeSet<&str> = relocs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() >= 5 && w[2].starts_with("R_"))
        .map(|w| w[4])
        .collect();
    // `readelf -s` lines: num, value, size, type, bind, vis, section index, name.
    readelf(&["-sW"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 8 && w[3] == "FUNC" && w[6] != "UND")
        .map(|w| w[7])
        .filter(|name| name.starts_with("rust_helper_") && !referenced.contains(name))
        .map(String::from)
        .collect()
}

/// The binutils prefix for `arch` on this (x86_64) host.
fn arch_prefix(arch: Arch) -> &'static str {
    arch.cross_compile()
}

/// Prints the records and the count line; returns (passed, failed).
pub fn summarize(records: &[Record]) -> (usize, usize) {
    let mut passed = 0;
    for r in records {
        if r.passed {
            passed += 1;
            println!("ok    {}", r.name);
        } else {
            println!("FAIL  {}", r.name);
            for n in &r.notes {
                println!("        {n}");
            }
        }
    }
    (passed, records.len() - passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "\
boot line
WARNING: possible circular locking dependency detected
-> #1 (pci_rescan_remove_lock){+.+.}-{3:3}:
       pciehp_unconfigure_device+0xd3/0x20f
stack backtrace:
Call Trace:
 <TASK>
 dump_stack_lvl+0x4c/0x5f
 pciehp_unconfigure_device+0x181/0x20f
 </TASK>
BUG: KASAN: slab-out-of-bounds in later_bug+0x1/0x2
";

    const ARM64: &str = "\
boot line
WARNING: possible circular locking dependency detected
-> #1 (pci_rescan_remove_lock){+.+.}-{3:3}:
       pciehp_unconfigure_device+0x1a8/0x208
stack backtrace:
Call trace:
 dump_backtrace.part.0+0x9c/0xd0
 pciehp_unconfigure_device+0x1a8/0x208
BUG: KASAN: slab-out-of-bounds in later_bug+0x1/0x2
";

    #[test]
    fn a_report_ends_with_its_backtrace_on_both_architectures() {
        for log in [X86, ARM64] {
            let (report, rest) = cut_report(
                log,
                "WARNING: possible circular locking dependency detected",
            );
            assert!(report.starts_with("WARNING: possible circular"), "{report}");
            assert!(
                report
                    .trim_end()
                    .ends_with("pciehp_unconfigure_device+0x181/0x20f\n </TASK>")
                    || report
                        .trim_end()
                        .ends_with("pciehp_unconfigure_device+0x1a8/0x208"),
                "{report}"
            );
            assert_eq!(rest.lines().next(), Some("boot line"));
            // What follows the report is still checked for splats.
            assert_eq!(
                rest.lines().last(),
                Some("BUG: KASAN: slab-out-of-bounds in later_bug+0x1/0x2")
            );
            assert_eq!(qemu::splats(&rest).len(), 1, "{rest}");
        }
        let (report, rest) = cut_report(X86, "no such report");
        assert!(report.is_empty());
        assert_eq!(rest, X86);
    }
}
