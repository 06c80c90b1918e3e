//! KTAP v1 output (Documentation/dev-tools/ktap.rst) and a small parser for KTAP lines.
//!
//! The runner prints one top-level document; each suite is a subtest indented by four spaces:
//!
//! ```text
//! KTAP version 1
//! 1..1
//!     KTAP version 1
//!     # Subtest: chardev
//!     1..2
//!     ok 1 load_module
//!     # read_zero_bytes: read(count=0): expected Ok(0), got Err(EAGAIN)
//!     not ok 2 read_zero_bytes
//! # chardev: 1 of 2 tests failed
//! not ok 1 chardev
//! ```
//!
//! Every line is flushed as soon as it is printed, so that a crash or hang loses nothing.

use std::io::Write;

/// One level of subtest indentation.
pub const INDENT: &str = "    ";

/// Formats a result line: `ok 3 name`, `not ok 4 name # timeout`.
pub fn format_result(ok: bool, number: usize, name: &str, directive: Option<&str>) -> String {
    let status = if ok { "ok" } else { "not ok" };
    match directive {
        Some(directive) => format!("{status} {number} {name} # {directive}"),
        None => format!("{status} {number} {name}"),
    }
}

/// Formats diagnostic text as `# ...` lines, one per line of `text`.
pub fn format_diagnostic(text: &str) -> Vec<String> {
    let lines: Vec<String> = text
        .lines()
        .map(|line| format!("# {line}").trim_end().to_string())
        .collect();
    if lines.is_empty() {
        vec!["#".to_string()]
    } else {
        lines
    }
}

/// Prints one raw line to stdout (the serial console) and flushes it.
pub fn emit(line: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // If the console is gone there is nobody to tell; ignore errors.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Writes KTAP lines at one nesting depth.
#[derive(Clone, Copy, Debug)]
pub struct Writer {
    depth: usize,
}

impl Writer {
    /// The writer of the top-level document.
    pub fn top() -> Writer {
        Writer { depth: 0 }
    }

    /// A writer for a subtest of this one (four more spaces of indentation).
    pub fn nested(&self) -> Writer {
        Writer {
            depth: self.depth + 1,
        }
    }

    /// Prints `text` at this depth.
    pub fn line(&self, text: &str) {
        emit(&format!("{}{text}", INDENT.repeat(self.depth)));
    }

    /// `KTAP version 1`.
    pub fn version(&self) {
        self.line("KTAP version 1");
    }

    /// `# Subtest: name`, the conventional name line of a nested document.
    pub fn subtest(&self, name: &str) {
        self.line(&format!("# Subtest: {name}"));
    }

    /// The plan line `1..count`.
    pub fn plan(&self, count: usize) {
        self.line(&format!("1..{count}"));
    }

    /// A result line, see [`format_result`].
    pub fn result(&self, ok: bool, number: usize, name: &str, directive: Option<&str>) {
        self.line(&format_result(ok, number, name, directive));
    }

    /// Diagnostic lines, see [`format_diagnostic`].
    pub fn diag(&self, text: &str) {
        for line in format_diagnostic(text) {
            self.line(&line);
        }
    }
}

/// A classified KTAP line (of one document level: indented lines belong to nested subtests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `KTAP version N` (or `TAP version N`).
    Version,
    /// `1..N`.
    Plan(usize),
    /// `ok N description` / `not ok N description [# directive]`.
    Result {
        /// `ok` (or a skip) rather than `not ok`.
        ok: bool,
        /// The test number.
        number: usize,
        /// Everything after the number, including any `# directive`.
        description: &'a str,
    },
    /// `# text`.
    Diagnostic(&'a str),
    /// A line indented by white space: part of a nested subtest.
    Nested(&'a str),
    /// Anything else.
    Other(&'a str),
}

/// Classifies one line of a KTAP document.
pub fn parse_line(line: &str) -> Line<'_> {
    if line.starts_with([' ', '\t']) {
        return Line::Nested(line);
    }
    let line = line.trim_end();
    if line.starts_with("KTAP version ") || line.starts_with("TAP version ") {
        return Line::Version;
    }
    if let Some(count) = line.strip_prefix("1..") {
        if let Ok(count) = count.parse() {
            return Line::Plan(count);
        }
    }
    if let Some(text) = line.strip_prefix('#') {
        return Line::Diagnostic(text.strip_prefix(' ').unwrap_or(text));
    }
    let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
        (false, rest)
    } else if let Some(rest) = line.strip_prefix("ok ") {
        (true, rest)
    } else {
        return Line::Other(line);
    };
    let (number, description) = rest.split_once(' ').unwrap_or((rest, ""));
    match number.parse() {
        Ok(number) => Line::Result {
            ok,
            number,
            description,
        },
        Err(_) => Line::Other(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines() {
        assert_eq!(
            format_result(true, 1, "load_module", None),
            "ok 1 load_module"
        );
        assert_eq!(
            format_result(false, 12, "poll", Some("timeout")),
            "not ok 12 poll # timeout"
        );
        assert_eq!(
            format_result(true, 3, "x", Some("SKIP no module")),
            "ok 3 x # SKIP no module"
        );
    }

    #[test]
    fn diagnostics_split_lines() {
        assert_eq!(
            format_diagnostic("a: expected 1, got 2"),
            ["# a: expected 1, got 2"]
        );
        assert_eq!(format_diagnostic("one\ntwo\n"), ["# one", "# two"]);
        assert_eq!(format_diagnostic(""), ["#"]);
        assert_eq!(format_diagnostic("x\n\ny"), ["# x", "#", "# y"]);
    }

    #[test]
    fn parses_every_kind_of_line() {
        assert_eq!(parse_line("KTAP version 1"), Line::Version);
        assert_eq!(parse_line("TAP version 14"), Line::Version);
        assert_eq!(parse_line("1..12"), Line::Plan(12));
        assert_eq!(parse_line("1..0"), Line::Plan(0));
        assert_eq!(
            parse_line("ok 1 alloc_align_1"),
            Line::Result {
                ok: true,
                number: 1,
                description: "alloc_align_1"
            }
        );
        assert_eq!(
            parse_line("not ok 10 vec_grow # SKIP not supported"),
            Line::Result {
                ok: false,
                number: 10,
                description: "vec_grow # SKIP not supported"
            }
        );
        assert_eq!(
            parse_line("ok 3"),
            Line::Result {
                ok: true,
                number: 3,
                description: ""
            }
        );
        assert_eq!(
            parse_line("# some diagnostic"),
            Line::Diagnostic("some diagnostic")
        );
        assert_eq!(parse_line("#"), Line::Diagnostic(""));
        assert_eq!(
            parse_line("    ok 1 nested"),
            Line::Nested("    ok 1 nested")
        );
        assert_eq!(parse_line("okay then"), Line::Other("okay then"));
        assert_eq!(parse_line("ok x y"), Line::Other("ok x y"));
        assert_eq!(parse_line("1..many"), Line::Other("1..many"));
    }
}
