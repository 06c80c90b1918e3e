//! Reading the kernel log through `/dev/kmsg` (Documentation/ABI/testing/dev-kmsg).
//!
//! Each `read()` returns exactly one record:
//!
//! ```text
//! 6,1234,5678901,-;rust_selftests: ok 1 alloc_align_1\n
//!  SUBSYSTEM=...\n          (optional continuation lines, each starting with a space)
//! ```
//!
//! i.e. `priority,sequence,timestamp_us,flags[,...];text`, where `priority` is
//! `facility << 3 | level` and non-printable bytes of `text` (and `\`) are escaped as `\xNN`.
//! A freshly opened descriptor starts at the oldest record still in the ring buffer;
//! `lseek(SEEK_END)` skips to "only records logged from now on". If records were overwritten
//! before we read them, `read()` fails once with `EPIPE` and then continues.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// One kernel log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Log level (0 = emergency ... 7 = debug).
    pub level: u8,
    /// Facility (0 = kernel, 1 = user, ...).
    pub facility: u32,
    /// Sequence number.
    pub seq: u64,
    /// Microseconds since boot.
    pub timestamp_us: u64,
    /// The message text, unescaped (may contain several lines).
    pub text: String,
}

/// Parses one record as returned by a `read()` of `/dev/kmsg`.
pub fn parse_record(raw: &[u8]) -> Option<Record> {
    let raw = std::str::from_utf8(raw).ok()?;
    let (header, rest) = raw.split_once(';')?;
    // The text ends at the first newline; continuation (dictionary) lines follow it.
    let text = rest.split('\n').next().unwrap_or("");
    let mut fields = header.split(',');
    let priority: u32 = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let timestamp_us = fields.next()?.parse().ok()?;
    Some(Record {
        level: (priority & 7) as u8,
        facility: priority >> 3,
        seq,
        timestamp_us,
        text: unescape(text),
    })
}

/// Undoes the kernel's `\xNN` escaping of non-printable bytes.
pub fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = bytes
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// If `text` is `"<module>: <rest>"` (the `pr_fmt` prefix of a module's messages), `<rest>`.
pub fn strip_module_prefix<'a>(text: &'a str, module: &str) -> Option<&'a str> {
    text.strip_prefix(module)?.strip_prefix(": ")
}

/// The `<n>` of a `"<module>: exit: live_allocations=<n>"` record, which a module prints when
/// it is unloaded: the number of its allocations that were never freed.
pub fn exit_live_allocations(text: &str, module: &str) -> Option<u64> {
    strip_module_prefix(text, module)?
        .strip_prefix("exit: live_allocations=")?
        .trim()
        .parse()
        .ok()
}

/// A non-blocking reader of `/dev/kmsg`.
pub struct Kmsg {
    file: File,
}

impl Kmsg {
    /// Opens `/dev/kmsg`, positioned at the oldest record still in the ring buffer.
    pub fn open() -> io::Result<Kmsg> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        Ok(Kmsg { file })
    }

    /// Skips every record logged so far: later reads only return new records.
    pub fn seek_to_end(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::End(0)).map(drop)
    }

    /// Reads every record that is available now (without waiting for more).
    pub fn read_available(&mut self) -> io::Result<Vec<Record>> {
        let mut records = Vec::new();
        // One record is at most about 1 KiB of text plus its escaping and dictionary.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(record) = parse_record(&buf[..n]) {
                        records.push(record);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => records.push(Record {
                    level: 4,
                    facility: 0,
                    seq: 0,
                    timestamp_us: 0,
                    text: "ktest: (some kernel log records were overwritten before they could be read)"
                        .to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_record() {
        let record =
            parse_record(b"6,1234,5678901,-;rust_selftests: ok 1 alloc_align_1\n").unwrap();
        assert_eq!(
            record,
            Record {
                level: 6,
                facility: 0,
                seq: 1234,
                timestamp_us: 5678901,
                text: "rust_selftests: ok 1 alloc_align_1".to_string()
            }
        );
    }

    #[test]
    fn ignores_continuation_lines_and_extra_header_fields() {
        let raw = b"12,7,100,c,caller=T1;hello\n SUBSYSTEM=misc\n DEVICE=c10:123\n";
        let record = parse_record(raw).unwrap();
        assert_eq!(record.text, "hello");
        assert_eq!((record.facility, record.level), (1, 4));
    }

    #[test]
    fn text_may_contain_semicolons_and_commas() {
        let record = parse_record(b"6,1,2,-;a;b,c\n").unwrap();
        assert_eq!(record.text, "a;b,c");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_record(b"no header here"), None);
        assert_eq!(parse_record(b"x,1,2,-;text"), None);
        assert_eq!(parse_record(b"6,1;text"), None);
    }

    #[test]
    fn unescapes_hex() {
        assert_eq!(unescape(r"tab\x09here"), "tab\there");
        assert_eq!(unescape(r"back\x5cslash"), "back\\slash");
        assert_eq!(unescape(r"line1\x0aline2"), "line1\nline2");
        assert_eq!(unescape(r"bad\xZZ and \x4"), r"bad\xZZ and \x4");
        assert_eq!(unescape("plain"), "plain");
    }

    #[test]
    fn module_prefix() {
        assert_eq!(
            strip_module_prefix("rust_selftests: 1..12", "rust_selftests"),
            Some("1..12")
        );
        assert_eq!(
            strip_module_prefix("rust_selftestsX: 1..12", "rust_selftests"),
            None
        );
        assert_eq!(strip_module_prefix("chardev: hi", "rust_selftests"), None);
    }

    #[test]
    fn exit_record() {
        assert_eq!(
            exit_live_allocations("chardev: exit: live_allocations=0", "chardev"),
            Some(0)
        );
        assert_eq!(
            exit_live_allocations("chardev: exit: live_allocations=17", "chardev"),
            Some(17)
        );
        assert_eq!(
            exit_live_allocations("chardev: exit: live_allocations=x", "chardev"),
            None
        );
        assert_eq!(
            exit_live_allocations("other: exit: live_allocations=0", "chardev"),
            None
        );
        assert_eq!(exit_live_allocations("chardev: loaded", "chardev"), None);
    }
}
