//! Interrupt handlers.
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

use crate::error::{to_result, Result};
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
///
/// # Invariants
/// `handler` is registered for `irq` with `dev_id` = `Arc::as_ptr` of it, until dropped.
pub struct Registration<T: Handler> {
    irq: u32,
    handler: Arc<T>,
}

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
        let dev_id = &*handler as *const T as *mut c_void;
        // SAFETY: `irq` is ours (function contract); `name` is static; `dev_id` points to the
        // handler, which the registration keeps alive until `free_irq` returned.
        to_result(unsafe {
            bindings::request_threaded_irq(
                irq,
                Some(handle::<T>),
                None,
                flags.into(),
                name.as_ptr(),
                dev_id,
            )
        })?;
        // INVARIANT: registered above.
        Ok(Self { irq, handler })
    }

    /// The interrupt number.
    pub fn irq(&self) -> u32 {
        self.irq
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<T> {
        &self.handler
    }
}

impl<T: Handler> Drop for Registration<T> {
    fn drop(&mut self) {
        let dev_id = &*self.handler as *const T as *mut c_void;
        // SAFETY: registered with this `dev_id` (type invariant). free_irq waits for running
        // handlers, so none uses the `Arc` after this.
        unsafe { bindings::free_irq(self.irq, dev_id) };
    }
}

unsafe extern "C" fn handle<T: Handler>(_irq: c_int, dev_id: *mut c_void) -> bindings::irqreturn_t {
    // SAFETY: `dev_id` is the handler a live `Registration` keeps alive (its type invariant):
    // `free_irq` waits for this call before the reference is released.
    let handler = unsafe { &*(dev_id as *const T) };
    match handler.handle() {
        IrqReturn::None => bindings::IRQ_NONE as _,
        IrqReturn::Handled => bindings::IRQ_HANDLED as _,
    }
}
