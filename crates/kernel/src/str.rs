//! Strings shared with C: `core::ffi::CStr`, written as `c"..."` literals.

pub use core::ffi::CStr;

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
    fn truncates_and_stays_nul_terminated() {
        let mut s = StackString::<8>::new();
        write!(s, "abc-{}", 12345).unwrap();
        assert_eq!(s.as_bytes(), b"abc-123");
        assert_eq!(s.buf[7], 0);
    }
}
