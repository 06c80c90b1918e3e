//! `cargo xtask`: builds the drivers into `.ko` modules against a real kernel, boots that kernel
//! in QEMU and runs the tests inside the guest. Run `cargo xtask help` for the commands.

mod arch;
mod deps;
mod kbuild;
mod kernel;
mod util;

use arch::Arch;
use std::path::PathBuf;
use std::process::ExitCode;
use util::Result;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build       build every driver as a .ko (target/kmod/<arch>/<name>.ko)
  qemu-test   build, boot the kernel in QEMU, run the in-guest tests, print a summary
  qemu-run    boot the same guest with an interactive shell
  test        host unit tests + qemu-test; ends with `N passed, N failed`
  help        this text

options:
  --arch x86_64|arm64     target architecture (default: x86_64)
  --kdir PATH             build against this prepared kernel tree instead of Debian's
  --kernel-image PATH     boot this kernel image (default: the tree's own)
  --driver NAME           qemu-test: run only this driver's tests (and the self-tests)
  --release | --debug     module build profile (default: --release)
";

/// Parsed command-line options.
#[derive(Debug, Default)]
struct Options {
    arch: Option<Arch>,
    kdir: Option<PathBuf>,
    kernel_image: Option<PathBuf>,
    driver: Option<String>,
    debug: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next().cloned().ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "--arch" => {
                let v = value("--arch")?;
                o.arch = Some(Arch::parse(&v).ok_or_else(|| {
                    format!("unknown architecture `{v}` (use x86_64 or arm64)")
                })?);
            }
            "--kdir" => o.kdir = Some(value("--kdir")?.into()),
            "--kernel-image" => o.kernel_image = Some(value("--kernel-image")?.into()),
            "--driver" => o.driver = Some(value("--driver")?),
            "--release" => o.debug = false,
            "--debug" => o.debug = true,
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    Ok(o)
}

fn kernel_for(o: &Options, arch: Arch) -> Result<kernel::Kernel> {
    match &o.kdir {
        Some(k) => kernel::from_kdir(arch, k, o.kernel_image.clone()),
        None => {
            let mut k = kernel::debian(arch)?;
            if o.kernel_image.is_some() {
                k.image = o.kernel_image.clone();
            }
            Ok(k)
        }
    }
}

fn build(o: &Options) -> Result<Vec<(kernel::Kernel, Vec<kbuild::Built>)>> {
    let arches = vec![o.arch.unwrap_or(Arch::X86_64)];
    deps::ensure(&arches)?;
    let profile = if o.debug { kbuild::Profile::Debug } else { kbuild::Profile::Release };
    let mut out = Vec::new();
    for arch in arches {
        let k = kernel_for(o, arch)?;
        let built = kbuild::build(&k, profile)?;
        for b in &built {
            println!("built {}", b.ko.display());
        }
        out.push((k, built));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = parse(rest).and_then(|o| match command.as_str() {
        "build" => build(&o).map(|_| ()),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
