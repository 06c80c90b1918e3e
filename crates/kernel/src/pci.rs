//! PCI drivers: a driver implements [`Driver`] (an ID table, `probe`, `remove`) and registers
//! it with [`Registration`]; dropping the registration unbinds every device and unregisters.
//!
//! The adapter below owns the C side: one `pci_driver` per registration pointing at static
//! callbacks, the driver's per-device data behind `pci_get_drvdata`, errors turned into errno
//! returns. Drivers never see a raw pointer.
//!
//! # Per-device resources and unbinding
//!
//! `probe` gets a [`Device`] borrowed for the call: it enables the function
//! ([`Device::enable_device_mem`]), turns on bus mastering, sets the DMA mask and maps BARs
//! ([`Device::iomap_region`], a [`Bar`] that releases the region when dropped), and returns the
//! driver's data, which owns those resources (BAR mappings, coherent DMA memory). On unbind
//! (device removal, `rmmod`, sysfs `unbind`) the adapter calls [`Driver::remove`] with the data
//! by value, so the driver can quiesce the hardware; the data is dropped right after (freeing
//! DMA memory, unmapping BARs), and only then does the adapter clear bus mastering and disable
//! the function. Nothing the data owned can be used after unbind, because nothing else owns
//! it.
//!
//! # ID tables
//!
//! [`pci_device_table!`](crate::pci_device_table) defines the table under the symbol
//! `__mod_pci__<module>_device_table`, so modpost writes `alias=pci:...` lines into the module
//! and udev/modprobe can load it for a matching device.

use crate::alloc::{Gfp, KBox, KVec};
use crate::device;
use crate::error::{code::*, to_result, Error, Result};
use crate::io::IoMem;
use crate::irq;
use crate::module::ThisModule;
use crate::sync::Arc;
use core::cell::{Cell, UnsafeCell};
use core::ffi::{c_int, CStr};
use core::marker::{PhantomData, PhantomPinned};
use core::pin::Pin;
use kernel_sys as bindings;

/// One entry of an ID table (`struct pci_device_id`), built with the `const fn`s below.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::pci_device_id);

const PCI_ANY_ID: u32 = !0;

impl DeviceId {
    /// Matches vendor and device ID, any subsystem.
    pub const fn new(vendor: u16, device: u16) -> DeviceId {
        DeviceId(bindings::pci_device_id {
            vendor: vendor as u32,
            device: device as u32,
            subvendor: PCI_ANY_ID,
            subdevice: PCI_ANY_ID,
            class: 0,
            class_mask: 0,
            driver_data: 0,
            override_only: 0,
        })
    }

    /// Matches any device whose 24-bit class code (base class, subclass, programming
    /// interface: `0x010802` is NVMe), masked with `mask`, equals `class`.
    pub const fn with_class(class: u32, mask: u32) -> DeviceId {
        DeviceId(bindings::pci_device_id {
            vendor: PCI_ANY_ID,
            device: PCI_ANY_ID,
            subvendor: PCI_ANY_ID,
            subdevice: PCI_ANY_ID,
            class,
            class_mask: mask,
            driver_data: 0,
            override_only: 0,
        })
    }

    const ZERO: DeviceId = DeviceId(bindings::pci_device_id {
        vendor: 0,
        device: 0,
        subvendor: 0,
        subdevice: 0,
        class: 0,
        class_mask: 0,
        driver_data: 0,
        override_only: 0,
    });
}

/// The ID table of `ids` plus the all-zero terminator; `N` must be `ids.len() + 1` (the
/// build fails otherwise). Used by [`pci_device_table!`](crate::pci_device_table).
#[doc(hidden)]
pub const fn id_table<const N: usize>(ids: &[DeviceId]) -> [DeviceId; N] {
    assert!(ids.len() + 1 == N);
    let mut t = [DeviceId::ZERO; N];
    let mut i = 0;
    while i < ids.len() {
        t[i] = ids[i];
        i += 1;
    }
    t
}

/// Defines a PCI ID table named `$table` for module `$module` (exported as
/// `__mod_pci__<module>_device_table`, which modpost turns into `alias=pci:...`).
///
/// ```ignore
/// kernel::pci_device_table!(IDS, "nvme_lite", [pci::DeviceId::with_class(0x010802, 0xffffff)]);
/// impl pci::Driver for MyDriver { const ID_TABLE: &'static [pci::DeviceId] = &IDS; ... }
/// ```
#[macro_export]
macro_rules! pci_device_table {
    ($table:ident, $module:literal, [$($id:expr),+ $(,)?]) => {
        #[export_name = ::core::concat!("__mod_pci__", $module, "_device_table")]
        static $table: [$crate::pci::DeviceId; [$($id),+].len() + 1] =
            $crate::pci::id_table(&[$($id),+]);
    };
}

/// A PCI driver.
pub trait Driver: Sized + 'static {
    /// What the driver keeps per bound device, from `probe` to `remove`.
    type Data: Send + Sync + 'static;

    /// The devices this driver binds to, from [`pci_device_table!`](crate::pci_device_table)
    /// (ends with the terminator).
    const ID_TABLE: &'static [DeviceId];

    /// A matching device appeared (or the driver was loaded): set it up. Process context, may
    /// sleep. On error, everything set up so far is undone (drop order) and the function is
    /// disabled again.
    fn probe(dev: &Device) -> Result<Self::Data>;

    /// The device is being unbound: quiesce it (the data, and with it every resource it owns,
    /// is dropped right after this returns). Process context, may sleep.
    fn remove(_dev: &Device, _data: Self::Data) {}
}

/// A PCI function during `probe` or `remove` (borrowed: it cannot be kept).
///
/// # Invariants
/// `pdev` is the live device the PCI core is calling us for; `enabled` says whether
/// [`enable_device_mem`](Self::enable_device_mem) succeeded during this binding.
pub struct Device {
    pdev: *mut bindings::pci_dev,
    enabled: Cell<bool>,
    master: Cell<bool>,
}

impl Device {
    fn raw_device(&self) -> *mut bindings::device {
        // SAFETY: `pdev` is live (type invariant).
        unsafe { bindings::rust_helper_pci_dev_device(self.pdev) }
    }

    /// A counted reference to the generic device, for DMA allocations and logging.
    pub fn as_device(&self) -> device::DeviceRef {
        // SAFETY: live for the duration of the callback (type invariant).
        unsafe { device::DeviceRef::get(self.raw_device()) }
    }

    /// The vendor ID.
    pub fn vendor_id(&self) -> u16 {
        // SAFETY: live (type invariant).
        unsafe { bindings::rust_helper_pci_dev_vendor(self.pdev) }
    }

    /// The device ID.
    pub fn device_id(&self) -> u16 {
        // SAFETY: live (type invariant).
        unsafe { bindings::rust_helper_pci_dev_device_id(self.pdev) }
    }

    /// The 24-bit class code.
    pub fn class(&self) -> u32 {
        // SAFETY: live (type invariant).
        unsafe { bindings::rust_helper_pci_dev_class(self.pdev) }
    }

    /// The revision ID.
    pub fn revision(&self) -> u8 {
        // SAFETY: live (type invariant).
        unsafe { bindings::rust_helper_pci_dev_revision(self.pdev) }
    }

    /// Enables the function's memory BARs (`pci_enable_device_mem`). The adapter disables it
    /// again after `remove` (or after a failed `probe`).
    pub fn enable_device_mem(&self) -> Result {
        if self.enabled.get() {
            return Ok(());
        }
        // SAFETY: live (type invariant).
        to_result(unsafe { bindings::pci_enable_device_mem(self.pdev) })?;
        // INVARIANT: enabled now.
        self.enabled.set(true);
        Ok(())
    }

    /// Lets the function master the bus (do DMA). Cleared by the adapter after `remove`.
    pub fn set_master(&self) -> Result {
        if !self.enabled.get() {
            return Err(EINVAL);
        }
        // SAFETY: live and enabled.
        unsafe { bindings::pci_set_master(self.pdev) };
        self.master.set(true);
        Ok(())
    }

    /// Sets the DMA mask (streaming and coherent) to `bits` bits.
    pub fn dma_set_mask_and_coherent(&self, bits: u32) -> Result {
        crate::dma::set_mask_and_coherent(&self.as_device(), bits)
    }

    /// Allocates between `min` and `max` interrupt vectors of the kinds in `kinds` (the PCI
    /// core tries MSI-X, then MSI, then the legacy pin, as allowed), placed on the CPUs as
    /// `affinity` says. Handlers are registered on them with [`IrqVectors::request`]; dropping
    /// the value frees the handlers, then the vectors.
    pub fn alloc_irq_vectors<T: irq::Handler>(
        &self,
        min: u32,
        max: u32,
        kinds: IrqKinds,
        affinity: Affinity,
    ) -> Result<IrqVectors<T>> {
        if !self.enabled.get() {
            return Err(EINVAL);
        }
        let n = match affinity {
            // SAFETY: live and enabled; no affinity descriptor.
            Affinity::Default => unsafe {
                bindings::pci_alloc_irq_vectors_affinity(
                    self.pdev,
                    min,
                    max,
                    kinds.0,
                    core::ptr::null_mut(),
                )
            },
            // SAFETY: live and enabled; the helper builds the descriptor on its stack.
            Affinity::Spread { pre_vectors } => unsafe {
                bindings::rust_helper_pci_alloc_irq_vectors_spread(
                    self.pdev,
                    min,
                    max,
                    kinds.0,
                    pre_vectors,
                )
            },
        };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        // SAFETY: live.
        let msix = unsafe { bindings::rust_helper_pci_msix_enabled(self.pdev) };
        Ok(IrqVectors {
            handlers: KVec::new(),
            vectors: Vectors {
                _dev: self.as_device(),
                pdev: self.pdev,
                count: n as u32,
                msix,
            },
        })
    }

    /// Requests memory BAR `bar` for `name` and maps all of it; fails with `ENODEV` unless it
    /// is a memory BAR of at least `SIZE` bytes. The region is unmapped and released when the
    /// returned [`Bar`] is dropped.
    pub fn iomap_region<const SIZE: usize>(
        &self,
        bar: u32,
        name: &'static CStr,
    ) -> Result<Bar<SIZE>> {
        if bar > 5 || !self.enabled.get() {
            return Err(EINVAL);
        }
        let bar_i = bar as c_int;
        // SAFETY: live; `bar` is a BAR index.
        let (len, flags) = unsafe {
            (
                bindings::rust_helper_pci_resource_len(self.pdev, bar_i),
                bindings::rust_helper_pci_resource_flags(self.pdev, bar_i),
            )
        };
        if flags & (bindings::IORESOURCE_MEM as core::ffi::c_ulong) == 0 || (len as usize) < SIZE {
            return Err(ENODEV);
        }
        // SAFETY: live; `name` is a static string (the resource tree keeps the pointer).
        to_result(unsafe {
            bindings::pci_request_selected_regions(self.pdev, 1 << bar, name.as_ptr())
        })?;
        // SAFETY: live, region ours; maxlen 0 maps the whole BAR.
        let addr = unsafe { bindings::pci_iomap(self.pdev, bar_i, 0) };
        if addr.is_null() {
            // SAFETY: requested just above.
            unsafe { bindings::pci_release_selected_regions(self.pdev, 1 << bar) };
            return Err(ENOMEM);
        }
        Ok(Bar {
            dev: self.as_device(),
            pdev: self.pdev,
            bar: bar_i,
            // SAFETY: mapped above, `len >= SIZE` bytes, unmapped only when the `Bar` drops.
            io: unsafe { IoMem::new(addr, len as usize) },
        })
    }
}

/// A mapped memory BAR (owns the region and the mapping).
///
/// # Invariants
/// `io` maps BAR `bar` of `pdev`, whose region this value has requested; `dev` holds a
/// reference that keeps `pdev` allocated.
pub struct Bar<const SIZE: usize> {
    dev: device::DeviceRef,
    pdev: *mut bindings::pci_dev,
    bar: c_int,
    io: IoMem<SIZE>,
}

// SAFETY: the pointer is only used to release the region in `drop`, which the PCI core allows
// from any process context; MMIO is `Send + Sync`.
unsafe impl<const SIZE: usize> Send for Bar<SIZE> {}
// SAFETY: `&Bar` only gives `&IoMem`.
unsafe impl<const SIZE: usize> Sync for Bar<SIZE> {}

impl<const SIZE: usize> core::ops::Deref for Bar<SIZE> {
    type Target = IoMem<SIZE>;
    fn deref(&self) -> &IoMem<SIZE> {
        &self.io
    }
}

impl<const SIZE: usize> Drop for Bar<SIZE> {
    fn drop(&mut self) {
        let _ = &self.dev;
        // SAFETY: mapped and requested by us (type invariant); `pdev` kept alive by `dev`.
        unsafe {
            bindings::pci_iounmap(self.pdev, self.io.addr());
            bindings::pci_release_selected_regions(self.pdev, 1 << self.bar);
        }
    }
}

/// Where a function's interrupt vectors run ([`Device::alloc_irq_vectors`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// The platform's default for every vector (on arm64's GIC: CPU 0 for all of them).
    Default,
    /// The first `pre_vectors` (an admin queue's, say) at the default; the others spread
    /// evenly over the CPUs and kept there by the kernel ("managed" interrupts, as the C NVMe
    /// driver's `PCI_IRQ_AFFINITY`). For one queue per vector, so that a request completes on
    /// a CPU that submitted it; pair it with blk-mq's
    /// [`QueueMap::Vectors`](crate::block::mq::QueueMap::Vectors).
    Spread {
        /// Vectors, from 0, left out of the spreading.
        pre_vectors: u32,
    },
}

/// Kinds of interrupt vectors to try.
#[derive(Clone, Copy, Debug)]
pub struct IrqKinds(u32);

impl IrqKinds {
    /// MSI-X.
    pub const MSIX: IrqKinds = IrqKinds(bindings::PCI_IRQ_MSIX);
    /// MSI.
    pub const MSI: IrqKinds = IrqKinds(bindings::PCI_IRQ_MSI);
    /// The legacy interrupt pin (INTx).
    pub const LEGACY: IrqKinds = IrqKinds(bindings::PCI_IRQ_LEGACY);
    /// Any of them, best first.
    pub const ALL: IrqKinds =
        IrqKinds(bindings::PCI_IRQ_MSIX | bindings::PCI_IRQ_MSI | bindings::PCI_IRQ_LEGACY);
}

/// Interrupt vectors of a function and the handlers registered on them. The handlers are freed
/// first (field order), then the vectors.
pub struct IrqVectors<T: irq::Handler> {
    handlers: KVec<irq::Registration<T>>,
    vectors: Vectors,
}

/// # Invariants
/// `count` vectors are allocated for `pdev` (kept allocated by `_dev`) until dropped.
struct Vectors {
    _dev: device::DeviceRef,
    pdev: *mut bindings::pci_dev,
    count: u32,
    msix: bool,
}

// SAFETY: the pointer is only used to free the vectors in `drop` and to look up vector numbers,
// which the PCI core allows from any process context.
unsafe impl Send for Vectors {}
// SAFETY: see `Send`.
unsafe impl Sync for Vectors {}

impl Drop for Vectors {
    fn drop(&mut self) {
        // SAFETY: allocated (type invariant); every handler on them was freed before (the
        // `handlers` field of `IrqVectors` drops first).
        unsafe { bindings::pci_free_irq_vectors(self.pdev) };
    }
}

impl<T: irq::Handler> IrqVectors<T> {
    /// How many vectors were allocated.
    pub fn count(&self) -> u32 {
        self.vectors.count
    }

    /// Whether they are MSI-X vectors (masked per vector; pin and MSI interrupts of an NVMe
    /// controller are masked with INTMS instead).
    pub fn is_msix(&self) -> bool {
        self.vectors.msix
    }

    /// Registers `handler` on vector `index` (`EINVAL` past the count). `flags` allocates the
    /// bookkeeping.
    pub fn request(
        &mut self,
        index: u32,
        name: &'static CStr,
        handler: Arc<T>,
        flags: Gfp,
    ) -> Result {
        if index >= self.vectors.count {
            return Err(EINVAL);
        }
        self.handlers.reserve(1, flags)?;
        // SAFETY: live device with `count` vectors allocated.
        let irq = unsafe { bindings::pci_irq_vector(self.vectors.pdev, index) };
        if irq < 0 {
            return Err(Error::from_errno(irq));
        }
        // Legacy pins may be shared with other devices.
        let irq_flags = if self.vectors.msix {
            0
        } else {
            bindings::IRQF_SHARED
        };
        // SAFETY: `irq` belongs to our vectors, which outlive the registration (field order).
        let reg = unsafe { irq::Registration::request(irq as u32, name, irq_flags, handler)? };
        self.handlers.push(reg, flags)
    }
}

/// What `pci_get_drvdata` points to while a device is bound.
struct Bound<T: Driver> {
    data: T::Data,
    enabled: bool,
    master: bool,
}

/// A registered PCI driver; unregisters (unbinding every device) when dropped.
///
/// # Invariants
/// `inner.driver` is registered with the PCI core while `self` exists and never moves.
pub struct Registration<T: Driver> {
    inner: Pin<KBox<Inner<T>>>,
}

struct Inner<T> {
    driver: UnsafeCell<bindings::pci_driver>,
    _p: PhantomData<T>,
    _pin: PhantomPinned,
}

// SAFETY: after registration only the PCI core touches the C struct, under its own locks.
unsafe impl<T: Driver> Sync for Registration<T> {}
// SAFETY: can be dropped (unregistered) from any process context.
unsafe impl<T: Driver> Send for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Registers the driver as `name` (the `/sys/bus/pci/drivers/<name>` directory); matching
    /// devices are probed before this returns.
    pub fn register(name: &'static CStr, module: &'static ThisModule, flags: Gfp) -> Result<Self> {
        assert!(
            T::ID_TABLE
                .last()
                .is_some_and(|id| id.0.vendor == 0 && id.0.class_mask == 0),
            "ID table without terminator"
        );
        let driver = bindings::pci_driver {
            name: name.as_ptr(),
            id_table: T::ID_TABLE.as_ptr().cast(),
            probe: Some(probe::<T>),
            remove: Some(remove::<T>),
            ..Default::default()
        };
        let inner = KBox::pin(
            Inner {
                driver: UnsafeCell::new(driver),
                _p: PhantomData,
                _pin: PhantomPinned,
            },
            flags,
        )?;
        let module_ptr = module as *const ThisModule as *mut bindings::module;
        // SAFETY: `driver` is initialised and pinned and stays registered until `drop`; the
        // name and table are 'static; the module outlives its registration.
        to_result(unsafe {
            bindings::__pci_register_driver(inner.driver.get(), module_ptr, name.as_ptr())
        })?;
        Ok(Self { inner })
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); this unbinds (calling `remove`) every device and
        // returns when none is bound, so nothing points into `inner` any more.
        unsafe { bindings::pci_unregister_driver(self.inner.driver.get()) };
    }
}

/// Undoes what the adapter tracks, after the driver's data is gone.
///
/// # Safety
/// `pdev` is live and was enabled (`enabled`) / made bus master (`master`) in this binding.
unsafe fn disable(pdev: *mut bindings::pci_dev, enabled: bool, master: bool) {
    // SAFETY: function contract.
    unsafe {
        if master {
            bindings::pci_clear_master(pdev);
        }
        if enabled {
            bindings::pci_disable_device(pdev);
        }
    }
}

unsafe extern "C" fn probe<T: Driver>(
    pdev: *mut bindings::pci_dev,
    _id: *const bindings::pci_device_id,
) -> c_int {
    // INVARIANT: the PCI core holds the device for the call; nothing enabled yet.
    let dev = Device {
        pdev,
        enabled: Cell::new(false),
        master: Cell::new(false),
    };
    let result = T::probe(&dev).and_then(|data| {
        let bound = Bound::<T> {
            data,
            enabled: dev.enabled.get(),
            master: dev.master.get(),
        };
        KBox::new(bound, Gfp::KERNEL).map_err(|e: Error| e)
    });
    match result {
        Ok(bound) => {
            // SAFETY: live; the box is taken back in `remove`.
            unsafe { bindings::rust_helper_pci_set_drvdata(pdev, KBox::into_raw(bound).cast()) };
            0
        }
        Err(e) => {
            // SAFETY: live; flags as recorded during this probe.
            unsafe { disable(pdev, dev.enabled.get(), dev.master.get()) };
            e.to_errno()
        }
    }
}

unsafe extern "C" fn remove<T: Driver>(pdev: *mut bindings::pci_dev) {
    // SAFETY: `probe` succeeded for this device (the core calls remove only then) and stored a
    // leaked `KBox<Bound<T>>`; this is the only place that takes it back.
    let bound =
        unsafe { KBox::from_raw(bindings::rust_helper_pci_get_drvdata(pdev).cast::<Bound<T>>()) };
    let Bound {
        data,
        enabled,
        master,
    } = KBox::into_inner(bound);
    // SAFETY: clear the stale pointer; `pdev` is live for the call.
    unsafe { bindings::rust_helper_pci_set_drvdata(pdev, core::ptr::null_mut()) };
    let dev = Device {
        pdev,
        enabled: Cell::new(enabled),
        master: Cell::new(master),
    };
    // The data (with its DMA memory, BAR mappings) is dropped inside `remove`.
    T::remove(&dev, data);
    // SAFETY: live; the flags recorded at probe.
    unsafe { disable(pdev, enabled, master) };
}
