//! The driver model's `struct device`, as bus drivers hand it to their callbacks.

use core::cell::UnsafeCell;
use core::ffi::CStr;
use kernel_sys as bindings;

/// A device (`struct device`), borrowed for the duration of a bus callback (`probe`,
/// `remove`) or while a registration holds a reference on it.
///
/// # Invariants
/// A `&Device` is a live, registered `struct device` for as long as the borrow lasts.
#[repr(transparent)]
pub struct Device(UnsafeCell<bindings::device>);

// SAFETY: the driver core synchronises its own accesses; `&Device` only reads the name and
// takes references.
unsafe impl Sync for Device {}
// SAFETY: as above.
unsafe impl Send for Device {}

impl Device {
    /// # Safety
    /// `ptr` is a live device that stays live for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::device) -> &'a Device {
        // SAFETY: `Device` is a transparent wrapper of the C struct; live for 'a (caller).
        unsafe { &*ptr.cast::<Device>() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        self.0.get()
    }

    /// The device's name (`9030000.pl061`), as in `/sys/bus/*/devices/`.
    pub fn name(&self) -> &CStr {
        // SAFETY: a live device (type invariant); its name is a NUL-terminated string that
        // lives as long as the device.
        unsafe { CStr::from_ptr(bindings::rust_helper_dev_name(self.as_raw())) }
    }
}
