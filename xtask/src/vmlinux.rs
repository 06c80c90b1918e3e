//! Getting the uncompressed ELF `vmlinux` out of an x86 `bzImage`.
//!
//! Under TCG a bzImage spends seconds decompressing itself at every boot. Debian's kernel has a
//! PVH entry note, so QEMU's q35 machine boots the uncompressed ELF directly with
//! `-kernel vmlinux`: extract it once, boot it many times.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// The XZ stream magic (what `scripts/extract-vmlinux` scans for).
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\0";

/// Extracts the ELF kernel from `bzimage` into `out` (written atomically: `out.tmp` + rename).
/// Fails unless the result is an ELF file with the PVH note that QEMU needs to boot it.
///
/// The compressed payload is located with the setup header's `payload_offset`/`payload_length`
/// (boot protocol 2.08+), falling back to a scan for the XZ magic. Only XZ payloads are
/// supported (Debian's `CONFIG_KERNEL_XZ`); decompression runs `xz -dc --single-stream`, which
/// ignores the 4-byte size trailer that follows the stream.
pub fn extract_vmlinux(bzimage: &Path, out: &Path) -> io::Result<()> {
    let ctx = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} ({}): {e}", bzimage.display()))
    };
    let image = fs::read(bzimage).map_err(|e| ctx("reading the kernel image", e))?;
    let payload = payload(&image)
        .or_else(|| find(&image, XZ_MAGIC).map(|at| &image[at..]))
        .filter(|p| p.starts_with(XZ_MAGIC))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: no XZ-compressed kernel payload found",
                    bzimage.display()
                ),
            )
        })?;
    let elf = xz_decompress(payload).map_err(|e| ctx("decompressing the kernel payload", e))?;
    if !elf.starts_with(b"\x7fELF") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the decompressed payload is not an ELF file",
                bzimage.display()
            ),
        ));
    }
    if !has_pvh_note(&elf) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the kernel has no PVH entry note (CONFIG_PVH): QEMU cannot boot it as ELF",
                bzimage.display()
            ),
        ));
    }
    let tmp = out.with_extension("tmp");
    let write_ctx =
        |e: io::Error| io::Error::new(e.kind(), format!("writing {}: {e}", out.display()));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(write_ctx)?;
    }
    fs::write(&tmp, &elf).map_err(write_ctx)?;
    fs::rename(&tmp, out).map_err(write_ctx)
}

/// Like [`extract_vmlinux`], but only when `out` is missing or older than `bzimage`.
pub fn ensure_vmlinux(bzimage: &Path, out: &Path) -> io::Result<()> {
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(bzimage), mtime(out)) {
        (Some(src), Some(dst)) if dst >= src => Ok(()),
        _ => extract_vmlinux(bzimage, out),
    }
}

/// Whether an ELF64 image carries the PVH entry note (`XEN_ELFNOTE_PHYS32_ENTRY`, owner "Xen")
/// that QEMU needs to boot it with `-kernel` on x86. Only the first `elf.len()` bytes are looked
/// at, so the first megabyte or so of the file is enough.
pub fn has_pvh_note(elf: &[u8]) -> bool {
    const PT_NOTE: u32 = 4;
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    // ELFCLASS64, little endian.
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).any(|i| {
        let ph = phoff as usize + i * phentsize;
        if u32_at(ph) != Some(PT_NOTE) {
            return false;
        }
        let (Some(off), Some(size)) = (u64_at(ph + 8), u64_at(ph + 32)) else {
            return false;
        };
        let (mut pos, end) = (off as usize, (off + size) as usize);
        // Each note: namesz, descsz, type, name (4-aligned), desc (4-aligned).
        while pos + 12 <= end {
            let (Some(namesz), Some(descsz), Some(kind)) =
                (u32_at(pos), u32_at(pos + 4), u32_at(pos + 8))
            else {
                return false;
            };
            let name = elf
                .get(pos + 12..pos + 12 + namesz as usize)
                .unwrap_or_default();
            if kind == XEN_ELFNOTE_PHYS32_ENTRY && name.starts_with(b"Xen") {
                return true;
            }
            pos +=
                12 + (namesz as usize).next_multiple_of(4) + (descsz as usize).next_multiple_of(4);
        }
        false
    })
}

/// The compressed payload named by the bzImage setup header, if the header has one.
fn payload(image: &[u8]) -> Option<&[u8]> {
    let u32_at = |o: usize| {
        image
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let version = image
        .get(0x206..0x208)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))?;
    if image.get(0x202..0x206)? != b"HdrS" || version < 0x208 {
        return None;
    }
    let setup_sects = match *image.get(0x1f1)? {
        0 => 4,
        n => n as usize,
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248)? as usize;
    image.get(start..start + u32_at(0x24c)? as usize)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Runs `xz -dc --single-stream` over `data` and returns its output.
fn xz_decompress(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut child = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run `xz` (install xz-utils): {e}"))
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Feed stdin from another thread so that a full stdout pipe cannot deadlock us.
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output()?;
    // xz stops reading after the stream: a broken pipe here is expected, not an error.
    let _ = feeder.join();
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`xz -dc --single-stream` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake bzImage: setup header fields, then an XZ stream of `content` + a size trailer.
    fn fake_bzimage(content: &[u8], with_header: bool) -> Vec<u8> {
        let mut xz = Command::new("xz")
            .args(["-zc", "--check=crc32"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        xz.stdin.take().unwrap().write_all(content).unwrap();
        let mut stream = xz.wait_with_output().unwrap().stdout;
        stream.extend_from_slice(&(content.len() as u32).to_le_bytes());
        let mut img = vec![0u8; 3 * 512 + 100];
        if with_header {
            img[0x1f1] = 2; // setup_sects: protected-mode code at 3 * 512
            img[0x202..0x206].copy_from_slice(b"HdrS");
            img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
            img[0x248..0x24c].copy_from_slice(&100u32.to_le_bytes());
            img[0x24c..0x250].copy_from_slice(&(stream.len() as u32).to_le_bytes());
        }
        img.extend_from_slice(&stream);
        img.extend_from_slice(b"trailing garbage");
        img
    }

    /// A minimal ELF64 with one PT_NOTE program header pointing at a "Xen" note of `kind`.
    fn fake_elf(kind: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 0x100];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes()); // e_phoff
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        elf[0x40..0x44].copy_from_slice(&4u32.to_le_bytes()); // p_type = PT_NOTE
        elf[0x48..0x50].copy_from_slice(&0xc0u64.to_le_bytes()); // p_offset
        elf[0x60..0x68].copy_from_slice(&20u64.to_le_bytes()); // p_filesz
        elf[0xc0..0xc4].copy_from_slice(&4u32.to_le_bytes()); // namesz
        elf[0xc4..0xc8].copy_from_slice(&4u32.to_le_bytes()); // descsz
        elf[0xc8..0xcc].copy_from_slice(&kind.to_le_bytes()); // type
        elf[0xcc..0xd0].copy_from_slice(b"Xen\0");
        elf
    }

    #[test]
    fn extracts_via_header_and_via_scan() {
        let dir = std::env::temp_dir().join(format!("xtask-vmlinux-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let elf = fake_elf(18).repeat(50);
        let out = dir.join("sub/vmlinux");
        for with_header in [true, false] {
            let bz = dir.join("bzImage");
            fs::write(&bz, fake_bzimage(&elf, with_header)).unwrap();
            extract_vmlinux(&bz, &out).unwrap();
            assert_eq!(fs::read(&out).unwrap(), elf);
            assert!(!out.with_extension("tmp").exists());
        }
        // Up to date: not extracted again.
        fs::write(&out, b"cached").unwrap();
        ensure_vmlinux(&dir.join("bzImage"), &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"cached");
        // Refused, with the file name in the message: not an ELF, no PVH note, no payload.
        let cases: [(&str, &[u8], &str); 3] = [
            ("bad", &fake_bzimage(b"MZ not elf", true), "not an ELF"),
            ("nopvh", &fake_bzimage(&fake_elf(17), true), "no PVH"),
            ("empty", b"", "no XZ"),
        ];
        for (name, image, message) in cases {
            fs::write(dir.join(name), image).unwrap();
            let err = extract_vmlinux(&dir.join(name), &dir.join("out")).unwrap_err();
            assert!(err.to_string().contains(message), "{err}");
            assert!(err.to_string().contains(name), "{err}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pvh_note() {
        assert!(has_pvh_note(&fake_elf(18)));
        assert!(!has_pvh_note(&fake_elf(17)));
        let mut other_owner = fake_elf(18);
        other_owner[0xcc..0xd0].copy_from_slice(b"GNU\0");
        assert!(!has_pvh_note(&other_owner));
        assert!(!has_pvh_note(&fake_elf(18)[..0xc8]), "truncated");
        assert!(!has_pvh_note(b"\x7fELF"));
        assert!(!has_pvh_note(b""));
    }
}
