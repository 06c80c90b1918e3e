//! What every driver's suite needs, in one place: load a module and wait for its device node,
//! unload it and check it freed everything, and the checks every character device must pass
//! (unknown ioctls get `ENOTTY` and leave the argument alone; a stream cannot seek).
//!
//! ```ignore
//! const DRIVER: Driver = Driver::new("counter", "/dev/rustcount");
//! fn load(ctx: &Ctx) -> TestResult { DRIVER.load(ctx, "") }
//! fn unload(ctx: &Ctx) -> TestResult { DRIVER.unload_cleanly(ctx) }
//! ```

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{ensure, expect_errno, Context, Ctx, Failure, TestResult};
use crate::kmsg::{self, Kmsg};
use crate::module;
use crate::sys::{self, Errno};

/// A driver module and the device node it creates.
#[derive(Clone, Copy, Debug)]
pub struct Driver {
    /// The module's name (`chardev`), also its file's (`/lib/modules/chardev.ko`).
    pub module: &'static str,
    /// Its device node (`/dev/rustpipe`).
    pub node: &'static str,
}

impl Driver {
    /// Describes a driver.
    pub const fn new(module: &'static str, node: &'static str) -> Driver {
        Driver { module, node }
    }

    /// The module file in the initramfs.
    pub fn path(&self) -> String {
        format!("/lib/modules/{}.ko", self.module)
    }

    /// Loads the module with `params` and waits (2 s × scale) for its device node.
    pub fn load(&self, ctx: &Ctx, params: &str) -> TestResult {
        ensure!(
            !module::is_loaded(self.module),
            "module {} is already loaded",
            self.module
        );
        module::load(&self.path(), params).map_err(|e| Failure::new(e.to_string()))?;
        ensure!(
            module::is_loaded(self.module),
            "finit_module succeeded but /proc/modules lists no module named {:?}",
            self.module
        );
        wait_for_node(ctx, self.node, true)
    }

    /// Unloads the module (retrying while a just-closed file lets go), checks that it logged
    /// `exit: live_allocations=0`, removed its debugfs counters and that its device node went
    /// away.
    pub fn unload_cleanly(&self, ctx: &Ctx) -> TestResult {
        let mut kmsg = Kmsg::open().context("open /dev/kmsg")?;
        kmsg.seek_to_end().context("lseek(/dev/kmsg, SEEK_END)")?;
        module::unload_retrying(self.module, ctx.scaled(Duration::from_secs(2)))
            .context(format!("unloading {}", self.module))?;
        self.expect_clean_exit(&mut kmsg, "unload")?;
        let counters = format!("{DEBUGFS}/{}", self.module);
        ensure!(
            !Path::new(&counters).exists(),
            "{counters} (the module's allocation counters) is still there after unload"
        );
        wait_for_node(ctx, self.node, false)
    }

    /// The module's allocation counters, from `/sys/kernel/debug/<module>/` (see
    /// `kernel::alloc`): what it holds now, and how many allocations it has made since load.
    pub fn allocations(&self) -> TestResult<Allocations> {
        let read = |file: &str| -> TestResult<u64> {
            let path = format!("{DEBUGFS}/{}/{file}", self.module);
            let text = std::fs::read_to_string(&path).context(format!("read {path}"))?;
            text.trim()
                .parse()
                .map_err(|e| Failure::new(format!("{path}: {text:?} is not a count: {e}")))
        };
        Ok(Allocations {
            live: read("live_allocations")?,
            total: read("allocations")?,
        })
    }

    /// Checks the kernel log since `kmsg`'s position for exactly one `<module>: exit:
    /// live_allocations=0` record (the module freed everything it allocated).
    pub fn expect_clean_exit(&self, kmsg: &mut Kmsg, when: &str) -> TestResult {
        let records = kmsg.read_available().context("reading /dev/kmsg")?;
        let counts: Vec<u64> = records
            .iter()
            .filter_map(|r| kmsg::exit_live_allocations(&r.text, self.module))
            .collect();
        let module = self.module;
        match counts[..] {
            [0] => Ok(()),
            [] => Err(Failure::new(format!(
                "{when}: no \"{module}: exit: live_allocations=<n>\" record in the kernel log"
            ))),
            [n] => Err(Failure::new(format!(
                "{when}: {module} leaked memory: exit reported live_allocations={n}, expected 0"
            ))),
            _ => Err(Failure::new(format!(
                "{when}: several exit records after one unload: {counts:?}"
            ))),
        }
    }
}

/// Where `init` mounts debugfs.
pub const DEBUGFS: &str = "/sys/kernel/debug";

/// A module's allocation counters at one moment ([`Driver::allocations`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocations {
    /// Blocks allocated and not yet freed.
    pub live: u64,
    /// Allocations and resizes since the module was loaded; never goes down.
    pub total: u64,
}

/// The texts of the kernel log records since `kmsg`'s position (which moves past them).
pub fn log_since(kmsg: &mut Kmsg) -> TestResult<Vec<String>> {
    let records = kmsg.read_available().context("reading /dev/kmsg")?;
    Ok(records.into_iter().map(|r| r.text).collect())
}

/// Waits (2 s × scale) for `node` to appear (`present`) or disappear: devtmpfs creates and
/// removes nodes while the driver registers and deregisters.
pub fn wait_for_node(ctx: &Ctx, node: &str, present: bool) -> TestResult {
    let deadline = Instant::now() + ctx.scaled(Duration::from_secs(2));
    while Path::new(node).exists() != present {
        ensure!(
            Instant::now() < deadline,
            "{node} did not {} within 2 s",
            if present { "appear" } else { "disappear" }
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Each `(description, command)` fails with `ENOTTY` on `fd` and writes nothing into its
/// 64-byte argument; all failures are reported together.
pub fn expect_enotty(fd: BorrowedFd<'_>, commands: &[(&str, u32)]) -> TestResult {
    let mut failures = Vec::new();
    for &(what, cmd) in commands {
        let mut arg = [0u8; 64];
        if let Err(f) = expect_errno(
            sys::ioctl_with(fd, cmd, &mut arg),
            Errno::ENOTTY,
            format!("{what} ({cmd:#010x})"),
        ) {
            failures.extend(f.lines().iter().cloned());
        }
        if arg != [0u8; 64] {
            failures.push(format!("{what}: the driver wrote into the argument buffer"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::from_lines(failures))
    }
}

/// `lseek` fails with `ESPIPE` for every `whence` (a stream device).
pub fn expect_no_seek(fd: BorrowedFd<'_>) -> TestResult {
    for (whence, name) in [
        (libc::SEEK_SET, "SEEK_SET"),
        (libc::SEEK_CUR, "SEEK_CUR"),
        (libc::SEEK_END, "SEEK_END"),
    ] {
        for offset in [0, 5] {
            expect_errno(
                sys::lseek(fd, offset, whence),
                Errno::ESPIPE,
                format!("lseek(fd, {offset}, {name})"),
            )?;
        }
    }
    Ok(())
}

/// Asks the host runner to act on the machine: prints `ktest: host-request <command>` on the
/// serial console, which `cargo xtask qemu-test` answers by executing the QMP `command` (one of
/// those it allows, e.g. `system_powerdown`). Returns once the line is written; the effect
/// follows shortly after (the test waits for it).
pub fn host_request(command: &str) -> TestResult {
    use std::io::Write;
    let mut console = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/console")
        .context("open /dev/console")?;
    console
        .write_all(format!("\nktest: host-request {command}\n").as_bytes())
        .context("write the host request to /dev/console")
}
