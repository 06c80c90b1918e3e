//! Coexistence with Debian's C `nvme` driver (`nvme.ko` and the modules it depends on, from the
//! kernel's own tree: see `stock_modules` in `xtask/src/testrun.rs`). The guest has two QEMU
//! NVMe controllers with their own images (`xtask/src/nvmedisk.rs`): controller 0 behind a PCIe
//! root port, controller 1 on the root bus. Before `nvme_lite` is first loaded, controller 1's
//! `driver_override` names `nvme`, so our driver binds controller 0 only and the C driver
//! controller 1; then the two swap through sysfs unbind/bind.

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{host_pattern_of, Aligned, DISK, DRIVER, PATTERN_OFFSETS};
use crate::devtest;
use crate::harness::{ensure, ensure_bytes, ensure_eq, Context, Ctx, Failure, TestResult};
use crate::kmsg::Kmsg;
use crate::module;

const PCI: &str = "/sys/bus/pci/devices";
/// NVMe: mass storage, non-volatile memory, NVM Express.
const NVME_CLASS: &str = "0x010802";

/// The two controllers' PCI functions, `[controller 0, controller 1]`: controller 1 is the
/// NVMe function on the root bus (its parent in sysfs is the `pci<domain>:<bus>` host bridge),
/// controller 0 the one behind the root port.
pub fn controllers() -> TestResult<[String; 2]> {
    let mut on_root = Vec::new();
    let mut behind_port = Vec::new();
    for e in std::fs::read_dir(PCI).context(format!("read_dir({PCI})"))? {
        let name = e.context("read_dir")?.file_name();
        let bdf = name.to_string_lossy().into_owned();
        let class = std::fs::read_to_string(format!("{PCI}/{bdf}/class")).unwrap_or_default();
        if class.trim() != NVME_CLASS {
            continue;
        }
        let real = std::fs::canonicalize(format!("{PCI}/{bdf}")).context("canonicalize")?;
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
fn set_override(bdf: &str, driver: &str) -> TestResult {
    write_attr(
        &format!("{PCI}/{bdf}/driver_override"),
        &format!("{driver}\n"),
    )
}

/// Keeps `nvme_lite` off controller 1 (the C driver's, in [`c_driver_beside_then_swapped`]):
/// called before our module is first loaded.
pub fn reserve_controller_1() -> TestResult {
    let [_, c1] = controllers()?;
    set_override(&c1, "nvme")
}

/// The driver bound to PCI function `bdf`, if any.
fn driver_of(bdf: &str) -> Option<String> {
    let link = std::fs::read_link(format!("{PCI}/{bdf}/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The disk of namespace 1 behind PCI function `bdf`: the block device whose sysfs directory
/// lies under the function. `nvme_lite`'s `nvme_liteNn1` hangs there directly; so does the C
/// driver's `nvmeNn1` without native multipath; with it (Debian's kernel), what hangs there is
/// the hidden path device `nvmeScKnN` of the visible head disk `nvmeSnN`.
fn disk_of(bdf: &str) -> Option<String> {
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
/// to be bound to `bdf` and its disk's node to exist; returns the node.
fn wait_bound(ctx: &Ctx, bdf: &str, driver: &str) -> TestResult<String> {
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

/// Waits for `bdf` to have no driver and no disk.
fn wait_unbound(ctx: &Ctx, bdf: &str) -> TestResult {
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

/// Reads every host pattern block of image `image` through `disk` with O_DIRECT.
fn read_image_pattern(disk: &str, image: usize) -> Result<(), String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(disk)
        .map_err(|e| format!("open({disk}, O_DIRECT): {e}"))?;
    let mut a = Aligned::new(4096, 0);
    for off in PATTERN_OFFSETS {
        let n = f
            .read_at(a.buf(), off)
            .map_err(|e| format!("{disk}: pread(4096, {off}): {e}"))?;
        if n != 4096 {
            return Err(format!("{disk}: pread at {off} returned {n}"));
        }
        ensure_bytes(
            a.buf(),
            &host_pattern_of(image, off),
            format!("{disk}: image {image}'s block at {off}"),
        )
        .map_err(|f| f.lines().join("; "))?;
    }
    Ok(())
}

/// Both disks read their own image's pattern at the same time (one thread each).
fn both_read(pairs: [(&str, usize); 2]) -> TestResult {
    let threads: Vec<_> = pairs
        .map(|(disk, image)| {
            let disk = disk.to_string();
            std::thread::spawn(move || read_image_pattern(&disk, image))
        })
        .into_iter()
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| Failure::new("a reader thread panicked"))?
            .map_err(Failure::new)?;
    }
    Ok(())
}

/// With `nvme_lite` bound to controller 0: Debian's `nvme` loads and binds controller 1; both
/// disks read their own image's pattern at once. Then both controllers are unbound and each
/// driver bound (`driver_override`, `bind`) to the one the other released; both read their new
/// controller's image. Then both modules unload (ours with every allocation freed), and the
/// kernel log of all this has no error, warning or timeout. Afterwards `nvme_lite` is loaded
/// again on controller 0, as the tests after this one expect.
pub fn c_driver_beside_then_swapped(ctx: &Ctx) -> TestResult {
    let [c0, c1] = controllers()?;
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    let (c_modules, loaded) = module::load_with_deps("nvme");
    let result = loaded
        .map_err(|e| Failure::new(format!("loading Debian's nvme: {e}")))
        .and_then(|()| beside_then_swapped(ctx, &c0, &c1));
    // Unload both, whatever happened, and put everything back as the suite had it.
    let lite_unloaded = if module::is_loaded(DRIVER.module) {
        DRIVER.unload_cleanly(ctx)
    } else {
        Ok(())
    };
    let c_unloaded =
        module::unload_all(&c_modules, ctx.scaled(Duration::from_secs(5))).map_err(Failure::new);
    let lines = devtest::log_since(&mut kmsg)?;
    let restored = set_override(&c0, "")
        .and_then(|()| set_override(&c1, "nvme"))
        .and_then(|()| DRIVER.load(ctx, ""))
        .and_then(|()| devtest::wait_for_node(ctx, DISK, true));
    result?;
    lite_unloaded?;
    c_unloaded?;
    for m in &c_modules {
        ensure!(!module::is_loaded(m), "{m} still loaded after rmmod");
    }
    let bad: Vec<&String> = lines
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "error",
                "fail",
                "timeout",
                "timed out",
                "warning",
                "bug",
                "abort",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect();
    ensure!(
        bad.is_empty(),
        "the kernel log of the coexistence and swap has problems:\n{}",
        lines.join("\n")
    );
    restored.context("loading nvme_lite again on controller 0")
}

fn beside_then_swapped(ctx: &Ctx, c0: &str, c1: &str) -> TestResult {
    // Side by side: ours on controller 0 (since the suite's setup), the C driver on 1.
    let ours = wait_bound(ctx, c0, "nvme_lite").context("controller 0")?;
    let theirs = wait_bound(ctx, c1, "nvme").context("controller 1")?;
    ensure_eq!(ours, DISK, "nvme_lite's disk on controller 0");
    both_read([(&ours, 0), (&theirs, 1)]).context("side by side")?;

    // Swap: each driver releases its controller, then binds the other's.
    write_attr("/sys/bus/pci/drivers/nvme_lite/unbind", c0)?;
    write_attr("/sys/bus/pci/drivers/nvme/unbind", c1)?;
    wait_unbound(ctx, c0)?;
    wait_unbound(ctx, c1)?;
    set_override(c0, "nvme")?;
    set_override(c1, "nvme_lite")?;
    write_attr("/sys/bus/pci/drivers/nvme/bind", c0)?;
    write_attr("/sys/bus/pci/drivers/nvme_lite/bind", c1)?;
    let theirs = wait_bound(ctx, c0, "nvme").context("controller 0 after the swap")?;
    let ours = wait_bound(ctx, c1, "nvme_lite").context("controller 1 after the swap")?;
    ensure!(
        ours.starts_with("/dev/nvme_lite"),
        "nvme_lite's disk on controller 1 is {ours}"
    );
    both_read([(&theirs, 0), (&ours, 1)]).context("swapped")?;
    Ok(())
}
