//! Suite `kasan` (run in a boot of its own, on a KASAN kernel): the checker must see a bug in
//! Rust code. `rust_selftests.ko` loaded with `kasan_oob=1` writes one byte past a 32-byte heap
//! block. KASAN reports it and lets the load finish (reports are recoverable); the host then
//! checks the exact report in the kernel log.

use std::time::Duration;

use super::selftests::{MODULE_NAME, MODULE_PATH};
use crate::harness::{run_tests, Ctx, Failure, TestCase, TestResult};
use crate::ktap;
use crate::module;

/// The suite's tests.
pub const TESTS: [TestCase; 2] = [
    TestCase::new("load_with_planted_oob_write", load_with_planted_oob_write)
        .timeout(Duration::from_secs(30))
        .setup(),
    TestCase::new("unload", unload),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    out.version();
    out.subtest("kasan");
    let summary = run_tests(ctx, out, &TESTS, None);
    (summary.passed(), format!("kasan: {} of {} tests failed", summary.failed, summary.total))
}

fn load_with_planted_oob_write(_ctx: &Ctx) -> TestResult {
    module::load(MODULE_PATH, "kasan_oob=1")
        .map_err(|e| Failure::new(format!("loading {MODULE_PATH} kasan_oob=1: {e}")))
}

fn unload(_ctx: &Ctx) -> TestResult {
    module::unload_retrying(MODULE_NAME, Duration::from_secs(5))
        .map_err(|e| Failure::new(format!("unloading {MODULE_NAME}: {e}")))
}
