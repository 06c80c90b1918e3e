//! AMBA (ARM PrimeCell) bus drivers: devices matched by peripheral ID.
//!
//! A driver implements [`Driver`] (probe returns the per-device data, which lives until the
//! device is unbound), declares its ID table with [`amba_device_table!`](crate::amba_device_table)
//! (which also emits the `MODULE_DEVICE_TABLE` symbol, so modpost writes the `amba:d...`
//! aliases), and registers with [`Registration::register`]; dropping the registration
//! unregisters the driver, which unbinds (removes) every device it is bound to first.
//!
//! ```ignore
//! kernel::amba_device_table!(PL061_IDS, [amba::DeviceId::new(0x0004_1061, 0x000f_ffff)]);
//! impl amba::Driver for MyDriver {
//!     type Data = MyState;
//!     const NAME: &'static CStr = c"my_driver";
//!     const ID_TABLE: amba::IdTableRef = PL061_IDS.as_ref();
//!     fn probe(dev: &amba::Device) -> Result<MyState> { ... }
//! }
//! ```

use crate::alloc::{Gfp, KBox};
use crate::device;
use crate::error::{code::*, Result};
use crate::io::IoRegion;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void, CStr};
use core::marker::{PhantomData, PhantomPinned};
use core::pin::Pin;
use kernel_sys as bindings;

/// One entry of an ID table: a device matches when `periphid & mask == id`.
#[repr(transparent)]
pub struct DeviceId(bindings::amba_id);

impl DeviceId {
    /// Matches peripheral ID `id` under `mask`.
    pub const fn new(id: u32, mask: u32) -> Self {
        Self(bindings::amba_id {
            id,
            mask,
            data: core::ptr::null_mut(),
        })
    }

    /// The all-zeroes entry that ends a table.
    #[doc(hidden)]
    pub const fn terminator() -> Self {
        Self::new(0, 0)
    }
}

/// A zero-terminated ID table, as the AMBA core and modpost read it. Declare one with
/// [`amba_device_table!`](crate::amba_device_table).
///
/// # Invariants
/// The last entry is the all-zeroes terminator.
#[repr(transparent)]
pub struct IdTable<const N: usize>([DeviceId; N]);

// SAFETY: immutable after link time; the `data` pointers are always NULL.
unsafe impl<const N: usize> Sync for IdTable<N> {}

impl<const N: usize> IdTable<N> {
    /// Builds the table; fails the build unless the last entry is the terminator.
    #[doc(hidden)]
    pub const fn new(ids: [DeviceId; N]) -> Self {
        assert!(N > 0 && ids[N - 1].0.id == 0 && ids[N - 1].0.mask == 0);
        // INVARIANT: checked above.
        Self(ids)
    }

    /// A reference to the table for [`Driver::ID_TABLE`].
    pub const fn as_ref(&'static self) -> IdTableRef {
        IdTableRef(self.0.as_ptr().cast())
    }
}

/// A reference to a `'static` [`IdTable`].
///
/// # Invariants
/// Points to a zero-terminated `'static` table.
#[derive(Clone, Copy)]
pub struct IdTableRef(*const bindings::amba_id);

/// Declares a `'static` AMBA ID table named `$name` and its `MODULE_DEVICE_TABLE` symbol
/// `__mod_amba__<name>_device_table`, from which modpost generates the module's aliases.
#[macro_export]
macro_rules! amba_device_table {
    ($name:ident, [$($id:expr),+ $(,)?]) => {
        #[cfg_attr(not(test), export_name =
            ::core::concat!("__mod_amba__", ::core::stringify!($name), "_device_table"))]
        static $name: $crate::amba::IdTable<{ [$(::core::stringify!($id)),+].len() + 1 }> =
            $crate::amba::IdTable::new([$($id,)+ $crate::amba::DeviceId::terminator()]);
    };
}

/// An AMBA device, as the bus hands it to [`Driver::probe`] and [`Driver::remove`].
///
/// # Invariants
/// A live, registered `struct amba_device` for the duration of the borrow.
#[repr(transparent)]
pub struct Device(UnsafeCell<bindings::amba_device>);

impl Device {
    /// # Safety
    /// `ptr` is live for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::amba_device) -> &'a Device {
        // SAFETY: transparent wrapper; live for 'a (caller).
        unsafe { &*ptr.cast::<Device>() }
    }

    fn as_raw(&self) -> *mut bindings::amba_device {
        self.0.get()
    }

    /// The generic device.
    pub fn as_dev(&self) -> &device::Device {
        // SAFETY: `dev` is embedded in the live amba_device (type invariant), so it lives as
        // long as `self`'s borrow.
        unsafe { device::Device::from_raw(bindings::rust_helper_amba_device_dev(self.as_raw())) }
    }

    /// The peripheral ID read from the device (`0x00041061` for a PL061).
    pub fn periphid(&self) -> u32 {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rust_helper_amba_device_periphid(self.as_raw()) }
    }

    /// The Linux interrupt number of the device's interrupt `index`, if it has one.
    pub fn irq(&self, index: u32) -> Option<u32> {
        // SAFETY: a live device (type invariant); the helper bounds-checks `index`.
        match unsafe { bindings::rust_helper_amba_device_irq(self.as_raw(), index) } {
            0 => None,
            irq => Some(irq),
        }
    }

    /// Requests and maps the device's register window (its memory resource), `SIZE` bytes of
    /// it: `EINVAL` if the resource is smaller, `EBUSY` if another driver holds it. The range is
    /// recorded in `/proc/iomem` under `name`.
    pub fn iomap<const SIZE: usize>(&self, name: &'static CStr) -> Result<IoRegion<SIZE>> {
        // SAFETY: a live device (type invariant).
        let (start, size) = unsafe {
            (
                bindings::rust_helper_amba_device_mem_start(self.as_raw()),
                bindings::rust_helper_amba_device_mem_size(self.as_raw()),
            )
        };
        if size < SIZE as u64 {
            return Err(EINVAL);
        }
        // SAFETY: the first `SIZE` bytes of this device's own memory resource are its
        // registers, and the caller is the device's driver (`&Device` comes from probe).
        unsafe { IoRegion::map(start, name) }
    }
}

/// An AMBA driver.
pub trait Driver: 'static {
    /// What [`probe`](Self::probe) returns for each bound device; dropped when the device is
    /// unbound (after [`remove`](Self::remove)).
    type Data: Send + Sync + 'static;
    /// The driver's name (`/sys/bus/amba/drivers/<NAME>`, what `driver_override` names).
    const NAME: &'static CStr;
    /// The peripheral IDs it binds to.
    const ID_TABLE: IdTableRef;

    /// A matching device appeared: set it up.
    fn probe(dev: &Device) -> Result<Self::Data>;

    /// The device is being unbound; `data` is dropped when this returns.
    fn remove(_dev: &Device, _data: &Self::Data) {}
}

/// A registered AMBA driver; dropping it unregisters the driver (unbinding its devices).
///
/// # Invariants
/// `drv` is registered with the AMBA bus while `self` exists, and never moves.
pub struct Registration<T: Driver> {
    drv: Pin<KBox<DriverBox>>,
    _driver: PhantomData<T>,
}

struct DriverBox {
    drv: UnsafeCell<bindings::amba_driver>,
    _pin: PhantomPinned,
}

// SAFETY: after registration only the driver core touches the C struct, under its own locks.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: as above; `&Registration` gives access to nothing.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Registers the driver: devices that match (and are not bound) are probed before this
    /// returns.
    pub fn register(flags: Gfp) -> Result<Self> {
        let mut drv = bindings::amba_driver {
            probe: Some(probe::<T>),
            remove: Some(remove::<T>),
            id_table: T::ID_TABLE.0,
            ..Default::default()
        };
        // SAFETY: a plain store of two pointers into our own, not yet registered, struct; the
        // name is 'static, and the owner is this module.
        unsafe {
            bindings::rust_helper_amba_driver_set_name(
                &mut drv,
                T::NAME.as_ptr(),
                &raw const crate::module::__THIS_MODULE as *mut bindings::module,
            )
        };
        let drv = KBox::pin(
            DriverBox {
                drv: UnsafeCell::new(drv),
                _pin: PhantomPinned,
            },
            flags,
        )?;
        // SAFETY: fully initialised and pinned; stays registered until `drop`.
        crate::error::to_result(unsafe {
            bindings::rust_helper_amba_driver_register(drv.drv.get())
        })?;
        // INVARIANT: registered above.
        Ok(Self {
            drv,
            _driver: PhantomData,
        })
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant). Unregistering unbinds every device (running
        // `remove`) and returns when no callback of ours runs any more.
        unsafe { bindings::rust_helper_amba_driver_unregister(self.drv.drv.get()) };
    }
}

unsafe extern "C" fn probe<T: Driver>(
    adev: *mut bindings::amba_device,
    _id: *const bindings::amba_id,
) -> c_int {
    // SAFETY: the bus passes a live device for the duration of probe.
    let dev = unsafe { Device::from_raw(adev) };
    let result = (|| -> Result {
        let slot = KBox::<T::Data>::new_uninit(Gfp::KERNEL)?;
        let data = KBox::write(slot, T::probe(dev)?);
        // SAFETY: a live device; the pointer is taken back in `remove` (probe succeeded, so
        // remove will run exactly once).
        unsafe {
            bindings::rust_helper_amba_set_drvdata(adev, KBox::into_raw(data).cast::<c_void>())
        };
        Ok(())
    })();
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn remove<T: Driver>(adev: *mut bindings::amba_device) {
    // SAFETY: the bus passes a live device; `probe` succeeded on it and stored our data.
    let (dev, data) = unsafe {
        let data = KBox::from_raw(bindings::rust_helper_amba_get_drvdata(adev).cast::<T::Data>());
        bindings::rust_helper_amba_set_drvdata(adev, core::ptr::null_mut());
        (Device::from_raw(adev), data)
    };
    T::remove(dev, &data);
    drop(data);
}
