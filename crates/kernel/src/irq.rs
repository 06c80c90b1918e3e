//! Interrupt chips: trigger types, flow handlers and chained (demultiplexing) parent handlers,
//! the vocabulary of an `irq_chip`. The GPIO irqchip adapter (`gpio::IrqChip`) is built on it.

use crate::error::{code::EINVAL, Result};
use kernel_sys as bindings;

/// How a line signals an interrupt (the consumer's `IRQ_TYPE_*` request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// No trigger configured (`IRQ_TYPE_NONE`): the line is disabled.
    None,
    /// Rising edge.
    EdgeRising,
    /// Falling edge.
    EdgeFalling,
    /// Both edges.
    EdgeBoth,
    /// While high.
    LevelHigh,
    /// While low.
    LevelLow,
}

impl Trigger {
    /// Decodes `IRQ_TYPE_*` bits. A request for both a level and an edge, or for both levels,
    /// is `EINVAL` (no chip can do both).
    pub fn from_bits(bits: u32) -> Result<Trigger> {
        let rising = bits & bindings::IRQ_TYPE_EDGE_RISING != 0;
        let falling = bits & bindings::IRQ_TYPE_EDGE_FALLING != 0;
        let high = bits & bindings::IRQ_TYPE_LEVEL_HIGH != 0;
        let low = bits & bindings::IRQ_TYPE_LEVEL_LOW != 0;
        Ok(match (rising, falling, high, low) {
            (false, false, false, false) => Trigger::None,
            (true, false, false, false) => Trigger::EdgeRising,
            (false, true, false, false) => Trigger::EdgeFalling,
            (true, true, false, false) => Trigger::EdgeBoth,
            (false, false, true, false) => Trigger::LevelHigh,
            (false, false, false, true) => Trigger::LevelLow,
            _ => return Err(EINVAL),
        })
    }
}

/// The flow handler an interrupt runs with, chosen by the chip for a trigger type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// `handle_edge_irq`: acknowledge first, then handle; edges during handling are not lost.
    Edge,
    /// `handle_level_irq`: mask and acknowledge, handle, unmask.
    Level,
    /// `handle_bad_irq`: the line is not configured; an interrupt is spurious.
    Bad,
}

impl Flow {
    pub(crate) fn handler(self) -> bindings::irq_flow_handler_t {
        Some(match self {
            Flow::Edge => bindings::handle_edge_irq,
            Flow::Level => bindings::handle_level_irq,
            Flow::Bad => bindings::handle_bad_irq,
        })
    }
}

/// Runs `f` between `chained_irq_enter` and `chained_irq_exit` of the parent interrupt `desc`:
/// the entry and exit of a chained handler (the parent is masked/acknowledged/EOId as its own
/// chip needs).
///
/// # Safety
/// Called from the chained handler of `desc`, with the `desc` it was given.
pub(crate) unsafe fn chained(desc: *mut bindings::irq_desc, f: impl FnOnce()) {
    // SAFETY: `desc` is the live descriptor of the running handler (caller).
    let chip = unsafe { bindings::rust_helper_irq_desc_get_chip(desc) };
    // SAFETY: as above; `chip` is the parent's chip.
    unsafe { bindings::rust_helper_chained_irq_enter(chip, desc) };
    /// Exits on every way out of `f`.
    struct Exit(*mut bindings::irq_chip, *mut bindings::irq_desc);
    impl Drop for Exit {
        fn drop(&mut self) {
            // SAFETY: entered above with the same chip and descriptor.
            unsafe { bindings::rust_helper_chained_irq_exit(self.0, self.1) };
        }
    }
    let _exit = Exit(chip, desc);
    f();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_decode_and_mixed_requests_fail() {
        let (r, f) = (
            bindings::IRQ_TYPE_EDGE_RISING,
            bindings::IRQ_TYPE_EDGE_FALLING,
        );
        let (h, l) = (bindings::IRQ_TYPE_LEVEL_HIGH, bindings::IRQ_TYPE_LEVEL_LOW);
        assert_eq!(Trigger::from_bits(0), Ok(Trigger::None));
        assert_eq!(Trigger::from_bits(r), Ok(Trigger::EdgeRising));
        assert_eq!(Trigger::from_bits(f), Ok(Trigger::EdgeFalling));
        assert_eq!(Trigger::from_bits(r | f), Ok(Trigger::EdgeBoth));
        assert_eq!(Trigger::from_bits(h), Ok(Trigger::LevelHigh));
        assert_eq!(Trigger::from_bits(l), Ok(Trigger::LevelLow));
        for mixed in [r | h, f | l, h | l, r | f | h] {
            assert_eq!(Trigger::from_bits(mixed), Err(EINVAL), "{mixed:#x}");
        }
    }
}
