//! The target architectures: every step of the pipeline takes one as a parameter.

use std::fmt;

/// A target architecture of the kernel modules.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Arch {
    /// x86_64, booted as QEMU's `q35` machine.
    X86_64,
    /// arm64, booted as QEMU's `virt` machine.
    Arm64,
}

impl Arch {
    /// Every architecture, in the order runs cover them.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The name used on the command line and in paths under `target/`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "x86_64" | "x86-64" | "amd64" => Some(Arch::X86_64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// Debian's architecture (and kernel flavour) name.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Debian's multiarch triplet: the library directories (`/lib/<triplet>`).
    pub fn multiarch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// Kbuild's `ARCH=`.
    pub fn kbuild(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Arm64 => "arm64",
        }
    }

    /// Kbuild's `CROSS_COMPILE=` on an x86_64 host.
    pub fn cross_compile(self) -> &'static str {
        match self {
            Arch::X86_64 => "",
            Arch::Arm64 => "aarch64-linux-gnu-",
        }
    }

    /// The clang target triple for bindgen.
    pub fn clang_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// The Rust target the module code is compiled for.
    pub fn kernel_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-none",
            Arch::Arm64 => "aarch64-unknown-none-softfloat",
        }
    }

    /// The Rust target of the guest's user-space test programs (static musl binaries).
    pub fn guest_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
