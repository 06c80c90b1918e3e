//! The driver model's `struct device`: a reference-counted handle to a device, for what outlives
//! one callback (DMA allocations, log lines naming the device).

use core::ptr::NonNull;
use kernel_sys as bindings;

/// A counted reference to a `struct device`: cloning takes a reference (`get_device`),
/// dropping puts it (`put_device`). The structure stays allocated while a reference exists;
/// whether a driver is still bound to it is another matter (see `pci::Driver`).
///
/// # Invariants
/// `ptr` points to a live `struct device` on which this value holds one reference.
pub struct Device {
    ptr: NonNull<bindings::device>,
}

// SAFETY: the reference count is atomic, and the kernel's device API may be used from any
// thread.
unsafe impl Send for Device {}
// SAFETY: see `Send`: `&Device` only allows calls the kernel makes thread-safe.
unsafe impl Sync for Device {}

impl Device {
    /// Takes a new reference on `ptr`.
    ///
    /// # Safety
    /// `ptr` points to a live `struct device` (the caller holds a reference, or the driver core
    /// does for the duration of a callback).
    pub(crate) unsafe fn get(ptr: *mut bindings::device) -> Device {
        // SAFETY: live (function contract); get_device returns its argument.
        let ptr = unsafe { bindings::get_device(ptr) };
        // INVARIANT: we now hold the reference get_device took.
        Device {
            ptr: NonNull::new(ptr).expect("get_device of a live device"),
        }
    }

    /// The raw pointer, for the abstractions' calls into C.
    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        self.ptr.as_ptr()
    }

    /// The device's name (`0000:00:03.0` for a PCI function).
    pub fn name(&self) -> &str {
        // SAFETY: the device is live (type invariant); its name is a NUL-terminated string
        // that lives as long as the device (it is set before registration and not changed
        // after).
        let name =
            unsafe { core::ffi::CStr::from_ptr(bindings::rust_helper_dev_name(self.as_raw())) };
        name.to_str().unwrap_or("?")
    }
}

impl Clone for Device {
    fn clone(&self) -> Self {
        // SAFETY: live, and we hold a reference (type invariant).
        unsafe { Device::get(self.as_raw()) }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: we hold one reference (type invariant) and give it back.
        unsafe { bindings::put_device(self.as_raw()) };
    }
}
