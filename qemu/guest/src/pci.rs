//! PCI functions in sysfs: which driver is bound, binding and unbinding, `driver_override`, and
//! the NVMe controllers every test boot has (`xtask/src/nvmedisk.rs`) with their disks. Used by
//! the `nvme_lite` suite's coexistence test and by the NVMe benchmark.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{ensure, Context, Ctx, Failure, TestResult};

const DEVICES: &str = "/sys/bus/pci/devices";
/// NVMe: mass storage, non-volatile memory, NVM Express.
const NVME_CLASS: &str = "0x010802";

/// The two NVMe controllers' PCI functions, `[controller 0, controller 1]`: controller 1 is the
/// one on the root bus (its parent in sysfs is the `pci<domain>:<bus>` host bridge), controller
/// 0 the one behind the root port.
pub fn nvme_controllers() -> TestResult<[String; 2]> {
    let mut on_root = Vec::new();
    let mut behind_port = Vec::new();
    for e in std::fs::read_dir(DEVICES).context(format!("read_dir({DEVICES})"))? {
        let bdf = e.context("read_dir")?.file_name();
        let bdf = bdf.to_string_lossy().into_owned();
        let class = std::fs::read_to_string(format!("{DEVICES}/{bdf}/class")).unwrap_or_default();
        if class.trim() != NVME_CLASS {
            continue;
        }
        let real = std::fs::canonicalize(format!("{DEVICES}/{bdf}")).context("canonicalize")?;
        let parent = real.parent().and_then(Path::file_name).unwrap_or_default();
        if parent.to_string_lossy().starts_with("pci") {
            on_root.push(bdf);
        } else {
            behind_port.push(bdf);
        }
    }
    match (&behind_port[..], &on_root[..]) {
        ([c0], [c1]) => Ok([c0.clone(), c1.clone()]),
        _ => Err(Failure::new(format!(
            "expected one NVMe function behind a root port and one on the root bus, found \
             {behind_port:?} and {on_root:?}"
        ))),
    }
}

fn write_attr(path: &str, value: &str) -> TestResult {
    std::fs::write(path, value).context(format!("write {value:?} to {path}"))
}

/// Sets (or with `""` clears) the function's `driver_override`: only the driver of that name
/// may bind it.
pub fn set_override(bdf: &str, driver: &str) -> TestResult {
    write_attr(
        &format!("{DEVICES}/{bdf}/driver_override"),
        &format!("{driver}\n"),
    )
}

/// Binds `driver` to the function (which its `driver_override` must allow).
pub fn bind(driver: &str, bdf: &str) -> TestResult {
    write_attr(&format!("/sys/bus/pci/drivers/{driver}/bind"), bdf)
}

/// Unbinds `driver` from the function.
pub fn unbind(driver: &str, bdf: &str) -> TestResult {
    write_attr(&format!("/sys/bus/pci/drivers/{driver}/unbind"), bdf)
}

/// The driver bound to the function, if any.
pub fn driver_of(bdf: &str) -> Option<String> {
    let link = std::fs::read_link(format!("{DEVICES}/{bdf}/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The device node of namespace 1 behind the function: the block device whose sysfs directory
/// lies under it. `nvme_lite`'s `nvme_liteNn1` hangs there directly; so does the C driver's
/// `nvmeNn1` without native multipath; with it (Debian's kernel), what hangs there is the
/// hidden path device `nvmeScKnN` of the visible head disk `nvmeSnN`.
pub fn disk_of(bdf: &str) -> Option<String> {
    for e in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(real) = std::fs::canonicalize(e.path()) else {
            continue;
        };
        if !real.to_string_lossy().contains(&format!("/{bdf}/")) {
            continue;
        }
        let hidden = std::fs::read_to_string(e.path().join("hidden")).unwrap_or_default();
        if hidden.trim() != "1" {
            return Some(format!("/dev/{name}"));
        }
        let (subsys, rest) = name.strip_prefix("nvme")?.split_once('c')?;
        let (_, ns) = rest.split_once('n')?;
        return Some(format!("/dev/nvme{subsys}n{ns}"));
    }
    None
}

/// Waits (10 s × scale: the C driver probes and scans namespaces asynchronously) for `driver`
/// to be bound to the function and its disk's node to exist; returns the node.
pub fn wait_bound(ctx: &Ctx, bdf: &str, driver: &str) -> TestResult<String> {
    let deadline = Instant::now() + ctx.scaled(Duration::from_secs(10));
    loop {
        let bound = driver_of(bdf);
        if bound.as_deref() == Some(driver) {
            if let Some(disk) = disk_of(bdf).filter(|d| Path::new(d).exists()) {
                return Ok(disk);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{bdf}: not bound to {driver} with a disk within 10 s (bound to {bound:?}, disk {:?})",
            disk_of(bdf)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (10 s × scale) for the function to have no driver and no disk.
pub fn wait_unbound(ctx: &Ctx, bdf: &str) -> TestResult {
    let deadline = Instant::now() + ctx.scaled(Duration::from_secs(10));
    while driver_of(bdf).is_some() || disk_of(bdf).is_some() {
        ensure!(
            Instant::now() < deadline,
            "{bdf}: still bound ({:?}, disk {:?}) 10 s after unbind",
            driver_of(bdf),
            disk_of(bdf)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Moves the function from `from` (if bound) to `to`: unbind, `driver_override`, bind, and
/// waits for the new disk; returns its node.
pub fn rebind(ctx: &Ctx, bdf: &str, from: Option<&str>, to: &str) -> TestResult<String> {
    if let Some(from) = from {
        unbind(from, bdf)?;
        wait_unbound(ctx, bdf)?;
    }
    set_override(bdf, to)?;
    bind(to, bdf)?;
    wait_bound(ctx, bdf, to)
}
