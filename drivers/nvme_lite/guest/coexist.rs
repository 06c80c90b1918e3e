//! Coexistence with Debian's C `nvme` driver (`nvme.ko` and the modules it depends on, from the
//! kernel's own tree: see `stock_modules` in `xtask/src/testrun.rs`). The guest has two QEMU
//! NVMe controllers with their own images (`xtask/src/nvmedisk.rs`): controller 0 behind a PCIe
//! root port, controller 1 on the root bus. Before `nvme_lite` is first loaded, controller 1's
//! `driver_override` names `nvme`, so our driver binds controller 0 only and the C driver
//! controller 1; then the two swap through sysfs unbind/bind.

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::Duration;

use super::{host_pattern_of, Aligned, DISK, DRIVER, PATTERN_OFFSETS};
use crate::devtest;
use crate::harness::{ensure, ensure_bytes, ensure_eq, Context, Ctx, Failure, TestResult};
use crate::kmsg::Kmsg;
use crate::module;
use crate::pci;

/// Keeps `nvme_lite` off controller 1 (the C driver's, in [`c_driver_beside_then_swapped`]):
/// called before our module is first loaded.
pub fn reserve_controller_1() -> TestResult {
    let [_, c1] = pci::nvme_controllers()?;
    pci::set_override(&c1, "nvme")
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
    let [c0, c1] = pci::nvme_controllers()?;
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    let loaded =
        module::load_stock("nvme").map_err(|e| Failure::new(format!("loading Debian's nvme: {e}")));
    let c_modules = loaded.as_ref().map_or(Vec::new(), Clone::clone);
    let result = loaded.and_then(|_| beside_then_swapped(ctx, &c0, &c1));
    // Unload both, whatever happened, and put everything back as the suite had it.
    let lite_unloaded = if module::is_loaded(DRIVER.module) {
        DRIVER.unload_cleanly(ctx)
    } else {
        Ok(())
    };
    let c_unloaded = module::unload_all(&c_modules, ctx.scaled(Duration::from_secs(5)))
        .context(format!("rmmod {c_modules:?}"));
    let lines = devtest::log_since(&mut kmsg)?;
    let restored = pci::set_override(&c0, "")
        .and_then(|()| pci::set_override(&c1, "nvme"))
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
    let ours = pci::wait_bound(ctx, c0, "nvme_lite").context("controller 0")?;
    let theirs = pci::wait_bound(ctx, c1, "nvme").context("controller 1")?;
    ensure_eq!(ours, DISK, "nvme_lite's disk on controller 0");
    both_read([(&ours, 0), (&theirs, 1)]).context("side by side")?;

    // Swap: each driver releases its controller, then binds the one the other released.
    pci::unbind("nvme_lite", c0)?;
    pci::unbind("nvme", c1)?;
    pci::wait_unbound(ctx, c0)?;
    pci::wait_unbound(ctx, c1)?;
    let theirs = pci::rebind(ctx, c0, None, "nvme").context("controller 0 after the swap")?;
    let ours = pci::rebind(ctx, c1, None, "nvme_lite").context("controller 1 after the swap")?;
    ensure!(
        ours.starts_with("/dev/nvme_lite"),
        "nvme_lite's disk on controller 1 is {ours}"
    );
    both_read([(&theirs, 0), (&ours, 1)]).context("swapped")?;
    Ok(())
}
