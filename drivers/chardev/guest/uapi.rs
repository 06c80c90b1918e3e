//! The user-space API of the `rustpipe` driver, as its uapi header would declare it.
//!
//! ```c
//! /* include/uapi/linux/rustpipe.h (what the driver promises to user space) */
//! struct rustpipe_stats {
//!         __u64 bytes_read;        /* bytes returned by read() since the module was loaded */
//!         __u64 bytes_written;     /* bytes accepted by write() since the module was loaded */
//!         __u32 len;               /* bytes queued right now */
//!         __u32 capacity;          /* current capacity in bytes */
//!         __u32 open_files;        /* open file descriptions of /dev/rustpipe */
//!         __u32 reserved;          /* always 0 */
//!         __u64 live_allocations;  /* the module allocator's live block count */
//! };
//! #define RUSTPIPE_IOC_MAGIC        'r'
//! #define RUSTPIPE_IOC_GET_CAPACITY _IOR('r', 0x01, __u32)
//! #define RUSTPIPE_IOC_SET_CAPACITY _IOW('r', 0x02, __u32)
//! #define RUSTPIPE_IOC_CLEAR        _IO('r', 0x03)
//! #define RUSTPIPE_IOC_GET_STATS    _IOR('r', 0x04, struct rustpipe_stats)
//! ```
//!

use crate::uapi::{io, ior, iow};

/// The magic letter of all rustpipe ioctls.
pub const RUSTPIPE_IOC_MAGIC: u8 = b'r';
/// Writes the current capacity (a `u32`) to `*arg`.
pub const RUSTPIPE_IOC_GET_CAPACITY: u32 = ior::<u32>(RUSTPIPE_IOC_MAGIC, 0x01);
/// Sets the capacity from `*arg` (`u32`): `EINVAL` if 0 or above [`RUSTPIPE_MAX_CAPACITY`],
/// `EBUSY` if fewer than the bytes queued.
pub const RUSTPIPE_IOC_SET_CAPACITY: u32 = iow::<u32>(RUSTPIPE_IOC_MAGIC, 0x02);
/// Discards all queued bytes.
pub const RUSTPIPE_IOC_CLEAR: u32 = io(RUSTPIPE_IOC_MAGIC, 0x03);
/// Writes a [`RustpipeStats`] to `*arg`.
pub const RUSTPIPE_IOC_GET_STATS: u32 = ior::<RustpipeStats>(RUSTPIPE_IOC_MAGIC, 0x04);

/// The capacity the module starts with when loaded without a `capacity=` parameter.
pub const RUSTPIPE_DEFAULT_CAPACITY: u32 = 65536;
/// The largest valid capacity (1 MiB).
pub const RUSTPIPE_MAX_CAPACITY: u32 = 1 << 20;

/// `struct rustpipe_stats`, filled in by [`RUSTPIPE_IOC_GET_STATS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustpipeStats {
    /// Bytes returned by `read()` since the module was loaded.
    pub bytes_read: u64,
    /// Bytes accepted by `write()` since the module was loaded.
    pub bytes_written: u64,
    /// Bytes queued right now.
    pub len: u32,
    /// Current capacity in bytes.
    pub capacity: u32,
    /// Open file descriptions of the device.
    pub open_files: u32,
    /// Always 0.
    pub reserved: u32,
    /// The module allocator's count of live allocations.
    pub live_allocations: u64,
}

const _: () = assert!(std::mem::size_of::<RustpipeStats>() == 40);

impl RustpipeStats {
    /// Size of the C struct in bytes.
    pub const SIZE: usize = std::mem::size_of::<RustpipeStats>();

    /// Decodes the struct from the bytes the kernel wrote (native byte order).
    pub fn from_ne_bytes(bytes: &[u8; RustpipeStats::SIZE]) -> RustpipeStats {
        let u64_at = |i: usize| u64::from_ne_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_ne_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        RustpipeStats {
            bytes_read: u64_at(0),
            bytes_written: u64_at(8),
            len: u32_at(16),
            capacity: u32_at(20),
            open_files: u32_at(24),
            reserved: u32_at(28),
            live_allocations: u64_at(32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::{ioc, ioc_size, IOC_READ};
    use std::mem::offset_of;

    #[test]
    fn rustpipe_commands_have_the_linux_encoding() {
        // dir=READ(2)<<30 | size=4<<16 | 'r'(0x72)<<8 | nr
        assert_eq!(RUSTPIPE_IOC_GET_CAPACITY, 0x8004_7201);
        // dir=WRITE(1)<<30 | size=4<<16 | 'r'<<8 | 2
        assert_eq!(RUSTPIPE_IOC_SET_CAPACITY, 0x4004_7202);
        assert_eq!(RUSTPIPE_IOC_CLEAR, 0x0000_7203);
        // size 40 = 0x28
        assert_eq!(RUSTPIPE_IOC_GET_STATS, 0x8028_7204);
    }

    #[test]
    fn encoding_matches_the_platform_headers() {
        // TIOCGPTN is _IOR('T', 0x30, unsigned int) and TIOCSPTLCK is _IOW('T', 0x31, int) on
        // every architecture that uses the generic encoding; libc has the platform's values.
        assert_eq!(ior::<u32>(b'T', 0x30), libc::TIOCGPTN as u32);
        assert_eq!(iow::<i32>(b'T', 0x31), libc::TIOCSPTLCK as u32);
    }

    #[test]
    fn size_field_round_trips() {
        assert_eq!(ioc_size(RUSTPIPE_IOC_GET_STATS), 40);
        assert_eq!(ioc_size(RUSTPIPE_IOC_GET_CAPACITY), 4);
        assert_eq!(ioc_size(RUSTPIPE_IOC_CLEAR), 0);
        assert_eq!(
            ioc_size(ioc(IOC_READ, b'x', 1, (1 << 14) - 1)),
            (1 << 14) - 1
        );
    }

    #[test]
    fn stats_decode_from_bytes() {
        let mut bytes = [0u8; RustpipeStats::SIZE];
        bytes[0..8].copy_from_slice(&1u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&2u64.to_ne_bytes());
        bytes[16..20].copy_from_slice(&3u32.to_ne_bytes());
        bytes[20..24].copy_from_slice(&4u32.to_ne_bytes());
        bytes[24..28].copy_from_slice(&5u32.to_ne_bytes());
        bytes[28..32].copy_from_slice(&6u32.to_ne_bytes());
        bytes[32..40].copy_from_slice(&7u64.to_ne_bytes());
        let stats = RustpipeStats::from_ne_bytes(&bytes);
        assert_eq!(
            stats,
            RustpipeStats {
                bytes_read: 1,
                bytes_written: 2,
                len: 3,
                capacity: 4,
                open_files: 5,
                reserved: 6,
                live_allocations: 7
            }
        );
    }

    #[test]
    fn stats_layout_matches_the_c_struct() {
        assert_eq!(offset_of!(RustpipeStats, bytes_read), 0);
        assert_eq!(offset_of!(RustpipeStats, bytes_written), 8);
        assert_eq!(offset_of!(RustpipeStats, len), 16);
        assert_eq!(offset_of!(RustpipeStats, capacity), 20);
        assert_eq!(offset_of!(RustpipeStats, open_files), 24);
        assert_eq!(offset_of!(RustpipeStats, reserved), 28);
        assert_eq!(offset_of!(RustpipeStats, live_allocations), 32);
    }
}
