//! `--kernel debug`: a 6.1 kernel of our own (x86_64 or arm64) with KASAN, lockdep, kmemleak, UBSAN,
//! SLUB and list debugging, built from Debian's `linux-source-6.1` package.
//!
//! `make tinyconfig` plus the fragment `kbuild/debug.config` keeps it small (a few minutes on
//! two cores instead of an hour). The build is cached under
//! `target/kernel/debug-<source version>-<fragment hash>/`: a new source package or an edited
//! fragment builds a new kernel; anything else reuses it. arm64 appends
//! `kbuild/debug-arm64.config` (the `virt` machine's devices; it switches off the x86_64-only
//! options of the shared fragment), is cross-built and cached in `debug-arm64-<version>-<hash>/`.

use crate::arch::Arch;
use crate::kernel::{self, Kernel};
use crate::util::{self, cmd, Result};
use std::path::{Path, PathBuf};

/// Builds (or reuses) the debug kernel and returns it ready for module builds and booting.
pub fn build(arch: Arch) -> Result<Kernel> {
    let root = util::root();
    let mut fragment = util::read(&root.join("kbuild/debug.config"))?;
    let prefix = match arch {
        Arch::X86_64 => "debug".to_string(),
        Arch::Arm64 => {
            fragment.push_str(&util::read(&root.join("kbuild/debug-arm64.config"))?);
            format!("debug-{}", arch.name())
        }
    };
    let deb = crate::deps::download_package("linux-source-6.1")?;
    let version = deb_version(&deb)?;
    let out = root
        .join("target/kernel")
        .join(format!("{prefix}-{version}-{:016x}", fnv1a(&fragment)));
    let stamp = out.join(".built");
    if !stamp.exists() {
        let src = unpack_source(&deb, &version)?;
        configure(arch, &src, &out, &fragment)?;
        util::step(&format!(
            "building the {arch} debug kernel in {} (several minutes, once)",
            out.display()
        ));
        let jobs = format!(
            "-j{}",
            std::thread::available_parallelism().map_or(2, |n| n.get())
        );
        util::run(
            make(arch, &out)
                .args([&jobs, image_target(arch), "modules", "modules_prepare"])
                .current_dir(&src),
        )?;
        util::write(&stamp, &version)?;
    }
    let image = out
        .join("arch")
        .join(arch.kbuild())
        .join("boot")
        .join(image_target(arch));
    let mut kernel = kernel::from_kdir(arch, &out, Some(image))?;
    kernel.label = format!("{arch}-debug");
    Ok(kernel)
}

/// The unpacked `linux-source-6.1` tree (downloaded and unpacked once, shared with the debug
/// kernels).
pub fn source() -> Result<PathBuf> {
    let deb = crate::deps::download_package("linux-source-6.1")?;
    unpack_source(&deb, &deb_version(&deb)?)
}

/// The boot image `make` builds: a bzImage on x86_64, the uncompressed `Image` on arm64.
fn image_target(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "bzImage",
        Arch::Arm64 => "Image",
    }
}

/// `make -s ARCH=.. [CROSS_COMPILE=..] O=<out>` in the source tree.
fn make(arch: Arch, out: &Path) -> std::process::Command {
    let mut c = cmd("make", ["-s"]);
    c.arg(format!("ARCH={}", arch.kbuild()))
        .arg(format!("O={}", out.display()));
    if !arch.cross_compile().is_empty() {
        c.arg(format!("CROSS_COMPILE={}", arch.cross_compile()));
    }
    c
}

/// Extracts the source tarball once per version.
fn unpack_source(deb: &Path, version: &str) -> Result<PathBuf> {
    let dir = util::root()
        .join("target/kernel")
        .join(format!("linux-source-{version}"));
    let src = dir.join("linux-source-6.1");
    if dir.join(".unpacked").exists() {
        return Ok(src);
    }
    util::step(&format!("unpacking linux-source-6.1 {version}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    util::mkdir(&dir)?;
    let script = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -xO ./usr/src/linux-source-6.1.tar.xz | tar -xJ -C '{}'",
        deb.display(),
        dir.display()
    );
    util::run(&mut cmd("sh", ["-c", &script]))?;
    util::write(&dir.join(".unpacked"), version)?;
    Ok(src)
}

/// tinyconfig + the fragment, then checks every option of the fragment took effect (Kconfig
/// silently drops options whose dependencies are missing). A later line of the fragment
/// overrides an earlier one, as in merge_config.sh.
fn configure(arch: Arch, src: &Path, out: &Path, fragment: &str) -> Result {
    util::step(&format!(
        "configuring the {arch} debug kernel (tinyconfig + kbuild/debug*.config)"
    ));
    util::mkdir(out)?;
    util::run(make(arch, out).arg("tinyconfig").current_dir(src))?;
    util::write(&out.join("debug.config"), fragment)?;
    util::run(
        cmd("scripts/kconfig/merge_config.sh", ["-m", "-O"])
            .env("ARCH", arch.kbuild())
            .env("CROSS_COMPILE", arch.cross_compile())
            .arg(out)
            .arg(out.join(".config"))
            .arg(out.join("debug.config"))
            .current_dir(src)
            .stdout(std::process::Stdio::null()),
    )?;
    util::run(make(arch, out).arg("olddefconfig").current_dir(src))?;
    let config = kernel::parse_config(&util::read(&out.join(".config"))?);
    let wanted: std::collections::BTreeMap<&str, &str> = fragment
        .lines()
        .filter_map(|l| l.strip_prefix("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .collect();
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|(k, v)| {
            *v != "n" && config.get(*k).map(String::as_str) != Some(v.trim_matches('"'))
        })
        .map(|(k, _)| k)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "kbuild/debug*.config: Kconfig did not keep: {}",
            missing.join(" ")
        ))
    }
}

/// `linux-source-6.1_6.1.192-2_all.deb` → `6.1.192-2`.
fn deb_version(deb: &Path) -> Result<String> {
    let name = deb.file_name().unwrap_or_default().to_string_lossy();
    name.split('_')
        .nth(1)
        .map(String::from)
        .ok_or_else(|| format!("unexpected package file name {name}"))
}

/// A stable hash of the config fragment (FNV-1a, 64 bit).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_and_hashes() {
        let v = super::deb_version(std::path::Path::new(
            "/x/linux-source-6.1_6.1.192-2_all.deb",
        ));
        assert_eq!(v.unwrap(), "6.1.192-2");
        assert_eq!(super::fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(
            super::fnv1a("CONFIG_KASAN=y"),
            super::fnv1a("CONFIG_KASAN=n")
        );
    }
}
