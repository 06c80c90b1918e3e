//! The monotonic clock, and sleeping for a while: the pieces of a bounded wait.
//!
//! ```ignore
//! let start = Instant::now();
//! while !ready() {
//!     if start.elapsed_ms() > timeout_ms { return Err(ETIMEDOUT); }
//!     msleep(1);
//! }
//! ```

use kernel_sys as bindings;

/// A point in monotonic time (`ktime_get`), in nanoseconds since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(i64);

impl Instant {
    /// Now.
    pub fn now() -> Instant {
        // SAFETY: no preconditions; usable in any context.
        Instant(unsafe { bindings::ktime_get() })
    }

    /// Milliseconds since `self`.
    pub fn elapsed_ms(&self) -> u64 {
        (Instant::now().0 - self.0).max(0) as u64 / 1_000_000
    }
}

/// Sleeps at least `ms` milliseconds (process context only: it sleeps).
pub fn msleep(ms: u32) {
    crate::task::might_sleep();
    // SAFETY: process context (checked on debug kernels by might_sleep above).
    unsafe { bindings::msleep(ms) }
}
