//! The layout checks' results. `kernel-sys`'s build script generates them (every struct and
//! union of the bindings: sizes, alignments and field offsets as gcc computes them with the
//! kernel's flags, asserted at compile time against bindgen's); a mismatch fails the build.
//! After a build, xtask keeps a copy of the generated `layout.rs` as `<work>/layout.rs`, for the
//! test record and for people to read.

use crate::kernel::Kernel;
use crate::util::{self, Result};
use std::path::PathBuf;

/// `<work>/layout.rs`: the checks of the last module build for `kernel`.
pub fn path(kernel: &Kernel) -> PathBuf {
    kernel.work.join("layout.rs")
}

/// Copies `kernel-sys`'s generated `layout.rs` out of the build, given cargo's JSON messages
/// (`--message-format=json...`): the `build-script-executed` message names its `out_dir`.
pub fn keep(kernel: &Kernel, cargo_messages: &str) -> Result {
    let out_dir = cargo_messages
        .lines()
        .filter(|l| l.contains("\"reason\":\"build-script-executed\""))
        .filter(|l| l.contains("/crates/kernel-sys#"))
        .find_map(|l| json_string(l, "out_dir"))
        .ok_or("cargo reported no build script run for kernel-sys")?;
    let text = util::read(&PathBuf::from(out_dir).join("layout.rs"))?;
    util::write(&path(kernel), text)
}

/// The number of checks in `<work>/layout.rs`.
pub fn count(kernel: &Kernel) -> Result<usize> {
    Ok(util::read(&path(kernel))?.matches("assert!").count())
}

/// The string value of `"key":"..."` in one line of JSON (paths carry no escapes here).
fn json_string(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let len = line[start..].find('"')?;
    Some(line[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_json_string() {
        let line = r#"{"reason":"build-script-executed","package_id":"path+file:///w/crates/kernel-sys#0.1.0","out_dir":"/t/build/kernel-sys-1/out"}"#;
        assert_eq!(
            super::json_string(line, "out_dir").as_deref(),
            Some("/t/build/kernel-sys-1/out")
        );
    }
}
