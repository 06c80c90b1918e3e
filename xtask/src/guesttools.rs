//! Debian's own programs in the test guest, with the shared libraries they load.
//!
//! A suite that checks a driver with the standard tools (gpiod, mkfs.ext4, fio, nvme-cli) names
//! the package and the files it uses in [`TOOLS`]; [`add`] puts them into the initramfs at their
//! Debian paths, together with everything the dynamic loader needs to run them: the `NEEDED`
//! libraries, found by following each program's and library's dynamic section through the
//! packages the tool's package depends on (recursively, only as far as needed), and the loader
//! named by the program's `PT_INTERP`. Packages are downloaded for the guest's architecture and
//! unpacked (never installed) under `target/debs/`, once.
//!
//! Debian's `ld.so` searches the multiarch directories (`/lib/<triplet>`, `/usr/lib/<triplet>`)
//! without an `ld.so.cache`, so keeping each library's path in its package is enough.

use crate::arch::Arch;
use crate::cpio::Cpio;
use crate::deps;
use crate::util::{self, cmd, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One Debian package's files that guest suites run or read.
pub struct Tool {
    /// The package, without architecture (`gpiod`); a release may follow (`gpiod/bookworm`).
    pub package: &'static str,
    /// Paths inside the package, kept in the guest. Files under `bin/` or `sbin/` directories
    /// are executable and get their libraries.
    pub files: &'static [&'static str],
    /// The architectures whose guests get it (`None`: all).
    pub arches: Option<&'static [Arch]>,
}

/// Everything the suites use from Debian, per package.
pub const TOOLS: &[Tool] = &[
    // libgpiod 1.6 (bookworm): v1 command lines. Only arm64's `virt` machine has a PL061.
    Tool {
        package: "gpiod/bookworm",
        files: &[
            "usr/bin/gpiodetect",
            "usr/bin/gpioinfo",
            "usr/bin/gpioget",
            "usr/bin/gpioset",
            "usr/bin/gpiomon",
        ],
        arches: Some(&[Arch::Arm64]),
    },
    // mkfs.ext4 with Debian's defaults (mke2fs.conf), and e2fsck.
    Tool {
        package: "e2fsprogs",
        files: &[
            "sbin/mke2fs",
            "sbin/mkfs.ext4",
            "sbin/e2fsck",
            "etc/mke2fs.conf",
        ],
        arches: None,
    },
    // fio: concurrent verified I/O and the same-boot NVMe benchmark.
    Tool {
        package: "fio",
        files: &["usr/bin/fio"],
        arches: None,
    },
    // nvme-cli: admin passthrough (`nvme id-ctrl`, `nvme smart-log`) on the driver's char node.
    Tool {
        package: "nvme-cli",
        files: &["usr/sbin/nvme"],
        arches: None,
    },
];

/// Adds every tool of [`TOOLS`] meant for `arch`, with its libraries and loader, to `cpio`.
pub fn add(arch: Arch, cpio: &mut Cpio) -> Result {
    for tool in TOOLS {
        if tool.arches.is_some_and(|a| !a.contains(&arch)) {
            continue;
        }
        add_tool(arch, tool, cpio)?;
    }
    Ok(())
}

/// Adds one tool's files, then the closure of the libraries they need. The closure is
/// resolved once per tool and architecture and kept in `target/debs/` (resolving runs apt and
/// readelf over dozens of packages); it is resolved again when the tool's file list changes or
/// a file it names is gone.
fn add_tool(arch: Arch, tool: &Tool, cpio: &mut Cpio) -> Result {
    let cache = util::root().join("target/debs").join(format!(
        "closure-{}-{}.txt",
        tool.package.replace('/', "_"),
        arch.debian()
    ));
    let key = tool.files.join(" ");
    let cached = std::fs::read_to_string(&cache).ok().and_then(|text| {
        let mut lines = text.lines();
        (lines.next()? == key).then_some(())?;
        lines
            .map(|l| {
                let mut f = l.splitn(3, '\t');
                let mode = u32::from_str_radix(f.next()?, 8).ok()?;
                let (guest, host) = (f.next()?.to_string(), PathBuf::from(f.next()?));
                host.exists().then_some((guest, host, mode))
            })
            .collect::<Option<Vec<_>>>()
    });
    let entries = match cached {
        Some(entries) => entries,
        None => {
            let entries = resolve(arch, tool)?;
            let mut text = format!("{key}\n");
            for (guest, host, mode) in &entries {
                text.push_str(&format!("{mode:o}\t{guest}\t{}\n", host.display()));
            }
            util::write(&cache, text)?;
            entries
        }
    };
    for (guest, host, mode) in entries {
        cpio.file(&guest, mode, &read(&host)?);
    }
    Ok(())
}

/// One tool's files and the closure of the libraries they need: `(path in the guest, file on
/// the host, mode)`.
fn resolve(arch: Arch, tool: &Tool) -> Result<Vec<(String, PathBuf, u32)>> {
    let mut out = Vec::new();
    let mut packages = Packages::new(arch);
    let root = packages.unpack(tool.package)?;
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    let mut interpreters = BTreeSet::new();
    for file in tool.files {
        let path = root.join(file);
        let data = read(&path)?;
        let exec = Path::new(file)
            .parent()
            .is_some_and(|d| d.ends_with("bin") || d.ends_with("sbin"));
        out.push((
            file.to_string(),
            path.clone(),
            if exec { 0o755 } else { 0o644 },
        ));
        if exec && data.starts_with(b"\x7fELF") {
            wanted.extend(dynamic(&path, file)?);
            interpreters.extend(interpreter(&path)?);
        }
    }
    let mut placed = BTreeSet::new();
    while let Some((soname, runpath)) = wanted.pop() {
        if !placed.insert(soname.clone()) {
            continue;
        }
        let (guest_path, host_path) =
            packages.find_library(arch, &soname, &runpath, tool.package)?;
        wanted.extend(dynamic(&host_path, &guest_path)?);
        out.push((guest_path, host_path, 0o644));
    }
    for interp in interpreters {
        let name = Path::new(&interp)
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: odd interpreter {interp}", tool.package))?
            .to_string();
        let (_, host_path) = packages.find_library(arch, &name, &[], tool.package)?;
        // The kernel execs the loader at exactly this path.
        out.push((interp.trim_start_matches('/').to_string(), host_path, 0o755));
    }
    Ok(out)
}

/// The packages unpacked for one tool so far, and which have had their dependencies unpacked.
struct Packages {
    arch: Arch,
    unpacked: BTreeMap<String, PathBuf>,
    expanded: BTreeSet<String>,
}

impl Packages {
    fn new(arch: Arch) -> Packages {
        Packages {
            arch,
            unpacked: BTreeMap::new(),
            expanded: BTreeSet::new(),
        }
    }

    /// Unpacks `package` (`name` or `name/release`) for the guest's architecture.
    fn unpack(&mut self, package: &str) -> Result<PathBuf> {
        let (name, release) = match package.split_once('/') {
            Some((n, r)) => (n, Some(r)),
            None => (package, None),
        };
        let qualified = match release {
            Some(r) => format!("{name}:{}/{r}", self.arch.debian()),
            None => format!("{name}:{}", self.arch.debian()),
        };
        let dir = deps::unpack_package(&qualified)?;
        self.unpacked.insert(name.to_string(), dir.clone());
        Ok(dir)
    }

    /// Where `soname` lives: `(path in the guest, file on the host)`. Searches the `runpath`
    /// of the object that needs it and the loader's directories in the packages unpacked so
    /// far, then unpacks the dependencies of those not yet expanded, level by level, until it
    /// is found or nothing is left to unpack.
    fn find_library(
        &mut self,
        arch: Arch,
        soname: &str,
        runpath: &[String],
        tool: &str,
    ) -> Result<(String, PathBuf)> {
        let dirs: Vec<String> = runpath.iter().cloned().chain(library_dirs(arch)).collect();
        loop {
            for dir in self.unpacked.values() {
                for lib_dir in &dirs {
                    let guest = format!("{lib_dir}/{soname}");
                    let host = dir.join(&guest);
                    if host.exists() {
                        return Ok((guest, host));
                    }
                }
            }
            let pending: Vec<String> = self
                .unpacked
                .keys()
                .filter(|p| !self.expanded.contains(*p))
                .cloned()
                .collect();
            if pending.is_empty() {
                return Err(format!(
                    "{tool}: no package it depends on has {soname} for {arch}"
                ));
            }
            for package in pending {
                self.expanded.insert(package.clone());
                for dep in depends(&package, self.arch)? {
                    if !self.unpacked.contains_key(&dep) {
                        self.unpack(&dep)?;
                        // A dependency fetched for a library is only searched, not expanded,
                        // until a library is still missing after this level.
                    }
                }
            }
        }
    }
}

/// The directories Debian's loader searches, as paths inside a package.
fn library_dirs(arch: Arch) -> [String; 4] {
    let triplet = arch.multiarch();
    [
        format!("lib/{triplet}"),
        format!("usr/lib/{triplet}"),
        "lib".to_string(),
        "usr/lib".to_string(),
    ]
}

/// The library packages `package` depends on (`Depends` and `Pre-Depends`), as apt resolves
/// them for `arch`. Tools and virtual packages are skipped: only libraries are ever needed.
fn depends(package: &str, arch: Arch) -> Result<Vec<String>> {
    let out = util::output(&mut cmd(
        "apt-cache",
        [
            "depends",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            &format!("{package}:{}", arch.debian()),
        ],
    ))?;
    let mut deps = Vec::new();
    for line in out.lines() {
        let line = line.trim().trim_start_matches('|');
        let Some(dep) = line
            .strip_prefix("Depends: ")
            .or_else(|| line.strip_prefix("PreDepends: "))
        else {
            continue;
        };
        if dep.starts_with('<') {
            continue;
        }
        let name = dep.split(':').next().unwrap_or(dep).to_string();
        if (name.starts_with("lib") || name == "zlib1g") && !deps.contains(&name) {
            deps.push(name);
        }
    }
    Ok(deps)
}

/// The `NEEDED` entries of the dynamic section of the ELF file at `path` (none for a static
/// program), each with the object's `RUNPATH`/`RPATH` directories as paths inside the guest
/// (`$ORIGIN` resolved against `guest_path`, where the object goes).
fn dynamic(path: &Path, guest_path: &str) -> Result<Vec<(String, Vec<String>)>> {
    let out = util::output(cmd("readelf", ["-dW"]).arg(path))?;
    let bracketed = |l: &str| Some(l.split_once('[')?.1.rsplit_once(']')?.0.to_string());
    let origin = Path::new(guest_path)
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("");
    let runpath: Vec<String> = out
        .lines()
        .filter(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)"))
        .filter_map(bracketed)
        .flat_map(|p| {
            p.split(':')
                .map(|d| {
                    d.replace("$ORIGIN", origin)
                        .trim_start_matches('/')
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(out
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(bracketed)
        .map(|soname| (soname, runpath.clone()))
        .collect())
}

/// The program interpreter (`PT_INTERP`) of an ELF executable, if it has one.
fn interpreter(path: &Path) -> Result<Option<String>> {
    let out = util::output(cmd("readelf", ["-lW"]).arg(path))?;
    Ok(out.lines().find_map(|l| {
        let rest = l.split_once("Requesting program interpreter: ")?.1;
        Some(rest.trim_end_matches(']').trim().to_string())
    }))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
