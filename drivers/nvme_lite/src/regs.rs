//! Controller registers (NVMe 1.4, section 3.1 "Register Definition"), in BAR0.
//!
//! Offsets are named constants; multi-bit fields are methods named as in the spec, single bits
//! are `bitflags`.

use bitflags::bitflags;

/// 0x00 - Controller Capabilities (64 bits).
pub const CAP: usize = 0x00;
/// 0x08 - Version.
pub const VS: usize = 0x08;
/// 0x14 - Controller Configuration.
pub const CC: usize = 0x14;
/// 0x1c - Controller Status.
pub const CSTS: usize = 0x1c;
/// 0x24 - Admin Queue Attributes.
pub const AQA: usize = 0x24;
/// 0x28 - Admin Submission Queue Base Address (64 bits).
pub const ASQ: usize = 0x28;
/// 0x30 - Admin Completion Queue Base Address (64 bits).
pub const ACQ: usize = 0x30;
/// 0x1000 - Submission Queue 0 Tail Doorbell; queue `y`'s doorbells follow with a stride of
/// `4 << CAP.DSTRD` bytes (SQ y tail, then CQ y head).
pub const DOORBELLS: usize = 0x1000;

/// The part of BAR0 every controller has: registers and the admin queue's doorbells.
pub const BAR0_MIN: usize = 0x1008;

/// CAP: Controller Capabilities.
#[derive(Clone, Copy, Debug)]
pub struct Cap(pub u64);

impl Cap {
    /// Maximum Queue Entries Supported (bits 15:0, zero-based).
    pub fn mqes(self) -> u32 {
        (self.0 & 0xffff) as u32 + 1
    }
    /// Timeout (bits 31:24): worst-case time for CSTS.RDY to change, in 500 ms units.
    pub fn timeout_ms(self) -> u64 {
        ((self.0 >> 24) & 0xff) * 500
    }
    /// Doorbell Stride (bits 35:32): doorbells are `4 << DSTRD` bytes apart.
    pub fn doorbell_stride(self) -> usize {
        4 << ((self.0 >> 32) & 0xf)
    }
    /// Command Sets Supported (bits 44:37), bit 0: the NVM command set.
    pub fn supports_nvm(self) -> bool {
        (self.0 >> 37) & 1 != 0
    }
    /// Memory Page Size Minimum (bits 51:48): `2 ^ (12 + MPSMIN)` bytes.
    pub fn mpsmin(self) -> u32 {
        ((self.0 >> 48) & 0xf) as u32
    }
}

bitflags! {
    /// CC: Controller Configuration (single bits; see [`Cc::new`] for the fields).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Cc: u32 {
        /// Enable.
        const EN = 1 << 0;
        /// Shutdown Notification (bits 15:14) = 01b: normal shutdown.
        const SHN_NORMAL = 1 << 14;
        /// Shutdown Notification = 10b: abrupt shutdown.
        const SHN_ABRUPT = 2 << 14;
        const _ = !0;
    }
}

impl Cc {
    /// The configuration we enable with: NVM command set (CSS 6:4 = 0), memory page size
    /// `2 ^ (12 + mps)` (MPS 10:7), round robin (AMS 13:11 = 0), 64-byte submission entries
    /// (IOSQES 19:16 = 6) and 16-byte completion entries (IOCQES 23:20 = 4).
    pub fn new(mps: u32) -> Cc {
        Cc::from_bits_retain(((mps & 0xf) << 7) | (6 << 16) | (4 << 20)) | Cc::EN
    }
}

bitflags! {
    /// CSTS: Controller Status.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Csts: u32 {
        /// Ready.
        const RDY = 1 << 0;
        /// Controller Fatal Status.
        const CFS = 1 << 1;
        /// Shutdown Status (bits 3:2) = 10b: shutdown processing complete.
        const SHST_COMPLETE = 2 << 2;
        /// Shutdown Status mask.
        const SHST_MASK = 3 << 2;
        const _ = !0;
    }
}

/// VS: Version, as `major.minor.tertiary`.
pub fn version(vs: u32) -> (u32, u32, u32) {
    (vs >> 16, (vs >> 8) & 0xff, vs & 0xff)
}
