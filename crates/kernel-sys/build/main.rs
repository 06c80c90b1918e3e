//! Generates `bindings.rs` from the subsystem files in `subsys/` with the selected kernel's own
//! C flags, and `layout.rs`: compile-time checks that bindgen's struct layouts are gcc's.
//!
//! Each `subsys/<name>.c` is one kernel subsystem: its `#include`s, its typed constants, its C
//! helpers and, in `bindgen <kind>: ...` comment lines, what bindgen should keep (see
//! [`subsys`]). Adding a subsystem is adding a file there; nothing else lists them.
//!
//! Environment (documented in the crate docs, `src/lib.rs`):
//! - `KERNEL_SYS_CLANG_ARGS`: file with the clang arguments, one per line. Unset: the file named
//!   in `target/kbuild/last-clang-args`, which `cargo xtask build` writes.
//! - `KERNEL_SYS_GCC_ARGS`: file with the kernel's gcc command line for a module object, one word
//!   per line. Unset: `gcc-args.txt` next to the clang arguments, if there is one.

use std::env;
use std::path::{Path, PathBuf};

mod layout;
mod subsys;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo::rerun-if-changed=subsys");

    let clang_args = match clang_args_file(&manifest) {
        Some(f) => f,
        None => {
            println!(
                "cargo::error=no kernel C flags for bindgen: run `cargo xtask build` first \
                 (or set KERNEL_SYS_CLANG_ARGS)"
            );
            return;
        }
    };
    let args = read(&clang_args);

    let files = subsys::files(&manifest.join("subsys"));
    let header = out_dir.join("kernel_sys.h");
    std::fs::write(&header, subsys::wrapper(&files)).expect("writing kernel_sys.h");

    let mut builder = bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .clang_args(args.lines().filter(|l| !l.is_empty()))
        .use_core()
        .ctypes_prefix("core::ffi")
        .layout_tests(false)
        .derive_default(true)
        .generate_comments(false)
        .size_t_is_usize(true)
        .default_enum_style(bindgen::EnumVariation::Consts)
        // Conventions, not lists: every C helper, every typed constant.
        .allowlist_function("rust_helper_.*")
        .allowlist_var("RUST_CONST_.*");
    let allow = subsys::allowlist(&files);
    for f in &allow.functions {
        builder = builder.allowlist_function(f);
    }
    for t in &allow.types {
        builder = builder.allowlist_type(t);
    }
    for v in &allow.vars {
        builder = builder.allowlist_var(v);
    }
    for t in &allow.opaque {
        builder = builder.opaque_type(t);
    }
    for t in &allow.no_copy {
        builder = builder.no_copy(t);
    }
    let (c_names, callbacks) = layout::CNames::new();
    let bindings = builder
        .parse_callbacks(callbacks)
        .generate()
        .expect("bindgen failed on subsys/*.c with the kernel's flags");

    // `RUST_CONST_FOO` is the typed spelling of the macro `FOO` (see subsys/alloc.c).
    let text = bindings.to_string().replace("RUST_CONST_", "");
    std::fs::write(out_dir.join("bindings.rs"), &text).expect("writing bindings.rs");

    let layout = match gcc_args_file(&clang_args) {
        Some(gcc) => {
            let checks = layout::checks(&text, &c_names.take());
            let values = layout::gcc_values(&read(&gcc), &header, &checks, &out_dir);
            layout::assertions(&checks, &values)
        }
        None => {
            println!(
                "cargo::warning=no gcc arguments next to {}: struct layouts are not checked",
                clang_args.display()
            );
            String::from("// No layout checks: no gcc arguments (KERNEL_SYS_GCC_ARGS).\n")
        }
    };
    std::fs::write(out_dir.join("layout.rs"), layout).expect("writing layout.rs");
}

/// `KERNEL_SYS_CLANG_ARGS`, else the file `target/kbuild/last-clang-args` names.
fn clang_args_file(manifest: &Path) -> Option<PathBuf> {
    println!("cargo::rerun-if-env-changed=KERNEL_SYS_CLANG_ARGS");
    let file = match env::var_os("KERNEL_SYS_CLANG_ARGS") {
        Some(f) => PathBuf::from(f),
        None => {
            let pointer = manifest.join("../../target/kbuild/last-clang-args");
            println!("cargo::rerun-if-changed={}", pointer.display());
            PathBuf::from(std::fs::read_to_string(pointer).ok()?.trim())
        }
    };
    println!("cargo::rerun-if-changed={}", file.display());
    file.is_file().then_some(file)
}

/// `KERNEL_SYS_GCC_ARGS`, else `gcc-args.txt` beside the clang arguments, if present.
fn gcc_args_file(clang_args: &Path) -> Option<PathBuf> {
    println!("cargo::rerun-if-env-changed=KERNEL_SYS_GCC_ARGS");
    let file = env::var_os("KERNEL_SYS_GCC_ARGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| clang_args.with_file_name("gcc-args.txt"));
    println!("cargo::rerun-if-changed={}", file.display());
    file.is_file().then_some(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
