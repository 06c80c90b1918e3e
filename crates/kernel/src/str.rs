//! Strings: `core::ffi::CStr` (written as `c"..."` literals) for C, [`StackString`] for
//! formatting without allocation, and [`parse_u64`]/[`parse_i64`] for numbers written to a
//! device or a sysfs file, with the kernel's `kstrtoull`/`kstrtoll` rules.

pub use core::ffi::CStr;

use crate::error::{code::EINVAL, code::ERANGE, Result};

/// Parses an unsigned number as the kernel's `kstrtoull` does: optional `+`, then digits in
/// `base` (2..=16), or with `base == 0` a `0x` prefix for hex, a leading `0` for octal, decimal
/// otherwise; one trailing newline is allowed (what `echo` writes). `ERANGE` if the value does
/// not fit in 64 bits, `EINVAL` for anything else that is not a number.
///
/// ```ignore
/// let limit = kernel::str::parse_u64(b"0x1000\n", 0)?; // 4096
/// ```
pub fn parse_u64(text: &[u8], base: u32) -> Result<u64> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let text = text.strip_prefix(b"+").unwrap_or(text);
    let (base, digits) = match base {
        0 => match text {
            [b'0', b'x' | b'X', rest @ ..] => (16, rest),
            [b'0', rest @ ..] if !rest.is_empty() => (8, rest),
            _ => (10, text),
        },
        16 => (
            16,
            text.strip_prefix(b"0x")
                .or(text.strip_prefix(b"0X"))
                .unwrap_or(text),
        ),
        2..=36 => (base, text),
        _ => return Err(EINVAL),
    };
    if digits.is_empty() {
        return Err(EINVAL);
    }
    let mut value: u64 = 0;
    for &c in digits {
        let digit = (c as char).to_digit(base).ok_or(EINVAL)?;
        value = value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(ERANGE)?;
    }
    Ok(value)
}

/// Parses a signed number as the kernel's `kstrtoll` does: [`parse_u64`]'s rules with an
/// optional leading `-`; `ERANGE` outside `i64`.
pub fn parse_i64(text: &[u8], base: u32) -> Result<i64> {
    match text.strip_prefix(b"-") {
        Some(rest) => {
            let magnitude = parse_u64(rest, base)?;
            0i64.checked_sub_unsigned(magnitude).ok_or(ERANGE)
        }
        None => i64::try_from(parse_u64(text, base)?).map_err(|_| ERANGE),
    }
}

/// A fixed-capacity, NUL-terminated string built on the stack with `core::fmt`; no allocation,
/// so it can be used in atomic context. Output that does not fit is truncated.
pub struct StackString<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackString<N> {
    /// An empty string.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The bytes written so far (without the NUL).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// A pointer to the NUL-terminated contents.
    pub fn as_ptr(&self) -> *const core::ffi::c_char {
        self.buf.as_ptr().cast()
    }
}

impl<const N: usize> Default for StackString<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Write for StackString<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // Keep one byte for the terminating NUL; truncate silently (printk does the same).
        let room = N.saturating_sub(1).saturating_sub(self.len);
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn parses_like_kstrtoull() {
        assert_eq!(parse_u64(b"42", 10), Ok(42));
        assert_eq!(parse_u64(b"42\n", 10), Ok(42));
        assert_eq!(parse_u64(b"+7", 0), Ok(7));
        assert_eq!(parse_u64(b"0x1f", 0), Ok(31));
        assert_eq!(parse_u64(b"0X1F", 16), Ok(31));
        assert_eq!(parse_u64(b"017", 0), Ok(15));
        assert_eq!(parse_u64(b"0", 0), Ok(0));
        assert_eq!(parse_u64(b"18446744073709551615", 10), Ok(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616", 10), Err(ERANGE));
        for bad in [&b""[..], b"\n", b"-1", b"12a", b" 1", b"1\n\n", b"0x", b"+"] {
            assert_eq!(parse_u64(bad, 0), Err(EINVAL), "{bad:?}");
        }
        assert_eq!(parse_u64(b"19", 8), Err(EINVAL));
        assert_eq!(parse_u64(b"1", 1), Err(EINVAL));
    }

    #[test]
    fn parses_like_kstrtoll() {
        assert_eq!(parse_i64(b"-42\n", 10), Ok(-42));
        assert_eq!(parse_i64(b"-0x10", 0), Ok(-16));
        assert_eq!(parse_i64(b"-9223372036854775808", 10), Ok(i64::MIN));
        assert_eq!(parse_i64(b"-9223372036854775809", 10), Err(ERANGE));
        assert_eq!(parse_i64(b"9223372036854775808", 10), Err(ERANGE));
        assert_eq!(parse_i64(b"--1", 10), Err(EINVAL));
    }

    #[test]
    fn truncates_and_stays_nul_terminated() {
        let mut s = StackString::<8>::new();
        write!(s, "abc-{}", 12345).unwrap();
        assert_eq!(s.as_bytes(), b"abc-123");
        assert_eq!(s.buf[7], 0);
    }
}
