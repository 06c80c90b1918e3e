//! Raw bindings to the Linux kernel, generated at build time by `bindgen` from the selected
//! kernel's own headers, configuration and (clang-translated) Kbuild flags; see `build.rs`.
//!
//! Nothing here is safe to use directly: `crates/kernel` wraps these items in safe abstractions,
//! and it is the only crate that depends on this one. The `rust_helper_*` functions are C bodies
//! for kernel macros and static inline functions (`helpers.c`), compiled by Kbuild into every
//! module.

#![no_std]
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unsafe_op_in_unsafe_fn,
    improper_ctypes
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

include!(concat!(env!("OUT_DIR"), "/layout.rs"));
