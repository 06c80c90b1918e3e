//! The panic handler of every module: the message and its source location at `KERN_EMERG`,
//! then a real `BUG()` (compiled by the kernel's C compiler, from `kernel-sys/subsys/bug.c`), so
//! the trap has a `__bug_table` entry the kernel understands: it prints "kernel BUG at ...", an
//! oops with the registers and a backtrace naming the Rust functions, and kills the current
//! task — as a C driver's `BUG()` would. The kernel itself keeps running (unless
//! `panic_on_oops` is set).

use core::panic::PanicInfo;
use kernel_sys as bindings;

/// Reports `info` for module `module` and traps. Called by the `#[panic_handler]` that
/// [`module!`](crate::module!) defines.
pub fn panic(module: &str, info: &PanicInfo<'_>) -> ! {
    let msg = info.message();
    match info.location() {
        Some(loc) => crate::print::printk(
            crate::print::Level::Emerg,
            module,
            format_args!(
                "panicked at {}:{}:{}: {msg}",
                loc.file(),
                loc.line(),
                loc.column()
            ),
        ),
        None => crate::print::printk(
            crate::print::Level::Emerg,
            module,
            format_args!("panicked: {msg}"),
        ),
    }
    // SAFETY: `rust_helper_BUG` takes no arguments.
    unsafe { bindings::rust_helper_BUG() };
    // Never reached. objtool (6.1) does not know that the external C function is noreturn and
    // would see the function fall off its end, so end it with a trap of its own.
    trap()
}

#[cfg(target_arch = "x86_64")]
fn trap() -> ! {
    // SAFETY: `ud2` raises #UD; it has no inputs or outputs.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

#[cfg(target_arch = "aarch64")]
fn trap() -> ! {
    // SAFETY: `brk` with the kernel's BUG immediate raises a debug exception.
    unsafe { core::arch::asm!("brk #0x800", options(noreturn, nomem, nostack)) }
}
