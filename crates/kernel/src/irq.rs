//! Interrupts: handlers a driver registers ([`Handler`], [`Registration`]), and the vocabulary
//! of an interrupt chip a driver provides ([`Trigger`], [`Flow`], chained parent handlers; the
//! GPIO irqchip adapter, `gpio::IrqChip`, is built on it).
//!
//! A handler is a value implementing [`Handler`], shared through an [`Arc`]: the registration
//! holds one reference and hands the kernel a pointer to it. Dropping the
//! [`Registration`] calls `free_irq`, which waits for a running handler to finish, so the
//! handler's data outlives every call. Registrations are made through the device's interrupt
//! vectors ([`pci::IrqVectors::request`](crate::pci::IrqVectors::request)), which free the
//! vectors only after every handler on them.
//!
//! # Context
//!
//! [`Handler::handle`] runs in hard interrupt context: it must not sleep. It gets `&self`
//! only, so the state it shares with process context must be behind a
//! [`SpinLock`](crate::sync::SpinLock) (taken with `lock_irqsave` on the process side) or
//! atomics; allocation, if any, must use `Gfp::ATOMIC`. Debug kernels
//! (`CONFIG_DEBUG_ATOMIC_SLEEP`) report a violation as "sleeping function called from invalid
//! context".

use crate::error::{code::EINVAL, to_result, Result};
use crate::sync::Arc;
use core::ffi::{c_int, c_void, CStr};
use kernel_sys as bindings;

/// What a handler did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqReturn {
    /// The interrupt was not from this device (shared lines), or there was nothing to do.
    None,
    /// The interrupt was handled.
    Handled,
}

/// An interrupt handler (hard interrupt context: see the [module documentation](self)).
pub trait Handler: Send + Sync + 'static {
    /// The interrupt fired.
    fn handle(&self) -> IrqReturn;
}

/// A registered handler for one interrupt number; `free_irq` when dropped.
pub struct Registration<T: Handler>(Requested<T>);

impl<T: Handler> Registration<T> {
    /// Registers `handler` for `irq`.
    ///
    /// # Safety
    /// `irq` is an interrupt number the caller owns (allocated for its device) and keeps
    /// allocated until the registration is dropped.
    pub(crate) unsafe fn request(
        irq: u32,
        name: &'static CStr,
        flags: u32,
        handler: Arc<T>,
    ) -> Result<Self> {
        // SAFETY: `irq` is ours (function contract); `handle::<T>` takes `dev_id` as a `T`.
        unsafe { Requested::new(irq, name, flags, handler, Some(handle::<T>), None) }.map(Self)
    }

    /// The interrupt number.
    pub fn irq(&self) -> u32 {
        self.0.irq
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<T> {
        &self.0.handler
    }
}

/// One `request_threaded_irq`, undone by `free_irq` on drop: what both registration types
/// are. The handler's address is the `dev_id` the callbacks get.
///
/// # Invariants
/// `handler` is registered for `irq` with `dev_id` = `Arc::as_ptr` of it, until dropped.
struct Requested<T: Send + Sync + 'static> {
    irq: u32,
    handler: Arc<T>,
}

impl<T: Send + Sync + 'static> Requested<T> {
    /// # Safety
    /// `irq` is an interrupt number the caller owns and keeps allocated until the value is
    /// dropped; `primary` and `thread` take their `dev_id` as a `*const T`.
    unsafe fn new(
        irq: u32,
        name: &'static CStr,
        flags: u32,
        handler: Arc<T>,
        primary: bindings::irq_handler_t,
        thread: bindings::irq_handler_t,
    ) -> Result<Self> {
        let dev_id = &*handler as *const T as *mut c_void;
        // SAFETY: `irq` is ours (function contract); `name` is static; `dev_id` points to the
        // handler, which this value keeps alive until `free_irq` returned, and the callbacks
        // take it as what it is.
        to_result(unsafe {
            bindings::request_threaded_irq(
                irq,
                primary,
                thread,
                flags.into(),
                name.as_ptr(),
                dev_id,
            )
        })?;
        // INVARIANT: registered above.
        Ok(Self { irq, handler })
    }
}

impl<T: Send + Sync + 'static> Drop for Requested<T> {
    fn drop(&mut self) {
        let dev_id = &*self.handler as *const T as *mut c_void;
        // SAFETY: registered with this `dev_id` (type invariant). free_irq waits for a running
        // hard handler and stops the thread, so neither uses the `Arc` after this.
        unsafe { bindings::free_irq(self.irq, dev_id) };
    }
}

unsafe extern "C" fn handle<T: Handler>(_irq: c_int, dev_id: *mut c_void) -> bindings::irqreturn_t {
    // SAFETY: `dev_id` is the handler a live `Requested` keeps alive (its type invariant):
    // `free_irq` waits for this call before the reference is released.
    let handler = unsafe { &*(dev_id as *const T) };
    match handler.handle() {
        IrqReturn::None => bindings::IRQ_NONE as _,
        IrqReturn::Handled => bindings::IRQ_HANDLED as _,
    }
}

// ---------------------------------------------------------------------------------------------
// Threaded, oneshot handlers
// ---------------------------------------------------------------------------------------------

/// What a threaded handler's hard part did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadedReturn {
    /// The interrupt was not from this device.
    None,
    /// Handled completely: the thread does not run.
    Handled,
    /// Run [`ThreadedHandler::thread`] (`IRQ_WAKE_THREAD`).
    WakeThread,
}

/// An interrupt handler in two parts, registered oneshot (`IRQF_ONESHOT`): the interrupt stays
/// masked from the hard part until the thread part returned. That is what a level-triggered
/// interrupt needs when its source can only be quietened from process context: unmasking it
/// any earlier would fire it again at once, for as long as the level lasts.
pub trait ThreadedHandler: Send + Sync + 'static {
    /// Hard interrupt context (must not sleep, like [`Handler::handle`]).
    fn handle(&self) -> ThreadedReturn;
    /// The interrupt's kernel thread (process context: may sleep), with the interrupt masked.
    fn thread(&self) -> IrqReturn;
}

/// A registered [`ThreadedHandler`]; `free_irq` when dropped (which waits for both parts).
pub struct ThreadedRegistration<T: ThreadedHandler>(Requested<T>);

impl<T: ThreadedHandler> ThreadedRegistration<T> {
    /// Registers `handler` for `irq`, oneshot, with the `trigger` it asks of the interrupt
    /// chip (`Trigger::None`: the trigger the interrupt already has).
    ///
    /// # Safety
    /// As for [`Registration::request`]: `irq` is an interrupt number the caller owns and
    /// keeps allocated until the registration is dropped.
    pub(crate) unsafe fn request(
        irq: u32,
        name: &'static CStr,
        trigger: Trigger,
        handler: Arc<T>,
    ) -> Result<Self> {
        let flags = bindings::IRQF_ONESHOT | trigger.bits();
        // SAFETY: `irq` is ours (function contract); both callbacks take `dev_id` as a `T`.
        unsafe {
            Requested::new(
                irq,
                name,
                flags,
                handler,
                Some(handle_hard::<T>),
                Some(handle_thread::<T>),
            )
        }
        .map(Self)
    }

    /// The interrupt number.
    pub fn irq(&self) -> u32 {
        self.0.irq
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<T> {
        &self.0.handler
    }
}

unsafe extern "C" fn handle_hard<T: ThreadedHandler>(
    _irq: c_int,
    dev_id: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: as in `handle`: a live `Requested` keeps the handler alive.
    let handler = unsafe { &*(dev_id as *const T) };
    match handler.handle() {
        ThreadedReturn::None => bindings::IRQ_NONE as _,
        ThreadedReturn::Handled => bindings::IRQ_HANDLED as _,
        ThreadedReturn::WakeThread => bindings::IRQ_WAKE_THREAD as _,
    }
}

unsafe extern "C" fn handle_thread<T: ThreadedHandler>(
    _irq: c_int,
    dev_id: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: as in `handle_hard`.
    let handler = unsafe { &*(dev_id as *const T) };
    match handler.thread() {
        IrqReturn::None => bindings::IRQ_NONE as _,
        IrqReturn::Handled => bindings::IRQ_HANDLED as _,
    }
}

// ---------------------------------------------------------------------------------------------
// Interrupt chips
// ---------------------------------------------------------------------------------------------

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
    /// The `IRQ_TYPE_*` bits (equal to the `IRQF_TRIGGER_*` request flags).
    pub fn bits(self) -> u32 {
        match self {
            Trigger::None => bindings::IRQ_TYPE_NONE,
            Trigger::EdgeRising => bindings::IRQ_TYPE_EDGE_RISING,
            Trigger::EdgeFalling => bindings::IRQ_TYPE_EDGE_FALLING,
            Trigger::EdgeBoth => bindings::IRQ_TYPE_EDGE_RISING | bindings::IRQ_TYPE_EDGE_FALLING,
            Trigger::LevelHigh => bindings::IRQ_TYPE_LEVEL_HIGH,
            Trigger::LevelLow => bindings::IRQ_TYPE_LEVEL_LOW,
        }
    }

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
        for t in [
            Trigger::None,
            Trigger::EdgeRising,
            Trigger::EdgeFalling,
            Trigger::EdgeBoth,
            Trigger::LevelHigh,
            Trigger::LevelLow,
        ] {
            assert_eq!(Trigger::from_bits(t.bits()), Ok(t));
        }
    }
}
