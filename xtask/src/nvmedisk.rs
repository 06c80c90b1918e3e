//! The NVMe controller every test boot has: QEMU's `-device nvme` (PCI 1b36:0010) backed by a
//! raw image that the host creates fresh for each boot, 64 MiB sparse, with a known pattern at
//! known offsets so the guest can check what it reads (see [`pattern`]).
//!
//! On arm64 `virt` the controller sits at a fixed slot (`addr=0x10`) on `pcie.0`.

use crate::arch::Arch;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

/// The image size: 64 MiB, 131072 blocks of 512 bytes.
pub const SIZE: u64 = 64 << 20;

/// Where the host writes [`pattern`] blocks: the first, one in the middle, the last 4 KiB.
pub const PATTERN_OFFSETS: [u64; 3] = [0, 32 << 20, SIZE - 4096];

/// The 4 KiB written at `offset`: byte `i` is `(offset / 4096 + i * 7) as u8 ^ 0x5a`, and the
/// first 8 bytes are the offset itself (little endian), so a block read from the wrong place
/// is recognisable. The guest suite (`drivers/nvme_lite/guest.rs`) computes the same.
pub fn pattern(offset: u64) -> [u8; 4096] {
    let mut b = [0u8; 4096];
    for (i, x) in b.iter_mut().enumerate() {
        *x = ((offset / 4096) as u8).wrapping_add((i as u8).wrapping_mul(7)) ^ 0x5a;
    }
    b[..8].copy_from_slice(&offset.to_le_bytes());
    b
}

/// Where the guest suite writes its pattern for the host (`guest_pattern_for_the_host`): 1 MiB
/// of [`guest_pattern`] blocks. The suite's layout: its ext4 file system covers the first
/// 32 MiB; tests after it write only at 40..48 and 52..60 MiB.
pub const GUEST_PATTERN: std::ops::Range<u64> = (48 << 20)..(49 << 20);

/// What the guest writes at `offset`: [`pattern`] with every bit inverted.
pub fn guest_pattern(offset: u64) -> [u8; 4096] {
    pattern(offset).map(|b| !b)
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

/// Creates (or truncates) the image at `path` and returns the QEMU arguments that attach it.
pub fn prepare(arch: Arch, path: &Path) -> io::Result<Vec<String>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = File::create(path)?;
    f.set_len(SIZE)?;
    for off in PATTERN_OFFSETS {
        f.seek(SeekFrom::Start(off))?;
        f.write_all(&pattern(off))?;
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
        let data = std::fs::read(&img).unwrap();
        assert_eq!(data.len() as u64, SIZE);
        for off in PATTERN_OFFSETS {
            assert_eq!(data[off as usize..off as usize + 4096], pattern(off));
        }
        assert!(args[3].ends_with("addr=0x10"));
        assert!(check_guest_pattern(&img)
            .unwrap_err()
            .starts_with("256 of 256 blocks"));
        let mut data = data;
        for off in GUEST_PATTERN.step_by(4096) {
            data[off as usize..off as usize + 4096].copy_from_slice(&guest_pattern(off));
        }
        std::fs::write(&img, &data).unwrap();
        check_guest_pattern(&img).unwrap();
        assert!(check_file_system(&img).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
