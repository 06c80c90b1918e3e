//! The NVMe controllers every test boot has: QEMU's `-device nvme` (PCI 1b36:0010), each backed
//! by a raw image that the host creates fresh for each boot, 64 MiB sparse, with a known pattern
//! at known offsets so the guest can check what it reads (see [`pattern_of`]).
//!
//! Controller 0 (`serial=rustnvme0`) sits behind a PCIe root port (hot-unplug); on arm64 `virt`
//! the port is at a fixed slot (`addr=0x10`) on `pcie.0`. Controller 1 (`serial=rustnvme1`, its
//! own image, another pattern) sits on `pcie.0` itself at `addr=0x11` on both machines: the
//! guest binds Debian's C `nvme` driver to one and `nvme_lite` to the other.

use crate::arch::Arch;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The image size: 64 MiB, 131072 blocks of 512 bytes.
pub const SIZE: u64 = nvme_pattern::IMAGE_SIZE;

/// Where the host writes [`pattern_of`] blocks: the first, one in the middle, the last 4 KiB.
pub const PATTERN_OFFSETS: [u64; 3] = nvme_pattern::HOST_OFFSETS;

/// The number of controllers (and images) every test boot has.
pub const CONTROLLERS: usize = 2;

/// The 4 KiB written at `offset` of controller `disk`'s image (`crates/nvme-pattern`, shared
/// with the guest suite `drivers/nvme_lite/guest.rs`): recognisably that offset's block of that
/// image.
pub fn pattern_of(disk: usize, offset: u64) -> [u8; 4096] {
    nvme_pattern::host(disk, offset)
}

/// Where the guest suite writes its pattern for the host (`guest_pattern_for_the_host`): 1 MiB
/// of [`guest_pattern`] blocks. The suite's layout: its ext4 file system covers the first
/// 32 MiB; tests after it write only at 40..48 and 52..60 MiB.
pub const GUEST_PATTERN: std::ops::Range<u64> = (48 << 20)..(49 << 20);

/// What the guest writes at `offset` (`crates/nvme-pattern`): controller 0's block with every
/// bit inverted.
pub fn guest_pattern(offset: u64) -> [u8; 4096] {
    nvme_pattern::guest(offset)
}

/// The host's half of "data both ways": after the boot, the guest's blocks are in the image,
/// byte-exact.
pub fn check_guest_pattern(image: &Path) -> Result<(), String> {
    let data = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut bad = Vec::new();
    for off in GUEST_PATTERN.step_by(4096) {
        let block = data
            .get(off as usize..off as usize + 4096)
            .unwrap_or_default();
        if block != guest_pattern(off) {
            bad.push(off);
        }
    }
    match bad.as_slice() {
        [] => Ok(()),
        [first, ..] => Err(format!(
            "{} of 256 blocks at 48 MiB differ from the guest's pattern (first at {first})",
            bad.len()
        )),
    }
}

/// The host's e2fsck (forced, read-only) on the file system the guest made and filled.
pub fn check_file_system(image: &Path) -> Result<(), String> {
    let out = std::process::Command::new("e2fsck")
        .args(["-f", "-n"])
        .arg(image)
        .output()
        .map_err(|e| format!("e2fsck: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() && text.contains("rustnvme: ") {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -f -n {} ({}):\n{text}",
            image.display(),
            out.status
        ))
    }
}

/// The image of controller `disk`, next to `path` (controller 0's): `main-nvme.img`,
/// `main-nvme1.img`.
pub fn image_path(path: &Path, disk: usize) -> PathBuf {
    if disk == 0 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}{disk}.img"))
}

/// Creates (or truncates) the images at `path` and next to it (see [`image_path`]) and
/// returns the QEMU arguments that attach them.
pub fn prepare(arch: Arch, path: &Path) -> io::Result<Vec<String>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    for disk in 0..CONTROLLERS {
        let mut f = File::create(image_path(path, disk))?;
        f.set_len(SIZE)?;
        for off in PATTERN_OFFSETS {
            f.seek(SeekFrom::Start(off))?;
            f.write_all(&pattern_of(disk, off))?;
        }
    }
    let addr = match arch {
        Arch::X86_64 => "",
        Arch::Arm64 => ",addr=0x10",
    };
    // Behind a PCIe root port, so that QMP `device_del nvme0` hot-unplugs it (the
    // `surprise_removal` guest test, the last of its suite).
    Ok(vec![
        "-drive".into(),
        format!("file={},if=none,id=nvm0,format=raw", path.display()),
        "-device".into(),
        format!("pcie-root-port,id=rp1,chassis=1,slot=1{addr}"),
        "-device".into(),
        "nvme,serial=rustnvme0,drive=nvm0,bus=rp1,id=nvme0".into(),
        "-drive".into(),
        format!(
            "file={},if=none,id=nvm1,format=raw",
            image_path(path, 1).display()
        ),
        "-device".into(),
        "nvme,serial=rustnvme1,drive=nvm1,id=nvme1,addr=0x11".into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_has_the_pattern_and_args_name_it() {
        let dir = std::env::temp_dir().join(format!("nvmedisk-{}", std::process::id()));
        let img = dir.join("nvme.img");
        let args = prepare(Arch::Arm64, &img).unwrap();
        for disk in 0..CONTROLLERS {
            let data = std::fs::read(image_path(&img, disk)).unwrap();
            assert_eq!(data.len() as u64, SIZE);
            for off in PATTERN_OFFSETS {
                assert_eq!(
                    data[off as usize..off as usize + 4096],
                    pattern_of(disk, off)
                );
            }
        }
        assert_ne!(pattern_of(0, 4096), pattern_of(1, 4096));
        assert!(args[3].ends_with("addr=0x10"));
        assert!(args[7].ends_with("nvme1.img,if=none,id=nvm1,format=raw"));
        assert!(args[9].ends_with("addr=0x11"));
        assert!(check_guest_pattern(&img)
            .unwrap_err()
            .starts_with("256 of 256 blocks"));
        let mut data = std::fs::read(&img).unwrap();
        for off in GUEST_PATTERN.step_by(4096) {
            data[off as usize..off as usize + 4096].copy_from_slice(&guest_pattern(off));
        }
        std::fs::write(&img, &data).unwrap();
        check_guest_pattern(&img).unwrap();
        assert!(check_file_system(&img).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
