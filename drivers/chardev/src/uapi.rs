//! The user-space interface of `/dev/rustpipe`: ioctl numbers and the statistics record, as a
//! C header would declare them (`struct rustpipe_stats`, `RUSTPIPE_IOC_*`).

use kernel::ioctl::{Io, Ior, Iow};
use kernel::zerocopy::{Immutable, IntoBytes};

/// The ioctl type letter of this driver.
pub const MAGIC: u8 = b'r';

/// `_IOR('r', 1, __u32)`: read the FIFO capacity in bytes.
pub type GetCapacity = Ior<u32, MAGIC, 0x01>;
/// `_IOW('r', 2, __u32)`: set the capacity (1..=[`MAX_CAPACITY`]); `EBUSY` if more bytes are
/// queued than would fit.
pub type SetCapacity = Iow<u32, MAGIC, 0x02>;
/// `_IO('r', 3)`: discard everything queued.
pub type Clear = Io<MAGIC, 0x03>;
/// `_IOR('r', 4, struct rustpipe_stats)`: read the statistics.
pub type GetStats = Ior<Stats, MAGIC, 0x04>;

/// The largest capacity (1 MiB).
pub const MAX_CAPACITY: u32 = 1 << 20;

/// `struct rustpipe_stats`.
#[derive(Clone, Copy, Debug, Default, IntoBytes, Immutable)]
#[zerocopy(crate = "kernel::zerocopy")]
#[repr(C)]
pub struct Stats {
    /// Bytes read since the module was loaded.
    pub bytes_read: u64,
    /// Bytes written since the module was loaded.
    pub bytes_written: u64,
    /// Bytes queued now.
    pub len: u32,
    /// Capacity now.
    pub capacity: u32,
    /// Open files of the device.
    pub open_files: u32,
    /// Always 0.
    pub reserved: u32,
    /// Heap blocks the module has allocated and not freed.
    pub live_allocations: u64,
}

const _: () = assert!(core::mem::size_of::<Stats>() == 40);
