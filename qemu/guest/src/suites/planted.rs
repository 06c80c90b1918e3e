//! Suite `planted` (run in a boot of its own, on the debug kernel, followed by `kmemleak`): the
//! checkers must see bugs in Rust code. `rust_selftests.ko` loaded with
//! `kasan_oob=1 plant_leak=1 lock_inversion=1` writes one byte past a 32-byte heap block, leaks
//! a heap block and takes two mutexes in both orders.
//! KASAN reports the write and lets the load finish (reports are recoverable); the module is
//! unloaded, and the `kmemleak` suite's scan must then find the leak. The host checks both
//! reports in the kernel log.
//!
//! Suite `atomic_sleep` (a boot of its own): `atomic_sleep=1` allocates with `GFP_KERNEL` under
//! a spinlock, which `CONFIG_DEBUG_ATOMIC_SLEEP` must report; the host checks the report.

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

/// The `atomic_sleep` suite's tests.
pub const ATOMIC_SLEEP_TESTS: [TestCase; 2] = [
    TestCase::new(
        "load_with_gfp_kernel_under_spinlock",
        load_with_atomic_sleep,
    )
    .timeout(Duration::from_secs(30))
    .setup(),
    TestCase::new("unload", unload),
];

/// Runs the `atomic_sleep` suite; returns `(passed, summary)`.
pub fn run_atomic_sleep(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "atomic_sleep", &ATOMIC_SLEEP_TESTS, None)
}

fn load_with_atomic_sleep(_ctx: &Ctx) -> TestResult {
    const PARAMS: &str = "atomic_sleep=1";
    module::load(MODULE_PATH, PARAMS)
        .map_err(|e| Failure::new(format!("loading {MODULE_PATH} {PARAMS}: {e}")))
}

fn load_with_planted_bugs(_ctx: &Ctx) -> TestResult {
    const PARAMS: &str = "kasan_oob=1 plant_leak=1 lock_inversion=1";
    module::load(MODULE_PATH, PARAMS)
        .map_err(|e| Failure::new(format!("loading {MODULE_PATH} {PARAMS}: {e}")))
}

fn unload(_ctx: &Ctx) -> TestResult {
    module::unload_retrying(MODULE_NAME, Duration::from_secs(5))
        .map_err(|e| Failure::new(format!("unloading {MODULE_NAME}: {e}")))
}
