//! The runner's configuration, read from the kernel command line (`/proc/cmdline`).
//!
//! | parameter                  | meaning                                                       |
//! |----------------------------|---------------------------------------------------------------|
//! | `ktest.suites=a,b,c`       | suites to run, in this order (`a/t`: only test `t` of `a`)    |
//! | `ktest.shell=1`            | start an interactive shell instead of running tests           |
//! | `ktest.timeout_scale=N`    | multiply every internal timeout by `N` (default 1)            |
//! | `ktest.bench=NAME`         | run benchmark `NAME` (`chardev`) instead of the suites        |
//! | `ktest.bench_rounds=N`     | rounds per transport and block size (default 5)               |
//! | `ktest.bench_mib=N`        | MiB streamed per round (default 64)                           |
//! | `ktest.bench_bs=A,B`       | block sizes of the reads and writes (default 65536,4096)      |
//! | `ktest.bench_capacity=N`   | capacity the devices are loaded with (default 65536)          |
//! | `ktest.bench_iters=N`      | `gpio`: set+get round trips per round (default 20000)         |
//! | `ktest.bench_ms=N`         | milliseconds per measurement of `nvme` (default 2000)         |
//! | `ktest.bench_cpu=N`        | `nvme`: run the measuring thread on CPU N only (default: any) |

/// What the runner was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Suites to run, in order.
    pub suites: Vec<String>,
    /// Start a shell instead of running the suites.
    pub shell: bool,
    /// Multiplier (at least 1) for all internal timeouts; the debug kernel is slower.
    pub timeout_scale: u32,
    /// `ktest.bench=`: run this benchmark instead of the suites.
    pub bench: Option<String>,
    /// `ktest.bench_rounds=`.
    pub bench_rounds: u32,
    /// `ktest.bench_mib=`.
    pub bench_mib: u32,
    /// `ktest.bench_bs=`.
    pub bench_bs: Vec<u32>,
    /// `ktest.bench_capacity=`.
    pub bench_capacity: u32,
    /// `ktest.bench_iters=`.
    pub bench_iters: u32,
    /// `ktest.bench_ms=`.
    pub bench_ms: u32,
    /// `ktest.bench_cpu=`.
    pub bench_cpu: Option<u32>,
    /// Problems found while parsing (unknown `ktest.*` keys, bad values), to report.
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            suites: Vec::new(),
            shell: false,
            timeout_scale: 1,
            bench: None,
            bench_rounds: 5,
            bench_mib: 64,
            bench_bs: vec![65536, 4096],
            bench_capacity: 65536,
            bench_iters: 20000,
            bench_ms: 2000,
            bench_cpu: None,
            warnings: Vec::new(),
        }
    }
}

/// Splits a kernel command line into parameters the way the kernel does: at white space,
/// except inside double quotes, which are removed (`a="b c"` is one parameter `a=b c`).
pub fn split_params(cmdline: &str) -> Vec<String> {
    let mut params = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut started = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    params.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        params.push(current);
    }
    params
}

/// Parses the `ktest.*` parameters of a kernel command line. Other parameters are ignored;
/// when a parameter is repeated the last one wins, as for kernel parameters.
pub fn parse(cmdline: &str) -> Config {
    let mut config = Config::default();
    for param in split_params(cmdline) {
        let Some(rest) = param.strip_prefix("ktest.") else {
            continue;
        };
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        match key {
            "suites" => {
                config.suites = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            "shell" => match value {
                "1" | "y" | "yes" | "true" | "on" | "" => config.shell = true,
                "0" | "n" | "no" | "false" | "off" => config.shell = false,
                other => config
                    .warnings
                    .push(format!("ktest.shell={other:?} is not a boolean; ignored")),
            },
            "timeout_scale" => match value.parse::<u32>() {
                Ok(n) if n >= 1 => config.timeout_scale = n,
                _ => config.warnings.push(format!(
                    "ktest.timeout_scale={value:?} is not a positive integer; using {}",
                    config.timeout_scale
                )),
            },
            "bench" => config.bench = Some(value.to_string()).filter(|v| !v.is_empty()),
            "bench_cpu" => match value.parse::<u32>() {
                Ok(n) => config.bench_cpu = Some(n),
                Err(_) => config.warnings.push(format!(
                    "ktest.bench_cpu={value:?} is not a CPU number; ignored"
                )),
            },
            "bench_bs" => match value
                .split(',')
                .map(|v| v.parse::<u32>().ok().filter(|n| *n >= 1))
                .collect::<Option<Vec<u32>>>()
            {
                Some(sizes) => config.bench_bs = sizes,
                None => config.warnings.push(format!(
                    "ktest.bench_bs={value:?} is not a list of positive integers; ignored"
                )),
            },
            "bench_rounds" | "bench_mib" | "bench_capacity" | "bench_iters" | "bench_ms" => {
                match value.parse::<u32>() {
                    Ok(n) if n >= 1 => match key {
                        "bench_rounds" => config.bench_rounds = n,
                        "bench_mib" => config.bench_mib = n,
                        "bench_iters" => config.bench_iters = n,
                        "bench_ms" => config.bench_ms = n,
                        _ => config.bench_capacity = n,
                    },
                    _ => config.warnings.push(format!(
                        "ktest.{key}={value:?} is not a positive integer; ignored"
                    )),
                }
            }
            other => config
                .warnings
                .push(format!("unknown parameter ktest.{other} ignored")),
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_ktest_parameters() {
        let config = parse("console=ttyS0 loglevel=3 quiet\n");
        assert_eq!(config, Config::default());
        assert_eq!(config.timeout_scale, 1);
    }

    #[test]
    fn reads_suites_shell_and_scale() {
        let config = parse(
            "console=ttyS0 ktest.suites=selftests,chardev ktest.timeout_scale=4 ktest.shell=0\n",
        );
        assert_eq!(config.suites, ["selftests", "chardev"]);
        assert!(!config.shell);
        assert_eq!(config.timeout_scale, 4);
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn reads_bench_parameters() {
        let config = parse(
            "ktest.bench=chardev ktest.bench_rounds=3 ktest.bench_mib=8 ktest.bench_bs=512,4096 \
             ktest.bench_capacity=4096 ktest.bench_ms=500 ktest.bench_cpu=1",
        );
        assert_eq!((config.bench_ms, config.bench_cpu), (500, Some(1)));
        assert_eq!(config.bench.as_deref(), Some("chardev"));
        assert_eq!((config.bench_rounds, config.bench_mib), (3, 8));
        assert_eq!(config.bench_bs, [512, 4096]);
        assert_eq!(config.bench_capacity, 4096);
        let defaults = parse("ktest.bench=chardev ktest.bench_mib=0");
        assert_eq!((defaults.bench_rounds, defaults.bench_mib), (5, 64));
        assert_eq!(defaults.warnings.len(), 1);
    }

    #[test]
    fn shell_flag() {
        assert!(parse("ktest.shell=1").shell);
        assert!(parse("ktest.shell").shell);
        let bad = parse("ktest.shell=maybe");
        assert!(!bad.shell);
        assert_eq!(bad.warnings.len(), 1);
    }

    #[test]
    fn empty_suite_names_are_dropped() {
        assert_eq!(parse("ktest.suites=,a,,b,").suites, ["a", "b"]);
        assert!(parse("ktest.suites=").suites.is_empty());
    }

    #[test]
    fn bad_scale_keeps_default_and_warns() {
        for bad in [
            "ktest.timeout_scale=0",
            "ktest.timeout_scale=x",
            "ktest.timeout_scale=-2",
        ] {
            let config = parse(bad);
            assert_eq!(config.timeout_scale, 1, "{bad}");
            assert_eq!(config.warnings.len(), 1, "{bad}");
        }
    }

    #[test]
    fn last_parameter_wins_and_unknown_keys_warn() {
        let config = parse("ktest.suites=a ktest.suites=b ktest.bogus=1");
        assert_eq!(config.suites, ["b"]);
        assert_eq!(config.warnings, ["unknown parameter ktest.bogus ignored"]);
    }

    #[test]
    fn quotes_group_words() {
        assert_eq!(
            split_params("a=1 b=\"x y\"  \"c d\" e\n"),
            ["a=1", "b=x y", "c d", "e"]
        );
        assert_eq!(
            parse("dyndbg=\"file x.c +p\" ktest.suites=\"a,b\"").suites,
            ["a", "b"]
        );
    }
}
