//! Suite `panic` (run in a boot of its own): a Rust panic inside a module must not take the
//! kernel down, only the task that triggered it.
//!
//! `rust_selftests.ko` loaded with `trigger_panic=1` panics in its init function. The Rust
//! panic handler turns that into the kernel's BUG trap; the oops kills the task that was
//! loading the module. So the loading process must die from a signal instead of seeing
//! `finit_module` return. (The host checks the oops text in the kernel log.)

use std::time::Duration;

use super::selftests::MODULE_PATH;
use crate::harness::{run_suite, seconds, Ctx, Exit, Failure, Process, TestCase, TestResult};
use crate::ktap;
use crate::module;
use crate::sys::{signal_name, WaitStatus};

/// The suite's single test.
pub const TESTS: [TestCase; 1] =
    [
        TestCase::new("module_panic_killed_loader", module_panic_killed_loader)
            .timeout(Duration::from_secs(45)),
    ];

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    run_suite(ctx, out, "panic", &TESTS, None)
}

/// A child calls `finit_module(rust_selftests.ko, "trigger_panic=1")`; it must be killed.
fn module_panic_killed_loader(ctx: &Ctx) -> TestResult {
    let loader = Process::spawn(ctx, "loader", |_| {
        Err(Failure::new(
            match module::load(MODULE_PATH, "trigger_panic=1") {
                Ok(()) => {
                    "finit_module returned 0: the module loaded instead of panicking".to_string()
                }
                Err(e) => {
                    format!("finit_module returned -1 instead of killing the loading task: {e}")
                }
            },
        ))
    })?;
    match loader.wait(ctx, Duration::from_secs(30)) {
        Exit::Died {
            status: WaitStatus::Signaled(signal),
            ..
        } => {
            ctx.note(format!(
                "the loading process was killed by {}",
                signal_name(signal)
            ));
            Ok(())
        }
        Exit::Died { status, .. } => Err(Failure::new(format!(
            "the loading process {status}; expected it to be killed by the oops"
        ))),
        Exit::Finished {
            result: Err(failure),
            ..
        } => Err(failure),
        Exit::Finished { result: Ok(_), .. } => {
            Err(Failure::new("the loading process reported success"))
        }
        Exit::TimedOut {
            timeout, diagnosis, ..
        } => {
            let mut lines = vec![format!(
                "finit_module neither returned nor killed the loading process within {}:",
                seconds(timeout)
            )];
            lines.extend(diagnosis);
            Err(Failure::from_lines(lines))
        }
    }
}
