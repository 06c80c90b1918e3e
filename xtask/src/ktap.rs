//! A parser of KTAP v1 test output (`Documentation/dev-tools/ktap.rst`), also accepting
//! `TAP version 13`/`14` headers and TAP14/KUnit `# Subtest: name` lines.
//!
//! The input is a whole serial log: lines before the first version line and lines that are not
//! KTAP (kernel console noise) are ignored, kernel `[ timestamp]` prefixes are stripped. Nesting
//! follows indentation, relative to the enclosing test (KUnit indents by 4 spaces, the spec by
//! 2). Indentation mistakes are tolerated only where unambiguous: a line between two open
//! levels belongs to the nearer one (a tie makes it an unknown line), and a result or plan
//! indented one column deeper than the innermost test still belongs to it.
//!
//! The results are the leaves of the test tree, named by their dotted path (`suite.test`).
//! Anything that could hide a failure is reported as a failure: a result missing from a plan
//! (a crashed test), a parent whose own `ok`/`not ok` disagrees with its subtests, a subtest
//! without its parent's result line, more results than planned, `Bail out!`.

use std::mem;

/// The outcome of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `ok`.
    Pass,
    /// `not ok`, or a problem found by the parser.
    Fail,
    /// A `# SKIP reason` directive (with either `ok` or `not ok`), with its reason.
    Skip(String),
}

/// One leaf test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    /// Dotted path, e.g. `chardev.open.twice`.
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
    /// The `#` diagnostic lines seen before the result line (without the `# `), then any data
    /// after the result's `#` and the parser's own explanations.
    pub diagnostics: Vec<String>,
}

/// Parses every top-level KTAP document in `text` into its flattened leaf results.
///
/// Fails only when there is no `KTAP version 1` / `TAP version 13|14` line at all.
pub fn parse(text: &str) -> Result<Vec<TestResult>, String> {
    let mut p = Parser::default();
    for raw in text.lines() {
        if let Some((indent, line)) = classify(raw) {
            p.feed(indent, line);
        }
    }
    if !p.found {
        return Err("no KTAP output: no `KTAP version 1` (or `TAP version 13|14`) line".into());
    }
    p.end_document();
    Ok(p.out)
}

/// Counts `(passed, failed, skipped)`.
#[allow(dead_code)] // API: not every caller counts this way
pub fn summary(results: &[TestResult]) -> (usize, usize, usize) {
    results
        .iter()
        .fold((0, 0, 0), |(p, f, s), r| match r.outcome {
            Outcome::Pass => (p + 1, f, s),
            Outcome::Fail => (p, f + 1, s),
            Outcome::Skip(_) => (p, f, s + 1),
        })
}

/// A KTAP line, after its indentation.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Version,
    Subtest(&'a str),
    Plan(usize),
    Result(ResultLine<'a>),
    Diag(&'a str),
    BailOut(&'a str),
}

#[derive(Debug, PartialEq)]
struct ResultLine<'a> {
    ok: bool,
    number: usize,
    description: &'a str,
    /// The text after `#`, if any.
    directive: Option<&'a str>,
}

impl ResultLine<'_> {
    fn outcome(&self) -> Outcome {
        if let Some(d) = self.directive {
            let word = d
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("");
            if word.eq_ignore_ascii_case("skip") || word.eq_ignore_ascii_case("skipped") {
                return Outcome::Skip(d[word.len()..].trim_start_matches(':').trim().to_string());
            }
        }
        if self.ok {
            Outcome::Pass
        } else {
            Outcome::Fail
        }
    }
}

/// Strips a console prefix (`<6>`, `[    1.234567]`, `[    T1]`) and returns the indentation
/// (tabs count 4) and the KTAP line, or `None` for an unknown line.
fn classify(raw: &str) -> Option<(usize, Line<'_>)> {
    let mut s = raw.trim_end();
    if let Some((level, rest)) = s.strip_prefix('<').and_then(|r| r.split_once('>')) {
        if !level.is_empty() && level.chars().all(|c| c.is_ascii_digit()) {
            s = rest;
        }
    }
    let stamped = s.starts_with('[');
    while let Some((inside, rest)) = s.strip_prefix('[').and_then(|r| r.split_once(']')) {
        if inside.is_empty() || !inside.chars().all(|c| " .0123456789TC".contains(c)) {
            break;
        }
        s = rest;
    }
    if stamped && !s.starts_with('[') {
        s = s.strip_prefix(' ').unwrap_or(s);
    }
    let content = s.trim_start();
    let indent = s[..s.len() - content.len()]
        .chars()
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum();
    let line = match content {
        "KTAP version 1" | "TAP version 13" | "TAP version 14" => Line::Version,
        _ if content.starts_with("Bail out!") => Line::BailOut(content["Bail out!".len()..].trim()),
        _ => {
            if let Some(d) = content.strip_prefix('#') {
                let d = d.trim();
                match d.strip_prefix("Subtest:") {
                    Some(name) => Line::Subtest(name.trim()),
                    None => Line::Diag(d),
                }
            } else if let Some(n) = content.strip_prefix("1..") {
                let n = n
                    .split_once(|c: char| c.is_whitespace())
                    .map_or(n, |(n, _)| n);
                Line::Plan(n.parse().ok()?)
            } else {
                Line::Result(result_line(content)?)
            }
        }
    };
    Some((indent, line))
}

/// Parses `ok|not ok <number> [- ][description][ # directive]`.
fn result_line(s: &str) -> Option<ResultLine<'_>> {
    let (ok, rest) = match s.strip_prefix("not ok") {
        Some(rest) => (false, rest),
        None => (true, s.strip_prefix("ok")?),
    };
    let rest = rest.strip_prefix([' ', '\t'])?.trim_start();
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let number = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t', '#']) {
        return None;
    }
    let (description, directive) = match rest.split_once('#') {
        Some((d, dir)) => (d, Some(dir.trim())),
        None => (rest, None),
    };
    let description = description.trim();
    let description = description.strip_prefix("- ").unwrap_or(description).trim();
    Some(ResultLine {
        ok,
        number,
        description,
        directive,
    })
}

/// A test whose subtests are all known (its frame closed), waiting for its own result line.
struct Done {
    name: Option<String>,
    results: Vec<TestResult>,
    problems: Vec<String>,
}

/// One open (sub)test document.
#[derive(Default)]
struct Frame {
    indent: usize,
    /// From `# Subtest: name`.
    name: Option<String>,
    /// A `# Subtest: name` seen at this level for the next nested document.
    next_child_name: Option<String>,
    plan: Option<usize>,
    /// Result lines seen (plus subtests whose result line never came).
    count: usize,
    /// Leaves so far, named relative to this document.
    results: Vec<TestResult>,
    problems: Vec<String>,
    /// Diagnostics waiting for the next result line.
    diags: Vec<String>,
    /// The last closed subtest, waiting for its result line.
    child: Option<Done>,
}

impl Frame {
    fn is_fresh(&self) -> bool {
        self.plan.is_none() && self.count == 0 && self.child.is_none()
    }

    /// Records a result line (`None`: a subtest's result line is missing) and the subtest it
    /// closes, if any.
    fn record(&mut self, line: Option<&ResultLine>, child: Option<Done>) {
        self.count += 1;
        let mut diags = mem::take(&mut self.diags);
        let (name, outcome) = match line {
            Some(r) => {
                let name = match (r.description, child.as_ref().and_then(|c| c.name.clone())) {
                    ("", Some(n)) => n,
                    ("", None) => format!("#{}", r.number),
                    (d, _) => d.to_string(),
                };
                let outcome = r.outcome();
                if let (Some(d), Outcome::Pass | Outcome::Fail) = (r.directive, &outcome) {
                    diags.extend((!d.is_empty()).then(|| d.to_string()));
                }
                (name, outcome)
            }
            None => {
                let name = child.as_ref().and_then(|c| c.name.clone());
                diags.push("missing result".into());
                (
                    name.unwrap_or_else(|| format!("missing #{}", self.count)),
                    Outcome::Fail,
                )
            }
        };
        let child = child.filter(|c| !c.results.is_empty() || !c.problems.is_empty());
        let Some(child) = child else {
            self.results.push(TestResult {
                name,
                outcome,
                diagnostics: diags,
            });
            return;
        };
        let failed = child
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Fail)
            .count();
        let mut why = child.problems;
        match (&outcome, failed) {
            (Outcome::Fail, 0) if line.is_some() => {
                why.push("reported not ok, but none of its subtests failed".into())
            }
            (Outcome::Pass | Outcome::Skip(_), n) if n > 0 => {
                why.push(format!("reported ok, but {n} of its subtests failed"))
            }
            _ => {}
        }
        for r in child.results {
            self.results.push(TestResult {
                name: format!("{name}.{}", r.name),
                ..r
            });
        }
        if !why.is_empty() || line.is_none() {
            diags.extend(why);
            self.results.push(TestResult {
                name,
                outcome: Outcome::Fail,
                diagnostics: diags,
            });
        }
    }

    /// Closes the document: a pending subtest without result line, then the plan check.
    fn finish(mut self) -> Done {
        if let Some(child) = self.child.take() {
            self.record(None, Some(child));
        }
        match self.plan {
            Some(n) if self.count < n => {
                for k in self.count + 1..=n {
                    let mut diagnostics = mem::take(&mut self.diags);
                    diagnostics.push("missing result".into());
                    let name = format!("missing #{k}");
                    self.results.push(TestResult {
                        name,
                        outcome: Outcome::Fail,
                        diagnostics,
                    });
                }
            }
            Some(n) if self.count > n => self
                .problems
                .push(format!("{} results for plan 1..{n}", self.count)),
            _ => {}
        }
        Done {
            name: self.name,
            results: self.results,
            problems: self.problems,
        }
    }
}

#[derive(Default)]
struct Parser {
    /// The open documents, outermost first, indents strictly increasing.
    stack: Vec<Frame>,
    out: Vec<TestResult>,
    found: bool,
}

impl Parser {
    fn feed(&mut self, indent: usize, line: Line) {
        let Some(inner) = self.stack.last_mut() else {
            if line == Line::Version {
                self.found = true;
                self.stack.push(Frame {
                    indent,
                    ..Frame::default()
                });
            }
            return;
        };
        if let Line::BailOut(reason) = line {
            self.stack[0]
                .problems
                .push(format!("Bail out! {reason}").trim_end().to_string());
            return self.end_document();
        }
        if indent > inner.indent {
            let deeper = indent - inner.indent;
            return match line {
                Line::Diag(d) => inner.diags.push(d.to_string()),
                Line::Version | Line::Subtest(_) => self.open(indent, line),
                _ if deeper >= 2 => {
                    self.open(indent, Line::Version);
                    self.apply(line);
                }
                _ => self.apply(line),
            };
        }
        let Some(target) = self.locate(indent) else {
            return; // halfway between two levels: unknown line
        };
        if let Line::Diag(d) = line {
            return self.stack[target].diags.push(d.to_string());
        }
        self.close_to(target);
        let frame = &mut self.stack[target];
        match line {
            Line::Version if frame.is_fresh() => {}
            Line::Version if target == 0 => {
                self.end_document();
                self.feed(indent, line);
            }
            Line::Version => {
                self.close_to(target - 1);
                self.open(indent, line);
            }
            Line::Subtest(name) if target > 0 && frame.is_fresh() && frame.name.is_none() => {
                frame.name = Some(name.to_string())
            }
            Line::Subtest(name) => frame.next_child_name = Some(name.to_string()),
            _ => self.apply(line),
        }
    }

    /// Opens a nested document at `indent` below the innermost one.
    fn open(&mut self, indent: usize, line: Line) {
        let parent = self.stack.last_mut().expect("open inside a document");
        if let Some(child) = parent.child.take() {
            parent.record(None, Some(child));
        }
        let mut name = parent.next_child_name.take();
        if let Line::Subtest(n) = line {
            name = Some(n.to_string());
        }
        self.stack.push(Frame {
            indent,
            name,
            ..Frame::default()
        });
    }

    /// Applies a plan or result line to the innermost document.
    fn apply(&mut self, line: Line) {
        let frame = self.stack.last_mut().expect("apply inside a document");
        match line {
            Line::Plan(n) if frame.plan.is_none() => frame.plan = Some(n),
            Line::Plan(n) => frame.problems.push(format!("a second plan 1..{n}")),
            Line::Result(r) => {
                let child = frame.child.take();
                frame.record(Some(&r), child);
            }
            _ => {}
        }
    }

    /// The open document an `indent` at most the innermost's belongs to: the nearest level.
    fn locate(&self, indent: usize) -> Option<usize> {
        let i = self
            .stack
            .iter()
            .rposition(|f| f.indent <= indent)
            .unwrap_or(0);
        let Some(next) = self.stack.get(i + 1) else {
            return Some(i);
        };
        let (below, above) = (
            indent.saturating_sub(self.stack[i].indent),
            next.indent - indent,
        );
        match below.cmp(&above) {
            std::cmp::Ordering::Less => Some(i),
            std::cmp::Ordering::Greater => Some(i + 1),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// Closes the documents nested deeper than `target`, each becoming its parent's pending
    /// subtest.
    fn close_to(&mut self, target: usize) {
        while self.stack.len() > target + 1 {
            let done = self.stack.pop().expect("non-empty").finish();
            let parent = self.stack.last_mut().expect("non-empty");
            if let Some(earlier) = parent.child.take() {
                parent.record(None, Some(earlier));
            }
            parent.child = Some(done);
        }
    }

    /// Closes the current top-level document, if any, and emits its results.
    fn end_document(&mut self) {
        if self.stack.is_empty() {
            return;
        }
        self.close_to(0);
        let top = self.stack.pop().expect("non-empty");
        let empty = top.plan.is_none() && top.count == 0 && top.child.is_none();
        let mut done = top.finish();
        if empty {
            done.problems.push("no plan and no results".into());
        }
        self.out.extend(done.results);
        if !done.problems.is_empty() {
            let diagnostics = done.problems;
            self.out.push(TestResult {
                name: "ktap".into(),
                outcome: Outcome::Fail,
                diagnostics,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(name, outcome)` pairs, with outcomes as "pass", "fail", "skip:<reason>".
    fn outcomes(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|r| {
                let o = match r.outcome {
                    Outcome::Pass => "pass".to_string(),
                    Outcome::Fail => "fail".to_string(),
                    Outcome::Skip(why) => format!("skip:{why}"),
                };
                (r.name, o)
            })
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(n, o)| (n.to_string(), o.to_string()))
            .collect()
    }

    #[test]
    fn flat() {
        let text =
            "KTAP version 1\n1..3\nok 1 first\nnot ok 2 second\nok 3 third # SKIP no device\n";
        assert_eq!(
            outcomes(text),
            pairs(&[
                ("first", "pass"),
                ("second", "fail"),
                ("third", "skip:no device")
            ])
        );
        assert_eq!(summary(&parse(text).unwrap()), (1, 1, 1));
    }

    /// The example of `ktap.rst` (2-space indentation, three levels).
    #[test]
    fn spec_example() {
        let text = "\
KTAP version 1
1..1
  KTAP version 1
  1..3
    KTAP version 1
    1..1
    # test_1: initializing test_1
    ok 1 test_1
  ok 1 example_test_1
    KTAP version 1
    1..2
    ok 1 test_1 # SKIP test_1 skipped
    ok 2 test_2
  ok 2 example_test_2
    KTAP version 1
    1..3
    ok 1 test_1
    # test_2: FAIL
    not ok 2 test_2
    ok 3 test_3 # SKIP test_3 skipped
  not ok 3 example_test_3
not ok 1 main_test
";
        let results = parse(text).unwrap();
        assert_eq!(
            outcomes(text),
            pairs(&[
                ("main_test.example_test_1.test_1", "pass"),
                ("main_test.example_test_2.test_1", "skip:test_1 skipped"),
                ("main_test.example_test_2.test_2", "pass"),
                ("main_test.example_test_3.test_1", "pass"),
                ("main_test.example_test_3.test_2", "fail"),
                ("main_test.example_test_3.test_3", "skip:test_3 skipped"),
            ])
        );
        assert_eq!(results[0].diagnostics, ["test_1: initializing test_1"]);
        assert_eq!(results[4].diagnostics, ["test_2: FAIL"]);
    }

    /// What KUnit prints in 6.1 (4-space indentation, `# Subtest:`, a parameterised test),
    /// through the kernel console with timestamps and unrelated messages in between.
    #[test]
    fn kunit_console() {
        let text = "\
[    0.900000] Run /init as init process
[    1.000000] KTAP version 1
[    1.000001] 1..2
[    1.000002]     KTAP version 1
[    1.000003]     # Subtest: example
[    1.000004]     1..3
[    1.000005]     # example_simple_test: initializing
[    1.000006]     ok 1 example_simple_test
[    1.000007] random: crng init done
[    1.000008]     # example_fail_test: EXPECTATION FAILED at lib/kunit/kunit-example-test.c:29
[    1.000009]     Expected 1 + 1 == 3, but
[    1.000010]         1 + 1 == 2 (0x2)
[    1.000011]     not ok 2 example_fail_test
[    1.000012]         KTAP version 1
[    1.000013]         # Subtest: example_params_test
[    1.000014]         ok 1 example value 3 # SKIP unsupported
[    1.000015]         ok 2 example value 2
[    1.000016]     ok 3 example_params_test
[    1.000017] # example: pass:2 fail:1 skip:0 total:3
[    1.000018] not ok 1 example
[    1.000019]     KTAP version 1
[    1.000020]     # Subtest: other
[    1.000021]     1..1
[    1.000022]     ok 1 t
[    1.000023] ok 2 other
";
        assert_eq!(
            outcomes(text),
            pairs(&[
                ("example.example_simple_test", "pass"),
                ("example.example_fail_test", "fail"),
                (
                    "example.example_params_test.example value 3",
                    "skip:unsupported"
                ),
                ("example.example_params_test.example value 2", "pass"),
                ("other.t", "pass"),
            ])
        );
        let r = parse(text).unwrap();
        assert_eq!(r[0].diagnostics, ["example_simple_test: initializing"]);
        assert_eq!(
            r[1].diagnostics,
            ["example_fail_test: EXPECTATION FAILED at lib/kunit/kunit-example-test.c:29"]
        );
    }

    #[test]
    fn tap14_subtests_and_dashes() {
        let text = "\
TAP version 14
1..2
# Subtest: foo
    1..2
    ok 1 - a
    ok 2 - b # skip
ok 1 - foo
not ok 2 - bar # TIMEOUT 30 seconds
";
        assert_eq!(
            outcomes(text),
            pairs(&[("foo.a", "pass"), ("foo.b", "skip:"), ("bar", "fail")])
        );
        assert_eq!(parse(text).unwrap()[2].diagnostics, ["TIMEOUT 30 seconds"]);
    }

    /// A test that crashed the guest: the rest of its suite and of the run are failures.
    #[test]
    fn missing_results() {
        let text = "\
KTAP version 1
1..3
    KTAP version 1
    # Subtest: chardev
    1..3
    ok 1 open
[    5.123456] BUG: kernel NULL pointer dereference, address: 0000000000000008
[    5.123457] Oops: 0000 [#1] PREEMPT SMP NOPTI
";
        assert_eq!(
            outcomes(text),
            pairs(&[
                ("chardev.open", "pass"),
                ("chardev.missing #2", "fail"),
                ("chardev.missing #3", "fail"),
                ("chardev", "fail"),
                ("missing #2", "fail"),
                ("missing #3", "fail"),
            ])
        );
        let r = parse(text).unwrap();
        assert_eq!(r[1].diagnostics, ["missing result"]);
        assert_eq!(r[3].diagnostics, ["missing result"]);
        // A crash right after the header still fails.
        assert_eq!(
            outcomes("KTAP version 1\n[ 1.0] Oops\n"),
            pairs(&[("ktap", "fail")])
        );
    }

    #[test]
    fn parent_status_must_agree() {
        let text = "\
KTAP version 1
1..3
    KTAP version 1
    1..2
    ok 1 a
    not ok 2 b
ok 1 liar
    KTAP version 1
    1..1
    ok 1 a
not ok 2 grumpy
    KTAP version 1
    1..1
    ok 1 a
    ok 2 extra
ok 3 counts
";
        let r = parse(text).unwrap();
        let names: Vec<(&str, &Outcome)> =
            r.iter().map(|r| (r.name.as_str(), &r.outcome)).collect();
        assert_eq!(
            names,
            [
                ("liar.a", &Outcome::Pass),
                ("liar.b", &Outcome::Fail),
                ("liar", &Outcome::Fail),
                ("grumpy.a", &Outcome::Pass),
                ("grumpy", &Outcome::Fail),
                ("counts.a", &Outcome::Pass),
                ("counts.extra", &Outcome::Pass),
                ("counts", &Outcome::Fail),
            ]
        );
        assert_eq!(
            r[2].diagnostics,
            ["reported ok, but 1 of its subtests failed"]
        );
        assert_eq!(
            r[4].diagnostics,
            ["reported not ok, but none of its subtests failed"]
        );
        assert_eq!(r[7].diagnostics, ["2 results for plan 1..1"]);
        // A consistent failing parent adds nothing: only the leaf fails.
        let ok = "KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  not ok 1 a\nnot ok 1 s\n";
        assert_eq!(summary(&parse(ok).unwrap()), (0, 1, 0));
    }

    #[test]
    fn skipped_parent_without_children_is_a_leaf() {
        let text = "KTAP version 1\n1..1\n    KTAP version 1\n    1..0\nok 1 suite # SKIP no hw\n";
        assert_eq!(outcomes(text), pairs(&[("suite", "skip:no hw")]));
    }

    #[test]
    fn two_documents_and_noise() {
        let text = "\
Booting Linux...
ok 1 not part of any document
KTAP version 1
1..1
some noise
ok 1 x
# Totals: pass:1
[    3.0] kernel says hello
KTAP version 1
1..2
ok 1 y
[    3.1] more noise
not ok 2 z
";
        assert_eq!(
            outcomes(text),
            pairs(&[("x", "pass"), ("y", "pass"), ("z", "fail")])
        );
    }

    #[test]
    fn bail_out() {
        let text = "KTAP version 1\n1..3\nok 1 a\nBail out! no memory\nok 2 ignored\n";
        let r = parse(text).unwrap();
        assert_eq!(
            outcomes(text),
            pairs(&[
                ("a", "pass"),
                ("missing #2", "fail"),
                ("missing #3", "fail"),
                ("ktap", "fail")
            ])
        );
        assert_eq!(r[3].diagnostics, ["Bail out! no memory"]);
    }

    #[test]
    fn bad_lines_are_ignored() {
        let text = "\
KTAP version 1
1..2
okay 1 not a result
ok one not a result
not ok
1..x
ok 1 a
ok 2b not a result either
ok 2 b
";
        assert_eq!(outcomes(text), pairs(&[("a", "pass"), ("b", "pass")]));
        assert!(parse("no tap here\nok 1 x\n").is_err());
    }

    #[test]
    fn indentation_mistakes() {
        // One column off, tabs for a level, nearest level wins; a tie is an unknown line.
        let text = "\
KTAP version 1
 1..2
\tKTAP version 1
\t1..3
     ok 1 a
   ok 2 b
  ok 3 tie
\tok 3 c
ok 1 s
ok 2 t
";
        assert_eq!(
            outcomes(text),
            pairs(&[
                ("s.a", "pass"),
                ("s.b", "pass"),
                ("s.c", "pass"),
                ("t", "pass")
            ])
        );
        // A header indented by mistake: later lines at column 0 still belong to it.
        assert_eq!(
            outcomes(" KTAP version 1\n1..1\nok 1 x\n"),
            pairs(&[("x", "pass")])
        );
    }

    #[test]
    fn subtest_without_result_line() {
        // The second subtest starts at the same level before the first got its result line.
        let text = "\
KTAP version 1
1..2
    KTAP version 1
    # Subtest: first
    1..1
    ok 1 a
    KTAP version 1
    # Subtest: second
    1..1
    ok 1 b
ok 2 second
";
        assert_eq!(
            outcomes(text),
            pairs(&[("first.a", "pass"), ("first", "fail"), ("second.b", "pass")])
        );
    }

    #[test]
    fn classify_lines() {
        assert_eq!(
            classify("<6>[   1.5][  T12]     ok 1 x"),
            Some((
                4,
                Line::Result(ResultLine {
                    ok: true,
                    number: 1,
                    description: "x",
                    directive: None,
                })
            ))
        );
        assert_eq!(
            classify("[    1.000000] 1..4 # comment"),
            Some((0, Line::Plan(4)))
        );
        assert_eq!(classify("  # Subtest: s"), Some((2, Line::Subtest("s"))));
        assert_eq!(classify("#"), Some((0, Line::Diag(""))));
        assert_eq!(classify("[Firmware Bug]: ok 1 x"), None);
        assert_eq!(classify("KTAP version 2"), None);
    }
}
