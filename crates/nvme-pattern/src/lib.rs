//! The byte patterns of the NVMe test images, written once here for both sides: the host
//! (`xtask/src/nvmedisk.rs`) writes [`host`] blocks into each controller's fresh image and
//! checks the guest's [`guest`] blocks in it after the boot; the `nvme_lite` guest suite reads
//! the former and writes the latter.
//!
//! ```
//! let block = nvme_pattern::host(1, 32 << 20);
//! assert_eq!(block[..8], (32u64 << 20).to_le_bytes());
//! assert_eq!(nvme_pattern::guest(4096), nvme_pattern::host(0, 4096).map(|b| !b));
//! ```

#![no_std]
#![forbid(unsafe_code)]

/// The size of every pattern block.
pub const BLOCK: usize = 4096;

/// The size of each test image: 64 MiB, 131072 blocks of 512 bytes.
pub const IMAGE_SIZE: u64 = 64 << 20;

/// Where the host writes [`host`] blocks in each image: the first, one in the middle, the last.
pub const HOST_OFFSETS: [u64; 3] = [0, 32 << 20, IMAGE_SIZE - BLOCK as u64];

/// The block the host writes at `offset` of controller `image`'s image (0 or 1): byte `i` is
/// `(offset / 4096 + i * 7) as u8 ^ seed`, the seed `0x5a` for image 0 and `0xa5` for image 1,
/// and the first 8 bytes are the offset itself (little endian), so a block read from the wrong
/// place or the other controller's image is recognisable.
pub fn host(image: usize, offset: u64) -> [u8; BLOCK] {
    let seed = [0x5a, 0xa5][image];
    let mut b = [0u8; BLOCK];
    for (i, x) in b.iter_mut().enumerate() {
        *x = ((offset / BLOCK as u64) as u8).wrapping_add((i as u8).wrapping_mul(7)) ^ seed;
    }
    b[..8].copy_from_slice(&offset.to_le_bytes());
    b
}

/// The block the guest writes at `offset` (of image 0) for the host to find: [`host`]`(0,
/// offset)` with every bit inverted.
pub fn guest(offset: u64) -> [u8; BLOCK] {
    host(0, offset).map(|b| !b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_differ_by_image_offset_and_writer() {
        assert_eq!(
            host(0, 0)[8..12],
            [0x5a ^ 56, 0x5a ^ 63, 0x5a ^ 70, 0x5a ^ 77]
        );
        assert_ne!(host(0, 4096), host(1, 4096));
        assert_ne!(host(0, 4096), host(0, 8192));
        assert_ne!(guest(4096), host(0, 4096));
        assert_eq!(
            host(1, IMAGE_SIZE - 4096)[..8],
            (IMAGE_SIZE - 4096).to_le_bytes()
        );
    }
}
