//! Booting a kernel + initramfs in QEMU and collecting what the guest prints on its serial port.
//!
//! The guest is the `q35` machine on x86_64 and `virt` on arm64. Acceleration is TCG unless KVM
//! provably works (see [`kvm_usable`]); `XTASK_ACCEL=tcg|kvm` overrides the choice.
//!
//! Non-interactive boots also get a QMP socket (`<log>.qmp`), through which the runner acts on
//! the machine when the guest asks: a line `ktest: host-request <command>` on the serial
//! console (for a command in [`HOST_REQUESTS`]) makes the host execute that QMP command, e.g.
//! `system_powerdown`, which on `virt` raises the PL061's line 3 (the power button).

use crate::arch::Arch;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The line a guest prints right before powering off; QEMU is killed if it lingers after it.
pub const POWEROFF_MARKER: &str = "ktest: poweroff";

/// The prefix of a guest's request for a host action (see the module documentation).
pub const HOST_REQUEST: &str = "ktest: host-request ";

/// The QMP commands a guest may ask for (see [`qmp_request`] for those with arguments).
pub const HOST_REQUESTS: &[&str] = &[
    "system_powerdown",
    "device_del nvme0",
    "throttle nvme0",
    "unthrottle nvme0",
];

/// How long QEMU may take to exit after the guest printed [`POWEROFF_MARKER`].
const POWEROFF_GRACE: Duration = Duration::from_secs(5);

/// One boot of a guest.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The guest architecture (selects the QEMU binary, machine and console).
    pub arch: Arch,
    /// The kernel: a bzImage, an ELF vmlinux with a PVH note (x86_64), or an arm64 `Image`
    /// (gzip-compressed is fine).
    pub kernel: PathBuf,
    /// The initramfs (a `newc` cpio archive, see `cpio.rs`).
    pub initrd: PathBuf,
    /// Extra kernel parameters, appended after `console=... panic=-1`.
    pub append: String,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// Number of virtual CPUs.
    pub cpus: u32,
    /// QEMU is killed after this long (non-interactive boots only).
    pub timeout: Duration,
    /// Where the serial output is streamed to (created or truncated; flushed line by line).
    pub log: PathBuf,
    /// Connect the serial console to the terminal (`-serial mon:stdio`: Ctrl-A X quits) instead
    /// of capturing it; the output is still copied to `log` and returned, `timeout` is ignored.
    pub interactive: bool,
    /// More QEMU arguments, appended last.
    pub extra_args: Vec<String>,
}

/// What a boot produced.
#[derive(Clone, Debug)]
pub struct BootOutput {
    /// Everything the guest printed on its serial console, `\r\n` turned into `\n`.
    pub serial: String,
    /// QEMU was killed because [`Boot::timeout`] elapsed.
    pub timed_out: bool,
    /// QEMU's exit code; `None` if it was killed (by us on a timeout or after the poweroff
    /// marker, or by a signal). A kernel panic with `panic=-1` also exits 0 (`-no-reboot`).
    #[allow(dead_code)] // API: callers judge boots by their serial output so far
    pub status: Option<i32>,
}

/// The QEMU system emulator for `arch`.
pub fn qemu_binary(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Arm64 => "qemu-system-aarch64",
    }
}

/// The guest's serial console device, for `console=`.
pub fn console(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "ttyS0",
        Arch::Arm64 => "ttyAMA0",
    }
}

/// Whether a boot of `arch` uses KVM: `XTASK_ACCEL=kvm|tcg` if set, else KVM only for the host's
/// own architecture when [`kvm_usable`].
pub fn use_kvm(arch: Arch) -> bool {
    match std::env::var("XTASK_ACCEL").as_deref() {
        Ok("kvm") => true,
        Ok("tcg") => false,
        _ => host_arch() == Some(arch) && kvm_usable(),
    }
}

fn host_arch() -> Option<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(Arch::X86_64),
        "aarch64" => Some(Arch::Arm64),
        _ => None,
    }
}

/// The QEMU command line for `boot` (without stdio setup).
pub fn command(boot: &Boot) -> Command {
    let kvm = use_kvm(boot.arch);
    let machine = match boot.arch {
        Arch::X86_64 => "q35",
        Arch::Arm64 => "virt",
    };
    let cpu = match (kvm, boot.arch) {
        (true, _) => "host",
        (false, Arch::X86_64) => "max",
        // Emulating the architected pointer-authentication hash is slow under TCG.
        (false, Arch::Arm64) => "max,pauth-impdef=on",
    };
    // `-icount` (deterministic virtual time, used by benchmarks) needs single-threaded TCG.
    let icount = boot.extra_args.iter().any(|a| a == "-icount");
    let accel = match (kvm, boot.cpus > 1 && !icount) {
        (true, _) => "kvm",
        (false, true) => "tcg,thread=multi",
        (false, false) => "tcg",
    };
    let append = format!("console={} panic=-1 {}", console(boot.arch), boot.append);
    let (memory, cpus) = (boot.memory_mb.to_string(), boot.cpus.to_string());
    let mut c = Command::new(qemu_binary(boot.arch));
    c.args(["-machine", machine, "-cpu", cpu, "-accel", accel])
        .args(["-m", &memory, "-smp", &cpus])
        .arg("-kernel")
        .arg(&boot.kernel)
        .arg("-initrd")
        .arg(&boot.initrd)
        .args(["-append", append.trim_end()])
        // No default NIC, VGA, serial or monitor; -no-reboot makes a guest reboot/panic exit.
        .args(["-nodefaults", "-no-reboot", "-display", "none"]);
    if boot.interactive {
        c.args(["-serial", "mon:stdio"]);
    } else {
        c.args(["-serial", "stdio", "-monitor", "none"]);
    }
    if !boot.interactive {
        let qmp = qmp_socket(boot);
        c.arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()));
    }
    c.args(&boot.extra_args);
    c
}

/// The QMP socket of a non-interactive boot: next to its serial log.
fn qmp_socket(boot: &Boot) -> PathBuf {
    boot.log.with_extension("qmp")
}

/// The QMP request for a host request: `name` alone, `device_del <id>` (hot-unplug), or
/// `throttle <id>` / `unthrottle <id>`: `block_set_io_throttle` on that device's drive to
/// 1 byte/s (the block layer lets one request through, then holds every further one for about
/// an hour: a controller that never completes them), or back to no limit (held requests run).
fn qmp_request(command: &str) -> serde_json::Value {
    let throttle = |id: &str, bps: u64| {
        serde_json::json!({ "execute": "block_set_io_throttle", "arguments": {
            "id": id, "bps": bps, "bps_rd": 0, "bps_wr": 0, "iops": 0, "iops_rd": 0, "iops_wr": 0,
        } })
    };
    match command.split_once(' ') {
        Some(("device_del", id)) => {
            serde_json::json!({ "execute": "device_del", "arguments": { "id": id } })
        }
        Some(("throttle", id)) => throttle(id, 1),
        Some(("unthrottle", id)) => throttle(id, 0),
        _ => serde_json::json!({ "execute": command }),
    }
}

/// Connects to QEMU's QMP socket and executes `command` (a name, or `device_del <id>`);
/// returns its `return` value. Events QEMU sends meanwhile are skipped.
pub fn qmp_execute(socket: &Path, command: &str) -> io::Result<serde_json::Value> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut read_message = || -> io::Result<serde_json::Value> {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::other("QMP: connection closed"));
        }
        Ok(serde_json::from_str(&line)?)
    };
    let greeting = read_message()?;
    if greeting.get("QMP").is_none() {
        return Err(io::Error::other(format!(
            "QMP: unexpected greeting {greeting}"
        )));
    }
    let mut result = serde_json::Value::Null;
    for execute in ["qmp_capabilities", command] {
        let request = qmp_request(execute);
        writeln!(writer, "{request}")?;
        result = loop {
            let reply = read_message()?;
            if let Some(value) = reply.get("return") {
                break value.clone();
            }
            if let Some(error) = reply.get("error") {
                return Err(io::Error::other(format!("QMP {execute}: {error}")));
            }
            // An asynchronous event (`{"event": ...}`): not our reply.
        };
    }
    Ok(result)
}

/// Executes the host request in a serial `line`, if it is one (see [`HOST_REQUEST`]), on a
/// thread of its own so the serial output keeps flowing; refusals and failures are reported on
/// stderr (the guest's test notices the missing effect).
fn serve_host_request(line: &str, socket: &Path) {
    let Some(command) = line
        .find(HOST_REQUEST)
        .map(|at| line[at + HOST_REQUEST.len()..].trim())
    else {
        return;
    };
    if !HOST_REQUESTS.contains(&command) {
        eprintln!("note: the guest asked for {command:?}, which is not an allowed host request");
        return;
    }
    let (socket, command) = (socket.to_path_buf(), command.to_string());
    thread::spawn(move || {
        if let Err(e) = qmp_execute(&socket, &command) {
            eprintln!("note: host request {command}: {e}");
        }
    });
}

/// Renders a command line for messages.
fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        s.push(' ');
        if a.contains(' ') {
            s.push_str(&format!("'{a}'"));
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// After this long without serial output, the host writes a newline to the guest's console
/// input: a UART receive interrupt. Under TCG on a loaded host, an arm64 `virt` guest was seen
/// (3 of 7 loaded runs) to stop with both vCPUs halted in WFI and its next timer interrupt
/// never delivered, QMP still answering, until any interrupt arrived (it then carried on at
/// once). The newline is that interrupt; the guest's console reader ignores it, and a guest
/// merely busy for this long loses nothing. Each poke is reported after the boot.
const POKE_AFTER: Duration = Duration::from_secs(20);

/// `poked_at` when no poke awaits the guest's next output.
const NOT_POKED: u64 = u64::MAX;

/// Host time since QEMU started, for the serial log's `[xtask <s>]` lines.
fn seconds_ms(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// How often the waiting thread checks for that silence.
const POKE_CHECK: Duration = Duration::from_secs(2);

/// What the serial reader thread tells the waiting thread.
enum Event {
    Marker,
    Eof,
}

/// Boots `boot` and waits for QEMU to exit, the timeout, or the poweroff marker (+5 s).
///
/// QEMU's stderr goes to ours. The child is always reaped, also on errors.
pub fn run(boot: &Boot) -> io::Result<BootOutput> {
    let mut cmd = command(boot);
    let shown = show(&cmd);
    let _ = fs::remove_file(qmp_socket(boot)); // a stale socket of an earlier run
    let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    if let Some(dir) = boot.log.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| ctx(&format!("creating {}", dir.display()), e))?;
    }
    let log = File::create(&boot.log).map_err(|e| {
        ctx(
            &format!("creating the serial log {}", boot.log.display()),
            e,
        )
    })?;
    // Shared with the waiting thread, which adds a line for each poke (see [`POKE_AFTER`]);
    // the reader writes whole lines only, so the two never interleave within a line.
    let log = Arc::new(Mutex::new(log));
    let poke_log = Arc::clone(&log);
    cmd.stdin(if boot.interactive {
        Stdio::inherit()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| ctx(&format!("cannot run `{shown}`"), e))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut console_input = child.stdin.take();
    let started = Instant::now();
    // When the guest last printed, in milliseconds since `started` (see [`POKE_AFTER`]).
    let last_output = Arc::new(AtomicU64::new(0));
    let output_seen = Arc::clone(&last_output);
    // When the last poke was sent (milliseconds since `started`), until the guest prints again.
    let poked_at = Arc::new(AtomicU64::new(NOT_POKED));
    let poke_seen = Arc::clone(&poked_at);
    let (tx, rx) = mpsc::channel();
    let echo = boot.interactive;
    let qmp = (!boot.interactive).then(|| qmp_socket(boot));
    let reader = thread::spawn(move || -> io::Result<String> {
        let mut serial = String::new();
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        let mut result = Ok(());
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let now = started.elapsed().as_millis() as u64;
            output_seen.store(now, Ordering::Relaxed);
            if echo {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line[..nl]);
                let line = line.trim_end_matches('\r');
                // The console echoes the poke's newline (an empty line): only real output
                // answers it. A stalled guest answers at once; a merely quiet one at any time.
                if !line.trim().is_empty() {
                    let poke = poke_seen.swap(NOT_POKED, Ordering::Relaxed);
                    if poke != NOT_POKED && result.is_ok() {
                        result = writeln!(
                            log.lock().unwrap(),
                            "[xtask {}] guest output again {:.1} s after the poke",
                            seconds_ms(now),
                            (now - poke.min(now)) as f64 / 1000.0
                        );
                    }
                }
                if line.trim_end().ends_with(POWEROFF_MARKER) {
                    let _ = tx.send(Event::Marker);
                }
                if let Some(qmp) = &qmp {
                    serve_host_request(line, qmp);
                }
                serial.push_str(line);
                serial.push('\n');
                if result.is_ok() {
                    result = writeln!(log.lock().unwrap(), "{line}");
                }
            }
        }
        if !pending.is_empty() {
            let line = String::from_utf8_lossy(&pending);
            serial.push_str(&line);
            if result.is_ok() {
                result = write!(log.lock().unwrap(), "{line}");
            }
        }
        let _ = tx.send(Event::Eof);
        result.map(|()| serial)
    });

    let deadline = started
        .checked_add(boot.timeout)
        .filter(|_| !boot.interactive);
    let mut marker_deadline: Option<Instant> = None;
    let mut timed_out = false;
    let mut killed = false;
    let mut pokes = 0u32;
    loop {
        let poke_check = console_input.as_ref().map(|_| Instant::now() + POKE_CHECK);
        let until = [deadline, marker_deadline, poke_check]
            .into_iter()
            .flatten()
            .min();
        let event = match until {
            Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Marker) => {
                marker_deadline.get_or_insert(Instant::now() + POWEROFF_GRACE);
            }
            Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout)
                if deadline.is_none_or(|d| Instant::now() < d)
                    && marker_deadline.is_none_or(|m| Instant::now() < m) =>
            {
                let silent = started.elapsed().as_millis() as u64
                    - last_output
                        .load(Ordering::Relaxed)
                        .min(started.elapsed().as_millis() as u64);
                if silent >= POKE_AFTER.as_millis() as u64 {
                    if let Some(input) = console_input.as_mut() {
                        if input.write_all(b"\n").and_then(|()| input.flush()).is_ok() {
                            pokes += 1;
                            let now = started.elapsed().as_millis() as u64;
                            let _ = writeln!(
                                poke_log.lock().unwrap(),
                                "[xtask {}] no guest output for {} s: a newline sent to its console",
                                seconds_ms(now),
                                POKE_AFTER.as_secs()
                            );
                            poked_at.store(now, Ordering::Relaxed);
                            // Counts as output: the next poke comes after another silence.
                            last_output.store(now, Ordering::Relaxed);
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                timed_out = deadline.is_some_and(|d| Instant::now() >= d)
                    && marker_deadline.is_none_or(|m| m > Instant::now());
                let _ = child.kill();
                killed = true;
                break;
            }
        }
    }
    // The serial pipe is closed: QEMU is exiting (or was killed). Reap it in any case.
    let status = reap(&mut child, Duration::from_secs(10))
        .map_err(|e| ctx(&format!("waiting for `{shown}`"), e))?;
    let serial = reader
        .join()
        .map_err(|_| io::Error::other("the serial reader thread panicked"))?
        .map_err(|e| {
            ctx(
                &format!("reading QEMU's serial output into {}", boot.log.display()),
                e,
            )
        })?;
    let _ = fs::remove_file(qmp_socket(boot));
    if pokes > 0 {
        eprintln!(
            "note: the guest was silent for {} s {pokes} time(s); a newline on its console woke it \
             (see POKE_AFTER in xtask/src/qemu.rs; `[xtask` lines in {} say when, and how soon the \
             guest printed again)",
            POKE_AFTER.as_secs(),
            boot.log.display()
        );
    }
    Ok(BootOutput {
        serial,
        timed_out,
        status: if killed { None } else { status.code() },
    })
}

/// Waits up to `grace` for `child` to exit, then kills it; returns its exit status.
fn reap(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait()
}

/// Whether `/dev/kvm` really works on this host (cached): the CPU advertises vmx/svm (x86) and
/// `KVM_GET_API_VERSION`, `KVM_CREATE_VM` and `KVM_CREATE_VCPU` succeed. A `/dev/kvm` that
/// exists but is a broken nested backend, where `-accel kvm` hangs or aborts, fails this.
pub fn kvm_usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(probe_kvm)
}

fn probe_kvm() -> bool {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const KVM_GET_API_VERSION: u64 = 0xae00;
    const KVM_CREATE_VM: u64 = 0xae01;
    const KVM_CREATE_VCPU: u64 = 0xae41;
    extern "C" {
        fn ioctl(fd: i32, request: u64, ...) -> i32;
    }
    if cfg!(target_arch = "x86_64") {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let virt = cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
        if !virt {
            return false;
        }
    }
    let Ok(kvm) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    else {
        return false;
    };
    // SAFETY: KVM_GET_API_VERSION takes no argument; the fd is open for the whole call.
    if unsafe { ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION, 0u64) } != 12 {
        return false;
    }
    // SAFETY: KVM_CREATE_VM takes the machine type (0: default) and returns a new fd or -1.
    let vm = unsafe { ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0u64) };
    if vm < 0 {
        return false;
    }
    // SAFETY: `vm` is a fresh fd that nothing else owns; OwnedFd closes it.
    let vm = unsafe { OwnedFd::from_raw_fd(vm) };
    // SAFETY: KVM_CREATE_VCPU takes the vcpu id and returns a new fd or -1.
    let vcpu = unsafe { ioctl(vm.as_raw_fd(), KVM_CREATE_VCPU, 0u64) };
    if vcpu < 0 {
        return false;
    }
    // SAFETY: `vcpu` is a fresh fd that nothing else owns; dropping the OwnedFd closes it.
    drop(unsafe { OwnedFd::from_raw_fd(vcpu) });
    drop(vm);
    // Finally let QEMU itself set up a KVM vCPU (where MSR setup fails on broken nested
    // backends) and quit at once from the monitor.
    let Some(arch) = host_arch() else {
        return false;
    };
    let machine = if arch == Arch::X86_64 { "q35" } else { "virt" };
    let args = [
        "-machine",
        machine,
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-m",
        "64",
        "-nodefaults",
    ];
    let child = Command::new(qemu_binary(arch))
        .args(args)
        .args(["-display", "none", "-S", "-monitor", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let _ = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"quit\n");
    matches!(reap(&mut child, Duration::from_secs(10)), Ok(s) if s.success())
}

/// Problem markers that count only at the start of a message: elsewhere they are benign
/// (`RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable ...`).
const SPLAT_AT_START: &[&str] = &["BUG:", "WARNING:", "INFO: task "];

/// Problem markers that count anywhere in a line.
const SPLAT_ANYWHERE: &[&str] = &[
    "kernel BUG at",
    "Oops",
    "general protection fault",
    "Unable to handle kernel",
    "Kernel panic",
    "KASAN:",
    "UBSAN:",
    "KFENCE:",
    "possible recursive locking",
    "possible circular locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "sleeping function called from invalid context",
    "list_add corruption",
    "list_del corruption",
    "unreferenced object 0x",
    "new suspected memory leak",
    "Call Trace:",
    "Call trace:", // arm64
    "RCU stall",
    "detected stalls on CPU",
    "self-detected stall on CPU",
    "soft lockup",
    "hard LOCKUP",
    "blocked for more than",
    "hung_task",
    "[ cut here ]",
];

/// Lines of context kept after a matching line.
const SPLAT_CONTEXT: usize = 5;

/// The kernel problems (oopses, warnings, lockdep reports, stalls, leaks...) in a console log.
///
/// Each entry is a matching line plus up to 5 following lines, and the whole of an indented
/// stack trace; matches within an entry extend it, so one splat gives one entry. Lines
/// mentioning the command line never match (parameters such as `hung_task_panic=1` would).
pub fn splats(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !is_splat(lines[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1 + SPLAT_CONTEXT;
        i += 1;
        while i < end.min(lines.len()) {
            if is_splat(lines[i]) {
                end = i + 1 + SPLAT_CONTEXT;
            } else if unstamped(lines[i]).starts_with(' ') {
                end = end.max(i + 2); // a stack frame: keep the trace and the line after it
            }
            i += 1;
        }
        out.push(lines[start..end.min(lines.len())].join("\n"));
    }
    out
}

fn is_splat(line: &str) -> bool {
    if line.contains("command line") || line.contains("Command line") {
        return false;
    }
    let msg = unstamped(line).trim_start();
    SPLAT_AT_START.iter().any(|p| msg.starts_with(p))
        || SPLAT_ANYWHERE.iter().any(|p| msg.contains(p))
}

/// A console line without its `<level>`, `[timestamp]` and `[caller]` prefixes (and the space
/// after them); the message's own indentation is kept.
fn unstamped(line: &str) -> &str {
    let mut s = line;
    if let Some((level, rest)) = s.strip_prefix('<').and_then(|r| r.split_once('>')) {
        if !level.is_empty() && level.chars().all(|c| c.is_ascii_digit()) {
            s = rest;
        }
    }
    let mut stamped = false;
    while let Some((inside, rest)) = s.strip_prefix('[').and_then(|r| r.split_once(']')) {
        if inside.is_empty() || !inside.chars().all(|c| " .0123456789TC".contains(c)) {
            break;
        }
        (s, stamped) = (rest, true);
    }
    if stamped {
        s.strip_prefix(' ').unwrap_or(s)
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(arch: Arch, cpus: u32, interactive: bool) -> Boot {
        Boot {
            arch,
            kernel: "/k/vmlinux".into(),
            initrd: "/k/initrd.cpio".into(),
            append: "quiet".into(),
            memory_mb: 512,
            cpus,
            timeout: Duration::from_secs(60),
            log: "/tmp/serial.log".into(),
            interactive,
            extra_args: vec!["-snapshot".into()],
        }
    }

    fn args(b: &Boot) -> Vec<String> {
        command(b)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag}"));
        &args[i + 1]
    }

    #[test]
    fn command_lines() {
        std::env::set_var("XTASK_ACCEL", "tcg");
        let x = args(&boot(Arch::X86_64, 2, false));
        assert_eq!(
            command(&boot(Arch::X86_64, 2, false)).get_program(),
            "qemu-system-x86_64"
        );
        assert_eq!(after(&x, "-machine"), "q35");
        assert_eq!(after(&x, "-cpu"), "max");
        assert_eq!(after(&x, "-accel"), "tcg,thread=multi");
        assert_eq!(after(&x, "-m"), "512");
        assert_eq!(after(&x, "-smp"), "2");
        assert_eq!(after(&x, "-kernel"), "/k/vmlinux");
        assert_eq!(after(&x, "-initrd"), "/k/initrd.cpio");
        assert_eq!(after(&x, "-append"), "console=ttyS0 panic=-1 quiet");
        assert_eq!(after(&x, "-serial"), "stdio");
        assert_eq!(after(&x, "-monitor"), "none");
        assert!(x.contains(&"-no-reboot".to_string()));
        assert_eq!(x.last().unwrap(), "-snapshot");

        let a = args(&boot(Arch::Arm64, 1, true));
        assert_eq!(
            command(&boot(Arch::Arm64, 1, true)).get_program(),
            "qemu-system-aarch64"
        );
        assert_eq!(after(&a, "-machine"), "virt");
        assert!(after(&a, "-cpu").starts_with("max"));
        assert_eq!(after(&a, "-accel"), "tcg");
        assert_eq!(after(&a, "-append"), "console=ttyAMA0 panic=-1 quiet");
        assert_eq!(after(&a, "-serial"), "mon:stdio");
        assert!(!a.contains(&"-monitor".to_string()));
    }

    /// Excerpts of clean Debian 6.1 boots under QEMU TCG (`-cpu max` and others), with the
    /// parameters testrun adds: nothing in here is a problem.
    const CLEAN_BOOT: &str = r#"[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)
[    0.000000] Command line: console=ttyS0 panic=-1 hung_task_panic=1 oops=panic
[    0.000000] tsc: Fast TSC calibration using PIT
[    0.108627] Kernel command line: console=ttyS0 panic=-1 hung_task_panic=1 oops=panic
[    0.287317] tsc: Marking TSC unstable due to TSCs unsynchronized
[    0.287318] tsc: Marking TSC unstable due to clocksource watchdog
[    0.301358] Spectre V1 : Mitigation: usercopy/swapgs barriers and __user pointer sanitization
[    0.301876] Spectre V2 : Mitigation: Retpolines
[    0.301996] Spectre V2 : Spectre v2 / SpectreRSB: Filling RSB on context switch and VMEXIT
[    0.301997] Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!
[    0.301998] RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable to RETBleed attacks, data leaks possible!
[    0.302245] Speculative Store Bypass: Vulnerable
[    0.305285] x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point registers'
[    0.305286] x86/fpu: Enabled xstate features 0x21f, context size is 2696 bytes, using 'standard' format.
[    0.602499] rcu: Hierarchical SRCU implementation.
[    0.602664] rcu: 	Max phase no-delay instances is 1000.
[    0.952574] PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" and report a bug
[    0.952575] [Firmware Bug]: TSC doesn't count with P0 frequency!
[    1.238548] AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.
[    1.466645] ima: No TPM chip found, activating TPM-bypass!
[    1.725778] Unstable clock detected, switching default tracing clock to "global"
[    1.725778] If you want to keep using the local clock, then add:
[    1.725778]   "trace_clock=local"
[    1.725778] on the kernel command line
[    1.839824] Freeing unused kernel image (initmem) memory: 2824K
[    1.969610] x86/mm: Checked W+X mappings: passed, no W+X pages found.
[    1.970053] Run /init as init process
[    2.000000] chardev: loading out-of-tree module taints kernel.
[    2.000100] chardev: module verification failed: signature and/or required key missing - tainting kernel
[    2.076899] ACPI: PM: Preparing to enter system sleep state S5
[    2.077853] reboot: Power down
"#;

    #[test]
    fn clean_boot_has_no_splats() {
        assert_eq!(splats(CLEAN_BOOT), Vec::<String>::new());
    }

    #[test]
    fn warn_splat_is_one_entry_with_context() {
        let log = format!(
            "{CLEAN_BOOT}[    3.000000] ------------[ cut here ]------------\n\
             [    3.000001] WARNING: CPU: 0 PID: 75 at drivers/chardev/src/lib.rs:42 chardev_init+0x1a/0x30 [chardev]\n\
             [    3.000002] Modules linked in: chardev(OE+)\n\
             [    3.000003] CPU: 0 PID: 75 Comm: insmod Tainted: G           OE      6.1.0-56-amd64 #1\n\
             [    3.000004] RIP: 0010:chardev_init+0x1a/0x30 [chardev]\n\
             [    3.000005] Call Trace:\n\
             [    3.000006]  <TASK>\n\
             [    3.000007]  do_one_initcall+0x56/0x220\n\
             [    3.000008]  do_init_module+0x4a/0x1f0\n\
             [    3.000009]  __do_sys_finit_module+0xac/0x120\n\
             [    3.000010]  do_syscall_64+0x55/0xb0\n\
             [    3.000011]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8\n\
             [    3.000012]  </TASK>\n\
             [    3.000013] ---[ end trace 0000000000000000 ]---\n\
             ok 1 chardev.open\n"
        );
        let s = splats(&log);
        assert_eq!(s.len(), 1, "{s:#?}");
        assert!(s[0].starts_with("[    3.000000] ------------[ cut here ]"));
        assert!(s[0].contains("WARNING: CPU: 0 PID: 75"));
        assert!(
            s[0].ends_with("---[ end trace 0000000000000000 ]---"),
            "{}",
            s[0]
        );
    }

    #[test]
    fn each_kind_of_problem_is_found() {
        let samples = [
            "[   12.1] BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "[   12.1] BUG: sleeping function called from invalid context at mm/slab.h:723",
            "[   12.1] kernel BUG at lib/list_debug.c:54!",
            "[   12.1] Oops: 0002 [#1] PREEMPT SMP NOPTI",
            "[   12.1] Internal error: Oops: 96000005 [#1] SMP",
            "[   12.1] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP NOPTI",
            "[   12.1] Unable to handle kernel paging request at virtual address dead000000000108",
            "[   12.1] Kernel panic - not syncing: Fatal exception",
            "[   12.1] BUG: KASAN: slab-use-after-free in chardev_read+0x3c/0x90 [chardev]",
            "[   12.1] UBSAN: array-index-out-of-bounds in drivers/chardev/src/lib.rs:10:5",
            "[   12.1] WARNING: possible recursive locking detected",
            "[   12.1] WARNING: possible circular locking dependency detected",
            "[   12.1] WARNING: inconsistent lock state",
            "[   12.1] list_add corruption. prev->next should be next (ffff8880), but was 0000000000000000.",
            "[   12.1] list_del corruption, ffff888003c1e0a8->next is LIST_POISON1 (dead000000000100)",
            "[   12.1] kmemleak: unreferenced object 0xffff888004d3c000 (size 64):",
            "[   12.1] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            "unreferenced object 0xffff888004d3c000 (size 64):",
            "[   12.1] Call Trace:",
            "[   33.1] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
            "[   33.1] rcu: INFO: rcu_preempt self-detected stall on CPU",
            "[   33.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:75]",
            "[  243.1] INFO: task insmod:75 blocked for more than 120 seconds.",
            "[  243.1] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
            "<4>[   12.1] WARNING: CPU: 1 PID: 1 at kernel/foo.c:1 f+0x1/0x2",
        ];
        for s in samples {
            let log = format!("{CLEAN_BOOT}{s}\n[   99.0] after\n");
            let found = splats(&log);
            assert_eq!(found.len(), 1, "{s}: {found:?}");
            assert_eq!(found[0], format!("{s}\n[   99.0] after"));
        }
    }

    #[test]
    fn separate_splats_are_separate_entries() {
        let mut log = String::from("Oops: 0000 [#1]\n");
        for i in 0..10 {
            log.push_str(&format!("line {i}\n"));
        }
        log.push_str("Kernel panic - not syncing: Fatal exception\n");
        let s = splats(&log);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].lines().count(), 1 + SPLAT_CONTEXT);
        assert_eq!(s[1], "Kernel panic - not syncing: Fatal exception");
    }

    #[test]
    fn console_prefixes() {
        assert_eq!(unstamped("<4>[   12.000001][    T1] BUG: x"), "BUG: x");
        assert_eq!(
            unstamped("[   12.000001]  do_one_initcall+0x56/0x220"),
            " do_one_initcall+0x56/0x220"
        );
        assert_eq!(unstamped("[Firmware Bug]: TSC"), "[Firmware Bug]: TSC");
        assert_eq!(unstamped("plain"), "plain");
    }
}
