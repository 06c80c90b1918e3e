//! Deliberate bugs for checking the checkers.
//!
//! A memory checker that never fires proves nothing. The function here contains a real bug on
//! purpose; the self-test module calls it only when loaded with `kasan_oob=1`, in a boot of
//! its own, and the host asserts that KASAN reported it. Never call it otherwise.

use crate::alloc::{Gfp, RawBlock};
use core::alloc::Layout;

/// Writes one byte just past the end of a 32-byte heap block: a slab out-of-bounds write that a
/// KASAN kernel must report (the block is freed again; without KASAN the byte lands in the
/// slab's padding or the next object — this is why it is a bug).
#[doc(hidden)]
#[inline(never)]
pub fn planted_out_of_bounds_write() {
    let Ok(layout) = Layout::from_size_align(32, 8) else {
        return;
    };
    let Ok(block) = RawBlock::new(layout, Gfp::KERNEL) else {
        return;
    };
    // SAFETY: none — this is the planted bug: `addr + 32` is one past the block. It is kept
    // because the self-tests need a real out-of-bounds write for KASAN to catch.
    unsafe { core::ptr::write_volatile((block.addr() + 32) as *mut u8, 0xa5) };
}
