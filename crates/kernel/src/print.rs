//! printk from Rust: `pr_info!("x = {}", x)` and friends.
//!
//! The message is formatted with `core::fmt` into a buffer on the stack (no allocation, so the
//! macros work in atomic context) and handed to `_printk` as `"%.*s"`, prefixed with the module
//! name like C's `pr_fmt(fmt) KBUILD_MODNAME ": " fmt`. Messages longer than
//! [`LINE_MAX`] bytes are truncated.

use crate::str::StackString;
use core::fmt::{self, Write};
use kernel_sys as bindings;

/// The longest message one macro call prints.
pub const LINE_MAX: usize = 480;

/// A printk log level (`KERN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// `KERN_EMERG`: the system is unusable.
    Emerg = 0,
    /// `KERN_ALERT`: action must be taken immediately.
    Alert = 1,
    /// `KERN_CRIT`: critical conditions.
    Crit = 2,
    /// `KERN_ERR`: error conditions.
    Err = 3,
    /// `KERN_WARNING`: warning conditions.
    Warning = 4,
    /// `KERN_NOTICE`: normal but significant.
    Notice = 5,
    /// `KERN_INFO`: informational.
    Info = 6,
    /// `KERN_DEBUG`: debug messages.
    Debug = 7,
}

/// Prints one line at `level`: `"<prefix>: <args>"`. Used by the `pr_*!` macros.
pub fn printk(level: Level, prefix: &str, args: fmt::Arguments<'_>) {
    let mut line = StackString::<LINE_MAX>::new();
    // Writing to a StackString never fails; it truncates.
    let _ = write!(line, "{prefix}: {args}");
    // KERN_SOH, the level digit, then the format.
    let format: &[u8; 8] = match level {
        Level::Emerg => b"\x010%.*s\n\0",
        Level::Alert => b"\x011%.*s\n\0",
        Level::Crit => b"\x012%.*s\n\0",
        Level::Err => b"\x013%.*s\n\0",
        Level::Warning => b"\x014%.*s\n\0",
        Level::Notice => b"\x015%.*s\n\0",
        Level::Info => b"\x016%.*s\n\0",
        Level::Debug => b"\x017%.*s\n\0",
    };
    let bytes = line.as_bytes();
    // SAFETY: `format` is a NUL-terminated printk format taking an int precision and a char
    // pointer; `bytes` is valid for `bytes.len()` bytes (at most LINE_MAX, fits in an int).
    unsafe {
        bindings::_printk(
            format.as_ptr().cast(),
            bytes.len() as core::ffi::c_int,
            bytes.as_ptr(),
        );
    }
}

// `crate::__LOG_PREFIX` deliberately names the *calling* crate: `module!` defines it there.
#[doc(hidden)]
#[macro_export]
#[allow(clippy::crate_in_macro_def)]
macro_rules! __print {
    ($level:ident, $($arg:tt)*) => {
        $crate::print::printk(
            $crate::print::Level::$level,
            crate::__LOG_PREFIX,
            ::core::format_args!($($arg)*),
        )
    };
}

/// Prints at `KERN_EMERG`.
#[macro_export]
macro_rules! pr_emerg { ($($arg:tt)*) => { $crate::__print!(Emerg, $($arg)*) }; }
/// Prints at `KERN_ALERT`.
#[macro_export]
macro_rules! pr_alert { ($($arg:tt)*) => { $crate::__print!(Alert, $($arg)*) }; }
/// Prints at `KERN_CRIT`.
#[macro_export]
macro_rules! pr_crit { ($($arg:tt)*) => { $crate::__print!(Crit, $($arg)*) }; }
/// Prints at `KERN_ERR`.
#[macro_export]
macro_rules! pr_err { ($($arg:tt)*) => { $crate::__print!(Err, $($arg)*) }; }
/// Prints at `KERN_WARNING`.
#[macro_export]
macro_rules! pr_warn { ($($arg:tt)*) => { $crate::__print!(Warning, $($arg)*) }; }
/// Prints at `KERN_NOTICE`.
#[macro_export]
macro_rules! pr_notice { ($($arg:tt)*) => { $crate::__print!(Notice, $($arg)*) }; }
/// Prints at `KERN_INFO`.
#[macro_export]
macro_rules! pr_info { ($($arg:tt)*) => { $crate::__print!(Info, $($arg)*) }; }
/// Prints at `KERN_DEBUG`.
#[macro_export]
macro_rules! pr_debug { ($($arg:tt)*) => { $crate::__print!(Debug, $($arg)*) }; }
