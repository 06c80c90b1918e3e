//! Data structures in memory (NVMe 1.4, sections 4.2, 4.6, 5.15): commands, completions,
//! Identify pages. All little-endian (`zerocopy`'s `U16`/`U32`/`U64`), sizes asserted.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Admin command opcodes (figure 139).
pub mod admin_opcode {
    /// Delete I/O Submission Queue.
    pub const DELETE_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_SQ: u8 = 0x01;
    /// Delete I/O Completion Queue.
    pub const DELETE_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort: CDW10 = SQID (15:0) and CID (31:16) of the command to abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
}

/// NVM command set opcodes (figure 346).
pub mod io_opcode {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
}

/// Feature identifiers (figure 271).
pub mod feature {
    /// Number of Queues.
    pub const NUM_QUEUES: u32 = 0x07;
}

/// Identify CNS values (figure 245).
pub mod cns {
    /// Identify Namespace data structure for the NSID.
    pub const NAMESPACE: u32 = 0x00;
    /// Identify Controller data structure.
    pub const CONTROLLER: u32 = 0x01;
}

/// Submission Queue Entry: a command (figure 105), 64 bytes.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Command {
    /// CDW0 7:0 - Opcode.
    pub opcode: u8,
    /// CDW0 15:8 - fused operation, PRP or SGL (0: PRPs).
    pub flags: u8,
    /// CDW0 31:16 - Command Identifier.
    pub cid: U16,
    /// Namespace Identifier.
    pub nsid: U32,
    pub cdw2: U32,
    pub cdw3: U32,
    /// Metadata Pointer.
    pub mptr: U64,
    /// Data Pointer: PRP Entry 1.
    pub prp1: U64,
    /// Data Pointer: PRP Entry 2 (or a PRP list).
    pub prp2: U64,
    pub cdw10: U32,
    pub cdw11: U32,
    pub cdw12: U32,
    pub cdw13: U32,
    pub cdw14: U32,
    pub cdw15: U32,
}
const _: () = assert!(size_of::<Command>() == 64);

/// Completion Queue Entry (figure 121), 16 bytes.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Completion {
    /// DW0 - command specific result.
    pub result: U32,
    pub dw1: U32,
    /// SQ Head Pointer.
    pub sq_head: U16,
    /// SQ Identifier.
    pub sq_id: U16,
    /// Command Identifier.
    pub cid: U16,
    /// Bit 0: Phase Tag; bits 15:1: Status Field (SC 8:1, SCT 11:9, ..., DNR 15).
    pub status: U16,
}
const _: () = assert!(size_of::<Completion>() == 16);

impl Completion {
    /// The Phase Tag: flips each time the controller wraps around the queue.
    pub fn phase(&self) -> bool {
        self.status.get() & 1 != 0
    }
    /// The Status Field without the phase bit (0: success).
    pub fn status_field(&self) -> u16 {
        self.status.get() >> 1
    }
}

/// Identify Controller data structure (figure 247), 4096 bytes; the fields we use.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IdentifyController {
    /// PCI Vendor ID.
    pub vid: U16,
    /// PCI Subsystem Vendor ID.
    pub ssvid: U16,
    /// Serial Number (ASCII, space padded).
    pub sn: [u8; 20],
    /// Model Number (ASCII, space padded).
    pub mn: [u8; 40],
    /// Firmware Revision.
    pub fr: [u8; 8],
    pub rab: u8,
    pub ieee: [u8; 3],
    pub cmic: u8,
    /// Maximum Data Transfer Size: `2 ^ MDTS` minimum pages (0: no limit).
    pub mdts: u8,
    /// Controller ID.
    pub cntlid: U16,
    /// Version.
    pub ver: U32,
    _rsvd84: [u8; 428],
    /// Submission Queue Entry Size.
    pub sqes: u8,
    /// Completion Queue Entry Size.
    pub cqes: u8,
    pub maxcmd: U16,
    /// Number of Namespaces.
    pub nn: U32,
    /// Optional NVM Command Support.
    pub oncs: U16,
    pub fuses: U16,
    pub fna: u8,
    /// Volatile Write Cache: bit 0, present.
    pub vwc: u8,
    _rsvd526: [u8; 3570],
}
const _: () = assert!(size_of::<IdentifyController>() == 4096);
const _: () = assert!(core::mem::offset_of!(IdentifyController, nn) == 516);

/// LBA Format Data Structure (figure 250).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct LbaFormat {
    /// Metadata Size.
    pub ms: U16,
    /// LBA Data Size: `2 ^ LBADS` bytes.
    pub lbads: u8,
    /// Relative Performance (bits 1:0).
    pub rp: u8,
}

/// Identify Namespace data structure (figure 249), 4096 bytes; the fields we use.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IdentifyNamespace {
    /// Namespace Size, in logical blocks.
    pub nsze: U64,
    /// Namespace Capacity.
    pub ncap: U64,
    /// Namespace Utilization.
    pub nuse: U64,
    pub nsfeat: u8,
    /// Number of LBA Formats (zero-based).
    pub nlbaf: u8,
    /// Formatted LBA Size: bits 3:0 index `lbaf`.
    pub flbas: u8,
    _rsvd27: [u8; 101],
    /// LBA Format 0..15 Support.
    pub lbaf: [LbaFormat; 16],
    _rsvd192: [u8; 3904],
}
const _: () = assert!(size_of::<IdentifyNamespace>() == 4096);
const _: () = assert!(core::mem::offset_of!(IdentifyNamespace, lbaf) == 128);

impl IdentifyNamespace {
    /// The logical block size in bytes of the format in use.
    pub fn block_size(&self) -> u32 {
        let f = self.lbaf[(self.flbas & 0xf) as usize];
        1u32.checked_shl(f.lbads.into()).unwrap_or(0)
    }
}

/// An ASCII identify string with its padding removed.
pub fn ascii(field: &[u8]) -> &str {
    core::str::from_utf8(field)
        .unwrap_or("?")
        .trim_end_matches([' ', '\0'])
}
