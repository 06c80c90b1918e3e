//! Suite `selftests`: the in-kernel Rust self-tests.
//!
//! `rust_selftests.ko` runs its tests in its init function and prints a complete KTAP document
//! to the kernel log, one record per line, each prefixed `rust_selftests: `. This suite loads
//! the module, collects those records from `/dev/kmsg` and re-emits them as its own subtest
//! (the module's plan and results become the suite's). It then unloads the module.
//!
//! Problems the module cannot report itself become extra failing results after the module's
//! own: the load failed, no plan was printed, fewer results than planned, the unload failed, or
//! the module reported leaked allocations at exit (`rust_selftests: exit: live_allocations=<n>`).

use std::time::Duration;

use crate::harness::{Ctx, Failure, Process};
use crate::kmsg::{self, Kmsg};
use crate::ktap::{self, Line};
use crate::module;

/// The module's name.
pub const MODULE_NAME: &str = "rust_selftests";
/// The module file in the initramfs.
pub const MODULE_PATH: &str = "/lib/modules/rust_selftests.ko";
/// Parameters of every type, at the extremes of their ranges; the module's
/// `module_params_have_their_values` test expects exactly these.
pub const PARAMS: &str = "p_u8=255 p_u16=65535 p_i16=-32768 p_i32=-2147483648 \
    p_u64=18446744073709551615 p_i64=-9223372036854775808 p_usize=12345 p_str=hello \
    p_array=7,8";

/// What happened while loading and unloading the module.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The load's result.
    pub load: Result<(), String>,
    /// Texts of the kernel log records logged during the load.
    pub load_log: Vec<String>,
    /// The unload's result, if the module was there to unload.
    pub unload: Option<Result<(), String>>,
    /// Texts of the kernel log records logged during the unload.
    pub unload_log: Vec<String>,
}

impl Default for Observed {
    fn default() -> Observed {
        Observed {
            load: Ok(()),
            load_log: Vec::new(),
            unload: None,
            unload_log: Vec::new(),
        }
    }
}

/// The suite's KTAP subtest, ready to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The lines, without the nesting indentation.
    pub lines: Vec<String>,
    /// Did everything pass?
    pub passed: bool,
    /// A one-line summary for the top level.
    pub summary: String,
}

/// The module's lines (prefix stripped) from kernel log record texts.
fn module_lines(records: &[String]) -> Vec<String> {
    records
        .iter()
        .filter_map(|text| kmsg::strip_module_prefix(text, MODULE_NAME))
        .flat_map(|rest| rest.lines().map(String::from).collect::<Vec<_>>())
        .collect()
}

/// Builds the suite's subtest from what was observed.
pub fn assemble(observed: &Observed) -> Document {
    let mut body = Vec::new();
    let mut plan: Option<usize> = None;
    let (mut results, mut failed, mut highest) = (0usize, 0usize, 0usize);
    let mut live_allocations = None;

    for line in module_lines(&observed.load_log) {
        match ktap::parse_line(&line) {
            Line::Version => {}
            Line::Plan(n) if plan.is_none() => plan = Some(n),
            Line::Plan(n) => {
                body.push(format!("# (the module printed a second plan line: 1..{n})"))
            }
            Line::Result { ok, number, .. } => {
                results += 1;
                failed += usize::from(!ok);
                highest = highest.max(number);
                body.push(line.clone());
            }
            Line::Diagnostic(_) | Line::Nested(_) => body.push(line.clone()),
            Line::Other(text) => body.push(format!("# {text}")),
        }
    }
    for line in module_lines(&observed.unload_log) {
        if let Some(n) = kmsg::exit_live_allocations(&format!("{MODULE_NAME}: {line}"), MODULE_NAME)
        {
            live_allocations = Some(n);
        }
        body.push(format!("# {line}"));
    }

    // Failures the module could not report itself.
    let mut extra: Vec<(&str, String)> = Vec::new();
    match (&observed.load, plan) {
        (Err(error), _) => extra.push(("module_load", error.clone())),
        (Ok(()), None) => extra.push((
            "module_ktap_plan",
            format!("the module printed no KTAP plan line (\"{MODULE_NAME}: 1..N\") while loading"),
        )),
        (Ok(()), Some(n)) if n != results => extra.push((
            "module_ktap_complete",
            format!("the module's plan announced {n} tests but it printed {results} results"),
        )),
        _ => {}
    }
    if let Some(Err(error)) = &observed.unload {
        extra.push(("module_unload", error.clone()));
    }
    if let Some(n) = live_allocations.filter(|&n| n != 0) {
        extra.push((
            "module_exit_live_allocations",
            format!("the module leaked memory: expected live_allocations=0 at unload, got {n}"),
        ));
    }

    let base = plan.unwrap_or(0).max(results).max(highest);
    let mut lines = vec![
        "KTAP version 1".to_string(),
        "# Subtest: selftests".to_string(),
        format!("1..{}", base + extra.len()),
    ];
    lines.extend(body);
    for (i, (name, reason)) in extra.iter().enumerate() {
        lines.extend(ktap::format_diagnostic(&format!("{name}: {reason}")));
        lines.push(ktap::format_result(false, base + i + 1, name, None));
    }
    let passed = extra.is_empty() && failed == 0;
    let mut summary = format!("selftests: {results} module results, {failed} failed");
    if !extra.is_empty() {
        let names: Vec<&str> = extra.iter().map(|(name, _)| *name).collect();
        summary.push_str(&format!("; also failed: {}", names.join(", ")));
    }
    Document {
        lines,
        passed,
        summary,
    }
}

/// Runs `body` in a child process with a deadline (a hanging or oopsing module init must not
/// take PID 1 with it).
fn in_child(
    ctx: &Ctx,
    label: &str,
    timeout: Duration,
    body: fn() -> Result<(), String>,
) -> Result<(), String> {
    Process::spawn_group(ctx, label, move |_| {
        body().map(|()| Vec::new()).map_err(Failure::new)
    })
    .and_then(|process| process.join(ctx, timeout))
    .map(drop)
    .map_err(|failure| failure.to_string().replace('\n', "; "))
}

/// Runs the suite; returns `(passed, summary)`.
pub fn run(ctx: &Ctx, out: &ktap::Writer) -> (bool, String) {
    let mut observed = Observed::default();
    let mut kmsg = match Kmsg::open() {
        Ok(kmsg) => Some(kmsg),
        Err(e) => {
            observed.load = Err(format!("cannot open /dev/kmsg: {e}"));
            None
        }
    };
    if let Some(kmsg) = kmsg.as_mut() {
        let read_log = |kmsg: &mut Kmsg| -> Vec<String> {
            kmsg.read_available()
                .map(|records| records.into_iter().map(|r| r.text).collect())
                .unwrap_or_default()
        };
        observed.load = kmsg
            .seek_to_end()
            .map_err(|e| format!("lseek(/dev/kmsg, SEEK_END): {e}"))
            .and_then(|()| {
                in_child(ctx, "loader", Duration::from_secs(120), || {
                    module::load(MODULE_PATH, PARAMS).map_err(|e| e.to_string())
                })
            });
        observed.load_log = read_log(kmsg);
        if module::is_loaded(MODULE_NAME) {
            let unload = in_child(ctx, "unloader", Duration::from_secs(30), || {
                module::unload_retrying(MODULE_NAME, Duration::from_secs(2))
                    .map_err(|e| format!("delete_module({MODULE_NAME:?}) failed: {e}"))?;
                if module::is_loaded(MODULE_NAME) {
                    return Err(format!(
                        "{MODULE_NAME} is still in /proc/modules after delete_module"
                    ));
                }
                Ok(())
            });
            observed.unload = Some(unload);
            observed.unload_log = read_log(kmsg);
        }
    }
    let document = assemble(&observed);
    for line in &document.lines {
        out.line(line);
    }
    (document.passed, document.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    fn clean_unload() -> (Option<Result<(), String>>, Vec<String>) {
        (
            Some(Ok(())),
            log(&["rust_selftests: exit: live_allocations=0"]),
        )
    }

    #[test]
    fn passes_the_module_document_through() {
        let (unload, unload_log) = clean_unload();
        let observed = Observed {
            load: Ok(()),
            load_log: log(&[
                "loading out-of-tree module taints kernel.",
                "rust_selftests: KTAP version 1",
                "rust_selftests: 1..2",
                "rust_selftests: ok 1 alloc_align_1",
                "rust_selftests: # a note",
                "rust_selftests: ok 2 vec_push # SKIP not today",
            ]),
            unload,
            unload_log,
        };
        let doc = assemble(&observed);
        assert!(doc.passed, "{doc:?}");
        assert_eq!(
            doc.lines,
            [
                "KTAP version 1",
                "# Subtest: selftests",
                "1..2",
                "ok 1 alloc_align_1",
                "# a note",
                "ok 2 vec_push # SKIP not today",
                "# exit: live_allocations=0",
            ]
        );
        assert_eq!(doc.summary, "selftests: 2 module results, 0 failed");
    }

    #[test]
    fn a_failing_module_test_fails_the_suite() {
        let (unload, unload_log) = clean_unload();
        let observed = Observed {
            load: Ok(()),
            load_log: log(&[
                "rust_selftests: 1..1",
                "rust_selftests: not ok 1 boom",
                "rust_selftests:     nested",
            ]),
            unload,
            unload_log,
        };
        let doc = assemble(&observed);
        assert!(!doc.passed);
        assert_eq!(
            doc.lines[2..],
            [
                "1..1",
                "not ok 1 boom",
                "    nested",
                "# exit: live_allocations=0"
            ]
        );
    }

    #[test]
    fn a_failed_load_adds_a_failing_result() {
        let observed = Observed {
            load: Err("cannot open /lib/modules/rust_selftests.ko: ENOENT".to_string()),
            ..Observed::default()
        };
        let doc = assemble(&observed);
        assert!(!doc.passed);
        assert_eq!(
            doc.lines,
            [
                "KTAP version 1",
                "# Subtest: selftests",
                "1..1",
                "# module_load: cannot open /lib/modules/rust_selftests.ko: ENOENT",
                "not ok 1 module_load",
            ]
        );
    }

    #[test]
    fn missing_plan_and_missing_results_are_failures() {
        let no_plan = Observed {
            load: Ok(()),
            load_log: log(&["rust_selftests: ok 1 a"]),
            ..Observed::default()
        };
        let doc = assemble(&no_plan);
        assert!(!doc.passed);
        assert_eq!(doc.lines[2], "1..2");
        assert_eq!(doc.lines.last().unwrap(), "not ok 2 module_ktap_plan");

        let short = Observed {
            load: Ok(()),
            load_log: log(&["rust_selftests: 1..3", "rust_selftests: ok 1 a"]),
            ..Observed::default()
        };
        let doc = assemble(&short);
        assert!(!doc.passed);
        assert_eq!(doc.lines[2], "1..4");
        assert_eq!(doc.lines.last().unwrap(), "not ok 4 module_ktap_complete");
    }

    #[test]
    fn leaks_and_unload_failures_are_failures() {
        let observed = Observed {
            load: Ok(()),
            load_log: log(&["rust_selftests: 1..1", "rust_selftests: ok 1 a"]),
            unload: Some(Err(
                "delete_module(\"rust_selftests\") failed: EBUSY".to_string()
            )),
            unload_log: log(&["rust_selftests: exit: live_allocations=3"]),
        };
        let doc = assemble(&observed);
        assert!(!doc.passed);
        assert_eq!(
            doc.lines[2..],
            [
                "1..3",
                "ok 1 a",
                "# exit: live_allocations=3",
                "# module_unload: delete_module(\"rust_selftests\") failed: EBUSY",
                "not ok 2 module_unload",
                "# module_exit_live_allocations: the module leaked memory: expected live_allocations=0 at unload, got 3",
                "not ok 3 module_exit_live_allocations",
            ]
        );
        assert_eq!(
            doc.summary,
            "selftests: 1 module results, 0 failed; also failed: module_unload, module_exit_live_allocations"
        );
    }
}
