//! The driver model's `struct device`: [`Device`], borrowed for the duration of a bus callback,
//! and [`DeviceRef`], a counted reference for what outlives one callback (DMA allocations, a
//! disk, log lines naming the device).

use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::ops::Deref;
use core::ptr::NonNull;
use kernel_sys as bindings;

/// A device (`struct device`), borrowed for the duration of a bus callback (`probe`,
/// `remove`) or while a [`DeviceRef`] or a registration holds a reference on it.
///
/// # Invariants
/// A `&Device` is a live `struct device` for as long as the borrow lasts.
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

    /// A counted reference to this device (`get_device`), to keep beyond the borrow.
    pub fn to_ref(&self) -> DeviceRef {
        // SAFETY: live (type invariant); get_device takes one more reference (and returns
        // its argument), which the new value owns.
        unsafe { bindings::get_device(self.as_raw()) };
        // INVARIANT: we hold the reference get_device took; `Device` is transparent over the
        // C struct.
        DeviceRef {
            ptr: NonNull::from(self).cast(),
        }
    }

    /// The device's name as C sees it (`9030000.pl061`, `0000:00:03.0`), as in
    /// `/sys/bus/*/devices/`.
    pub fn c_name(&self) -> &CStr {
        // SAFETY: a live device (type invariant); its name is a NUL-terminated string set
        // before registration and not changed after, living as long as the device.
        unsafe { CStr::from_ptr(bindings::rust_helper_dev_name(self.as_raw())) }
    }

    /// The device's name, for log lines.
    pub fn name(&self) -> &str {
        self.c_name().to_str().unwrap_or("?")
    }
}

/// A counted reference to a `struct device`: cloning takes a reference (`get_device`),
/// dropping puts it (`put_device`). The structure stays allocated while a reference exists;
/// whether a driver is still bound to it is another matter (see the bus drivers).
///
/// # Invariants
/// `ptr` points to a live `struct device` on which this value holds one reference.
pub struct DeviceRef {
    ptr: NonNull<bindings::device>,
}

// SAFETY: the reference count is atomic, and the kernel's device API may be used from any
// thread.
unsafe impl Send for DeviceRef {}
// SAFETY: see `Send`: `&DeviceRef` only allows calls the kernel makes thread-safe.
unsafe impl Sync for DeviceRef {}

impl DeviceRef {
    /// Takes a new reference on `ptr`.
    ///
    /// # Safety
    /// `ptr` points to a live `struct device` (the caller holds a reference, or the driver core
    /// does for the duration of a callback).
    pub(crate) unsafe fn get(ptr: *mut bindings::device) -> DeviceRef {
        // SAFETY: live for this call (function contract).
        unsafe { Device::from_raw(ptr) }.to_ref()
    }
}

impl Deref for DeviceRef {
    type Target = Device;
    fn deref(&self) -> &Device {
        // SAFETY: live while we hold our reference (type invariant).
        unsafe { Device::from_raw(self.ptr.as_ptr()) }
    }
}

impl Clone for DeviceRef {
    fn clone(&self) -> Self {
        self.to_ref()
    }
}

impl Drop for DeviceRef {
    fn drop(&mut self) {
        // SAFETY: we hold one reference (type invariant) and give it back.
        unsafe { bindings::put_device(self.ptr.as_ptr()) };
    }
}
