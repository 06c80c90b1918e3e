//! Suite `gpio_pl061`: the PL061 of QEMU's arm64 `virt` machine, taken over from the built-in
//! C driver (`pl061_gpio`) and given back at the end. Requested on arm64 only (the driver's
//! `Cargo.toml` names the architectures); where the device is missing, the first test fails.

pub mod bench;
mod uapi;

use std::path::Path;
use std::time::Duration;

use crate::devtest::{self, Driver};
use crate::harness::{
    ensure, ensure_eq, expect_errno, expect_errno_in, run_suite, Context, Ctx, TestCase, TestResult,
};
use crate::ktap;
use crate::module;
use crate::sys::Errno;
use uapi::{flag, Chip, EVENT_FALLING, EVENT_RISING};

/// Our module, and the directory its driver registration creates (there is no device node of
/// a fixed name: the chip's number is dynamic).
const DRIVER: Driver = Driver::new("gpio_pl061", "/sys/bus/amba/drivers/gpio_pl061");
/// The PL061 on `virt` (0x09030000).
const DEVICE: &str = "/sys/bus/amba/devices/9030000.pl061";
/// The chip's label: its parent device's name, with either driver.
const LABEL: &str = "9030000.pl061";
/// The built-in C driver.
const C_DRIVER: &str = "pl061_gpio";

/// The tests, in order.
pub const TESTS: [TestCase; 19] = [
    TestCase::new("unbind_c_driver_and_bind_ours", bind_ours).setup(),
    TestCase::new("chip_and_lines_visible_in_uapi_v2", chip_and_lines_visible),
    TestCase::new("chip_visible_in_sysfs", chip_visible_in_sysfs),
    TestCase::new("outputs_driven_and_read_back", outputs_read_back),
    TestCase::new("inputs_read", inputs_read),
    TestCase::new("bad_requests_get_errors", bad_requests_get_errors),
    TestCase::new(
        "host_powerdown_gives_rising_and_falling_edges",
        powerdown_edges,
    )
    .timeout(Duration::from_secs(20)),
    TestCase::new("single_edge_triggers_report_one_edge", single_edges)
        .timeout(Duration::from_secs(30)),
    TestCase::new("unbind_and_rebind_ours", unbind_and_rebind),
    TestCase::new("gpiod_tools_list_our_chip", gpiod_tools_list_our_chip),
    TestCase::new("gpioset_drives_and_gpioget_reads", gpioset_and_gpioget),
    TestCase::new("gpiomon_sees_power_button_edges", gpiomon_edges)
        .timeout(Duration::from_secs(20)),
    TestCase::new("gpio_keys_reports_key_power", gpio_keys_power).timeout(Duration::from_secs(20)),
    TestCase::new("level_high_irq_fires_while_high_only", level_high)
        .timeout(Duration::from_secs(40)),
    TestCase::new("level_low_irq_fires_while_low_only", level_low).timeout(Duration::from_secs(20)),
    TestCase::new("unload_frees_everything", |ctx| DRIVER.unload_cleanly(ctx)),
    TestCase::new("load_unload_20_cycles_leak_nothing", cycles).timeout(Duration::from_secs(60)),
    TestCase::new(
        "probe_failure_at_each_step_releases_everything",
        probe_failures,
    )
    .timeout(Duration::from_secs(60)),
    TestCase::new("c_driver_rebinds_and_works", c_driver_rebinds),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "gpio_pl061", &TESTS, None)
}

fn write_attr(path: &str, value: &str) -> TestResult {
    std::fs::write(path, value).context(format!("write {value:?} to {path}"))
}

/// The name of the driver bound to the PL061, if any.
fn bound_driver() -> Option<String> {
    let link = std::fs::read_link(format!("{DEVICE}/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Waits (2 s × scale) until `driver` (or nothing) is bound to the PL061.
fn wait_bound(ctx: &Ctx, driver: Option<&str>) -> TestResult {
    let deadline = std::time::Instant::now() + ctx.scaled(Duration::from_secs(2));
    while bound_driver().as_deref() != driver {
        ensure!(
            std::time::Instant::now() < deadline,
            "expected driver {driver:?} on {DEVICE}, found {:?}",
            bound_driver()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// `/dev/gpiochipN` of the PL061 (the gpio device is a child of the AMBA device).
fn chip_path() -> TestResult<String> {
    let entries = std::fs::read_dir(DEVICE).context(format!("read_dir {DEVICE}"))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("gpiochip") && name[8..].bytes().all(|b| b.is_ascii_digit()) {
            return Ok(format!("/dev/{name}"));
        }
    }
    Err(crate::harness::Failure::new(format!(
        "no gpiochipN under {DEVICE}"
    )))
}

fn open_chip() -> TestResult<Chip> {
    let path = chip_path()?;
    Chip::open(&path).context(format!("open {path}"))
}

/// Loads our module with the device's `driver_override` naming it: it binds at once.
fn load_and_bind(ctx: &Ctx) -> TestResult {
    write_attr(&format!("{DEVICE}/driver_override"), "gpio_pl061")?;
    DRIVER.load(ctx, "")?;
    wait_bound(ctx, Some("gpio_pl061"))
}

fn bind_ours(ctx: &Ctx) -> TestResult {
    ensure!(
        Path::new(DEVICE).exists(),
        "{DEVICE} is missing: no PL061 on this machine"
    );
    if let Some(driver) = bound_driver() {
        ensure_eq!(driver, C_DRIVER, "driver bound at boot");
        write_attr(&format!("/sys/bus/amba/drivers/{C_DRIVER}/unbind"), LABEL)?;
        wait_bound(ctx, None)?;
    }
    load_and_bind(ctx)
}

fn chip_and_lines_visible(_: &Ctx) -> TestResult {
    let chip = open_chip()?;
    let info = chip.info().context("GPIO_GET_CHIPINFO_IOCTL")?;
    ensure_eq!(info.lines, 8, "line count");
    ensure_eq!(info.label, LABEL, "label");
    ensure_eq!(format!("/dev/{}", info.name), chip_path()?, "chip name");
    for offset in 0..8 {
        let line = chip
            .line_info(offset)
            .context(format!("GPIO_V2_GET_LINEINFO_IOCTL({offset})"))?;
        ensure_eq!(line.offset, offset, "line info offset");
        let dir = line.flags & (flag::INPUT | flag::OUTPUT);
        ensure!(
            dir == flag::INPUT || dir == flag::OUTPUT,
            "line {offset}: flags {:#x} give no single direction",
            line.flags
        );
        ensure!(
            line.flags & flag::USED == 0,
            "line {offset} is in use: {line:?}"
        );
    }
    Ok(())
}

fn chip_visible_in_sysfs(_: &Ctx) -> TestResult {
    // /sys/class/gpio/gpiochip<base> is named by the base, not by /dev/gpiochipN's index.
    let mut found = Vec::new();
    for e in std::fs::read_dir("/sys/class/gpio").context("read_dir /sys/class/gpio")? {
        let path = e.context("readdir")?.path();
        let label = std::fs::read_to_string(path.join("label")).unwrap_or_default();
        if label.trim() == LABEL {
            found.push(path);
        }
    }
    ensure_eq!(found.len(), 1, "chips labelled {LABEL} in /sys/class/gpio");
    let ngpio = std::fs::read_to_string(found[0].join("ngpio")).context("read ngpio")?;
    ensure_eq!(ngpio.trim(), "8", "{}/ngpio", found[0].display());
    let device = std::fs::canonicalize(found[0].join("device")).context("device link")?;
    ensure_eq!(
        device.file_name().map(|n| n.to_string_lossy().into_owned()),
        Some(LABEL.to_string()),
        "the sysfs chip's device"
    );
    Ok(())
}

fn outputs_read_back(_: &Ctx) -> TestResult {
    let chip = open_chip()?;
    let offsets = [0, 1, 2, 5];
    let lines = chip
        .request(&offsets, "ktest-out", flag::OUTPUT, Some(0b0101))
        .context("request lines 0,1,2,5 as outputs")?;
    ensure_eq!(lines.get(0b1111).context("get")?, 0b0101, "initial values");
    for pattern in [0b1010u64, 0b1111, 0b0000, 0b1001] {
        lines.set(0b1111, pattern).context("set")?;
        ensure_eq!(
            lines.get(0b1111).context("get")?,
            pattern,
            "values after set {pattern:#06b}"
        );
    }
    // Setting some lines leaves the others alone (the data register's address mask).
    lines.set(0b0010, 0b0010).context("set one")?;
    ensure_eq!(
        lines.get(0b1111).context("get")?,
        0b1011,
        "after setting line 1 only"
    );
    let info = chip.line_info(5).context("line info 5")?;
    ensure!(
        info.flags & (flag::OUTPUT | flag::USED) == flag::OUTPUT | flag::USED,
        "line 5 should be a used output: {info:?}"
    );
    ensure_eq!(info.consumer, "ktest-out", "consumer of line 5");
    Ok(())
}

fn inputs_read(_: &Ctx) -> TestResult {
    let chip = open_chip()?;
    let lines = chip
        .request(&[3, 4, 6, 7], "ktest-in", flag::INPUT, None)
        .context("request lines 3,4,6,7 as inputs")?;
    let values = lines.get(0b1111).context("get")?;
    // Line 3 is the power button, up while nobody presses it.
    ensure_eq!(values & 1, 0, "line 3 (power button, released)");
    let info = chip.line_info(3).context("line info 3")?;
    ensure!(
        info.flags & (flag::INPUT | flag::USED) == flag::INPUT | flag::USED,
        "line 3 should be a used input: {info:?}"
    );
    expect_errno(
        lines.set(0b1, 0b1),
        Errno(libc::EPERM),
        "set on an input request",
    )?;
    Ok(())
}

fn bad_requests_get_errors(_: &Ctx) -> TestResult {
    let chip = open_chip()?;
    expect_errno(
        chip.line_info(8).map(drop),
        Errno::EINVAL,
        "line info of offset 8",
    )?;
    expect_errno(
        chip.request(&[8], "bad", flag::INPUT, None).map(drop),
        Errno::EINVAL,
        "request of offset 8",
    )?;
    expect_errno(
        chip.request(&[], "bad", flag::INPUT, None).map(drop),
        Errno::EINVAL,
        "request of no lines",
    )?;
    expect_errno(
        chip.request(&[0], "bad", flag::INPUT | flag::OUTPUT, None)
            .map(drop),
        Errno::EINVAL,
        "input and output at once",
    )?;
    let held = chip
        .request(&[2], "holder", flag::OUTPUT, Some(1))
        .context("request line 2")?;
    expect_errno(
        chip.request(&[2], "second", flag::INPUT, None).map(drop),
        Errno::EBUSY,
        "request of a line already requested",
    )?;
    expect_errno(
        chip.request(&[0, 0], "twice", flag::INPUT, None).map(drop),
        Errno::EBUSY,
        "the same line twice in one request",
    )?;
    // A held line keeps the module loaded.
    expect_errno_in(
        module::unload("gpio_pl061"),
        &[Errno::EAGAIN, Errno::EBUSY],
        "rmmod while a line is held",
    )?;
    drop(held);
    Ok(())
}

/// QMP `system_powerdown` (asked of the host) raises line 3 and drops it ~100 ms later: an
/// interrupt through our irqchip for each edge, delivered as uAPI edge events.
fn powerdown_edges(ctx: &Ctx) -> TestResult {
    let chip = open_chip()?;
    let mut lines = chip
        .request(
            &[3],
            "ktest-edges",
            flag::INPUT | flag::EDGE_RISING | flag::EDGE_FALLING,
            None,
        )
        .context("request line 3 for both edges")?;
    let info = chip.line_info(3).context("line info 3")?;
    let edges = flag::EDGE_RISING | flag::EDGE_FALLING;
    ensure_eq!(info.flags & edges, edges, "line 3's edge flags");
    ensure!(
        std::fs::read_to_string("/proc/interrupts")
            .unwrap_or_default()
            .contains("pl061"),
        "/proc/interrupts lists no interrupt of the pl061 irqchip"
    );
    // One press gives a rising then a falling edge. If the host starves the guest for the
    // ~100 ms QEMU holds the button, both edges land before the interrupt is taken and the
    // hardware reports one (the same happens with the C driver): press again, a few times.
    let wait_ms = ctx.scaled(Duration::from_secs(5)).as_millis() as i32;
    for attempt in 1..=PRESSES {
        devtest::host_request("system_powerdown")?;
        let mut events = Vec::new();
        while let Some(event) = lines
            .read_event(if events.is_empty() { wait_ms } else { 600 })
            .context("read edge event")?
        {
            events.push(event);
        }
        if events == [(EVENT_RISING, 3), (EVENT_FALLING, 3)] {
            ensure_eq!(lines.get(1).context("get")?, 0, "line 3 after the release");
            return Ok(());
        }
        ensure!(
            events.len() <= 1 && events.iter().all(|e| e.1 == 3),
            "press {attempt}: events (id, offset) {events:?}, expected a rising then a falling \
             edge of line 3"
        );
        ctx.note(format!(
            "press {attempt}: {events:?}: the two edges coalesced (the guest was not running \
             within ~100 ms); pressing again"
        ));
    }
    Err(crate::harness::Failure::new(format!(
        "no press in {PRESSES} gave a rising then a falling edge"
    )))
}

/// How often a test presses the power button before it concludes an edge is really lost.
const PRESSES: u32 = 4;

/// Rising-only and falling-only requests (the irqchip's single-edge types): one press of the
/// button reports exactly the one edge asked for.
fn single_edges(ctx: &Ctx) -> TestResult {
    let chip = open_chip()?;
    let wait_ms = ctx.scaled(Duration::from_secs(10)).as_millis() as i32;
    for (edge, id, what) in [
        (flag::EDGE_RISING, EVENT_RISING, "rising"),
        (flag::EDGE_FALLING, EVENT_FALLING, "falling"),
    ] {
        let mut lines = chip
            .request(&[3], "ktest-edge", flag::INPUT | edge, None)
            .context(format!("request line 3 for {what} edges"))?;
        devtest::host_request("system_powerdown")?;
        let event = lines.read_event(wait_ms).context("read edge event")?;
        ensure_eq!(
            event,
            Some((id, 3)),
            "{what} only: first event (id, offset)"
        );
        // The other edge follows ~100 ms after the first: it must not be reported.
        let extra = lines.read_event(600).context("read edge event")?;
        ensure_eq!(extra, None, "{what} only: events after the press");
    }
    Ok(())
}

/// Unbinding our driver from the device removes the chip (the module stays); binding it again
/// probes a fresh one.
fn unbind_and_rebind(ctx: &Ctx) -> TestResult {
    write_attr("/sys/bus/amba/drivers/gpio_pl061/unbind", LABEL)?;
    wait_bound(ctx, None)?;
    ensure!(
        chip_path().is_err(),
        "a gpiochip is left under {DEVICE} after unbind"
    );
    ensure!(
        module::is_loaded("gpio_pl061"),
        "unbind unloaded the module"
    );
    write_attr("/sys/bus/amba/drivers/gpio_pl061/bind", LABEL)?;
    wait_bound(ctx, Some("gpio_pl061"))?;
    let info = open_chip()?.info().context("GPIO_GET_CHIPINFO_IOCTL")?;
    ensure_eq!(
        (info.lines, info.label.as_str()),
        (8, LABEL),
        "the rebound chip"
    );
    Ok(())
}

/// Runs one of Debian's gpiod tools (libgpiod 1.6, in the arm64 initramfs) to completion;
/// returns its stdout.
fn gpiod_tool(tool: &str, args: &[&str]) -> TestResult<String> {
    let out = std::process::Command::new(format!("/usr/bin/{tool}"))
        .args(args)
        .output()
        .context(format!("run {tool} {}", args.join(" ")))?;
    ensure!(
        out.status.success(),
        "{tool} {}: {} ({})",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `gpiochipN`, as the tools name it.
fn chip_name() -> TestResult<String> {
    Ok(chip_path()?.trim_start_matches("/dev/").to_string())
}

fn gpiod_tools_list_our_chip(_: &Ctx) -> TestResult {
    let chip = chip_name()?;
    let detect = gpiod_tool("gpiodetect", &[])?;
    let expected = format!("{chip} [{LABEL}] (8 lines)");
    ensure!(
        detect.lines().any(|l| l.trim() == expected),
        "gpiodetect does not list {expected:?}:\n{detect}"
    );
    let info = gpiod_tool("gpioinfo", &[&chip])?;
    ensure!(
        info.starts_with(&format!("{chip} - 8 lines:")),
        "gpioinfo header:\n{info}"
    );
    ensure_eq!(
        info.lines()
            .filter(|l| l.trim_start().starts_with("line "))
            .count(),
        8,
        "lines listed by gpioinfo"
    );
    Ok(())
}

/// The sysfs (legacy) view of line `offset` of our chip: exports it, returns `(direction,
/// value)`, unexports it. Reading through sysfs leaves the direction alone.
fn sysfs_line(offset: u32) -> TestResult<(String, String)> {
    let mut base = None;
    for e in std::fs::read_dir("/sys/class/gpio").context("read_dir /sys/class/gpio")? {
        let path = e.context("readdir")?.path();
        if std::fs::read_to_string(path.join("label"))
            .unwrap_or_default()
            .trim()
            == LABEL
        {
            base = std::fs::read_to_string(path.join("base")).ok();
        }
    }
    let base: u32 = base
        .and_then(|b| b.trim().parse().ok())
        .ok_or_else(|| crate::harness::Failure::new("no base for our chip in /sys/class/gpio"))?;
    let gpio = base + offset;
    write_attr("/sys/class/gpio/export", &gpio.to_string())?;
    let read = |attr: &str| {
        std::fs::read_to_string(format!("/sys/class/gpio/gpio{gpio}/{attr}"))
            .map(|s| s.trim().to_string())
            .context(format!("read gpio{gpio}/{attr}"))
    };
    let result = read("direction").and_then(|d| Ok((d, read("value")?)));
    write_attr("/sys/class/gpio/unexport", &gpio.to_string())?;
    result
}

fn gpioset_and_gpioget(_: &Ctx) -> TestResult {
    let chip = chip_name()?;
    for value in ["1", "0", "1"] {
        gpiod_tool("gpioset", &[&chip, &format!("6={value}")])?;
        ensure_eq!(
            sysfs_line(6)?,
            ("out".to_string(), value.to_string()),
            "line 6 (direction, value) in sysfs after gpioset 6={value}"
        );
    }
    ensure_eq!(
        gpiod_tool("gpioget", &[&chip, "3"])?.trim(),
        "0",
        "gpioget of line 3 (the released power button)"
    );
    let bad = std::process::Command::new("/usr/bin/gpioget")
        .args([chip.as_str(), "8"])
        .output()
        .context("run gpioget on offset 8")?;
    ensure!(!bad.status.success(), "gpioget of offset 8 succeeded");
    Ok(())
}

fn gpiomon_edges(ctx: &Ctx) -> TestResult {
    // As in `powerdown_edges`: a press whose two edges coalesced is pressed again.
    for attempt in 1..=PRESSES {
        if let Some(text) = gpiomon_one_press(ctx)? {
            let events: Vec<&str> = text.lines().filter(|l| l.contains("EDGE")).collect();
            ensure!(
                events.len() == 2
                    && events[0].contains("RISING EDGE")
                    && events[1].contains("FALLING EDGE")
                    && events.iter().all(|e| e.contains("offset: 3")),
                "gpiomon's events, expected a rising then a falling edge of line 3:\n{text}"
            );
            return Ok(());
        }
        ctx.note(format!(
            "press {attempt}: gpiomon saw fewer than 2 events (edges coalesced?); pressing again"
        ));
    }
    Err(crate::harness::Failure::new(format!(
        "gpiomon saw fewer than 2 events in each of {PRESSES} presses"
    )))
}

/// Runs `gpiomon -n 2 -r -f` on line 3 and presses the button once; its output, or `None` if
/// it did not see two events within 3 s.
fn gpiomon_one_press(ctx: &Ctx) -> TestResult<Option<String>> {
    let chip = chip_name()?;
    let mut child = std::process::Command::new("/usr/bin/gpiomon")
        .args(["-n", "2", "-r", "-f", &chip, "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("spawn gpiomon")?;
    // Wait until gpiomon holds the line, then ask the host to press the button.
    let chip_fd = open_chip()?;
    let deadline = std::time::Instant::now() + ctx.scaled(Duration::from_secs(5));
    while chip_fd
        .line_info(3)
        .map(|i| i.flags & flag::USED == 0)
        .unwrap_or(true)
    {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(crate::harness::Failure::new(
                "gpiomon did not request line 3 within 5 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    devtest::host_request("system_powerdown")?;
    let deadline = std::time::Instant::now() + ctx.scaled(Duration::from_secs(3));
    while child.try_wait().context("wait for gpiomon")?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().context("gpiomon output")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(out.status.success(), "gpiomon: {}\n{text}", out.status);
    Ok(Some(text))
}

/// `EV_KEY` and `KEY_POWER` of `<linux/input-event-codes.h>`.
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;
/// `struct input_event` on a 64-bit kernel: a `timeval`, type, code, value.
const INPUT_EVENT_SIZE: usize = 24;

/// Debian's stock gpio_keys (a module on arm64) as a kernel consumer of our chip: it finds line 3
/// through the device tree's `gpio-keys` node, takes its interrupt through our irqchip, and
/// reports KEY_POWER press and release (read through evdev) when the host presses the button.
fn gpio_keys_power(ctx: &Ctx) -> TestResult {
    for m in ["evdev", "gpio_keys"] {
        if !module::is_loaded(m) {
            module::load(&format!("/lib/modules/{m}.ko"), "")
                .map_err(|e| crate::harness::Failure::new(e.to_string()))?;
        }
    }
    let result = gpio_keys_events(ctx);
    for m in ["gpio_keys", "evdev"] {
        module::unload_retrying(m, ctx.scaled(Duration::from_secs(2)))
            .context(format!("rmmod {m}"))?;
    }
    result?;
    let info = open_chip()?.line_info(3).context("line info 3")?;
    ensure!(
        info.flags & flag::USED == 0,
        "line 3 still used after rmmod gpio_keys: {info:?}"
    );
    Ok(())
}

fn gpio_keys_events(ctx: &Ctx) -> TestResult {
    let deadline = std::time::Instant::now() + ctx.scaled(Duration::from_secs(5));
    let node = loop {
        let mut names = Vec::new();
        for e in std::fs::read_dir("/sys/class/input").context("read_dir /sys/class/input")? {
            let e = e.context("readdir")?;
            let dev = e.file_name().to_string_lossy().into_owned();
            let name = std::fs::read_to_string(e.path().join("device/name")).unwrap_or_default();
            if dev.starts_with("event") && name.trim() == "gpio-keys" {
                names.clear();
                names.push(format!("/dev/input/{dev}"));
                break;
            }
            names.push(format!("{dev}: {}", name.trim()));
        }
        if let [node] = &names[..] {
            if node.starts_with("/dev/input/") && Path::new(node).exists() {
                break node.clone();
            }
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no gpio-keys event device within 5 s (input devices: {names:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let info = open_chip()?.line_info(3).context("line info 3")?;
    ensure!(
        info.flags & flag::USED != 0,
        "line 3 is not requested by gpio_keys: {info:?}"
    );
    let mut events = std::fs::File::open(&node).context(format!("open {node}"))?;
    // As in `powerdown_edges`: a press whose two edges coalesced is pressed again.
    for attempt in 1..=PRESSES {
        devtest::host_request("system_powerdown")?;
        let values = key_power_values(ctx, &mut events)?;
        if values == [1, 0] {
            return Ok(());
        }
        ensure!(
            values.is_empty(),
            "press {attempt}: KEY_POWER values {values:?}, expected [1, 0] (press, release)"
        );
        ctx.note(format!(
            "press {attempt}: no KEY_POWER event (edges coalesced?); pressing again"
        ));
    }
    Err(crate::harness::Failure::new(format!(
        "no KEY_POWER press and release in {PRESSES} presses"
    )))
}

/// The KEY_POWER values the event device reports within 3 s (two at most).
fn key_power_values(ctx: &Ctx, events: &mut std::fs::File) -> TestResult<Vec<i32>> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let mut values = Vec::new();
    let deadline = std::time::Instant::now() + ctx.scaled(Duration::from_secs(3));
    while values.len() < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let ready = crate::sys::poll(events.as_fd(), libc::POLLIN, left.as_millis() as i32)
            .context("poll the event device")?;
        if ready == 0 {
            continue;
        }
        let mut buf = [0u8; INPUT_EVENT_SIZE];
        events.read_exact(&mut buf).context("read an input event")?;
        let ty = u16::from_ne_bytes([buf[16], buf[17]]);
        let code = u16::from_ne_bytes([buf[18], buf[19]]);
        let value = i32::from_ne_bytes(buf[20..24].try_into().unwrap());
        if ty == EV_KEY && code == KEY_POWER {
            values.push(value);
        }
    }
    Ok(values)
}

/// The kernel consumer of line 3's interrupt (`drivers/gpio_irq_consumer`): threaded and
/// oneshot, its thread holding the interrupt masked for `HOLD_MS` after each one.
const CONSUMER: Driver = Driver::new("gpio_irq_consumer", "/dev/gpio_irq_consumer");
/// The consumer's `hold_ms`.
const HOLD_MS: u64 = 20;

/// Our chip's base in the global GPIO numbering (`/sys/class/gpio/gpiochip<base>`).
fn chip_base() -> TestResult<u32> {
    for e in std::fs::read_dir("/sys/class/gpio").context("read_dir /sys/class/gpio")? {
        let path = e.context("readdir")?.path();
        let label = std::fs::read_to_string(path.join("label")).unwrap_or_default();
        if label.trim() == LABEL {
            let base = std::fs::read_to_string(path.join("base")).context("read base")?;
            return base
                .trim()
                .parse()
                .map_err(|_| crate::harness::Failure::new(format!("base {base:?}")));
        }
    }
    Err(crate::harness::Failure::new(
        "no chip labelled 9030000.pl061 in /sys/class/gpio",
    ))
}

/// The consumer's counters: irq, fired, high, low, threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    irq: u64,
    fired: u64,
    high: u64,
    low: u64,
    threads: u64,
}

fn consumer_counts() -> TestResult<Counts> {
    let text =
        std::fs::read_to_string("/dev/gpio_irq_consumer").context("read /dev/gpio_irq_consumer")?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
            .ok_or_else(|| crate::harness::Failure::new(format!("no {name} in {text:?}")))
    };
    Ok(Counts {
        irq: field("irq")?,
        fired: field("fired")?,
        high: field("high")?,
        low: field("low")?,
        threads: field("threads")?,
    })
}

/// Loads the consumer on line 3 with `trigger`; checks what the irq core recorded for the
/// interrupt (`/sys/kernel/irq/<n>`: our irqchip, hwirq 3, a level type).
fn load_consumer(ctx: &Ctx, trigger: &str) -> TestResult<Counts> {
    let gpio = chip_base()? + 3;
    CONSUMER.load(
        ctx,
        &format!("gpio={gpio} trigger={trigger} hold_ms={HOLD_MS}"),
    )?;
    let counts = consumer_counts()?;
    let attr = |name: &str| {
        let path = format!("/sys/kernel/irq/{}/{name}", counts.irq);
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .context(format!("read {path}"))
    };
    ensure_eq!(
        (attr("chip_name")?, attr("hwirq")?, attr("type")?),
        ("pl061".to_string(), "3".to_string(), "level".to_string()),
        "irq {} (chip, hwirq, type)",
        counts.irq
    );
    ensure_eq!(
        attr("actions")?,
        "gpio_irq_consumer",
        "irq {}'s handlers",
        counts.irq
    );
    Ok(counts)
}

/// How many interrupts a oneshot consumer can take in `ms` milliseconds: one per thread run
/// (each sleeps `HOLD_MS` with the interrupt masked), plus the one in flight at each end.
fn oneshot_bound(ms: u64) -> u64 {
    ms / HOLD_MS + 2
}

/// A level-high interrupt on line 3 (GPIOIS = 1, GPIOIEV = 1 for the line): silent while the
/// line is low; while QMP `system_powerdown` holds it high (~100 ms) it fires, again after
/// every thread run (the level is still there), at most once per `HOLD_MS` (oneshot: masked
/// until the thread returns); after the release it stops.
///
/// QEMU's PL061 latches a level in GPIORIS until GPIOIC clears it (the TRM's hardware follows
/// the line): the acknowledge of the last interrupt taken while high latches it once more, so
/// each press may end with one interrupt that finds the line already low. No more than that.
fn level_high(ctx: &Ctx) -> TestResult {
    let before = load_consumer(ctx, "high")?;
    let result = level_high_presses(ctx, before);
    CONSUMER.unload_cleanly(ctx)?;
    result?;
    let info = open_chip()?.line_info(3).context("line info 3")?;
    ensure!(
        info.flags & flag::USED == 0,
        "line 3 still used after rmmod gpio_irq_consumer: {info:?}"
    );
    Ok(())
}

fn level_high_presses(ctx: &Ctx, before: Counts) -> TestResult {
    std::thread::sleep(ctx.scaled(Duration::from_millis(200)));
    let idle = consumer_counts()?;
    ensure_eq!(idle.fired, 0, "interrupts while line 3 is low: {idle:?}");
    let mut last = idle;
    for attempt in 1..=PRESSES {
        devtest::host_request("system_powerdown")?;
        let deadline = std::time::Instant::now() + ctx.scaled(Duration::from_secs(5));
        while consumer_counts()?.fired == last.fired {
            ensure!(
                std::time::Instant::now() < deadline,
                "press {attempt}: no interrupt within 5 s: {last:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The release comes ~100 ms after the press; then nothing more may fire.
        std::thread::sleep(ctx.scaled(Duration::from_millis(600)));
        let after = consumer_counts()?;
        std::thread::sleep(ctx.scaled(Duration::from_millis(300)));
        let later = consumer_counts()?;
        ensure_eq!(
            later,
            after,
            "interrupts keep coming after the release (before: {before:?})"
        );
        ensure_eq!(
            after.threads,
            after.fired,
            "every interrupt ran the thread once"
        );
        let (high, low) = (after.high - last.high, after.low - last.low);
        ensure!(
            low <= 1,
            "press {attempt}: {low} interrupts found line 3 low (at most the one QEMU's \
             latched status gives): {after:?}"
        );
        ensure!(
            high <= oneshot_bound(1000),
            "press {attempt}: {high} interrupts while high: not held off by the oneshot thread"
        );
        if high >= 2 {
            ctx.note(format!(
                "press {attempt}: {high} interrupts while high, {low} latched after the release"
            ));
            return Ok(());
        }
        // One interrupt only: the guest did not run within the ~100 ms the line was high (or
        // the line is edge-triggered, which pressing again shows).
        ctx.note(format!(
            "press {attempt}: {high} interrupt(s) while high; pressing again"
        ));
        last = after;
    }
    Err(crate::harness::Failure::new(format!(
        "no press in {PRESSES} gave more than one interrupt while the line was high (an edge?)"
    )))
}

/// A level-low interrupt on line 3 (GPIOIS = 1, GPIOIEV = 0), which is low while the button is
/// up: it fires at once and keeps firing, once per thread run (oneshot), every time finding
/// the line low; a press (the line high ~100 ms) adds at most QEMU's one latched interrupt
/// that finds it high. Removing the consumer stops it.
fn level_low(ctx: &Ctx) -> TestResult {
    load_consumer(ctx, "low")?;
    let result = level_low_fires(ctx);
    CONSUMER.unload_cleanly(ctx)?;
    result
}

fn level_low_fires(ctx: &Ctx) -> TestResult {
    // At least 300 ms, longer (up to 5 s) if the guest ran too little to see 3 interrupts.
    let (t0, c0) = (std::time::Instant::now(), consumer_counts()?);
    let deadline = t0 + ctx.scaled(Duration::from_secs(5));
    std::thread::sleep(ctx.scaled(Duration::from_millis(300)));
    let (t1, c1) = loop {
        let (t1, c1) = (std::time::Instant::now(), consumer_counts()?);
        if c1.fired - c0.fired >= 3 || t1 > deadline {
            break (t1, c1);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ms = (t1 - t0).as_millis() as u64;
    let fired = c1.fired - c0.fired;
    ensure!(
        fired >= 3,
        "{fired} interrupt(s) in {ms} ms while line 3 is low: a level fires again after each \
         thread run ({c1:?})"
    );
    ensure!(
        fired <= oneshot_bound(ms),
        "{fired} interrupts in {ms} ms: more than one per {HOLD_MS} ms thread run (oneshot)"
    );
    ensure_eq!(c1.high, 0, "interrupts that found line 3 high (it is low)");
    devtest::host_request("system_powerdown")?;
    std::thread::sleep(ctx.scaled(Duration::from_millis(1500)));
    let c2 = consumer_counts()?;
    ensure!(
        c2.high <= 1,
        "{} interrupts found line 3 high during a press (at most QEMU's one latched): {c2:?}",
        c2.high
    );
    ensure!(c2.fired > c1.fired, "no interrupt after the press: {c2:?}");
    ctx.note(format!(
        "{fired} interrupts in {ms} ms while low; {} over the press, {} of them latched high",
        c2.fired - c1.fired,
        c2.high
    ));
    Ok(())
}

fn cycles(ctx: &Ctx) -> TestResult {
    for round in 1..=20 {
        load_and_bind(ctx).map_err(|f| f.context(&format!("round {round}: load")))?;
        let chip = open_chip().map_err(|f| f.context(&format!("round {round}")))?;
        let info = chip.info().context("GPIO_GET_CHIPINFO_IOCTL")?;
        ensure_eq!(info.lines, 8, "round {round}: line count");
        let lines = chip
            .request(&[round % 8], "cycle", flag::OUTPUT, Some(1))
            .context(format!("round {round}: request"))?;
        ensure_eq!(
            lines.get(1).context("get")?,
            1,
            "round {round}: output read back"
        );
        drop((lines, chip));
        DRIVER
            .unload_cleanly(ctx)
            .map_err(|f| f.context(&format!("round {round}: unload")))?;
        wait_bound(ctx, None)?;
    }
    Ok(())
}

/// The driver's fault injection, `fail_probe_at=N`: probe fails with ENOMEM right after its
/// step N. For N = 1, 2, ... until a probe succeeds: the module loads (its driver probes the
/// device, which `driver_override` names, and fails), a `bind` gets ENOMEM, the device stays
/// unbound with no chip, no register window left requested in `/proc/iomem`, and the module
/// unloads having freed every allocation. The first N whose probe succeeds must give a chip
/// that works.
fn probe_failures(ctx: &Ctx) -> TestResult {
    ensure!(
        !module::is_loaded("gpio_pl061"),
        "our module is still loaded"
    );
    write_attr(&format!("{DEVICE}/driver_override"), "gpio_pl061")?;
    for step in 1.. {
        let mut kmsg = crate::kmsg::Kmsg::open().context("open /dev/kmsg")?;
        kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
        module::load(&DRIVER.path(), &format!("fail_probe_at={step}"))
            .map_err(|e| crate::harness::Failure::new(e.to_string()))?;
        if bound_driver().is_some() {
            ensure!(
                step > 3,
                "probe succeeded with fail_probe_at={step}: the driver has fewer than 3 steps"
            );
            let result = (|| {
                // The window a bound driver holds is listed under its name (what the failed
                // probes above must have released).
                let iomem = std::fs::read_to_string("/proc/iomem").context("read /proc/iomem")?;
                ensure!(
                    iomem.contains("gpio_pl061"),
                    "/proc/iomem lists no gpio_pl061 window while bound:\n{iomem}"
                );
                let chip = open_chip()?;
                let lines = chip
                    .request(&[0], "ktest-after", flag::OUTPUT, Some(1))
                    .context("request line 0")?;
                ensure_eq!(lines.get(1).context("get")?, 1, "line 0 read back");
                Ok(())
            })();
            DRIVER.unload_cleanly(ctx)?;
            wait_bound(ctx, None)?;
            return result.map_err(|f| f.context(&format!("fail_probe_at={step} (past the last)")));
        }
        let at = |f: crate::harness::Failure| f.context(&format!("fail_probe_at={step}"));
        expect_errno(
            std::fs::write("/sys/bus/amba/drivers/gpio_pl061/bind", LABEL).map_err(Errno::from),
            Errno(libc::ENOMEM),
            format!("fail_probe_at={step}: bind"),
        )?;
        ensure!(
            bound_driver().is_none() && chip_path().is_err(),
            "fail_probe_at={step}: a driver or chip is left on the device: {:?}",
            bound_driver()
        );
        let iomem = std::fs::read_to_string("/proc/iomem").context("read /proc/iomem")?;
        ensure!(
            !iomem.contains("gpio_pl061"),
            "fail_probe_at={step}: the register window is still requested:\n{iomem}"
        );
        let injected = devtest::log_since(&mut kmsg)
            .map_err(at)?
            .iter()
            .filter(|l| l.contains(&format!("injected failure after step {step}")))
            .count();
        ensure_eq!(
            injected,
            2,
            "fail_probe_at={step}: injected failures logged (load, bind)"
        );
        DRIVER.unload_cleanly(ctx).map_err(at)?;
    }
    unreachable!()
}

fn c_driver_rebinds(ctx: &Ctx) -> TestResult {
    ensure!(
        !module::is_loaded("gpio_pl061"),
        "our module is still loaded"
    );
    write_attr(&format!("{DEVICE}/driver_override"), "\n")?;
    write_attr(&format!("/sys/bus/amba/drivers/{C_DRIVER}/bind"), LABEL)?;
    wait_bound(ctx, Some(C_DRIVER))?;
    let chip = open_chip()?;
    let info = chip.info().context("GPIO_GET_CHIPINFO_IOCTL")?;
    ensure_eq!(
        (info.lines, info.label.as_str()),
        (8, LABEL),
        "the C driver's chip"
    );
    let lines = chip
        .request(&[0, 1], "ktest-c", flag::OUTPUT, Some(0b10))
        .context("request on the C driver's chip")?;
    ensure_eq!(
        lines.get(0b11).context("get")?,
        0b10,
        "C driver: values read back"
    );
    Ok(())
}
