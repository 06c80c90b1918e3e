//! The byte FIFO behind `/dev/rustpipe`: a ring buffer of fixed, changeable capacity.
//!
//! The ring is a [`KVVec`]: any user may set the capacity to 1 MiB, which from kmalloc would be
//! an order-8 physically contiguous block; kvmalloc falls back to vmalloc instead.
//!
//! Pure data structure, no locking and no kernel calls, so it is unit-tested on the host. Data
//! moves in and out through slices of the ring (at most two, where it wraps), so the driver can
//! copy straight between user memory and the ring and commit only what was actually copied.

use kernel::alloc::{Gfp, KVVec};
use kernel::error::{code::EBUSY, Result};

/// A bounded byte FIFO.
///
/// # Invariants
/// `buf.len()` is the capacity; `head < buf.len()` (or 0 when empty capacity never happens:
/// capacity ≥ 1); `len <= buf.len()`; the queued bytes are `buf[head..]` then `buf[..]`
/// wrapping, `len` of them.
pub struct Fifo {
    buf: KVVec<u8>,
    head: usize,
    len: usize,
}

impl Fifo {
    /// An empty FIFO holding up to `capacity` (≥ 1) bytes.
    pub fn new(capacity: usize) -> Result<Self> {
        Ok(Self {
            buf: KVVec::from_elem(0, capacity, Gfp::KERNEL)?,
            head: 0,
            len: 0,
        })
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most bytes it can hold.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Room left.
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    /// Whether no byte fits.
    pub fn is_full(&self) -> bool {
        self.free() == 0
    }

    /// The oldest `n` (≤ len) queued bytes, as the two runs they occupy in the ring.
    pub fn peek(&self, n: usize) -> (&[u8], &[u8]) {
        let n = n.min(self.len);
        let first = n.min(self.capacity() - self.head);
        (
            &self.buf[self.head..self.head + first],
            &self.buf[..n - first],
        )
    }

    /// Drops the oldest `n` (≤ len) bytes.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % self.capacity();
        self.len -= n;
    }

    /// Room for the next `n` (≤ free) bytes, as the two runs it occupies in the ring. Bytes
    /// written there become part of the FIFO only on [`commit`](Self::commit).
    pub fn space(&mut self, n: usize) -> (&mut [u8], &mut [u8]) {
        let cap = self.capacity();
        let n = n.min(self.free());
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        let (before, from_tail) = self.buf.split_at_mut(tail);
        (&mut from_tail[..first], &mut before[..n - first])
    }

    /// Appends the first `n` (≤ free) bytes of [`space`](Self::space).
    pub fn commit(&mut self, n: usize) {
        self.len += n.min(self.free());
    }

    /// Discards everything queued.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Changes the capacity (≥ 1), keeping the queued bytes in order. `EBUSY` if more bytes
    /// are queued than would fit (nothing is lost); `ENOMEM` leaves the FIFO as it was.
    pub fn resize(&mut self, capacity: usize) -> Result {
        if capacity < self.len {
            return Err(EBUSY);
        }
        let mut buf = KVVec::with_capacity(capacity, Gfp::KERNEL)?;
        let (a, b) = self.peek(self.len);
        buf.extend_from_slice(a, Gfp::KERNEL)?;
        buf.extend_from_slice(b, Gfp::KERNEL)?;
        buf.resize(capacity, 0, Gfp::KERNEL)?;
        self.buf = buf;
        self.head = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(f: &mut Fifo, data: &[u8]) -> usize {
        let n = data.len().min(f.free());
        let (a, b) = f.space(n);
        let split = a.len();
        a.copy_from_slice(&data[..split]);
        b.copy_from_slice(&data[split..n]);
        f.commit(n);
        n
    }

    fn pop(f: &mut Fifo, n: usize) -> std::vec::Vec<u8> {
        let (a, b) = f.peek(n);
        let out = [a, b].concat();
        f.consume(out.len());
        out
    }

    #[test]
    fn keeps_order_across_wrap_around() {
        let mut f = Fifo::new(5).unwrap();
        assert_eq!(push(&mut f, b"abc"), 3);
        assert_eq!(pop(&mut f, 2), b"ab");
        assert_eq!(push(&mut f, b"defgh"), 4); // wraps; only 4 fit
        assert!(f.is_full());
        let (a, b) = f.peek(5);
        assert_eq!((a, b), (&b"cde"[..], &b"fg"[..]));
        assert_eq!(pop(&mut f, 10), b"cdefg");
        assert!(f.is_empty());
    }

    #[test]
    fn space_is_only_committed_on_commit() {
        let mut f = Fifo::new(4).unwrap();
        f.space(3).0.copy_from_slice(b"xyz");
        assert_eq!(f.len(), 0); // a fault mid-copy loses nothing: not committed
        push(&mut f, b"12");
        assert_eq!(pop(&mut f, 4), b"12");
    }

    #[test]
    fn matches_a_model_over_a_long_random_run() {
        let mut f = Fifo::new(7).unwrap();
        let mut model = std::collections::VecDeque::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = 0u8;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (seed % 9) as usize;
            if seed & 0x100 == 0 {
                let data: std::vec::Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                let put = push(&mut f, &data);
                assert_eq!(put, n.min(7 - model.len()));
                model.extend(&data[..put]);
                next = next.wrapping_add(put as u8);
            } else {
                let got = pop(&mut f, n);
                let want: std::vec::Vec<u8> = model.drain(..n.min(model.len())).collect();
                assert_eq!(got, want);
            }
            assert_eq!(f.len(), model.len());
        }
    }

    #[test]
    fn resize_keeps_data_and_refuses_to_lose_any() {
        let mut f = Fifo::new(4).unwrap();
        push(&mut f, b"ab");
        pop(&mut f, 1);
        push(&mut f, b"cde"); // wrapped: b c d e
        assert_eq!(f.resize(3), Err(EBUSY));
        assert_eq!(f.len(), 4);
        f.resize(10).unwrap();
        assert_eq!(f.capacity(), 10);
        push(&mut f, b"fgh");
        assert_eq!(pop(&mut f, 100), b"bcdefgh");
        f.resize(1).unwrap();
        assert_eq!(push(&mut f, b"zz"), 1);
    }

    #[test]
    fn clear_empties() {
        let mut f = Fifo::new(3).unwrap();
        push(&mut f, b"abc");
        f.clear();
        assert!(f.is_empty());
        assert_eq!(f.free(), 3);
    }
}
