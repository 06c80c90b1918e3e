//! The test suites, selected by name with `ktest.suites=`.

pub mod chardev;
pub mod kmemleak;
pub mod lifetime;
pub mod panic;
pub mod planted;
pub mod runner;
pub mod selftests;

use crate::harness::Ctx;
use crate::ktap;

/// The names `ktest.suites=` accepts.
pub const KNOWN: [&str; 8] = [
    "selftests",
    "panic",
    "chardev",
    "lifetime",
    "runner",
    "planted",
    "atomic_sleep",
    "kmemleak",
];

/// Runs suite `name`, printing its KTAP subtest with `out`. Returns `(passed, one-line
/// summary)`, or `None` for an unknown name.
pub fn run(name: &str, ctx: &Ctx, out: &ktap::Writer) -> Option<(bool, String)> {
    match name {
        "selftests" => Some(selftests::run(ctx, out)),
        "panic" => Some(panic::run(ctx, out)),
        "chardev" => Some(chardev::run(ctx, out)),
        "lifetime" => Some(lifetime::run(ctx, out)),
        "runner" => Some(runner::run(ctx, out)),
        "planted" => Some(planted::run(ctx, out)),
        "atomic_sleep" => Some(planted::run_atomic_sleep(ctx, out)),
        "kmemleak" => Some(kmemleak::run(ctx, out)),
        _ => None,
    }
}
