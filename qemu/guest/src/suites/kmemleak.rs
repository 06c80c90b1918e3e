//! Suite `kmemleak` (last suite of a boot on a kmemleak kernel): after the other suites have
//! loaded, used and unloaded the modules, ask kmemleak for a scan and print its report between
//! `---- kmemleak ----` and `---- end kmemleak ----`. The host decides which unreferenced
//! objects were allocated by our modules (their backtraces name them, or show bare addresses of
//! an unloaded module) and fails the run for those.

use std::io::Write;
use std::time::Duration;

use crate::devtest::DEBUGFS;
use crate::harness::{run_suite, Ctx, Failure, TestCase, TestResult};
use crate::ktap;
use crate::sys::{self, Errno};

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// The suite's tests.
pub const TESTS: [TestCase; 1] =
    [TestCase::new("scan_and_report", scan_and_report).timeout(Duration::from_secs(120))];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "kmemleak", &TESTS, None)
}

fn scan_and_report(_ctx: &Ctx) -> TestResult {
    match sys::mount("debugfs", DEBUGFS, "debugfs") {
        Ok(()) | Err(Errno::EBUSY) => {}
        Err(e) => {
            return Err(Failure::new(format!(
                "mount -t debugfs debugfs {DEBUGFS}: {e}"
            )))
        }
    }
    // kmemleak only reports objects older than 5 s: let the last frees and allocations age.
    std::thread::sleep(Duration::from_secs(6));
    for _ in 0..2 {
        std::fs::write(KMEMLEAK, "scan")
            .map_err(|e| Failure::new(format!("echo scan > {KMEMLEAK}: {e}")))?;
    }
    let report = std::fs::read_to_string(KMEMLEAK)
        .map_err(|e| Failure::new(format!("reading {KMEMLEAK}: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "---- kmemleak ----");
    for line in report.lines() {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "---- end kmemleak ----");
    let _ = out.flush();
    Ok(())
}
