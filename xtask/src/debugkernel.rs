//! `--kernel debug`: an x86_64 6.1 kernel of our own with KASAN, lockdep, kmemleak, UBSAN,
//! SLUB and list debugging, built from Debian's `linux-source-6.1` package.
//!
//! `make tinyconfig` plus the fragment `kbuild/debug.config` keeps it small (a few minutes on
//! two cores instead of an hour). The build is cached under
//! `target/kernel/debug-<source version>-<fragment hash>/`: a new source package or an edited
//! fragment builds a new kernel; anything else reuses it.

use crate::arch::Arch;
use crate::kernel::{self, Kernel};
use crate::util::{self, cmd, Result};
use std::path::{Path, PathBuf};

/// Builds (or reuses) the debug kernel and returns it ready for module builds and booting.
pub fn build() -> Result<Kernel> {
    let root = util::root();
    let fragment_path = root.join("kbuild/debug.config");
    let fragment = util::read(&fragment_path)?;
    let deb = crate::deps::download_package("linux-source-6.1")?;
    let version = deb_version(&deb)?;
    let out = root
        .join("target/kernel")
        .join(format!("debug-{version}-{:016x}", fnv1a(&fragment)));
    let stamp = out.join(".built");
    if !stamp.exists() {
        let src = unpack_source(&deb, &version)?;
        configure(&src, &out, &fragment)?;
        util::step(&format!(
            "building the debug kernel in {} (several minutes, once)",
            out.display()
        ));
        let jobs = format!(
            "-j{}",
            std::thread::available_parallelism().map_or(2, |n| n.get())
        );
        util::run(
            cmd(
                "make",
                ["-s", &jobs, "bzImage", "modules", "modules_prepare"],
            )
            .arg(format!("O={}", out.display()))
            .current_dir(&src),
        )?;
        util::write(&stamp, &version)?;
    }
    let image = out.join("arch/x86/boot/bzImage");
    let mut kernel = kernel::from_kdir(Arch::X86_64, &out, Some(image))?;
    kernel.label = "x86_64-debug".into();
    Ok(kernel)
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
/// silently drops options whose dependencies are missing).
fn configure(src: &Path, out: &Path, fragment: &str) -> Result {
    util::step("configuring the debug kernel (tinyconfig + kbuild/debug.config)");
    util::mkdir(out)?;
    let o = format!("O={}", out.display());
    util::run(cmd("make", ["-s", &o, "tinyconfig"]).current_dir(src))?;
    util::write(&out.join("debug.config"), fragment)?;
    util::run(
        cmd("scripts/kconfig/merge_config.sh", ["-m", "-O"])
            .arg(out)
            .arg(out.join(".config"))
            .arg(out.join("debug.config"))
            .current_dir(src)
            .stdout(std::process::Stdio::null()),
    )?;
    util::run(cmd("make", ["-s", &o, "olddefconfig"]).current_dir(src))?;
    let config = kernel::parse_config(&util::read(&out.join(".config"))?);
    let missing: Vec<&str> = fragment
        .lines()
        .filter_map(|l| l.strip_prefix("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, v)| {
            *v != "n" && config.get(*k).map(String::as_str) != Some(v.trim_matches('"'))
        })
        .map(|(k, _)| k)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "kbuild/debug.config: Kconfig did not keep: {}",
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
