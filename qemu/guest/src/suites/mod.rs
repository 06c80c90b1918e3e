//! The test suites, selected by name with `ktest.suites=`: the runner's own, and each driver's
//! (`drivers/<name>/guest.rs`, found by `build.rs`).

pub mod kmemleak;
pub mod lifetime;
pub mod panic;
pub mod planted;
pub mod runner;
pub mod selftests;

use crate::harness::Ctx;
use crate::ktap;

/// A suite's entry point: runs it, printing its KTAP subtest with the writer, and returns
/// `(passed, one-line summary)`.
pub type RunFn = fn(&Ctx, &ktap::Writer) -> (bool, String);

/// The runner's own suites (the drivers' come from [`crate::drivers::SUITES`]).
const BUILT_IN: &[(&str, RunFn)] = &[
    ("selftests", selftests::run),
    ("panic", panic::run),
    ("lifetime", lifetime::run),
    ("runner", runner::run),
    ("planted", planted::run),
    ("atomic_sleep", planted::run_atomic_sleep),
    ("kmemleak", kmemleak::run),
];

/// The names `ktest.suites=` accepts.
pub fn known() -> Vec<&'static str> {
    all().map(|(name, _)| *name).collect()
}

fn all() -> impl Iterator<Item = &'static (&'static str, RunFn)> {
    BUILT_IN.iter().chain(crate::drivers::SUITES)
}

/// Runs suite `name`, printing its KTAP subtest with `out`. Returns `(passed, one-line
/// summary)`, or `None` for an unknown name.
pub fn run(name: &str, ctx: &Ctx, out: &ktap::Writer) -> Option<(bool, String)> {
    all()
        .find(|(n, _)| *n == name)
        .map(|(_, run)| run(ctx, out))
}
