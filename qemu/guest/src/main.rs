//! `ktest`: the `/init` (PID 1) of the test VM's initramfs.
//!
//! 1. Mounts `/proc`, `/sys` and devtmpfs on `/dev`.
//! 2. Reads its configuration from `/proc/cmdline` (see [`cmdline`]).
//! 3. With `ktest.shell=1`, runs an interactive shell on the console; otherwise runs the
//!    suites named by `ktest.suites=`, printing one KTAP v1 document on stdout (the serial
//!    console), each suite a nested subtest. With `ktest.bench=NAME` it runs that benchmark
//!    instead (see [`bench`]), printing `bench: ...` lines.
//! 4. Prints the whole kernel log between `---- kernel log ----` and `---- end kernel log ----`,
//!    then `ktest: poweroff`, and powers the machine off (so QEMU exits).
//!
//! Whatever goes wrong, it still powers off: a fatal problem is printed as `ktest: fatal: ...`.
//! All test code runs in forked child processes with deadlines (see [`harness`]), so a test
//! that crashes, hangs or is killed by a kernel oops cannot take PID 1 down with it.

mod bench;
mod cmdline;
mod devtest;
mod drivers;
mod harness;
mod kmsg;
mod ktap;
mod mem;
mod module;
mod pci;
mod procfs;
mod suites;
mod sys;
mod uapi;

use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cmdline::Config;
use crate::harness::Ctx;
use crate::kmsg::Kmsg;
use crate::sys::Errno;

fn main() {
    harness::install_panic_hook();
    if sys::getpid() != 1 {
        eprintln!(
            "ktest: this is the /init of the QEMU test VM; it only runs as PID 1 \
             (it mounts file systems and powers the machine off)"
        );
        std::process::exit(2);
    }
    if std::panic::catch_unwind(run).is_err() {
        ktap::emit(&format!(
            "ktest: fatal: internal error: {}",
            harness::take_panic_message()
        ));
    }
    power_off()
}

fn run() {
    if let Err(error) = setup() {
        ktap::emit(&format!("ktest: fatal: {error}"));
        dump_kernel_log();
        return;
    }
    let config = match std::fs::read_to_string("/proc/cmdline") {
        Ok(text) => cmdline::parse(&text),
        Err(e) => {
            ktap::emit(&format!("ktest: fatal: cannot read /proc/cmdline: {e}"));
            return;
        }
    };
    if config.shell {
        run_shell();
        return;
    }
    match &config.bench {
        Some(name) => bench::run(
            &bench::BenchConfig {
                name: name.clone(),
                rounds: config.bench_rounds,
                mib: config.bench_mib,
                block_sizes: config.bench_bs.iter().map(|&b| b as usize).collect(),
                capacity: config.bench_capacity as usize,
                iters: config.bench_iters,
                millis: config.bench_ms,
                cpu: config.bench_cpu.map(|c| c as usize),
            },
            config.timeout_scale,
        ),
        None => run_suites(&config),
    }
    dump_kernel_log();
}

/// Mounts the pseudo file systems and makes sure stdout is the console.
fn setup() -> Result<(), String> {
    let mut first_error = None;
    for (fstype, dir) in [
        ("proc", "/proc"),
        ("sysfs", "/sys"),
        ("devtmpfs", "/dev"),
        ("debugfs", crate::devtest::DEBUGFS),
    ] {
        let result = std::fs::create_dir_all(dir)
            .map_err(|e| format!("mkdir {dir}: {e}"))
            .and_then(|()| match sys::mount(fstype, dir, fstype) {
                Ok(()) | Err(Errno::EBUSY) => Ok(()), // EBUSY: already mounted
                Err(e) => Err(format!("mount -t {fstype} {fstype} {dir}: {e}")),
            });
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    attach_console();
    first_error.map_or(Ok(()), Err)
}

/// The kernel opens `/dev/console` as fds 0-2 for init if the initramfs has the node; if it
/// did not, open it now from devtmpfs.
fn attach_console() {
    if sys::fd_is_open(1) {
        return;
    }
    if let Ok(console) = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        for fd in 0..3 {
            let _ = sys::dup2(console.as_fd(), fd);
        }
    }
}

/// `ktest.shell=1`: an interactive shell on the console. When it exits, the machine powers off.
fn run_shell() {
    ktap::emit("ktest: ktest.shell=1: starting a shell (modules are in /lib/modules); exit it to power off");
    // `setsid cttyhack` gives the shell a controlling terminal, so job control and Ctrl-C work.
    let mut command = if Path::new("/bin/busybox").exists() {
        let mut command = Command::new("/bin/busybox");
        command.args(["setsid", "cttyhack", "/bin/sh"]);
        command
    } else {
        Command::new("/bin/sh")
    };
    command
        .env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
        .env("HOME", "/");
    match command.status() {
        Ok(status) => ktap::emit(&format!("ktest: shell exited ({status})")),
        Err(e) => ktap::emit(&format!("ktest: fatal: cannot start /bin/sh: {e}")),
    }
    sys::reap_exited_children();
}

/// Runs the configured suites as one KTAP document.
fn run_suites(config: &Config) {
    let top = ktap::Writer::top();
    top.version();
    top.diag(&format!(
        "ktest: suites={} timeout_scale={}",
        config.suites.join(","),
        config.timeout_scale
    ));
    for warning in &config.warnings {
        top.diag(&format!("ktest: warning: {warning}"));
    }
    top.plan(config.suites.len());
    let ctx = Ctx::new(config.timeout_scale);
    for (index, name) in config.suites.iter().enumerate() {
        // `<suite>/<test>`: only that test of the suite.
        let (suite, ctx) = match name.split_once('/') {
            Some((suite, test)) => (suite, ctx.only(test)),
            None => (name.as_str(), Ctx::new(config.timeout_scale)),
        };
        let (passed, summary) = suites::run(suite, &ctx, &top.nested()).unwrap_or_else(|| {
            let known = suites::known().join(", ");
            (false, format!("unknown suite {name:?} (known: {known})"))
        });
        top.diag(&summary);
        top.result(passed, index + 1, name, None);
        sys::reap_exited_children();
    }
    if let Some(uptime) = procfs::uptime() {
        top.diag(&format!("ktest: finished {uptime:.2} s after boot"));
    }
}

/// Prints the text of every kernel log record still in the ring buffer.
fn dump_kernel_log() {
    ktap::emit("---- kernel log ----");
    match Kmsg::open().and_then(|mut kmsg| kmsg.read_available()) {
        Ok(records) => {
            for record in records {
                for line in record.text.split('\n') {
                    ktap::emit(line);
                }
            }
        }
        Err(e) => ktap::emit(&format!("ktest: cannot read /dev/kmsg: {e}")),
    }
    ktap::emit("---- end kernel log ----");
}

/// Flushes everything and powers off. Never returns.
fn power_off() -> ! {
    ktap::emit("ktest: poweroff");
    sys::sync();
    sys::drain_terminal(std::io::stdout());
    let error = sys::power_off();
    ktap::emit(&format!(
        "ktest: fatal: reboot(RB_POWER_OFF) failed: {error}"
    ));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
