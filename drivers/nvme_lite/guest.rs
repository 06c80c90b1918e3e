//! Suite `nvme_lite`: the NVMe controllers every test boot has (QEMU `-device nvme`,
//! `serial=rustnvme0` and `rustnvme1`, 64 MiB images: see `xtask/src/nvmedisk.rs`). Nothing
//! binds them until a test loads a driver (Debian's nvme.ko is in the initramfs but only the
//! coexistence test loads it); controller 1 is reserved for the C driver (`driver_override`,
//! see `guest/coexist.rs`), so `nvme_lite` binds controller 0 by its class-code ID, and exposes
//! namespace 1 as `/dev/nvme_lite0n1`.

#[path = "guest/coexist.rs"]
mod coexist;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::Duration;

use crate::devtest::{self, Driver};
use crate::harness::{
    ensure, ensure_bytes, ensure_eq, pattern, run_suite, Context, Ctx, TestCase, TestResult,
};
use crate::kmsg::Kmsg;
use crate::ktap;

#[path = "guest_passthru.rs"]
mod passthru;

const DRIVER: Driver = Driver::new("nvme_lite", "/sys/bus/pci/drivers/nvme_lite");
const DISK: &str = "/dev/nvme_lite0n1";
const SYSFS: &str = "/sys/block/nvme_lite0n1";
/// The image the host attached: 64 MiB.
const SIZE: u64 = nvme_pattern::IMAGE_SIZE;
/// Where the host wrote [`host_pattern`] blocks.
const PATTERN_OFFSETS: [u64; 3] = nvme_pattern::HOST_OFFSETS;
/// The disk's layout over the suite (as `xtask/src/nvmedisk.rs`): the ext4 test's file system
/// covers the first 32 MiB and stays there for the host's e2fsck after the boot; the tests
/// after it write only in the scratch area; [`guest_pattern`] blocks go at
/// [`GUEST_PATTERN_AT`] for the host to find.
const FS_SIZE: &str = "32M";
/// Where tests that run after the file system exists may write: 40..48 MiB and 52..60 MiB.
const SCRATCH: [u64; 2] = [40 << 20, 52 << 20];
/// The 1 MiB the guest fills with [`guest_pattern`] blocks and the host reads after the boot.
const GUEST_PATTERN_AT: u64 = 48 << 20;

/// The tests, in order.
pub const TESTS: [TestCase; 31] = [
    TestCase::new("modinfo_has_pci_class_alias", modinfo_has_pci_class_alias),
    TestCase::new("load_binds_and_identifies", load_binds_and_identifies)
        .timeout(Duration::from_secs(30))
        .setup(),
    TestCase::new("bound_in_sysfs", bound_in_sysfs),
    TestCase::new("disk_geometry", disk_geometry),
    TestCase::new("one_queue_per_cpu_each_completes", one_queue_per_cpu)
        .timeout(Duration::from_secs(60)),
    TestCase::new("reads_host_pattern_o_direct", reads_host_pattern),
    // Needs the host patterns of both images: before anything writes to the disks.
    TestCase::new(
        "c_nvme_beside_then_swapped_by_sysfs_bind",
        coexist::c_driver_beside_then_swapped,
    )
    .timeout(Duration::from_secs(90)),
    TestCase::new("write_then_read_back_o_direct", write_then_read_back),
    TestCase::new(
        "unaligned_buffer_and_prp_list",
        unaligned_buffer_and_prp_list,
    ),
    TestCase::new("fsync_flushes", fsync_flushes),
    TestCase::new("four_threads_of_direct_io_verify", four_threads)
        .timeout(Duration::from_secs(60)),
    TestCase::new("io_past_the_end_fails_cleanly", io_past_the_end),
    TestCase::new("fio_concurrent_verified_io_allocates_nothing", fio_verify)
        .timeout(Duration::from_secs(180)),
    TestCase::new("ext4_mkfs_mount_files_fsck", ext4_files_fsck).timeout(Duration::from_secs(120)),
    TestCase::new("guest_pattern_for_the_host", guest_pattern_for_host),
    TestCase::new(
        "admin_node_is_a_misc_device",
        passthru::node_is_a_misc_device,
    ),
    TestCase::new(
        "admin_identify_via_admin_cmd",
        passthru::identify_via_admin_cmd,
    ),
    TestCase::new(
        "admin_get_log_page_and_features",
        passthru::get_log_page_and_features,
    ),
    TestCase::new(
        "admin_controller_errors_are_positive_status",
        passthru::controller_errors_are_positive_status,
    ),
    TestCase::new("admin_rejects_bad_commands", passthru::rejects_bad_commands),
    TestCase::new("admin_needs_cap_sys_admin", passthru::needs_cap_sys_admin),
    TestCase::new("nvme_cli_id_ctrl", passthru::nvme_cli_id_ctrl).timeout(Duration::from_secs(30)),
    TestCase::new("nvme_cli_smart_log", passthru::nvme_cli_smart_log)
        .timeout(Duration::from_secs(30)),
    TestCase::new(
        "admin_node_follows_the_binding",
        passthru::node_follows_the_binding,
    )
    .timeout(Duration::from_secs(60)),
    TestCase::new("unload_shuts_down_and_frees_everything", unload)
        .timeout(Duration::from_secs(30)),
    TestCase::new("twenty_load_unload_cycles", twenty_cycles).timeout(Duration::from_secs(240)),
    TestCase::new(
        "stuck_command_aborted_then_reset_then_io_works",
        stuck_command_aborted_then_reset,
    )
    .timeout(Duration::from_secs(180)),
    TestCase::new(
        "admin_passthrough_across_a_controller_reset",
        passthru::passthrough_across_a_controller_reset,
    )
    .timeout(Duration::from_secs(180)),
    TestCase::new(
        "dropped_completion_times_out_then_io_works",
        dropped_completion_times_out,
    )
    .timeout(Duration::from_secs(90)),
    TestCase::new(
        "dropped_completion_under_parallel_io",
        dropped_completion_under_parallel_io,
    )
    .timeout(Duration::from_secs(150)),
    // Last: the controller is gone afterwards.
    TestCase::new("surprise_removal_fails_io_and_unloads", surprise_removal)
        .timeout(Duration::from_secs(90)),
];

/// Runs the suite; returns `(passed, summary)`.
///
/// The surprise-removal test needs a kernel that can hot-unplug a PCI device (a hotplug driver
/// registered the root port's slot): Debian's kernels and the debug kernels can; on one that
/// cannot, the test is not in the plan, and the suite says so. Under lockdep it runs in a boot
/// of its own (the host's `unplug` boot,
/// `ktest.suites=nvme_lite/surprise_removal_fails_io_and_unloads`): 6.1's pciehp trips lockdep
/// itself on every removal, which turns lockdep off for the rest of the boot.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    let (all, without_removal) = (&TESTS[..], &TESTS[..TESTS.len() - 1]);
    if !kernel_has_pci_hotplug() {
        out.diag(
            "surprise_removal_fails_io_and_unloads not planned: this kernel has no PCI hotplug",
        );
        return run_suite(ctx, out, "nvme_lite", without_removal, None);
    }
    if ctx.selected().is_none() && std::path::Path::new("/proc/lockdep").exists() {
        out.diag(
            "surprise_removal_fails_io_and_unloads not planned here: it runs in a boot of its own \
             (pciehp trips lockdep on removal)",
        );
        return run_suite(ctx, out, "nvme_lite", without_removal, None);
    }
    run_suite(ctx, out, "nvme_lite", all, None)
}

/// Whether a PCI hotplug driver serves the slot the controller sits in.
fn kernel_has_pci_hotplug() -> bool {
    let slots = std::fs::read_dir("/sys/bus/pci/slots").map_or(0, |d| d.count());
    slots > 0 || std::path::Path::new("/sys/module/pciehp").exists()
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
    devtest::wait_for_node(ctx, DISK, true)?;
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
    coexist::reserve_controller_1()?;
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
    expect_line(&lines, "interrupt vectors", |l| {
        l.contains("interrupt vector(s)")
    })?;
    expect_line(&lines, "disk", |l| l.contains(": disk nvme_lite0n1"))?;
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
    devtest::wait_for_node(ctx, DISK, false)?;
    let lines = devtest::log_since(&mut kmsg)?;
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
fn twenty_cycles(ctx: &Ctx) -> TestResult {
    for i in 0..20 {
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

/// With `drop_completion=40` the interrupt handler ignores the 40th I/O completion (past the
/// partition scan at probe). With `io_timeout` at 2 s, writing and reading back 4 KiB blocks
/// one at a time: exactly one write or read fails, after about the timeout (blk-mq's timeout
/// callback reaps the CQ, takes the request back and ends it with BLK_STS_TIMEOUT), the log
/// says so, every other read returns what was written, I/O after it works, and the module
/// unloads cleanly.
fn dropped_completion_times_out(ctx: &Ctx) -> TestResult {
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    DRIVER.load(ctx, "drop_completion=40")?;
    devtest::wait_for_node(ctx, DISK, true)?;
    let result = (|| -> TestResult {
        let path = format!("{SYSFS}/queue/io_timeout");
        std::fs::write(&path, "2000").context(format!("write 2000 to {path}"))?;
        let f = open_direct(true)?;
        let mut w = Aligned::new(4096, 0);
        let mut r = Aligned::new(4096, 0);
        let mut failures = Vec::new();
        let mut after_failure = 0;
        for i in 0..60u64 {
            let off = SCRATCH[0] + (i % 8) * 4096;
            let data = pattern(4096, 7000 + i as u32);
            w.buf().copy_from_slice(&data);
            let start = std::time::Instant::now();
            if let Err(e) = f.write_at(w.buf(), off) {
                failures.push((i, "pwrite", e, start.elapsed()));
                continue;
            }
            let start = std::time::Instant::now();
            match f.read_at(r.buf(), off) {
                Ok(n) => {
                    ensure_eq!(n, 4096, "pread count");
                    ensure_bytes(r.buf(), &data, format!("block {i} at {off}"))?;
                    if !failures.is_empty() {
                        after_failure += 1;
                    }
                }
                Err(e) => failures.push((i, "pread", e, start.elapsed())),
            }
        }
        ensure_eq!(failures.len(), 1, "failed reads ({failures:?})");
        let (i, op, e, took) = &failures[0];
        ensure!(
            *took >= Duration::from_millis(1500) && *took < Duration::from_secs(30),
            "{op} {i} failed with {e} after {took:?}, not after about the 2 s timeout"
        );
        ensure!(
            after_failure >= 10,
            "only {after_failure} write+read pairs after the failure"
        );
        let lines = devtest::log_since(&mut kmsg)?;
        expect_line(&lines, "timed out", |l| {
            l.starts_with("nvme_lite: ") && l.contains("timed out: ending it with an error")
        })?;
        Ok(())
    })();
    let unloaded = DRIVER.unload_cleanly(ctx);
    result?;
    unloaded
}

/// A command the controller never completes: the guest asks the host to throttle the drive to
/// 1 byte/s (QMP `block_set_io_throttle`): QEMU's block layer lets one request through, then
/// holds every further one for about an hour, so the controller keeps the command. With
/// `io_timeout` at 2 s, reading 4 KiB blocks one at a time: one read is held, and ends after
/// two timeouts (the first sends an Admin Abort, which QEMU cannot honour; the second resets
/// the controller), with an error or with the right data (QEMU drains held requests while the
/// controller is being disabled, and may post the completion before it is). The log says
/// "aborting", then "reset controller", then "reset done". Once the host lifts the throttle,
/// write+read pairs verify again, and the module unloads cleanly.
fn stuck_command_aborted_then_reset(ctx: &Ctx) -> TestResult {
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    DRIVER.load(ctx, "")?;
    devtest::wait_for_node(ctx, DISK, true)?;
    let mut throttled = false;
    let result = (|| -> TestResult {
        let path = format!("{SYSFS}/queue/io_timeout");
        std::fs::write(&path, "2000").context(format!("write 2000 to {path}"))?;
        let f = open_direct(true)?;
        let mut r = Aligned::new(4096, 0);
        devtest::host_request("throttle nvme0")?;
        throttled = true;
        // The request the throttle lets through completes at once; the one after it is held.
        let off = PATTERN_OFFSETS[1];
        let start = std::time::Instant::now();
        let (i, outcome, took) = loop {
            ensure!(
                start.elapsed() < Duration::from_secs(60),
                "no read was held within 60 s of asking the host to throttle the drive"
            );
            let t = std::time::Instant::now();
            let res = f.read_at(r.buf(), off);
            let took = t.elapsed();
            if took >= Duration::from_millis(1500) {
                break (start.elapsed(), res, took);
            }
            res.context("a read before the throttle held one")?;
            std::thread::sleep(Duration::from_millis(50));
        };
        match &outcome {
            Ok(n) => {
                ensure_eq!(*n, 4096, "held read's count");
                ensure_bytes(r.buf(), &host_pattern(off), "the held read's data")?;
            }
            Err(e) => ctx.note(format!("the held read failed with {e} after {took:?}")),
        }
        ensure!(
            took >= Duration::from_millis(3500) && took < Duration::from_secs(60),
            "the held read ended after {took:?} ({outcome:?}, {i:?} into the test), \
             not after two 2 s timeouts"
        );
        let lines = devtest::log_since(&mut kmsg)?;
        let at = |what: &str| lines.iter().position(|l| l.contains(what));
        let (abort, reset, done) = (
            at("timeout, aborting"),
            at("timeout, reset controller"),
            at("reset done"),
        );
        ensure!(
            matches!((abort, reset, done), (Some(a), Some(r), Some(d)) if a < r && r < d),
            "expected \"timeout, aborting\", then \"timeout, reset controller\", then \
             \"reset done\" in the log:\n{}",
            lines.join("\n")
        );
        // Still throttled: two reads at once, from threads on different CPUs (so on different
        // queues when there are several). Both are held; the first reset finds the other
        // still in flight and submits it again; each ends after its own abort and reset.
        let cpus = crate::sys::online_cpus();
        let both: Vec<_> = (0..2usize)
            .map(|t| {
                let f = f.try_clone();
                std::thread::spawn(move || -> Result<String, String> {
                    let f = f.map_err(|e| format!("dup: {e}"))?;
                    crate::sys::pin_to_cpu(t % cpus).map_err(|e| format!("pin: {e}"))?;
                    let mut r = Aligned::new(4096, 0);
                    let off = PATTERN_OFFSETS[t * 2];
                    let start = std::time::Instant::now();
                    match f.read_at(r.buf(), off) {
                        Ok(4096) if r.buf() == &host_pattern(off)[..] => {
                            Ok(format!("read {t}: data after {:?}", start.elapsed()))
                        }
                        Ok(n) => Err(format!("read {t}: {n} bytes or data differs")),
                        Err(e) => Ok(format!("read {t}: {e} after {:?}", start.elapsed())),
                    }
                })
            })
            .collect();
        for t in both {
            let outcome = t
                .join()
                .map_err(|_| crate::harness::Failure::new("a reader thread panicked"))?;
            ctx.note(outcome.map_err(crate::harness::Failure::new)?);
        }
        let lines = devtest::log_since(&mut kmsg)?;
        ensure!(
            lines
                .iter()
                .any(|l| l.contains("reset done: ") && !l.contains("reset done: 0 command(s)")),
            "no reset submitted a command again:\n{}",
            lines.join("\n")
        );
        devtest::host_request("unthrottle nvme0")?;
        throttled = false;
        // Until the host has lifted the throttle, a request may still be held (and fail
        // after its own abort and reset); then 20 pairs in a row must verify. On a thread, so
        // that a hang is diagnosed (blocked tasks, blk-mq state) rather than only killed.
        let io = std::thread::spawn(move || -> Result<Vec<String>, String> {
            let (mut w, mut r) = (Aligned::new(4096, 0), Aligned::new(4096, 0));
            let (mut good, mut failed, mut n) = (0, Vec::new(), 0u64);
            let start = std::time::Instant::now();
            while good < 20 {
                if start.elapsed() > Duration::from_secs(90) {
                    return Err(format!(
                        "only {good} good write+read pairs in a row 90 s after lifting the \
                         throttle (failures: {failed:?})"
                    ));
                }
                n += 1;
                let off = (44 << 20) + (n % 16) * 4096;
                let data = pattern(4096, 11000 + n as u32);
                w.buf().copy_from_slice(&data);
                match f
                    .write_at(w.buf(), off)
                    .and_then(|_| f.read_at(r.buf(), off))
                {
                    Ok(4096) if r.buf() == &data[..] => good += 1,
                    Ok(k) => return Err(format!("pair {n}: read {k} bytes, or data differs")),
                    Err(e) => {
                        good = 0;
                        failed.push(format!("pair {n}: {e}"));
                    }
                }
            }
            Ok(failed)
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(100);
        while !io.is_finished() {
            if std::time::Instant::now() > deadline {
                return Err(crate::harness::Failure::new(format!(
                    "write+read pairs after lifting the throttle hang:\n{}",
                    blk_mq_state()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let failed = io
            .join()
            .map_err(|_| crate::harness::Failure::new("the I/O thread panicked"))?
            .map_err(crate::harness::Failure::new)?;
        if !failed.is_empty() {
            ctx.note(format!("failed before the throttle was lifted: {failed:?}"));
        }
        Ok(())
    })();
    if throttled {
        let _ = devtest::host_request("unthrottle nvme0");
    }
    let unloaded = DRIVER.unload_cleanly(ctx);
    result?;
    unloaded
}

/// The dropped completion while four threads (two per CPU) write and read back their own
/// blocks at once, on every queue: the timeout path races with completions of other requests
/// on the same and other queues. Every thread finishes (no hang), one write or read fails with
/// the timeout (more only if a slow request was aborted and the controller reset, which the
/// log then shows), every other read returns what was written, and the module unloads.
fn dropped_completion_under_parallel_io(ctx: &Ctx) -> TestResult {
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    DRIVER.load(ctx, "drop_completion=100")?;
    devtest::wait_for_node(ctx, DISK, true)?;
    let result = (|| -> TestResult {
        let path = format!("{SYSFS}/queue/io_timeout");
        std::fs::write(&path, "2000").context(format!("write 2000 to {path}"))?;
        let cpus = crate::sys::online_cpus();
        let threads: Vec<_> = (0..4usize)
            .map(|t| {
                std::thread::spawn(move || -> Result<Vec<String>, String> {
                    crate::sys::pin_to_cpu(t % cpus).map_err(|e| format!("pin: {e}"))?;
                    let f = open_direct(true).map_err(|e| format!("{e:?}"))?;
                    let (mut w, mut r) = (Aligned::new(8192, 0), Aligned::new(8192, 0));
                    let mut failed = Vec::new();
                    for i in 0..40u64 {
                        let off = SCRATCH[1] + (t as u64 * 64 + i % 16) * 8192;
                        let data = pattern(8192, 20000 + (t as u32) * 100 + i as u32);
                        w.buf().copy_from_slice(&data);
                        if let Err(e) = f.write_at(w.buf(), off) {
                            failed.push(format!("thread {t} pwrite {i}: {e}"));
                            continue;
                        }
                        match f.read_at(r.buf(), off) {
                            Ok(8192) if r.buf() == &data[..] => {}
                            Ok(n) => {
                                return Err(format!(
                                    "thread {t} pread {i}: {n} bytes or data differs"
                                ))
                            }
                            Err(e) => failed.push(format!("thread {t} pread {i}: {e}")),
                        }
                    }
                    Ok(failed)
                })
            })
            .collect();
        let mut failed = Vec::new();
        for t in threads {
            let r = t
                .join()
                .map_err(|_| crate::harness::Failure::new("an I/O thread panicked"))?;
            failed.extend(r.map_err(crate::harness::Failure::new)?);
        }
        let lines = devtest::log_since(&mut kmsg)?;
        let resets = lines
            .iter()
            .filter(|l| l.contains("reset controller"))
            .count();
        ensure!(
            !failed.is_empty() && failed.len() <= 1 + resets,
            "{} failed I/Os with {resets} controller reset(s): {failed:?}\n{}",
            failed.len(),
            lines.join("\n")
        );
        expect_line(&lines, "timed out", |l| {
            l.starts_with("nvme_lite: ") && l.contains("timed out: ending it with an error")
        })?;
        Ok(())
    })();
    let unloaded = DRIVER.unload_cleanly(ctx);
    result?;
    unloaded
}

/// For a hang: the blocked tasks' stacks go to the kernel log (SysRq w), and blk-mq's
/// debugfs view of the disk (queue state, each hardware queue's state, dispatch list, busy
/// requests, tags) is returned.
fn blk_mq_state() -> String {
    let _ = std::fs::write("/proc/sysrq-trigger", "w");
    let _ = std::fs::create_dir_all("/sys/kernel/debug");
    let _ = crate::sys::mount("debugfs", "/sys/kernel/debug", "debugfs");
    let dir = "/sys/kernel/debug/block/nvme_lite0n1";
    let mut out = String::new();
    let mut files = vec![format!("{dir}/state"), format!("{dir}/requeue_list")];
    if let Ok(d) = std::fs::read_dir(dir) {
        let mut hctx: Vec<String> = d
            .filter_map(|e| e.ok())
            .map(|e| e.path().display().to_string())
            .filter(|p| p.contains("/hctx"))
            .collect();
        hctx.sort();
        for h in hctx {
            for f in [
                "state",
                "dispatch",
                "busy",
                "tags",
                "sched_tags",
                "dispatched",
                "queued",
                "run",
            ] {
                files.push(format!("{h}/{f}"));
            }
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| format!("({e})"));
        out.push_str(&format!("{f}: {}\n", text.trim()));
    }
    out
}

/// Hot-unplug while I/O runs: a thread writes and reads back blocks with O_DIRECT in a loop;
/// the guest asks the host for QMP `device_del nvme0` (the controller sits behind a PCIe root
/// port). The I/O ends with an error or a short read (the gone disk's size is 0), I/O on the
/// open descriptor keeps failing, `/dev/nvme_lite0n1` disappears, `remove` ran with no register wait timing out (if
/// the controller was already gone, CSTS all-ones, it logged so and skipped the queue deletion
/// and shutdown), and the module unloads cleanly.
fn surprise_removal(ctx: &Ctx) -> TestResult {
    // Also when it runs alone (its own boot on a lockdep kernel, see `run`).
    coexist::reserve_controller_1()?;
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
    DRIVER.load(ctx, "")?;
    devtest::wait_for_node(ctx, DISK, true)?;
    let f = open_direct(true)?;
    let admin_node = passthru::open_before_removal(ctx)?;
    let io = std::thread::spawn(move || -> Result<(u64, String), String> {
        let start = std::time::Instant::now();
        let mut w = Aligned::new(65536, 0);
        let mut r = Aligned::new(65536, 0);
        let mut i = 0u64;
        while start.elapsed() < Duration::from_secs(60) {
            let off = SCRATCH[1] + (i % 64) * 65536;
            let data = pattern(65536, 9000 + i as u32);
            w.buf().copy_from_slice(&data);
            if let Err(e) = f.write_at(w.buf(), off) {
                let again = f.read_at(r.buf(), off);
                return match again {
                    Err(_) => Ok((i, format!("pwrite: {e}"))),
                    Ok(n) if n < 65536 => Ok((i, format!("pwrite: {e}, then pread {n} bytes"))),
                    Ok(n) => Err(format!("pwrite failed ({e}) but a pread after it read {n}")),
                };
            }
            match f.read_at(r.buf(), off) {
                Err(e) => return Ok((i, format!("pread: {e}"))),
                // The disk is gone: its size is now 0, so reads see end-of-file.
                Ok(n) if n < 65536 => return Ok((i, format!("pread: {n} bytes (end of device)"))),
                Ok(n) if r.buf() != &data[..] => {
                    return Err(format!("iteration {i}: pread {n} bytes, data differs"))
                }
                Ok(_) => {}
            }
            i += 1;
        }
        Err(format!("{i} write+read pairs in 60 s, no error"))
    });
    std::thread::sleep(Duration::from_millis(500));
    devtest::host_request("device_del nvme0")?;
    let outcome = io.join();
    let gone = devtest::wait_for_node(ctx, DISK, false);
    let admin_gone = passthru::expect_gone_after_removal(ctx, &admin_node);
    drop(admin_node);
    // After the unload: `remove` logs "removed" once it has finished.
    let unloaded = DRIVER.unload_cleanly(ctx);
    let lines = devtest::log_since(&mut kmsg)?;
    match outcome {
        Ok(Ok((i, e))) => ensure!(i > 0, "the first I/O already failed: {e}"),
        Ok(Err(e)) => return Err(crate::harness::Failure::new(e)),
        Err(_) => return Err(crate::harness::Failure::new("the I/O thread panicked")),
    }
    gone?;
    admin_gone?;
    expect_line(&lines, "removed", |l| {
        l.starts_with("nvme_lite: ") && l.contains(": removed")
    })?;
    // Gone before `remove` (CSTS all-ones): no admin command or register wait may follow.
    if lines.iter().any(|l| l.contains("device gone")) {
        ensure!(
            !lines
                .iter()
                .any(|l| l.contains("Delete I/O") || l.contains("timed out")),
            "the driver touched the gone controller:\n{}",
            lines.join("\n")
        );
    }
    ensure!(
        !lines.iter().any(|l| l.contains("timed out")),
        "a wait timed out during the removal:\n{}",
        lines.join("\n")
    );
    unloaded
}

/// What the host wrote at `offset` of controller 0's image.
fn host_pattern(offset: u64) -> Vec<u8> {
    host_pattern_of(0, offset)
}

/// What the host wrote at `offset` of controller `image`'s image (`crates/nvme-pattern`, which
/// `xtask/src/nvmedisk.rs` writes the images with).
fn host_pattern_of(image: usize, offset: u64) -> Vec<u8> {
    nvme_pattern::host(image, offset).to_vec()
}

/// A buffer of `len` bytes starting `misalign` bytes past a page boundary (O_DIRECT needs
/// 512-byte alignment; a page offset exercises PRP1 with an offset).
struct Aligned {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize, misalign: usize) -> Aligned {
        let storage = vec![0u8; len + 8192];
        let start = storage.as_ptr().align_offset(4096) + misalign;
        Aligned {
            storage,
            start,
            len,
        }
    }
    fn buf(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

fn open_direct(write: bool) -> TestResult<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT)
        .open(DISK)
        .context(format!("open({DISK}, O_DIRECT)"))
}

fn sysfs(attr: &str) -> TestResult<String> {
    let path = format!("{SYSFS}/{attr}");
    Ok(std::fs::read_to_string(&path)
        .context(format!("read {path}"))?
        .trim()
        .to_string())
}

/// The disk's hardware queues: one per I/O queue pair.
fn io_queues() -> TestResult<usize> {
    Ok(std::fs::read_dir(format!("{SYSFS}/mq"))
        .context(format!("read_dir({SYSFS}/mq)"))?
        .count())
}

/// One I/O queue pair per CPU, up to what the controller allows (probe logged both numbers):
/// blk-mq has that many hardware queues (`/sys/block/<disk>/mq/`), and each has its own
/// interrupt vector. Reads issued from a thread pinned to each CPU in turn complete, and
/// raise one `nvme_lite` vector's count in `/proc/interrupts`; each CPU's reads use another
/// vector, until every queue an online CPU maps to was used (all of them when every possible
/// CPU is online); the interrupts run on the CPU that issued the reads.
fn one_queue_per_cpu(_: &Ctx) -> TestResult {
    let cpus = crate::sys::online_cpus();
    // The driver sizes for the possible CPUs (`/sys/devices/system/cpu/possible`, "0-N").
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .context("read /sys/devices/system/cpu/possible")?;
    let possible = possible
        .trim()
        .rsplit(['-', ','])
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .map(|last| last + 1)
        .ok_or_else(|| crate::harness::Failure::new(format!("possible CPUs {possible:?}")))?;
    let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
    let lines = devtest::log_since(&mut kmsg)?;
    let probe = lines
        .iter()
        .rev()
        .find(|l| l.contains(" I/O queue(s): "))
        .map(|l| l.trim())
        .ok_or_else(|| crate::harness::Failure::new("no \"I/O queue(s)\" line from the probe"))?;
    // "...; N I/O queue(s): C CPU(s), the controller allows A"
    let number_before = |what: &str| -> Option<usize> {
        let at = probe.find(what)?;
        probe[..at]
            .split(|c: char| !c.is_ascii_digit())
            .rev()
            .find(|w| !w.is_empty())?
            .parse()
            .ok()
    };
    let (count, allowed) = (
        number_before(" I/O queue(s)"),
        probe
            .rsplit(' ')
            .next()
            .and_then(|w| w.parse::<usize>().ok()),
    );
    let (Some(count), Some(allowed)) = (count, allowed) else {
        return Err(crate::harness::Failure::new(format!(
            "cannot parse {probe:?}"
        )));
    };
    ensure_eq!(count, possible.min(allowed), "I/O queues ({probe})");
    ensure_eq!(io_queues()?, count, "hardware queues in {SYSFS}/mq");
    let vectors = nvme_interrupts()?;
    ensure_eq!(
        vectors.len(),
        count,
        "nvme_lite vectors in /proc/interrupts ({vectors:?})"
    );
    let mut used = std::collections::BTreeSet::new();
    for cpu in 0..cpus {
        let before = nvme_interrupts()?;
        let reads = std::thread::spawn(move || -> Result<(), String> {
            crate::sys::pin_to_cpu(cpu)
                .map_err(|e| format!("sched_setaffinity(CPU {cpu}): {e}"))?;
            let f = open_direct(false).map_err(|e| format!("{e:?}"))?;
            let mut r = Aligned::new(4096, 0);
            for i in 0..50u64 {
                f.read_at(r.buf(), (i % 16) * 4096)
                    .map_err(|e| format!("read {i} on CPU {cpu}: {e}"))?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| crate::harness::Failure::new("the reader thread panicked"))?;
        reads.map_err(crate::harness::Failure::new)?;
        let after = nvme_interrupts()?;
        let total = |counts: &Vec<u64>| counts.iter().sum::<u64>();
        let on_cpu = |counts: &Vec<u64>| counts.get(cpu).copied().unwrap_or(0);
        let grown: Vec<&String> = after
            .iter()
            .filter(|(irq, n)| total(n) >= before.get(*irq).map_or(0, total) + 50)
            .map(|(irq, _)| irq)
            .collect();
        ensure!(
            !grown.is_empty(),
            "50 reads on CPU {cpu}: no nvme_lite vector counted 50 interrupts ({before:?} -> {after:?})"
        );
        // The vector runs where the reads were issued: no cross-CPU wake-up per completion
        // (arm64's GIC puts every vector on CPU 0 unless the driver spreads them).
        let here: u64 = grown
            .iter()
            .map(|irq| on_cpu(&after[*irq]) - before.get(*irq).map_or(0, on_cpu))
            .sum();
        ensure!(
            here >= 50,
            "50 reads on CPU {cpu}: their vector(s) {grown:?} took only {here} interrupts on CPU {cpu} \
             ({before:?} -> {after:?})"
        );
        used.extend(grown.into_iter().cloned());
    }
    ensure_eq!(
        used.len(),
        count.min(cpus),
        "vectors used by reads from {cpus} CPUs ({used:?})"
    );
    Ok(())
}

/// The `nvme_lite` lines of /proc/interrupts: IRQ number → interrupts counted on each CPU.
fn nvme_interrupts() -> TestResult<std::collections::BTreeMap<String, Vec<u64>>> {
    let text = std::fs::read_to_string("/proc/interrupts").context("read /proc/interrupts")?;
    Ok(text
        .lines()
        .filter(|l| l.trim_end().ends_with(" nvme_lite"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let irq = words.next()?.trim_end_matches(':').to_string();
            let per_cpu = words.map_while(|w| w.parse::<u64>().ok()).collect();
            Some((irq, per_cpu))
        })
        .collect())
}

/// Capacity, block size and the write cache as the block layer sees them.
fn disk_geometry(_: &Ctx) -> TestResult {
    ensure_eq!(sysfs("size")?, "131072", "{SYSFS}/size (512-byte sectors)");
    ensure_eq!(
        sysfs("queue/logical_block_size")?,
        "512",
        "logical block size"
    );
    ensure_eq!(sysfs("queue/write_cache")?, "write back", "write cache");
    let max_kb: u64 = sysfs("queue/max_hw_sectors_kb")?.parse().context("parse")?;
    ensure!(
        (4..=512).contains(&max_kb),
        "max_hw_sectors_kb {max_kb} not in 4..=512"
    );
    Ok(())
}

fn reads_host_pattern(_: &Ctx) -> TestResult {
    let f = open_direct(false)?;
    let mut a = Aligned::new(4096, 0);
    for off in PATTERN_OFFSETS {
        let n = f
            .read_at(a.buf(), off)
            .context(format!("pread(4096, {off})"))?;
        ensure_eq!(n, 4096, "pread at {off}");
        ensure_bytes(a.buf(), &host_pattern(off), format!("block at {off}"))?;
    }
    Ok(())
}

/// 64 KiB (16 pages: a PRP list) written and read back, then the host pattern next to it
/// is still intact.
fn write_then_read_back(_: &Ctx) -> TestResult {
    let f = open_direct(true)?;
    let data = pattern(64 * 1024, 0x6e766d65);
    let mut w = Aligned::new(data.len(), 0);
    w.buf().copy_from_slice(&data);
    let off = 1 << 20;
    let n = f.write_at(w.buf(), off).context("pwrite(64 KiB, 1 MiB)")?;
    ensure_eq!(n, data.len(), "pwrite count");
    let mut r = Aligned::new(data.len(), 0);
    let n = f.read_at(r.buf(), off).context("pread(64 KiB, 1 MiB)")?;
    ensure_eq!(n, data.len(), "pread count");
    ensure_bytes(r.buf(), &data, "64 KiB read back")?;
    let mut p = Aligned::new(4096, 0);
    f.read_at(p.buf(), 0).context("pread(4096, 0)")?;
    ensure_bytes(p.buf(), &host_pattern(0), "block 0 after the write")?;
    Ok(())
}

/// Buffers starting 512 bytes into a page: PRP1 has an offset, and the transfer spans one
/// page more than its length (2 pages for 4 KiB, a list for 12 KiB and 128 KiB).
fn unaligned_buffer_and_prp_list(_: &Ctx) -> TestResult {
    let f = open_direct(true)?;
    for (i, len) in [512usize, 4096, 12 * 1024, 128 * 1024]
        .into_iter()
        .enumerate()
    {
        let data = pattern(len, 0x1000 + i as u32);
        let off = (8 << 20) + (i as u64) * (1 << 20) + 512;
        let mut w = Aligned::new(len, 512);
        w.buf().copy_from_slice(&data);
        let n = f
            .write_at(w.buf(), off)
            .context(format!("pwrite({len}, {off})"))?;
        ensure_eq!(n, len, "pwrite({len}) count");
        let mut r = Aligned::new(len, 512);
        let n = f
            .read_at(r.buf(), off)
            .context(format!("pread({len}, {off})"))?;
        ensure_eq!(n, len, "pread({len}) count");
        ensure_bytes(r.buf(), &data, format!("{len} bytes at {off}"))?;
    }
    Ok(())
}

/// fsync on the disk sends a flush (the controller has a volatile write cache).
fn fsync_flushes(_: &Ctx) -> TestResult {
    let f = open_direct(true)?;
    let mut w = Aligned::new(4096, 0);
    w.buf().fill(0xa5);
    f.write_at(w.buf(), 2 << 20).context("pwrite")?;
    f.sync_all().context("fsync")?;
    Ok(())
}

/// Four threads write and read back their own regions at once, with sizes from 4 to 128 KiB
/// and page offsets: several commands in flight, each with its own tag and PRP list.
fn four_threads(_: &Ctx) -> TestResult {
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || -> Result<(), String> {
                let f = open_direct(true).map_err(|e| e.to_string())?;
                for (i, len) in [4096usize, 65536, 8192, 131072, 12288, 32768]
                    .into_iter()
                    .enumerate()
                {
                    let misalign = if i % 2 == 0 { 0 } else { 1024 };
                    let off = (16 << 20) + t * (4 << 20) + (i as u64) * (256 << 10);
                    let data = pattern(len, (t * 100 + i as u64) as u32);
                    let mut w = Aligned::new(len, misalign);
                    w.buf().copy_from_slice(&data);
                    let n = f
                        .write_at(w.buf(), off)
                        .map_err(|e| format!("pwrite: {e}"))?;
                    let mut r = Aligned::new(len, misalign);
                    let m = f.read_at(r.buf(), off).map_err(|e| format!("pread: {e}"))?;
                    if n != len || m != len || r.buf() != &data[..] {
                        return Err(format!(
                            "thread {t}: {len} bytes at {off}: wrote {n}, read {m}, data differs"
                        ));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(crate::harness::Failure::new(e)),
            Err(_) => return Err(crate::harness::Failure::new(format!("thread {t} panicked"))),
        }
    }
    Ok(())
}

/// Reads at the end see end-of-file; writes there fail; nothing crashes.
fn io_past_the_end(_: &Ctx) -> TestResult {
    let f = open_direct(true)?;
    let mut a = Aligned::new(8192, 0);
    let n = f.read_at(a.buf(), SIZE).context("pread at the end")?;
    ensure_eq!(n, 0, "pread at the end");
    let n = f
        .read_at(a.buf(), SIZE - 4096)
        .context("pread across the end")?;
    ensure_eq!(n, 4096, "pread across the end (short count)");
    ensure_bytes(&a.buf()[..4096], &host_pattern(SIZE - 4096), "last block")?;
    ensure!(
        f.write_at(a.buf(), SIZE).is_err(),
        "pwrite at the end succeeded"
    );
    ensure!(
        f.write_at(a.buf(), SIZE + (1 << 20)).is_err(),
        "pwrite past the end succeeded"
    );
    Ok(())
}

fn run_tool(path: &str, args: &[&str]) -> TestResult<String> {
    let out = std::process::Command::new(path)
        .args(args)
        .output()
        .context(format!("run {path}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "{path} {args:?} failed ({}):\n{text}",
        out.status
    );
    Ok(text)
}

/// Debian's fio: four processes of random direct I/O at once, each on its own 4 MiB of the
/// 16..32 MiB area, sizes from 4 KiB to 128 KiB (multi-page: PRP lists), every block written
/// with a crc32c header and verified when read back (`verify=crc32c`, `verify_fatal`).
///
/// The I/O path allocates nothing: per-request data comes with the tag set and each tag has its
/// PRP list page from probe, so the module's allocation count (`kernel::alloc`, in debugfs) is
/// the same after fio as before, and so is what it holds (reported: the driver's memory at idle
/// with its queues set up).
fn fio_verify(ctx: &Ctx) -> TestResult {
    let before = DRIVER.allocations()?;
    let out = run_tool(
        "/usr/bin/fio",
        &[
            "--name=verify",
            &format!("--filename={DISK}"),
            "--ioengine=libaio",
            "--direct=1",
            "--rw=randwrite",
            "--bssplit=4k/40:16k/20:64k/20:128k/20",
            "--iodepth=8",
            "--numjobs=4",
            "--offset=16M",
            "--offset_increment=4M",
            "--size=4M",
            "--verify=crc32c",
            "--verify_fatal=1",
            "--do_verify=1",
            "--group_reporting",
        ],
    )?;
    ensure!(out.contains("err= 0"), "fio did not report err= 0:\n{out}");
    let after = DRIVER.allocations()?;
    ensure!(
        after == before,
        "the I/O path allocated: counters before fio {before:?}, after {after:?}"
    );
    ctx.note(format!(
        "idle with {} I/O queues: live_allocations={}; allocations since load {}, none during fio",
        io_queues()?,
        after.live,
        after.total
    ));
    Ok(())
}

/// Debian's mkfs.ext4 (its own mke2fs.conf defaults: journal, extents, metadata checksums) on
/// the first 32 MiB; mounted, a directory of files of several sizes written, unmounted,
/// mounted again (so reads come from the disk, not the page cache) and compared; unmounted;
/// a forced read-only e2fsck must find it clean. The host runs e2fsck on the image after the
/// boot too.
fn ext4_files_fsck(_: &Ctx) -> TestResult {
    let modules = crate::module::load_stock("ext4")
        .and_then(|mut m| {
            // ext4's metadata checksums ask the crypto API for crc32c, not modprobe.
            m.extend(crate::module::load_stock("crc32c_generic")?);
            Ok(m)
        })
        .map_err(|e| crate::harness::Failure::new(e.to_string()))?;
    let result = ext4_round_trip();
    if result.is_err() {
        // A failure may have left it mounted; the module cannot go while it is.
        let _ = std::process::Command::new("/bin/umount")
            .arg(MNT)
            .stderr(std::process::Stdio::null())
            .status();
    }
    crate::module::unload_all(&modules, Duration::from_secs(5)).context("rmmod ext4")?;
    result
}

const MNT: &str = "/mnt";

fn ext4_round_trip() -> TestResult {
    run_tool(
        "/sbin/mkfs.ext4",
        &["-F", "-q", "-L", "rustnvme", DISK, FS_SIZE],
    )?;
    std::fs::create_dir_all(MNT).context("mkdir /mnt")?;
    let files: Vec<(String, Vec<u8>)> = [1usize, 4096, 300 << 10, 3 << 20]
        .iter()
        .enumerate()
        .flat_map(|(i, &len)| {
            (0..5).map(move |j| {
                let seed = (i * 10 + j) as u32;
                (format!("{MNT}/d{i}/f{j}"), pattern(len, 0xe4 + seed))
            })
        })
        .collect();
    run_tool("/bin/mount", &["-t", "ext4", DISK, MNT])?;
    for (path, data) in &files {
        let dir = std::path::Path::new(path).parent().unwrap_or(MNT.as_ref());
        std::fs::create_dir_all(dir).context(format!("mkdir {}", dir.display()))?;
        std::fs::write(path, data).context(format!("write {path}"))?;
    }
    run_tool("/bin/umount", &[MNT])?;
    run_tool("/bin/mount", &["-t", "ext4", "-o", "ro", DISK, MNT])?;
    for (path, data) in &files {
        let back = std::fs::read(path).context(format!("read {path}"))?;
        ensure_bytes(&back, data, path.clone())?;
    }
    run_tool("/bin/umount", &[MNT])?;
    let report = run_tool("/sbin/e2fsck", &["-f", "-n", DISK])?;
    // 20 files, 4 directories and ext4's 11 reserved inodes.
    ensure!(
        report.contains("rustnvme: 35/"),
        "e2fsck did not report the file system with its 35 inodes:\n{report}"
    );
    Ok(())
}

/// The guest's half of "data both ways": 1 MiB of [`guest_pattern`] blocks at
/// [`GUEST_PATTERN_AT`], written with O_DIRECT and flushed. The host finds them byte-exact in
/// the image after the boot (record `nvme_lite.host_finds_guest_pattern`), after the unload
/// test shut the controller down.
fn guest_pattern_for_host(_: &Ctx) -> TestResult {
    let f = open_direct(true)?;
    let mut w = Aligned::new(1 << 20, 0);
    for (i, block) in w.buf().chunks_mut(4096).enumerate() {
        block.copy_from_slice(&guest_pattern(GUEST_PATTERN_AT + i as u64 * 4096));
    }
    let n = f
        .write_at(w.buf(), GUEST_PATTERN_AT)
        .context("pwrite(1 MiB, 48 MiB)")?;
    ensure_eq!(n, 1 << 20, "pwrite count");
    f.sync_all().context("fsync")?;
    Ok(())
}

/// What the guest writes at `offset` for the host: the host pattern with every bit inverted
/// (`crates/nvme-pattern`, which the host checks the image with).
fn guest_pattern(offset: u64) -> Vec<u8> {
    nvme_pattern::guest(offset).to_vec()
}
