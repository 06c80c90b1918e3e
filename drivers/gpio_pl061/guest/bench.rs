//! `ktest.bench=gpio` (`cargo xtask bench gpio`): line set+get round trips per second through
//! the uAPI v2, on our driver and on the built-in C driver (`pl061_gpio`), for the same PL061.
//!
//! One output line (line 0) is requested with `GPIO_V2_GET_LINE_IOCTL`; a round is `iters`
//! pairs of `GPIO_V2_LINE_SET_VALUES_IOCTL` and `GPIO_V2_LINE_GET_VALUES_IOCTL` (each value read
//! back is checked). Before every round the device is unbound and bound to that round's driver
//! (`driver_override` + `bind`), so each round starts from a fresh probe. Three sides per
//! round: `ours`, `c` and `c2`, the last two both the C driver: `c2/c` is the harness's own
//! noise, shown beside `ours/c`. Round r uses the r-th of the six orders of the three sides,
//! so over six rounds each side runs twice in each position. Each round prints one line the
//! host parses:
//!
//! ```text
//! bench: round=1 ours 51234.5 ops/s
//! ```

use std::time::Instant;

use super::uapi::flag;
use super::{bound_driver, open_chip, wait_bound, write_attr, C_DRIVER, DEVICE, LABEL};
use crate::harness::{ensure, ensure_eq, Context, Ctx, Failure, TestResult};
use crate::{ktap, module};

/// Our driver's name (module and AMBA driver).
const OURS: &str = "gpio_pl061";

/// The sides: (name printed, driver bound).
const SIDES: [(&str, &str); 3] = [("ours", OURS), ("c", C_DRIVER), ("c2", C_DRIVER)];

/// The six orders of the three sides (indices into [`SIDES`]).
const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0],
    [0, 2, 1],
    [2, 0, 1],
    [1, 0, 2],
];

fn emit(line: &str) {
    ktap::emit(&format!("bench: {line}"));
}

/// Runs `rounds` rounds of `iters` round trips per side; leaves the C driver bound and our
/// module unloaded.
pub fn run(rounds: u32, iters: u32, ctx: &Ctx) -> TestResult {
    ensure!(
        std::path::Path::new(DEVICE).exists(),
        "{DEVICE} is missing: no PL061 on this machine"
    );
    if !module::is_loaded(OURS) {
        module::load(&format!("/lib/modules/{OURS}.ko"), "")
            .map_err(|e| Failure::new(e.to_string()))?;
    }
    emit(&format!(
        "gpio: {iters} set+get round trips of line 0 per round, {rounds} rounds, sides ours c c2"
    ));
    let result = (|| {
        for round in 1..=rounds {
            for &side in &ORDERS[(round as usize - 1) % ORDERS.len()] {
                let (name, driver) = SIDES[side];
                rebind(ctx, driver).map_err(|f| f.context(&format!("round {round} {name}")))?;
                let ops = round_trips(iters).map_err(|f| f.context(name))?;
                emit(&format!("round={round} {name} {ops:.1} ops/s"));
            }
        }
        Ok(())
    })();
    // Give the device back to the C driver, as at boot.
    rebind(ctx, C_DRIVER)?;
    write_attr(&format!("{DEVICE}/driver_override"), "\n")?;
    module::unload_retrying(OURS, ctx.scaled(std::time::Duration::from_secs(5)))
        .context(format!("rmmod {OURS}"))?;
    result
}

/// Unbinds whatever driver holds the PL061 and binds `driver` to it.
fn rebind(ctx: &Ctx, driver: &str) -> TestResult {
    if let Some(current) = bound_driver() {
        write_attr(&format!("/sys/bus/amba/drivers/{current}/unbind"), LABEL)?;
        wait_bound(ctx, None)?;
    }
    write_attr(&format!("{DEVICE}/driver_override"), driver)?;
    write_attr(&format!("/sys/bus/amba/drivers/{driver}/bind"), LABEL)?;
    wait_bound(ctx, Some(driver))
}

/// `iters` set+get pairs on line 0; round trips per second.
fn round_trips(iters: u32) -> TestResult<f64> {
    let chip = open_chip()?;
    let lines = chip
        .request(&[0], "bench", flag::OUTPUT, Some(0))
        .context("request line 0 as an output")?;
    // Warm up (caches, first faults) outside the timed loop.
    for v in [1, 0, 1, 0] {
        lines.set(1, v).context("set")?;
        ensure_eq!(lines.get(1).context("get")?, v, "warm-up read back");
    }
    let started = Instant::now();
    for i in 0..iters {
        let v = u64::from(i & 1);
        lines.set(1, v).context("set")?;
        let got = lines.get(1).context("get")?;
        ensure!(got == v, "iteration {i}: wrote {v}, read back {got}");
    }
    Ok(f64::from(iters) / started.elapsed().as_secs_f64())
}
