//! Suite `planted` (run in a boot of its own, on the debug kernel, followed by `kmemleak`): the
//! checkers must see bugs in Rust code. `rust_selftests.ko` loaded with
//! `kasan_oob=1 plant_leak=1` writes one byte past a 32-byte heap block and leaks a heap block.
//! KASAN reports the write and lets the load finish (reports are recoverable); the module is
//! unloaded, and the `kmemleak` suite's scan must then find the leak. The host checks both
//! reports in the kernel log.

use std::time::Duration;

use super::selftests::{MODULE_NAME, MODULE_PATH};
use crate::harness::{run_suite, Ctx, Failure, TestCase, TestResult};
use crate::ktap;
use crate::module;

/// The suite's tests.
pub const TESTS: [TestCase; 2] = [
    TestCase::new("load_with_planted_bugs", load_with_planted_bugs)
        .timeout(Duration::from_secs(30))
        .setup(),
    TestCase::new("unload", unload),
];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "planted", &TESTS, None)
}

fn load_with_planted_bugs(_ctx: &Ctx) -> TestResult {
    const PARAMS: &str = "kasan_oob=1 plant_leak=1";
    module::load(MODULE_PATH, PARAMS)
        .map_err(|e| Failure::new(format!("loading {MODULE_PATH} {PARAMS}: {e}")))
}

fn unload(_ctx: &Ctx) -> TestResult {
    module::unload_retrying(MODULE_NAME, Duration::from_secs(5))
        .map_err(|e| Failure::new(format!("unloading {MODULE_NAME}: {e}")))
}
