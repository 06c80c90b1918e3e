//! Atomics for driver code: Rust's `core::sync::atomic` types, which are safe to use in a module
//! on both architectures.
//!
//! They compile to plain instructions, with no library calls: on x86_64 `lock`-prefixed
//! instructions, on arm64 (`aarch64-unknown-none-softfloat`) exclusive load/store loops
//! (`ldxr`/`stxr`; Debian's kernel also runs on CPUs without LSE atomics, so none are assumed).
//! They are therefore usable in any context, including interrupt handlers and under spinlocks.
//!
//! How the orderings map onto the kernel's memory model (`Documentation/memory-barriers.txt`):
//!
//! | Rust | kernel C |
//! | --- | --- |
//! | `load(Relaxed)` / `store(x, Relaxed)` | `READ_ONCE` / `WRITE_ONCE`, `atomic_read` / `atomic_set` |
//! | `fetch_add(1, Relaxed)` | `atomic_inc` (no ordering) |
//! | `load(Acquire)` / `store(x, Release)` | `smp_load_acquire` / `smp_store_release` |
//! | `fetch_add(1, AcqRel)` / `SeqCst` | `atomic_inc_return` (fully ordered) |
//!
//! Use `Relaxed` for statistics and counters that order nothing else (the chardev's open-file
//! count); `Release`/`Acquire` to publish data to another CPU; a lock when several values must
//! change together. For reference counts use [`Arc`](super::Arc), which saturates instead of
//! wrapping around.

pub use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicIsize, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
