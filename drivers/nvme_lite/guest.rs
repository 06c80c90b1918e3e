//! Suite `nvme_lite`: the NVMe controller every test boot has (QEMU `-device nvme`,
//! `serial=rustnvme0`, a 64 MiB image: see `xtask/src/nvmedisk.rs`). Nothing else binds it in
//! our initramfs (Debian's nvme.ko is a module we do not load), so `nvme_lite` binds by its
//! class-code ID.

use std::time::Duration;

use crate::devtest::Driver;
use crate::harness::{ensure, ensure_eq, run_suite, Context, Ctx, TestCase, TestResult};
use crate::kmsg::Kmsg;
use crate::ktap;

const DRIVER: Driver = Driver::new("nvme_lite", "/sys/bus/pci/drivers/nvme_lite");

/// The tests, in order.
pub const TESTS: [TestCase; 5] = [
    TestCase::new("modinfo_has_pci_class_alias", modinfo_has_pci_class_alias),
    TestCase::new("load_binds_and_identifies", load_binds_and_identifies)
        .timeout(Duration::from_secs(30))
        .setup(),
    TestCase::new("bound_in_sysfs", bound_in_sysfs),
    TestCase::new("unload_shuts_down_and_frees_everything", unload)
        .timeout(Duration::from_secs(30)),
    TestCase::new("ten_load_unload_cycles", ten_cycles).timeout(Duration::from_secs(120)),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "nvme_lite", &TESTS, None)
}

/// The `alias=` modpost derived from the ID table: any vendor/device, class 01 08 02.
fn modinfo_has_pci_class_alias(_: &Ctx) -> TestResult {
    let ko = std::fs::read(DRIVER.path()).context(format!("read {}", DRIVER.path()))?;
    let needle = b"alias=pci:v*d*sv*sd*bc01sc08i02*\0";
    ensure!(
        ko.windows(needle.len()).any(|w| w == needle),
        "no `alias=pci:v*d*sv*sd*bc01sc08i02*` in the module's .modinfo"
    );
    Ok(())
}

/// Loads the module and returns what it logged while probing.
fn load_and_log(ctx: &Ctx) -> TestResult<Vec<String>> {
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    DRIVER.load(ctx, "")?;
    let records = kmsg.read_available().context("reading /dev/kmsg")?;
    Ok(records
        .into_iter()
        .map(|r| r.text)
        .filter(|t| t.starts_with("nvme_lite: "))
        .collect())
}

fn expect_line(lines: &[String], what: &str, pred: impl Fn(&str) -> bool) -> TestResult {
    ensure!(
        lines.iter().any(|l| pred(l)),
        "no {what} line in the kernel log; nvme_lite logged:\n{}",
        lines.join("\n")
    );
    Ok(())
}

fn load_binds_and_identifies(ctx: &Ctx) -> TestResult {
    let lines = load_and_log(ctx)?;
    expect_line(&lines, "CAP/VS", |l| {
        l.contains("1b36:0010 NVMe 1.4.0, CAP=0x004008200f0107ff")
    })?;
    expect_line(&lines, "Identify Controller", |l| {
        l.contains("model \"QEMU NVMe Ctrl\" serial \"rustnvme0\"")
    })?;
    expect_line(&lines, "Identify Namespace", |l| {
        l.contains("namespace 1: 131072 blocks of 512 bytes (64 MiB)")
    })?;
    Ok(())
}

/// The controller is listed under the driver, and is an NVMe function.
fn bound_in_sysfs(_: &Ctx) -> TestResult {
    let bound: Vec<String> = std::fs::read_dir(DRIVER.node)
        .context(format!("read_dir({})", DRIVER.node))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(':') && n.contains('.'))
        .collect();
    ensure_eq!(
        bound.len(),
        1,
        "PCI functions bound to nvme_lite ({bound:?})"
    );
    let dev = format!("{}/{}", DRIVER.node, bound[0]);
    let class = std::fs::read_to_string(format!("{dev}/class")).context("read class")?;
    ensure_eq!(class.trim(), "0x010802", "{dev}/class");
    let driver = std::fs::read_link(format!("{dev}/driver")).context("readlink driver")?;
    ensure!(
        driver.ends_with("nvme_lite"),
        "{dev}/driver points to {}",
        driver.display()
    );
    Ok(())
}

/// rmmod unbinds (normal shutdown logged as `removed`), frees every allocation.
fn unload(ctx: &Ctx) -> TestResult {
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    DRIVER.unload_cleanly(ctx)?;
    let lines: Vec<String> = kmsg
        .read_available()
        .context("reading /dev/kmsg")?
        .into_iter()
        .map(|r| r.text)
        .collect();
    expect_line(&lines, "removed", |l| {
        l.starts_with("nvme_lite: ") && l.contains(": removed")
    })?;
    ensure!(
        !lines.iter().any(|l| l.contains("timed out")),
        "a wait timed out on the way out:\n{}",
        lines.join("\n")
    );
    Ok(())
}

/// The controller comes back after each shutdown (disable, re-enable, identify again).
fn ten_cycles(ctx: &Ctx) -> TestResult {
    for i in 0..10 {
        let lines = load_and_log(ctx).context(format!("cycle {i}"))?;
        expect_line(&lines, "Identify Namespace", |l| {
            l.contains("namespace 1: ")
        })
        .map_err(|f| f.context(&format!("cycle {i}")))?;
        DRIVER
            .unload_cleanly(ctx)
            .map_err(|f| f.context(&format!("cycle {i}")))?;
    }
    Ok(())
}
