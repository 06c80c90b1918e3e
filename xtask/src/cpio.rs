//! An in-memory writer of `newc` cpio archives (magic `070701`), the format the kernel unpacks
//! as an initramfs. Everything is owned by root, no privileges are needed to build one.
//!
//! Paths are relative to the archive root (a leading `/` is dropped) and missing parent
//! directories are added (mode 0755), so `file("bin/busybox", ..)` is enough on its own.

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// One archive member before serialisation.
struct Entry {
    path: String,
    mode: u32,
    data: Vec<u8>,
    rdev: (u32, u32),
}

/// A `newc` archive being built; see the module docs.
#[derive(Default)]
pub struct Cpio {
    entries: Vec<Entry>,
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Cpio {
        Cpio::default()
    }

    /// Adds a directory; `mode` is the permission bits (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.add(path, S_IFDIR | (mode & 0o7777), Vec::new(), (0, 0))
    }

    /// Adds a regular file with the given permission bits and contents.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.add(path, S_IFREG | (mode & 0o7777), data.to_vec(), (0, 0))
    }

    /// Adds a symbolic link pointing at `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.add(path, S_IFLNK | 0o777, target.as_bytes().to_vec(), (0, 0))
    }

    /// Adds a character device node, e.g. `char_dev("dev/console", 0o600, 5, 1)`.
    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> &mut Self {
        self.add(path, S_IFCHR | (mode & 0o7777), Vec::new(), (major, minor))
    }

    /// Adds (or replaces) an entry after creating its missing parent directories.
    fn add(&mut self, path: &str, mode: u32, data: Vec<u8>, rdev: (u32, u32)) -> &mut Self {
        let path = path.trim_start_matches("./").trim_matches('/');
        assert!(!path.is_empty(), "cpio: empty path");
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if !self.entries.iter().any(|e| e.path == path[..end]) {
                self.add(&path[..end], S_IFDIR | 0o755, Vec::new(), (0, 0));
            }
            end += 1;
        }
        let entry = Entry {
            path: path.to_string(),
            mode,
            data,
            rdev,
        };
        match self.entries.iter_mut().find(|e| e.path == path) {
            Some(old) => *old = entry,
            None => self.entries.push(entry),
        }
        self
    }

    /// Serialises the archive: every member, then the `TRAILER!!!` record, padded to 512 bytes
    /// like GNU cpio does (the kernel skips zero padding between concatenated archives).
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let nlink = if e.mode & 0o170000 == S_IFDIR {
                let prefix = format!("{}/", e.path);
                let subdirs = self.entries.iter().filter(|c| {
                    c.mode & 0o170000 == S_IFDIR
                        && c.path
                            .strip_prefix(&prefix)
                            .is_some_and(|rest| !rest.contains('/'))
                });
                2 + subdirs.count() as u32
            } else {
                1
            };
            let ino = i as u32 + 1;
            write_entry(&mut out, ino, e.mode, nlink, &e.path, &e.data, e.rdev);
        }
        write_entry(&mut out, 0, 0, 1, "TRAILER!!!", &[], (0, 0));
        out.resize(out.len().next_multiple_of(512), 0);
        out
    }
}

/// Appends one header + name + data, each padded to 4 bytes.
fn write_entry(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    name: &str,
    data: &[u8],
    rdev: (u32, u32),
) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime: reproducible archives
        data.len() as u32,
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1, // namesize counts the NUL
        0,                     // check (only used by the "070702" crc format)
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed member: (name, [13 header fields], data).
    type Member = (String, [u32; 13], Vec<u8>);

    /// Parses an archive back, checking the alignment rules on the way; stops at the trailer.
    fn parse(buf: &[u8]) -> Vec<Member> {
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            assert_eq!(pos % 4, 0, "header not 4-byte aligned");
            assert_eq!(&buf[pos..pos + 6], b"070701");
            let mut f = [0u32; 13];
            for (i, v) in f.iter_mut().enumerate() {
                let hex = std::str::from_utf8(&buf[pos + 6 + 8 * i..pos + 14 + 8 * i]).unwrap();
                *v = u32::from_str_radix(hex, 16).unwrap();
            }
            let name_start = pos + 110;
            let name_end = name_start + f[11] as usize;
            assert_eq!(buf[name_end - 1], 0, "name not NUL-terminated");
            let name = String::from_utf8(buf[name_start..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.next_multiple_of(4);
            assert!(buf[name_end..data_start].iter().all(|&b| b == 0));
            let data_end = data_start + f[6] as usize;
            let data = buf[data_start..data_end].to_vec();
            pos = data_end.next_multiple_of(4);
            assert!(buf[data_end..pos].iter().all(|&b| b == 0));
            if name == "TRAILER!!!" {
                assert_eq!(buf.len() % 512, 0);
                assert!(buf[pos..].iter().all(|&b| b == 0), "garbage after trailer");
                return out;
            }
            out.push((name, f, data));
        }
    }

    #[test]
    fn round_trip() {
        let mut c = Cpio::new();
        c.dir("/bin", 0o755)
            .file("/bin/busybox", 0o755, b"\x7fELF12345")
            .symlink("bin/sh", "busybox")
            .char_dev("dev/console", 0o600, 5, 1)
            .file("init", 0o755, b"#!/bin/busybox sh\n");
        let m = parse(&c.finish());
        let names: Vec<&str> = m.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "init"]
        );
        let by = |n: &str| m.iter().find(|e| e.0 == n).unwrap();
        assert_eq!(by("bin").1[1], 0o040755);
        assert_eq!(by("bin/busybox").1[1], 0o100755);
        assert_eq!(by("bin/busybox").2, b"\x7fELF12345");
        assert_eq!(by("bin/sh").1[1], 0o120777);
        assert_eq!(by("bin/sh").2, b"busybox");
        let console = by("dev/console").1;
        assert_eq!((console[1], console[9], console[10]), (0o020600, 5, 1));
        // Inodes increase, owners are root, files have one link.
        let inos: Vec<u32> = m.iter().map(|e| e.1[0]).collect();
        assert!(inos.windows(2).all(|w| w[0] < w[1]) && inos[0] > 0);
        assert!(m.iter().all(|e| e.1[2] == 0 && e.1[3] == 0));
        assert_eq!(by("init").1[4], 1);
    }

    #[test]
    fn name_and_data_padding() {
        // Header (110) + name: pads to 4 for each name length mod 4; data likewise.
        for len in 1..=9 {
            let name = "x".repeat(len);
            let data = vec![0xAAu8; len];
            let mut c = Cpio::new();
            c.file(&name, 0o644, &data).file("y", 0o644, b"z");
            let m = parse(&c.finish());
            assert_eq!(m[0].0, name);
            assert_eq!(m[0].2, data);
            assert_eq!(m[1].2, b"z");
        }
    }

    #[test]
    fn parents_nlink_and_replacement() {
        let mut c = Cpio::new();
        c.file("a/b/c/file", 0o644, b"1")
            .dir("a/d", 0o700)
            .file("a/b/c/file", 0o600, b"2");
        let m = parse(&c.finish());
        let names: Vec<&str> = m.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c", "a/b/c/file", "a/d"]);
        assert_eq!(m[0].1[4], 4, "a has subdirs b and d");
        assert_eq!(m[2].1[4], 2, "c has no subdirs");
        assert_eq!((m[3].1[1], m[3].2.as_slice()), (0o100600, &b"2"[..]));
        assert_eq!(m[4].1[1], 0o040700);
    }

    #[test]
    fn trailer_only() {
        let buf = Cpio::new().finish();
        assert_eq!(buf.len(), 512);
        assert!(buf.starts_with(b"070701"));
        assert_eq!(&buf[110..120], b"TRAILER!!!");
        assert!(parse(&buf).is_empty());
    }
}
