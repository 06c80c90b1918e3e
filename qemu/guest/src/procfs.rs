//! What the runner reads from `/proc`: process states (to know that a helper is blocked in the
//! driver), the loaded modules and the uptime.

use crate::sys::Pid;

/// The fields of `/proc/<pid>/stat` the runner uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// `R` running, `S` interruptible sleep, `D` uninterruptible sleep, `Z` zombie, ...
    pub state: char,
    /// Parent pid.
    pub ppid: Pid,
    /// Process group.
    pub pgrp: Pid,
}

/// Parses the contents of `/proc/<pid>/stat`: `pid (comm) state ppid pgrp ...`. The command
/// name may itself contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let after_comm = &text[text.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(ProcStat { state, ppid, pgrp })
}

/// The state of process `pid`, if it exists.
pub fn stat(pid: Pid) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The kernel function process `pid` sleeps in (`/proc/<pid>/wchan`), if known.
pub fn wchan(pid: Pid) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/wchan")).ok()?;
    let text = text.trim();
    (!text.is_empty() && text != "0").then(|| text.to_string())
}

/// All live processes in process group `pgrp`.
pub fn group_members(pgrp: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<Pid> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.pgrp == pgrp && s.state != 'Z'))
        .collect();
    pids.sort_unstable();
    pids
}

/// A one-line description of where a process is: `pid 42: state S, in rustpipe_read`.
pub fn describe(pid: Pid) -> String {
    match stat(pid) {
        None => format!("pid {pid}: gone"),
        Some(s) => match wchan(pid) {
            Some(wchan) => format!("pid {pid}: state {}, sleeping in {wchan}", s.state),
            None => format!("pid {pid}: state {}", s.state),
        },
    }
}

/// Does the text of `/proc/modules` list `module`?
pub fn modules_list_contains(proc_modules: &str, module: &str) -> bool {
    proc_modules
        .lines()
        .any(|line| line.split_whitespace().next() == Some(module))
}

/// Is `module` currently loaded (in any state, including "Loading" and "Unloading")?
pub fn module_loaded(module: &str) -> bool {
    std::fs::read_to_string("/proc/modules").is_ok_and(|text| modules_list_contains(&text, module))
}

/// Seconds since boot.
pub fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        assert_eq!(
            parse_stat("42 (init) S 1 42 42 0 -1 4194560 ..."),
            Some(ProcStat {
                state: 'S',
                ppid: 1,
                pgrp: 42
            })
        );
        assert_eq!(
            parse_stat("7 (a) b (c)) D 3 5 5 0"),
            Some(ProcStat {
                state: 'D',
                ppid: 3,
                pgrp: 5
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn finds_modules_by_exact_name() {
        let text =
            "chardev 16384 1 - Live 0xffffffffc0000000 (OE)\nrust_selftests 8192 0 - Loading 0x0\n";
        assert!(modules_list_contains(text, "chardev"));
        assert!(modules_list_contains(text, "rust_selftests"));
        assert!(!modules_list_contains(text, "char"));
        assert!(!modules_list_contains("", "chardev"));
    }
}
