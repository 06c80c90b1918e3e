//! The user-space interface of `/dev/rustcount`, as a C header would declare it.

use kernel::ioctl::{Io, Ior};

/// The ioctl type letter of this driver.
pub const MAGIC: u8 = b'c';

/// `_IOR('c', 1, __u64)`: this open file's count.
pub type GetCount = Ior<u64, MAGIC, 1>;
/// `_IO('c', 2)`: reset this open file's count to 0 (the total is kept).
pub type Reset = Io<MAGIC, 2>;
