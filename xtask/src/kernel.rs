//! The kernel the modules are built against: Debian's own 6.1 packages (fetched, unpacked under
//! `target/kernel/`, never installed on the host) or any prepared kernel tree (`--kdir`).
//!
//! Also derives from that kernel what the Rust side must match: the clang flags bindgen parses
//! the headers with (probed from Kbuild itself) and the rustc codegen flags (from `.config`).

use crate::arch::Arch;
use crate::util::{self, cmd, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A kernel tree ready for out-of-tree module builds.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Target architecture.
    pub arch: Arch,
    /// Names this kernel in output paths and test names: `x86_64` and `arm64` for Debian's
    /// kernels, `x86_64-debug` for ours, `<arch>-<release>` for a `--kdir` tree.
    pub label: String,
    /// `uname -r` of the kernel (`6.1.0-56-amd64`).
    pub release: String,
    /// The directory `make -C` is pointed at.
    pub kdir: PathBuf,
    /// The bootable image, if known (Debian's `vmlinuz`, a tree's `arch/*/boot/...`).
    pub image: Option<PathBuf>,
    /// Where this kernel's build products go (`target/kbuild/<arch>/<release>/`).
    pub work: PathBuf,
    /// The kernel's `.config`, parsed.
    pub config: BTreeMap<String, String>,
}

impl Kernel {
    /// Whether `CONFIG_<name>` is `y`.
    pub fn enabled(&self, name: &str) -> bool {
        self.config.get(name).is_some_and(|v| v == "y")
    }

    /// `make -C <kdir> ARCH=.. CROSS_COMPILE=..` with the given arguments.
    pub fn make(&self) -> std::process::Command {
        let mut c = cmd("make", ["-s", "-C"]);
        c.arg(&self.kdir)
            .arg(format!("ARCH={}", self.arch.kbuild()))
            .arg(format!(
                "-j{}",
                std::thread::available_parallelism().map_or(2, |n| n.get())
            ));
        if !self.arch.cross_compile().is_empty() {
            c.arg(format!("CROSS_COMPILE={}", self.arch.cross_compile()));
        }
        c
    }
}

/// Opens a prepared kernel tree given with `--kdir` (a source tree after `make modules_prepare`
/// or an unpacked headers package).
pub fn from_kdir(arch: Arch, kdir: &Path, image: Option<PathBuf>) -> Result<Kernel> {
    let kdir = kdir
        .canonicalize()
        .map_err(|e| format!("--kdir {}: {e}", kdir.display()))?;
    let release_file = kdir.join("include/config/kernel.release");
    let release = util::read(&release_file)
        .map_err(|e| {
            format!(
                "{e}\n  (is {} a prepared tree? run `make modules_prepare` in it)",
                kdir.display()
            )
        })?
        .trim()
        .to_string();
    let image = image.or_else(|| {
        let boot = kdir.join(format!("arch/{}/boot", arch.kbuild()));
        ["bzImage", "Image"]
            .iter()
            .map(|f| boot.join(f))
            .find(|p| p.is_file())
    });
    let label = format!("{arch}-{release}");
    open(arch, label, kdir, release, image)
}

fn open(
    arch: Arch,
    label: String,
    kdir: PathBuf,
    release: String,
    image: Option<PathBuf>,
) -> Result<Kernel> {
    let config = parse_config(&util::read(&kdir.join(".config"))?);
    let work = util::root()
        .join("target/kbuild")
        .join(arch.name())
        .join(&release);
    Ok(Kernel {
        arch,
        label,
        release,
        kdir,
        image,
        work,
        config,
    })
}

/// Parses `.config` into `NAME` (without `CONFIG_`) → value (quotes kept off strings).
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// Debian bookworm's current 6.1 kernel for `arch`: resolves the ABI from the metapackages,
/// downloads image + headers + common + kbuild with `apt-get download` and unpacks them under
/// `target/kernel/debian-<abi>-<arch>/` (cached by ABI).
pub fn debian(arch: Arch) -> Result<Kernel> {
    let flavour = arch.debian();
    let pkg_arch = if arch == Arch::X86_64 {
        String::new()
    } else {
        format!(":{flavour}")
    };
    let meta = format!("linux-headers-{flavour}{pkg_arch}");
    let abi = resolve_abi(&meta)?;
    let release = format!("{abi}-{flavour}");
    let dir = util::root()
        .join("target/kernel")
        .join(format!("debian-{release}"));
    let usr_src = dir.join("usr/src");
    let kdir = usr_src.join(format!("linux-headers-{release}"));
    let image = dir.join(format!("boot/vmlinuz-{release}"));
    let stamp = dir.join(".unpacked");
    if !stamp.exists() {
        util::step(&format!(
            "fetching Debian kernel {release} (headers, image, kbuild)"
        ));
        let dl = util::root().join("target/kernel/downloads");
        util::mkdir(&dl)?;
        let pkgs = [
            format!("linux-image-{release}{pkg_arch}"),
            format!("linux-headers-{release}{pkg_arch}"),
            format!("linux-headers-{abi}-common"),
            // Host tools (modpost, objtool, fixdep): always the host's architecture.
            "linux-kbuild-6.1".to_string(),
        ];
        util::run(
            cmd("apt-get", ["download", "-q"])
                .args(&pkgs)
                .current_dir(&dl),
        )
        .map_err(|e| format!("{e}\n  (needs network access to Debian's archive)"))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        for pkg in &pkgs {
            let name = pkg.split(':').next().unwrap();
            let deb = newest_deb(&dl, name)?;
            util::run(cmd("dpkg-deb", ["-x"]).arg(&deb).arg(&dir))?;
        }
        // The flavour's Makefile includes the common one by absolute path (/usr/src/...).
        let makefile = kdir.join("Makefile");
        let text = util::read(&makefile)?;
        let fixed = text.replace("/usr/src/", &format!("{}/", usr_src.display()));
        util::write(&makefile, fixed)?;
        util::write(&stamp, &release)?;
    }
    open(arch, arch.name().to_string(), kdir, release, Some(image))
}

/// The ABI (`6.1.0-56`) the metapackage currently depends on, in bookworm (not backports).
fn resolve_abi(meta: &str) -> Result<String> {
    let version = |retry: bool| -> Result<Option<String>> {
        if retry {
            crate::deps::apt_update()?;
        }
        let madison = util::output(&mut cmd("apt-cache", ["madison", meta]))?;
        // `madison` lists newest first; backports carries 6.12, we want 6.1.
        Ok(madison
            .lines()
            .filter_map(|l| l.split('|').nth(1))
            .map(str::trim)
            .find(|v| v.starts_with("6.1."))
            .map(String::from))
    };
    let v = match version(false)? {
        Some(v) => v,
        None => version(true)?.ok_or_else(|| format!("apt knows no 6.1 version of {meta}"))?,
    };
    let depends = util::output(&mut cmd("apt-cache", ["depends", &format!("{meta}={v}")]))?;
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: linux-headers-"))
        .find_map(|rest| {
            let rest = rest.split(':').next().unwrap();
            let mut parts = rest.rsplitn(2, '-');
            let _flavour = parts.next()?;
            parts.next().map(String::from)
        })
        .ok_or_else(|| format!("cannot find the ABI in `apt-cache depends {meta}={v}`"))
}

/// The newest `<name>_*.deb` in `dir`.
fn newest_deb(dir: &Path, name: &str) -> Result<PathBuf> {
    let prefix = format!("{name}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let f = p.file_name().unwrap().to_string_lossy();
            f.starts_with(&prefix) && f.ends_with(".deb")
        })
        .collect();
    found.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    found
        .pop()
        .ok_or_else(|| format!("no {name}_*.deb in {}", dir.display()))
}

/// Flags of gcc that clang-14 does not accept, or that only matter for code generation.
const CLANG_REJECTS: &[&str] = &[
    "-mpreferred-stack-boundary=",
    "-ftrivial-auto-var-init=",
    "-fconserve-stack",
    "-fno-allow-store-data-races",
    "-mindirect-branch",
    "-mfunction-return=",
    "-mrecord-mcount",
    "-mharden-sls=",
    "-mskip-rax-setup",
    "-falign-jumps=",
    "-falign-loops=",
    "-fno-ipa-sra",
    "-mabi=lp64",
    "-mstack-protector-guard",
    "-mbranch-protection=",
    "-Wa,",
    "-fpatchable-function-entry=",
    "-mgeneral-regs-only",
    "-fmin-function-alignment",
    "-Wimplicit-fallthrough=",
    "-fno-stack-clash-protection",
    "-pg",
    "-mfentry",
    "-Wp,",
    "-fsanitize",
    "-fno-sanitize",
    "--param",
    "-fasan-shadow-offset",
    "-mno-fp-ret-in-387",
    "-fstack-protector",
    "-fmacro-prefix-map",
];

/// Probes the C flags Kbuild uses for a module object of `kernel` and returns them translated
/// for clang/bindgen (one per line), caching the result in `<work>/clang-args.txt`. The same
/// probe writes `<work>/gcc-args.txt`, the gcc command line itself (for `kernel-sys`'s layout
/// checks), and, for x86_64 kernels, `target/kbuild/last-clang-args`: the file host builds of
/// `kernel-sys` read when `KERNEL_SYS_CLANG_ARGS` is not set.
///
/// The probe builds a one-line C module with `make modules` and reads the command Kbuild saved
/// in `.probe.o.cmd` (a single-object target gives different, wrong flags).
pub fn clang_args(kernel: &Kernel) -> Result<PathBuf> {
    let out = kernel.work.join("clang-args.txt");
    let gcc_out = gcc_args(kernel);
    let config = kernel.kdir.join(".config");
    if !(is_newer(&out, &config) && is_newer(&gcc_out, &config)) {
        probe(kernel, &out, &gcc_out)?;
    }
    if kernel.arch == Arch::X86_64 {
        let pointer = util::root().join("target/kbuild/last-clang-args");
        let text = format!("{}\n", out.display());
        if util::read(&pointer).ok().as_deref() != Some(text.as_str()) {
            util::write(&pointer, text)?;
        }
    }
    Ok(out)
}

/// `<work>/gcc-args.txt`, written by [`clang_args`]: the compiler, then its arguments for a
/// module object (no source, no output), one per line, include paths absolute.
pub fn gcc_args(kernel: &Kernel) -> PathBuf {
    kernel.work.join("gcc-args.txt")
}

fn probe(kernel: &Kernel, clang_out: &Path, gcc_out: &Path) -> Result {
    util::step(&format!("probing Kbuild's C flags for {}", kernel.release));
    let probe = kernel.work.join("probe");
    util::mkdir(&probe)?;
    util::write(&probe.join("Kbuild"), "obj-m := probe.o\n")?;
    util::write(
        &probe.join("probe.c"),
        "#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\n",
    )?;
    util::run(
        kernel
            .make()
            .arg(format!("M={}", probe.display()))
            .arg("modules"),
    )?;
    let saved = util::read(&probe.join(".probe.o.cmd"))?;
    let line = saved.lines().next().unwrap_or_default();
    let gcc = line
        .split_once(":=")
        .map(|(_, c)| c)
        .and_then(|c| c.split(" ; ").next())
        .ok_or_else(|| format!("unexpected .probe.o.cmd: {line}"))?;
    let words = shell_split(gcc);
    let args = translate_for_clang(&words, &kernel.kdir, kernel.arch);
    util::write(clang_out, args.join("\n") + "\n")?;
    util::write(gcc_out, gcc_command(&words, &kernel.kdir).join("\n") + "\n")
}

/// gcc's module command line without its source, output and dependency file, with absolute
/// include paths (so it runs from any directory).
pub fn gcc_command(words: &[String], kdir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-c" => {}
            "-o" => {
                it.next();
            }
            "-include" => {
                out.push(w.clone());
                out.push(absolute(
                    kdir,
                    it.next().map(String::as_str).unwrap_or_default(),
                ));
            }
            _ if w.ends_with(".c") || w.starts_with("-Wp,") => {}
            _ if w.starts_with("-I") => out.push(format!("-I{}", absolute(kdir, &w[2..]))),
            _ => out.push(w.clone()),
        }
    }
    out
}

/// `p`, made absolute relative to `kdir` (where Kbuild runs the compiler).
fn absolute(kdir: &Path, p: &str) -> String {
    if Path::new(p).is_absolute() {
        p.to_string()
    } else {
        kdir.join(p).display().to_string()
    }
}

/// Turns gcc's module command line into clang arguments for bindgen.
pub fn translate_for_clang(words: &[String], kdir: &Path, arch: Arch) -> Vec<String> {
    let absolute = |p: &str| absolute(kdir, p);
    let mut out = vec![format!("--target={}", arch.clang_target())];
    let mut it = words.iter().skip(1); // the compiler itself
    while let Some(w) = it.next() {
        match w.as_str() {
            "-c" => {}
            "-o" => {
                it.next();
            }
            "-include" => {
                out.push(w.clone());
                out.push(absolute(it.next().map(String::as_str).unwrap_or_default()));
            }
            _ if w.ends_with(".c") => {}
            _ if w.starts_with("-DKBUILD_") || w.starts_with("-D__KBUILD_MODNAME") => {}
            _ if w.starts_with("-W") && !w.starts_with("-Wp,") && !w.starts_with("-Wa,") => {}
            _ if CLANG_REJECTS.iter().any(|r| w.starts_with(r)) => {}
            _ if w.starts_with("-I") => out.push(format!("-I{}", absolute(&w[2..]))),
            _ => out.push(w.clone()),
        }
    }
    out.extend(
        [
            "-D__BINDGEN__",
            "-DKBUILD_MODNAME=\"kernel\"",
            "-fno-builtin",
            "-w",
        ]
        .map(String::from),
    );
    out
}

/// Splits a shell command line (Kbuild's saved commands use only simple quoting).
pub fn shell_split(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Whether `a` exists and is at least as new as `b`.
pub fn is_newer(a: &Path, b: &Path) -> bool {
    let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((time(a), time(b)), (Some(x), Some(y)) if x >= y)
}

/// rustc flags that make Rust code match this kernel's C code generation, derived from its
/// configuration (a debug kernel's differ from Debian's).
pub fn rustflags(kernel: &Kernel) -> Vec<String> {
    let mut f: Vec<String> = [
        "-Crelocation-model=static",
        "-Cforce-unwind-tables=no",
        "-Cpanic=abort",
        "-Cembed-bitcode=yes",
        // Drivers must not reach `alloc`'s infallible, panicking allocation APIs.
        "--cfg=no_global_oom_handling",
    ]
    .map(String::from)
    .to_vec();
    if kernel.enabled("KASAN_GENERIC") {
        // Instrument the Rust code like the C code: every load and store checks the shadow
        // memory (inline, or through __asan_* calls), reports are recoverable like C's.
        let offset = kernel
            .config
            .get("KASAN_SHADOW_OFFSET")
            .cloned()
            .unwrap_or_default();
        let threshold = if kernel.enabled("KASAN_INLINE") {
            10000
        } else {
            0
        };
        let stack = u8::from(kernel.enabled("KASAN_STACK"));
        f.extend([
            "-Zsanitizer=kernel-address".to_string(),
            "-Zsanitizer-recover=kernel-address".to_string(),
            format!("-Cllvm-args=-asan-mapping-offset={offset}"),
            format!("-Cllvm-args=-asan-instrumentation-with-call-threshold={threshold}"),
            format!("-Cllvm-args=-asan-stack={stack}"),
            // Module globals would need constructors run at load; C modules skip them too
            // unless CONFIG_KASAN_MODULE globals are wired up, so keep to heap and stack.
            "-Cllvm-args=-asan-globals=0".to_string(),
        ]);
    }
    match kernel.arch {
        Arch::X86_64 => {
            f.extend(
                [
                    "-Ccode-model=kernel",
                    "-Cno-redzone=yes",
                    "-Cjump-tables=no",
                    "-Zplt=yes",
                ]
                .map(String::from),
            );
            if kernel.enabled("RETPOLINE") {
                f.push("-Zretpoline-external-thunk".into());
                f.push("-Zindirect-branch-cs-prefix".into());
            }
            if kernel.enabled("RETHUNK") {
                f.push("-Zfunction-return=thunk-extern".into());
            }
            // CONFIG_SLS needs no flag of its own: with return thunks and retpolines the Rust
            // code has no `ret` and no indirect `jmp` left to harden, and objtool's --sls check
            // (run on the Rust object like on C ones) proves it.
        }
        Arch::Arm64 => {
            f.push("-Cforce-frame-pointers=yes".into());
            if kernel.enabled("ARM64_PTR_AUTH_KERNEL") {
                f.push("-Zbranch-protection=pac-ret,leaf".into());
            }
            if kernel.enabled("SHADOW_CALL_STACK") {
                f.push("-Zfixed-x18".into());
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_kbuild_quoting() {
        let w = shell_split(r#"gcc-12 -DKBUILD_BASENAME='"probe"' -I./include  -c x.c"#);
        assert_eq!(
            w,
            [
                "gcc-12",
                "-DKBUILD_BASENAME=\"probe\"",
                "-I./include",
                "-c",
                "x.c"
            ]
        );
    }

    #[test]
    fn translates_gcc_module_flags() {
        let words = shell_split(
            "gcc-12 -Wp,-MMD,x.d -nostdinc -I./arch/x86/include/generated -include /k/kconfig.h \
             -mindirect-branch=thunk-extern -mcmodel=kernel -Wall -DMODULE -DKBUILD_MODNAME='\"p\"' \
             -c -o /m/p.o /m/p.c",
        );
        let args = translate_for_clang(&words, Path::new("/kd"), Arch::X86_64);
        assert_eq!(
            args,
            [
                "--target=x86_64-linux-gnu",
                "-nostdinc",
                "-I/kd/./arch/x86/include/generated",
                "-include",
                "/k/kconfig.h",
                "-mcmodel=kernel",
                "-DMODULE",
                "-D__BINDGEN__",
                "-DKBUILD_MODNAME=\"kernel\"",
                "-fno-builtin",
                "-w"
            ]
        );
    }

    #[test]
    fn keeps_gcc_module_flags_for_any_directory() {
        let words = shell_split(
            "gcc-12 -Wp,-MMD,x.d -nostdinc -I./include -include /k/kconfig.h -mcmodel=kernel \
             -DKBUILD_MODNAME='\"p\"' -c -o /m/p.o /m/p.c",
        );
        assert_eq!(
            gcc_command(&words, Path::new("/kd")),
            [
                "gcc-12",
                "-nostdinc",
                "-I/kd/./include",
                "-include",
                "/k/kconfig.h",
                "-mcmodel=kernel",
                "-DKBUILD_MODNAME=\"p\""
            ]
        );
    }

    #[test]
    fn parses_config() {
        let c = parse_config("# c\nCONFIG_A=y\nCONFIG_S=\"x y\"\n# CONFIG_B is not set\n");
        assert_eq!(c.get("A").map(String::as_str), Some("y"));
        assert_eq!(c.get("S").map(String::as_str), Some("x y"));
        assert!(!c.contains_key("B"));
    }
}
