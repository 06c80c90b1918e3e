//! `cargo xtask`: builds the drivers into `.ko` modules against a real kernel, boots that kernel
//! in QEMU and runs the tests inside the guest. Run `cargo xtask help` for the commands.

mod arch;
mod bench;
mod cpio;
mod debugkernel;
mod deps;
mod guesttools;
mod kbuild;
mod kernel;
mod ktap;
mod layout;
mod newdriver;
mod nvmedisk;
mod qemu;
mod testrun;
mod util;
mod vmlinux;

use arch::Arch;
use std::path::PathBuf;
use std::process::ExitCode;
use util::Result;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build       build every driver as a .ko (target/kmod/<arch>/<name>.ko)
  qemu-test   build, boot the kernel in QEMU, run the in-guest tests, print a summary
  qemu-run    boot the same guest with an interactive shell
  bench chardev
              stream through /dev/rustpipe, a kernel pipe and a C kfifo device in one
              boot per architecture; MB/s per round, medians, ratios (not a test)
  bench gpio  (arm64) line set+get round trips/s through the GPIO uAPI v2, our driver
              against the built-in C pl061_gpio on the same device in one boot; rounds,
              medians, ratio ours/C, the C-vs-C noise, both modules' .text (not a test)
  bench nvme  nvme_lite against Debian's C nvme on two QEMU NVMe controllers in one boot
              per architecture: 4 KiB random reads QD1/QD32, 128 KiB sequential reads;
              geometric means, ratio ours/C and the C-vs-C noise (not a test)
  test        host unit tests + qemu-test; ends with `N passed, N failed`
  new-driver NAME
              create drivers/NAME/ (a misc device and its in-guest test) from the template
  help        this text

options:
  --arch x86_64|arm64     target architecture (default: both; qemu-run: x86_64)
  --kernel debian|debug   Debian's 6.1 kernel (default), or our debug kernel (KASAN, lockdep,
                          kmemleak, UBSAN), built once from linux-source-6.1 (x86_64 unless
                          --arch arm64)
  --kdir PATH             build against this prepared kernel tree instead
  --kernel-image PATH     boot this kernel image (default: the tree's own)
  --driver NAME           qemu-test: run only this driver's tests (and the self-tests)
  --release | --debug     module build profile (default: --release)
  --rounds N              bench: rounds per transport and block size (default 5; gpio: 6)
  --iters N               bench gpio: set+get round trips per round (default 20000)
  --rounds N              bench: rounds per transport and block size (default 5; nvme:
                          rounds per pairing, even, default 8)
  --ms N                  bench nvme: milliseconds per measurement (default 1000)
  --pin-cpu N             bench nvme: the measuring thread runs on guest CPU N only
  --icount                bench nvme: time by counted instructions while the guest runs
                          (QEMU -icount shift=0,sleep=on) instead of the host's clock
  --mib N                 bench: MiB streamed per round (default 64)
  --bs A,B                bench: block sizes of the reads and writes (default 65536,4096)
  --capacity N            bench: capacity of the devices (default 65536, a pipe's buffer)
  --cpus N                bench: guest CPUs (default 2: writer on CPU 0, reader on CPU 1)
  --realtime              bench chardev: time by the host's clock instead of counted instructions
                          (QEMU -icount: 1 ns per guest instruction, deterministic whatever
                          else the host is running)
";

/// Parsed command-line options.
#[derive(Clone, Debug, Default)]
struct Options {
    arch: Option<Arch>,
    kdir: Option<PathBuf>,
    kernel_image: Option<PathBuf>,
    driver: Option<String>,
    debug: bool,
    debug_kernel: bool,
    rounds: Option<u32>,
    mib: Option<u32>,
    cpus: Option<u32>,
    bs: Option<String>,
    capacity: Option<u32>,
    iters: Option<u32>,
    ms: Option<u32>,
    pin_cpu: Option<u32>,
    realtime: bool,
    icount: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "--arch" => {
                let v = value("--arch")?;
                o.arch =
                    Some(Arch::parse(&v).ok_or_else(|| {
                        format!("unknown architecture `{v}` (use x86_64 or arm64)")
                    })?);
            }
            "--kdir" => o.kdir = Some(value("--kdir")?.into()),
            "--kernel" => match value("--kernel")?.as_str() {
                "debian" => o.debug_kernel = false,
                "debug" => o.debug_kernel = true,
                v => return Err(format!("unknown kernel `{v}` (use debian or debug)")),
            },
            "--kernel-image" => o.kernel_image = Some(value("--kernel-image")?.into()),
            "--driver" => o.driver = Some(value("--driver")?),
            "--bs" => o.bs = Some(value("--bs")?),
            "--realtime" => o.realtime = true,
            "--icount" => o.icount = true,
            "--pin-cpu" => {
                let v = value("--pin-cpu")?;
                o.pin_cpu = Some(
                    v.parse()
                        .map_err(|_| format!("--pin-cpu needs a CPU number, not `{v}`"))?,
                );
            }
            "--rounds" | "--mib" | "--cpus" | "--capacity" | "--iters" | "--ms" => {
                let v = value(a)?;
                let n = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("{a} needs a positive integer, not `{v}`"))?;
                match a.as_str() {
                    "--rounds" => o.rounds = Some(n),
                    "--mib" => o.mib = Some(n),
                    "--capacity" => o.capacity = Some(n),
                    "--iters" => o.iters = Some(n),
                    "--ms" => o.ms = Some(n),
                    _ => o.cpus = Some(n),
                }
            }
            "--release" => o.debug = false,
            "--debug" => o.debug = true,
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    Ok(o)
}

fn kernel_for(o: &Options, arch: Arch) -> Result<kernel::Kernel> {
    if o.debug_kernel {
        return debugkernel::build(arch);
    }
    match &o.kdir {
        Some(k) => kernel::from_kdir(arch, k, o.kernel_image.clone()),
        None => {
            let mut k = kernel::debian(arch)?;
            if o.kernel_image.is_some() {
                k.image = o.kernel_image.clone();
            }
            Ok(k)
        }
    }
}

/// The architectures a command covers: `--arch`, or all of them.
fn arches(o: &Options) -> Vec<Arch> {
    match (o.arch, o.debug_kernel) {
        (Some(a), _) => vec![a],
        (None, true) => vec![Arch::X86_64],
        (None, false) => Arch::ALL.to_vec(),
    }
}

fn build(o: &Options) -> Result<Vec<(kernel::Kernel, Vec<kbuild::Built>)>> {
    let arches = arches(o);
    deps::ensure(&arches, o.debug_kernel)?;
    let profile = if o.debug {
        kbuild::Profile::Debug
    } else {
        kbuild::Profile::Release
    };
    let mut out = Vec::new();
    for arch in arches {
        let k = kernel_for(o, arch)?;
        let built = kbuild::build(&k, profile)?;
        for b in &built {
            println!("built {}", b.ko.display());
        }
        out.push((k, built));
    }
    Ok(out)
}

/// `qemu-test`: build, boot, test; the records of every architecture.
fn qemu_test(o: &Options) -> Result<Vec<testrun::Record>> {
    // KASAN, lockdep and kmemleak under TCG: everything takes several times longer.
    let timeout_scale = if o.debug_kernel { 6 } else { 1 };
    let mut records = Vec::new();
    for (kernel, built) in build(o)? {
        let opts = testrun::Options {
            driver: o.driver.clone(),
            timeout_scale,
            label: kernel.label.clone(),
        };
        if let Some(d) = &o.driver {
            if !built.iter().any(|b| &b.name == d) {
                return Err(format!("no driver named `{d}` (see drivers/)"));
            }
        }
        records.extend(testrun::run(&kernel, &built, &opts)?);
    }
    Ok(records)
}

/// `qemu-run`: the test guest with an interactive shell.
fn qemu_run(o: &Options) -> Result {
    let o = Options {
        arch: Some(o.arch.unwrap_or(Arch::X86_64)),
        ..o.clone()
    };
    let (kernel, built) = build(&o)?.remove(0);
    let runner = testrun::build_guest(kernel.arch)?;
    let initrd = testrun::initramfs(&kernel, &kernel.label, &built, &runner)?;
    let image = kernel
        .image
        .clone()
        .ok_or("no bootable image: pass --kernel-image")?;
    eprintln!("modules are in /lib/modules; quit QEMU with Ctrl-A X");
    qemu::run(&qemu::Boot {
        arch: kernel.arch,
        kernel: image,
        initrd,
        append: "loglevel=4 ktest.shell=1".into(),
        memory_mb: 1024,
        cpus: 2,
        timeout: std::time::Duration::from_secs(u64::MAX / 4),
        log: util::root()
            .join("target/qemu")
            .join(kernel.arch.name())
            .join("interactive.log"),
        interactive: true,
        extra_args: nvmedisk::prepare(
            kernel.arch,
            &util::root()
                .join("target/qemu")
                .join(kernel.arch.name())
                .join("interactive-nvme.img"),
        )
        .map_err(|e| e.to_string())?,
    })
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// `bench NAME`: the benchmarks (`chardev`, `gpio`, `nvme`), on Debian's kernels.
fn bench(name: Option<&String>, o: &Options) -> Result<bool> {
    match name.map(String::as_str) {
        Some("chardev") => {}
        Some("gpio") => {
            if o.arch.is_some_and(|a| a != Arch::Arm64) {
                return Err("bench gpio runs on arm64 only (the PL061 of `virt`)".into());
            }
            let o = Options {
                arch: Some(Arch::Arm64),
                ..o.clone()
            };
            let opts = bench::GpioOptions {
                rounds: o.rounds.unwrap_or(6),
                iters: o.iters.unwrap_or(20000),
                icount: (!o.realtime).then_some(0),
            };
            for (kernel, built) in build(&o)? {
                bench::gpio(&kernel, &built, &opts)?;
            }
            return Ok(true);
        }
        Some("nvme") => {
            let opts = bench::nvme::Options {
                rounds: (o.rounds.unwrap_or(8).max(2) + 1) & !1,
                millis: o.ms.unwrap_or(1000),
                icount: o.icount.then(|| "shift=0,sleep=on".to_string()),
                cpu: o.pin_cpu,
            };
            bench::nvme::run(build(o)?, &opts)?;
            return Ok(true);
        }
        Some(other) => {
            return Err(format!(
                "unknown benchmark `{other}` (known: chardev, gpio, nvme)"
            ))
        }
        None => {
            return Err(format!(
                "bench needs a name (chardev, gpio, nvme)\n\n{USAGE}"
            ))
        }
    }
    let opts = bench::Options {
        rounds: o.rounds.unwrap_or(5),
        mib: o.mib.unwrap_or(64),
        cpus: o.cpus.unwrap_or(2),
        bs: o.bs.clone().unwrap_or_else(|| "65536,4096".into()),
        capacity: o.capacity.unwrap_or(65536),
        icount: (!o.realtime).then_some(0),
    };
    bench::run(build(o)?, &opts)?;
    Ok(true)
}

/// Host unit tests of the whole workspace: (passed, failed).
fn host_tests(clang_args: &std::path::Path) -> Result<(usize, usize)> {
    util::step("cargo test (host unit tests)");
    let out = std::process::Command::new("cargo")
        .args(["test", "--workspace"])
        .current_dir(util::root())
        .env("KERNEL_SYS_CLANG_ARGS", clang_args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    let (mut passed, mut failed) = (0, 0);
    for line in stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: "))
    {
        let count = |what: &str| {
            line.split(';')
                .find_map(|part| part.trim().strip_suffix(what))
                .and_then(|n| n.trim().rsplit(' ').next()?.parse::<usize>().ok())
                .unwrap_or(0)
        };
        passed += count("passed");
        failed += count("failed");
    }
    if !out.status.success() && failed == 0 {
        failed = 1; // did not compile, or crashed
    }
    println!("host unit tests: {passed} passed, {failed} failed");
    Ok((passed, failed))
}

/// `cargo fmt --check` and clippy (`-D warnings`) on the host build and on the module crates
/// as built for the kernel: one record each.
fn lints(clang_args: &std::path::Path) -> Vec<testrun::Record> {
    util::step("lints: cargo fmt --check, cargo clippy (host and x86_64-unknown-none)");
    let run = |name: &str, cmd: &mut std::process::Command| -> testrun::Record {
        let out = cmd
            .current_dir(util::root())
            .env("KERNEL_SYS_CLANG_ARGS", clang_args)
            .env("CARGO_TARGET_DIR", util::root().join("target/lint"))
            .output();
        let (passed, notes) = match out {
            Ok(o) if o.status.success() => (true, vec![]),
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                (false, text.lines().take(40).map(String::from).collect())
            }
            Err(e) => (false, vec![format!("cannot run cargo: {e}")]),
        };
        testrun::Record {
            name: format!("lint.{name}"),
            passed,
            notes,
        }
    };
    // The crates built for the kernel: the abstractions and every module crate (discovered).
    let mut kernel_crates: Vec<String> = ["kernel", "kernel-alloc"].map(String::from).to_vec();
    match kbuild::module_crates() {
        Ok(crates) => kernel_crates.extend(crates.into_iter().map(|c| c.name)),
        Err(e) => return vec![testrun::Record::failed("lint.clippy_kernel", vec![e])],
    }
    let kernel_crates: Vec<String> = kernel_crates
        .into_iter()
        .flat_map(|c| ["-p".to_string(), c])
        .collect();
    vec![
        run("rustfmt", &mut fmt_check()),
        run(
            "clippy_host",
            &mut util::cmd(
                "cargo",
                [
                    "clippy",
                    "-q",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
        ),
        run(
            "clippy_kernel",
            util::cmd(
                "cargo",
                [
                    "clippy",
                    "-q",
                    "-Zbuild-std=core,alloc",
                    "--target",
                    "x86_64-unknown-none",
                ],
            )
            .args(&kernel_crates)
            .args(["--", "-D", "warnings"])
            .env("RUSTC_BOOTSTRAP", "1"),
        ),
        run(
            "rustdoc_kernel",
            util::cmd("cargo", ["doc", "-q", "--no-deps", "-p", "kernel"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        ),
    ]
}

/// `cargo fmt --check`, plus the drivers' guest suites, which the guest crate includes from a
/// generated file (so `cargo fmt` does not reach them).
fn fmt_check() -> std::process::Command {
    let mut c = util::cmd("sh", ["-c"]);
    c.arg(
        "cargo fmt --all -- --check && \
         rustfmt --edition 2021 --check $(ls drivers/*/guest.rs drivers/*/guest/*.rs 2>/dev/null)",
    );
    c.current_dir(util::root());
    c
}

/// Prints a warning (and goes on) when the sources are not formatted as `cargo xtask test`
/// requires, so that `qemu-test` users hear of it before CI does.
fn warn_unformatted() {
    match fmt_check().output() {
        Ok(o) if o.status.success() => {}
        Ok(_) => eprintln!(
            "warning: the sources are not rustfmt-formatted (`cargo xtask test` fails on that): \
             run `cargo fmt` and `rustfmt --edition 2021 drivers/*/guest*.rs drivers/*/guest/*.rs`"
        ),
        Err(e) => eprintln!("warning: could not run the format check: {e}"),
    }
}

/// The records of a run, or one failed record saying why it could not run.
fn run_or_fail(what: &str, result: Result<Vec<testrun::Record>>) -> Vec<testrun::Record> {
    result.unwrap_or_else(|e| {
        vec![testrun::Record {
            name: format!("{what} (did not run)"),
            passed: false,
            notes: vec![e],
        }]
    })
}

/// `test`: host unit tests + QEMU tests, one count line at the end.
fn test(o: &Options) -> Result<bool> {
    deps::ensure(&arches(o), true)?;
    // Host tests compile `kernel-sys` for the host: use Debian's x86_64 kernel's bindings.
    let debian = Options {
        debug_kernel: false,
        ..o.clone()
    };
    let kernel = kernel_for(&debian, Arch::X86_64)?;
    let clang_args = kernel::clang_args(&kernel)?;
    let (host_passed, host_failed) = host_tests(&clang_args)?;
    let mut lint_records = lints(&clang_args);
    lint_records.push(newdriver::check_in_copy());
    // Debian's kernels (both architectures), then the debug kernel.
    let mut records = run_or_fail("qemu-test", qemu_test(&debian));
    if o.arch.is_none_or(|a| a == Arch::X86_64) && o.kdir.is_none() {
        let debug = Options {
            debug_kernel: true,
            arch: Some(Arch::X86_64),
            ..o.clone()
        };
        records.extend(run_or_fail("qemu-test --kernel debug", qemu_test(&debug)));
    }
    if o.arch.is_none_or(|a| a == Arch::Arm64) && o.kdir.is_none() {
        let debug = Options {
            debug_kernel: true,
            arch: Some(Arch::Arm64),
            ..o.clone()
        };
        records.extend(run_or_fail(
            "qemu-test --kernel debug --arch arm64",
            qemu_test(&debug),
        ));
    }
    lint_records.append(&mut records);
    let records = lint_records;
    let (qemu_passed, qemu_failed) = testrun::summarize(&records);
    let (passed, failed) = (host_passed + qemu_passed, host_failed + qemu_failed);
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    if command == "new-driver" {
        let result = match rest {
            [name] => newdriver::run(name),
            _ => Err(format!("usage: cargo xtask new-driver NAME\n\n{USAGE}")),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // `bench` takes the benchmark's name before the options.
    let (name, rest) = match (command.as_str(), rest.split_first()) {
        ("bench", Some((n, r))) if !n.starts_with('-') => (Some(n), r),
        _ => (None, rest),
    };
    let result = parse(rest).and_then(|o| match command.as_str() {
        "build" => build(&o).map(|_| true),
        "qemu-test" => {
            warn_unformatted();
            qemu_test(&o).map(|records| {
                let (passed, failed) = testrun::summarize(&records);
                println!("{passed} passed, {failed} failed");
                failed == 0
            })
        }
        "qemu-run" => qemu_run(&o).map(|()| true),
        "test" => test(&o),
        "bench" => bench(name, &o),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(true)
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
