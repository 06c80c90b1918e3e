//! Host prerequisites: Debian packages and rustup components. Installed when we can (root + apt),
//! otherwise the exact command to run is printed.

use crate::arch::Arch;
use crate::util::{self, cmd, Result};
use std::path::Path;

/// A Debian package and the file that shows it is installed.
struct Need {
    package: &'static str,
    probe: &'static str,
    /// QEMU must come from bookworm-backports: the image's qemu-utils is from there, and
    /// bookworm's qemu-system packages conflict with it.
    backports: bool,
}

const fn need(package: &'static str, probe: &'static str) -> Need {
    Need {
        package,
        probe,
        backports: false,
    }
}

fn needs(arch: Arch, debug_kernel: bool) -> Vec<Need> {
    let mut v = vec![
        need("make", "/usr/bin/make"),
        need("gcc-12", "/usr/bin/gcc-12"),
        need("libclang-dev", "/usr/lib/llvm-14/lib/libclang.so"),
        need("busybox-static", "/bin/busybox"),
        need("kmod", "/usr/sbin/modinfo"),
        need("xz-utils", "/usr/bin/xz"),
        need("binutils", "/usr/bin/readelf"),
        need("libelf1", "/usr/lib/x86_64-linux-gnu/libelf.so.1"),
        // e2fsck on the NVMe image after a boot: the guest's file system, checked by the host.
        need("e2fsprogs", "/usr/sbin/e2fsck"),
    ];
    if debug_kernel {
        // Building a kernel (the debug kernel) needs more than building modules.
        for (package, probe) in [
            ("flex", "/usr/bin/flex"),
            ("bison", "/usr/bin/bison"),
            ("bc", "/usr/bin/bc"),
            ("libelf-dev", "/usr/include/libelf.h"),
            ("libssl-dev", "/usr/include/openssl/ssl.h"),
            ("cpio", "/usr/bin/cpio"),
        ] {
            v.push(need(package, probe));
        }
    }
    match arch {
        Arch::X86_64 => v.push(Need {
            package: "qemu-system-x86",
            probe: "/usr/bin/qemu-system-x86_64",
            backports: true,
        }),
        Arch::Arm64 => {
            v.push(Need {
                package: "qemu-system-arm",
                probe: "/usr/bin/qemu-system-aarch64",
                backports: true,
            });
            v.push(need(
                "gcc-12-aarch64-linux-gnu",
                "/usr/bin/aarch64-linux-gnu-gcc-12",
            ));
            v.push(need(
                "binutils-aarch64-linux-gnu",
                "/usr/bin/aarch64-linux-gnu-ld",
            ));
            if debug_kernel {
                // Kbuild's `$(CROSS_COMPILE)gcc` for building the arm64 debug kernel.
                v.push(need(
                    "gcc-aarch64-linux-gnu",
                    "/usr/bin/aarch64-linux-gnu-gcc",
                ));
            }
        }
    }
    v
}

const BACKPORTS: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";

/// Makes sure everything the build and the QEMU runs need for `arches` is on this machine.
pub fn ensure(arches: &[Arch], debug_kernel: bool) -> Result {
    ensure_rust(arches)?;
    if arches.contains(&Arch::Arm64) {
        ensure_foreign_arch("arm64")?;
    }
    let mut missing: Vec<&Need> = Vec::new();
    let all: Vec<Need> = arches
        .iter()
        .flat_map(|&a| needs(a, debug_kernel))
        .collect();
    for n in &all {
        if !Path::new(n.probe).exists() && !missing.iter().any(|m| m.package == n.package) {
            missing.push(n);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|n| n.package).collect();
    let plain: Vec<&str> = missing
        .iter()
        .filter(|n| !n.backports)
        .map(|n| n.package)
        .collect();
    let bpo: Vec<&str> = missing
        .iter()
        .filter(|n| n.backports)
        .map(|n| n.package)
        .collect();
    let is_root = is_root();
    if !is_root || !util::have("apt-get") {
        return Err(format!(
            "missing host packages: {}\n  install them as root (Debian 12):\n{}",
            names.join(" "),
            install_script(&plain, &bpo)
        ));
    }
    util::step(&format!("installing host packages: {}", names.join(" ")));
    if !bpo.is_empty() && !Path::new(BACKPORTS).exists() {
        util::write(
            Path::new(BACKPORTS),
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        )?;
    }
    apt_update()?;
    if !plain.is_empty() {
        apt_install(&plain, None)?;
    }
    if !bpo.is_empty() {
        apt_install(&bpo, Some("bookworm-backports"))?;
    }
    Ok(())
}

fn install_script(plain: &[&str], bpo: &[&str]) -> String {
    let mut s = String::new();
    if !bpo.is_empty() {
        s += "    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list\n";
    }
    s += "    apt-get update\n";
    if !plain.is_empty() {
        s += &format!("    apt-get install -y {}\n", plain.join(" "));
    }
    if !bpo.is_empty() {
        s += &format!(
            "    apt-get install -y -t bookworm-backports {}\n",
            bpo.join(" ")
        );
    }
    s
}

/// Lets apt see another architecture's packages (the arm64 kernel and busybox are downloaded,
/// never installed).
fn ensure_foreign_arch(arch: &str) -> Result {
    let foreign = util::output(&mut cmd("dpkg", ["--print-foreign-architectures"]))?;
    if foreign.lines().any(|l| l.trim() == arch) {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "apt does not know {arch} packages; as root run:\n    dpkg --add-architecture {arch}\n    apt-get update"
        ));
    }
    util::step(&format!("dpkg --add-architecture {arch}"));
    util::run(&mut cmd("dpkg", ["--add-architecture", arch]))?;
    apt_update()
}

/// A file from a Debian package of another architecture, downloaded and unpacked under
/// `target/debs/` (not installed): e.g. the arm64 busybox for arm64 guests. `package` may name
/// a release (`gpiod:arm64/bookworm`), as `apt-get download` reads it.
pub fn file_from_package(package: &str, path: &str) -> Result<std::path::PathBuf> {
    let file = unpack_package(package)?.join(path.trim_start_matches('/'));
    if file.exists() {
        Ok(file)
    } else {
        Err(format!("{package} has no {path}"))
    }
}

/// Downloads `package` (as [`file_from_package`] names it) and unpacks it under
/// `target/debs/`, once; returns the directory it was unpacked in.
pub fn unpack_package(package: &str) -> Result<std::path::PathBuf> {
    let dir = util::root()
        .join("target/debs")
        .join(package.replace([':', '/'], "_"));
    let stamp = dir.join(".unpacked");
    if stamp.exists() {
        return Ok(dir);
    }
    util::step(&format!("fetching {package}"));
    let dl = dir.join("download");
    util::mkdir(&dl)?;
    // As root, apt would fetch as `_apt`, which cannot write here: it warns and falls back.
    util::run(
        cmd(
            "apt-get",
            ["download", "-q", "-o", "APT::Sandbox::User=root", package],
        )
        .current_dir(&dl),
    )?;
    for deb in std::fs::read_dir(&dl).map_err(|e| e.to_string())?.flatten() {
        util::run(cmd("dpkg-deb", ["-x"]).arg(deb.path()).arg(&dir))?;
    }
    util::write(&stamp, package)?;
    Ok(dir)
}

/// Downloads the current version of a Debian package into `target/kernel/downloads/` (kept
/// across runs: the newest matching file is reused) and returns the `.deb`.
pub fn download_package(package: &str) -> Result<std::path::PathBuf> {
    let dl = util::root().join("target/kernel/downloads");
    util::mkdir(&dl)?;
    let policy = util::output(&mut cmd("apt-cache", ["policy", package]))?;
    let candidate = policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: "))
        .filter(|v| *v != "(none)")
        .ok_or_else(|| format!("apt knows no {package}"))?
        .to_string();
    let file = dl.join(format!(
        "{package}_{}_all.deb",
        candidate.replace(':', "%3a")
    ));
    if !file.exists() {
        util::step(&format!("fetching {package} {candidate}"));
        util::run(
            cmd(
                "apt-get",
                ["download", "-q", &format!("{package}={candidate}")],
            )
            .current_dir(&dl),
        )?;
    }
    Ok(file)
}

/// `apt-get update` (root only).
pub fn apt_update() -> Result {
    util::run(cmd("apt-get", ["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))
        .map_err(|e| format!("{e}\n  (needs root and network access to Debian's archive)"))
}

fn apt_install(pkgs: &[&str], release: Option<&str>) -> Result {
    let mut c = cmd(
        "apt-get",
        ["install", "-y", "-q", "--no-install-recommends"],
    );
    if let Some(r) = release {
        c.args(["-t", r]);
    }
    util::run(c.args(pkgs).env("DEBIAN_FRONTEND", "noninteractive"))
}

fn is_root() -> bool {
    util::output(&mut cmd("id", ["-u"])).is_ok_and(|s| s.trim() == "0")
}

/// rust-src (for `-Zbuild-std`) and the kernel and guest targets.
fn ensure_rust(arches: &[Arch]) -> Result {
    let installed = util::output(&mut cmd("rustup", ["target", "list", "--installed"]))
        .map_err(|e| format!("{e}\n  (this project needs rustup: https://rustup.rs)"))?;
    let wanted: Vec<&str> = arches
        .iter()
        .flat_map(|a| [a.kernel_target(), a.guest_target()])
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if !wanted.is_empty() {
        util::step(&format!("rustup target add {}", wanted.join(" ")));
        util::run(cmd("rustup", ["target", "add"]).args(&wanted))?;
    }
    // rust-src for -Zbuild-std; rustfmt and clippy for the lint checks of `cargo xtask test`.
    let installed = util::output(&mut cmd("rustup", ["component", "list", "--installed"]))?;
    let missing: Vec<&str> = ["rust-src", "rustfmt", "clippy"]
        .into_iter()
        .filter(|c| !installed.lines().any(|l| l.starts_with(c)))
        .collect();
    if !missing.is_empty() {
        util::step(&format!("rustup component add {}", missing.join(" ")));
        util::run(cmd("rustup", ["component", "add"]).args(&missing))?;
    }
    Ok(())
}
