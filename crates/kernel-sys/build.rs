//! Generates `bindings.rs` from `wrapper.h` with the selected kernel's own C flags.
//!
//! `cargo xtask build` probes the flags Kbuild uses for a C module of the selected kernel and
//! architecture, translates them for clang, and writes them one per line to a file whose path it
//! passes in `KERNEL_SYS_CLANG_ARGS`. Host-side `cargo test` falls back to the x86_64 file that a
//! previous `cargo xtask build` left under `target/kbuild/`.

use std::env;
use std::path::PathBuf;

/// Kernel functions, types and variables `crates/kernel` uses (regular expressions).
const FUNCTIONS: &[&str] = &[
    "krealloc",
    "kfree",
    "_printk",
    "misc_register",
    "misc_deregister",
    "stream_open",
    "schedule",
    "init_wait_entry",
    "prepare_to_wait_event",
    "finish_wait",
    "__wake_up",
    "mutex_unlock",
    "mutex_trylock",
    "synchronize_rcu",
    "vm_mmap",
    "vm_munmap",
    "rust_helper_.*",
];
const TYPES: &[&str] = &[
    "file_operations",
    "miscdevice",
    "kernel_param",
    "kernel_param_ops",
    "module",
    "poll_table_struct",
    "wait_queue_entry",
    "lock_class_key",
    "refcount_struct",
];
const VARS: &[&str] = &[
    "RUST_CONST_.*",
    "param_ops_uint",
    "param_ops_int",
    "param_ops_bool",
    "E[A-Z0-9]+",
    "ERESTARTSYS",
    "PROT_(READ|WRITE|NONE)",
    "MAP_(PRIVATE|ANONYMOUS)",
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=KERNEL_SYS_CLANG_ARGS");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=helpers.h");

    let args_file = env::var_os("KERNEL_SYS_CLANG_ARGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target/kbuild/x86_64/clang-args.txt"));
    println!("cargo:rerun-if-changed={}", args_file.display());
    let args = std::fs::read_to_string(&args_file).unwrap_or_else(|e| {
        panic!(
            "kernel-sys needs the kernel's C flags in {} ({e}).\n\
             Run `cargo xtask build` first: it fetches the kernel headers and writes that file.",
            args_file.display()
        )
    });

    let mut builder = bindgen::Builder::default()
        .header(manifest.join("wrapper.h").to_str().unwrap())
        .clang_args(args.lines().filter(|l| !l.is_empty()))
        .clang_arg(format!("-I{}", manifest.display()))
        .use_core()
        .ctypes_prefix("core::ffi")
        .layout_tests(false)
        .derive_default(true)
        .generate_comments(false)
        .size_t_is_usize(true)
        .opaque_type("spinlock")
        .opaque_type("mutex")
        .opaque_type("wait_queue_head")
        .opaque_type("lock_class_key")
        .opaque_type("module")
        .opaque_type("file")
        .opaque_type("inode")
        .opaque_type("device")
        .no_copy("spinlock|mutex|wait_queue_head|miscdevice")
        .default_enum_style(bindgen::EnumVariation::Consts);
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    let bindings = builder
        .generate()
        .expect("bindgen failed on wrapper.h with the kernel's flags");

    // `RUST_CONST_FOO` is the typed spelling of the macro `FOO` (see wrapper.h).
    let text = bindings.to_string().replace("RUST_CONST_", "");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    std::fs::write(&out, text).expect("writing bindings.rs");

    // Layout assertions against gcc's view of the same structs (see xtask/src/layout.rs); a
    // mismatch fails this crate's build.
    println!("cargo:rerun-if-env-changed=KERNEL_SYS_LAYOUT");
    let layout = match env::var_os("KERNEL_SYS_LAYOUT") {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
            std::fs::read_to_string(&path).expect("reading KERNEL_SYS_LAYOUT")
        }
        None => String::from("// No layout checks: built without `cargo xtask`.\n"),
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("layout.rs");
    std::fs::write(out, layout).expect("writing layout.rs");
}
