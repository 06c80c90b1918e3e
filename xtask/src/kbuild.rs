//! `cargo xtask build`: every module crate → staticlib (cargo, build-std, kernel codegen flags)
//! → relocatable object → `.ko` (Kbuild: objtool, modpost, final link) → `target/kmod/<arch>/`.

use crate::kernel::{self, Kernel};
use crate::util::{self, cmd, Result};
use std::path::{Path, PathBuf};

/// A kernel module crate of the workspace.
#[derive(Clone, Debug)]
pub struct ModuleCrate {
    /// Cargo package name, also the module's name (`chardev` → `chardev.ko`).
    pub name: String,
}

/// The module crates: every folder under `drivers/`, plus the abstraction layer's self-tests.
pub fn module_crates() -> Result<Vec<ModuleCrate>> {
    let root = util::root();
    let mut dirs = vec![root.join("crates/selftests")];
    let mut drivers: Vec<PathBuf> = std::fs::read_dir(root.join("drivers"))
        .map_err(|e| format!("drivers/: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    drivers.sort();
    dirs.extend(drivers);
    dirs.into_iter()
        .map(|dir| {
            let manifest = util::read(&dir.join("Cargo.toml"))?;
            let name = manifest
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .map(|n| n.trim_matches('"').to_string())
                .ok_or_else(|| format!("{}: no package name", dir.display()))?;
            Ok(ModuleCrate { name })
        })
        .collect()
}

/// Build profile of the module crates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Optimised, fat LTO (the default).
    Release,
    /// Debug assertions and overflow checks on.
    Debug,
}

impl Profile {
    fn cargo_name(self) -> &'static str {
        match self {
            Profile::Release => "kmod",
            Profile::Debug => "kmod-debug",
        }
    }
}

/// A built module.
#[derive(Clone, Debug)]
pub struct Built {
    /// Module name.
    pub name: String,
    /// `target/kmod/<arch>/<name>.ko`.
    pub ko: PathBuf,
}

/// Builds every module crate for `kernel`; returns the `.ko` files.
pub fn build(kernel: &Kernel, profile: Profile) -> Result<Vec<Built>> {
    let crates = module_crates()?;
    let clang_args = kernel::clang_args(kernel)?;
    let cargo_dir = kernel.work.join("cargo");
    let target = kernel.arch.kernel_target();

    util::step(&format!(
        "cargo: {} for {} ({})",
        crates
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        target,
        profile.cargo_name()
    ));
    let mut c = cmd(
        "cargo",
        [
            "build",
            "--quiet",
            // JSON on stdout (to find kernel-sys's layout checks), diagnostics as usual.
            "--message-format=json-render-diagnostics",
            "-Zbuild-std=core,alloc",
            "--target",
            target,
            "--profile",
        ],
    );
    c.arg(profile.cargo_name());
    for m in &crates {
        c.args(["-p", &m.name]);
    }
    c.current_dir(util::root())
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &cargo_dir)
        .env("KERNEL_SYS_CLANG_ARGS", &clang_args)
        .env("KERNEL_SYS_GCC_ARGS", kernel::gcc_args(kernel))
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            kernel::rustflags(kernel).join("\x1f"),
        )
        .env_remove("RUSTFLAGS");
    let messages = util::output(&mut c)?;
    crate::layout::keep(kernel, &messages)?;

    let out_dir = util::root().join("target/kmod").join(&kernel.label);
    util::mkdir(&out_dir)?;
    let lib_dir = cargo_dir.join(target).join(profile.cargo_name());
    let mut built = Vec::new();
    for m in &crates {
        let ko = kbuild(kernel, &m.name, &lib_dir.join(format!("lib{}.a", m.name)))?;
        let dest = out_dir.join(format!("{}.ko", m.name));
        std::fs::copy(&ko, &dest).map_err(|e| format!("copying {}: {e}", ko.display()))?;
        built.push(Built {
            name: m.name.clone(),
            ko: dest,
        });
    }
    Ok(built)
}

/// Runs Kbuild on one module folder: staticlib + the subsystems' C helpers → `.ko`.
fn kbuild(kernel: &Kernel, name: &str, staticlib: &Path) -> Result<PathBuf> {
    let root = util::root();
    let dir = kernel.work.join("modules").join(name);
    util::mkdir(&dir)?;
    let mut sources = vec![
        (root.join("kbuild/Kbuild"), "Kbuild".to_string()),
        (root.join("kbuild/rust.lds"), "rust.lds".to_string()),
        (staticlib.to_path_buf(), format!("lib{name}.a")),
    ];
    // Every subsystem file, as `subsys/<name>.c` (Kbuild's helpers.c includes them all).
    let subsys = files_in(&root.join("crates/kernel-sys/subsys"))?;
    for stale in files_in(&dir.join("subsys")).unwrap_or_default() {
        if !subsys.iter().any(|s| s.file_name() == stale.file_name()) {
            std::fs::remove_file(&stale).map_err(|e| format!("{}: {e}", stale.display()))?;
        }
    }
    for path in subsys {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        sources.push((path, format!("subsys/{file}")));
    }
    for (src, file) in sources {
        copy_if_changed(&src, &dir.join(file))?;
    }
    util::step(&format!("kbuild: {name}.ko for {}", kernel.release));
    let mut make = kernel.make();
    make.arg(format!("M={}", dir.display()))
        .arg(format!("MODNAME={name}"))
        .arg("modules");
    // Kbuild prints objtool and modpost warnings on stderr; they are errors for us.
    let out = make.output().map_err(|e| format!("cannot run make: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let noise = |l: &&str| l.starts_with("Skipping BTF generation") || l.trim().is_empty();
    let warnings: Vec<&str> = stderr.lines().filter(|l| !noise(l)).collect();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() || !warnings.is_empty() {
        return Err(format!(
            "Kbuild for {name} {}:\n{}",
            if out.status.success() {
                "printed warnings"
            } else {
                "failed"
            },
            warnings.join("\n")
        ));
    }
    Ok(dir.join(format!("{name}.ko")))
}

/// The files in `dir`.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

/// Copies `src` to `dst` unless the contents are equal (keeps Kbuild's timestamps stable).
fn copy_if_changed(src: &Path, dst: &Path) -> Result {
    let new = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
    if std::fs::read(dst).ok().as_deref() != Some(&new[..]) {
        util::write(dst, new)?;
    }
    Ok(())
}
