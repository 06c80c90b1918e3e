//! Raw bindings to the Linux kernel, generated at build time by `bindgen` from the selected
//! kernel's own headers, configuration and (clang-translated) Kbuild flags.
//!
//! Nothing here is safe to use directly: `crates/kernel` wraps these items in safe abstractions,
//! and it is the only crate that depends on this one.
//!
//! # One file per kernel subsystem
//!
//! Everything lives in `subsys/<name>.c`, one file per kernel subsystem (`alloc`, `sync`, `fs`,
//! `uaccess`, ...): its `#include`s, the typed constants for macros bindgen cannot evaluate
//! (`const gfp_t RUST_CONST_GFP_KERNEL = GFP_KERNEL;` becomes `GFP_KERNEL`), the C helpers for
//! kernel macros and static inline functions (`rust_helper_*`), and comment lines telling
//! bindgen what to keep (`bindgen functions: ...`, `types`, `vars`, `opaque`, `no-copy`; see
//! `build/subsys.rs`). All items land in this crate's one flat namespace. A new subsystem is a
//! new file there; nothing else lists them.
//!
//! The helpers are compiled by Kbuild into each module (`kbuild/Kbuild`), and a module keeps only
//! the helpers its Rust code calls, so it needs no kernel symbol of a subsystem it does not use.
//!
//! # Layout checks
//!
//! The build script also asserts, at compile time, that every struct and union in the bindings
//! has the size, alignment and field offsets gcc (the kernel's compiler, with the module flags)
//! gives it; a mismatch fails the build (`build/layout.rs`).
//!
//! # Environment
//!
//! - `KERNEL_SYS_CLANG_ARGS`: a file with the clang arguments bindgen parses the headers with,
//!   one per line. `cargo xtask build` sets it to `target/kbuild/<arch>/<release>/clang-args.txt`,
//!   which it derives from the kernel's Kbuild flags. When it is unset (host `cargo test`,
//!   `cargo clippy`, rust-analyzer), the file named in `target/kbuild/last-clang-args` is used:
//!   that of the last x86_64 `cargo xtask build`. Without either, the build stops with one line
//!   asking to run `cargo xtask build` first.
//! - `KERNEL_SYS_GCC_ARGS`: a file with the gcc command line of a module object (the compiler,
//!   then one argument per line) for the layout checks; `cargo xtask build` sets it to
//!   `gcc-args.txt`. When it is unset, `gcc-args.txt` beside the clang arguments is used; without
//!   one, there are no layout checks (and cargo prints a warning).

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
