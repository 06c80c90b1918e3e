//! GPIO controllers (gpiolib providers): a driver implements [`Chip`] (and [`IrqChip`] if its
//! lines raise interrupts) and registers it with [`Registration`]; dropping the registration
//! removes the chip, and only then drops the driver's data. On the consumer side, a kernel
//! module holds a [`Line`] and may take its interrupt ([`request_irq`]).
//!
//! The adapters below own the C side: a `struct gpio_chip` per registration, a static
//! immutable `struct irq_chip` per chip type (`IRQCHIP_IMMUTABLE`: gpiolib never patches it),
//! C callbacks turned into trait calls, and the chained parent handler that demultiplexes the
//! controller's interrupt into its lines' interrupts (gpiolib's `girq`). Line offsets reach
//! the trait already checked against the number of lines.

use crate::alloc::{Gfp, KBox};
use crate::device::Device;
use crate::error::{code::*, to_result, Result};
use crate::irq::{self, Flow, ThreadedHandler, ThreadedRegistration, Trigger};
use crate::sync::Arc;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_uint, c_ulong, c_void, CStr};
use core::marker::PhantomPinned;
use core::pin::Pin;
use kernel_sys as bindings;

/// A line's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// An input.
    In,
    /// An output.
    Out,
}

/// The most lines one [`Chip`] may have: the `*_multiple` bitmaps are one `unsigned long`
/// (`u64` on the 64-bit architectures supported) here.
pub const MAX_LINES: u16 = 64;

/// A GPIO controller's line operations. `offset` is always below the chip's line count (the
/// adapter checks it). gpiolib may call these from any context, interrupts included (the chip
/// is registered with `can_sleep = false`): they must not sleep.
pub trait Chip: Send + Sync + 'static {
    /// The line's current direction.
    fn get_direction(&self, offset: u32) -> Result<Direction>;
    /// Makes the line an input.
    fn direction_input(&self, offset: u32) -> Result;
    /// Makes the line an output driving `value`.
    fn direction_output(&self, offset: u32, value: bool) -> Result;
    /// The line's level.
    fn get(&self, offset: u32) -> Result<bool>;
    /// Drives an output line to `value`.
    fn set(&self, offset: u32, value: bool);

    /// The levels of the lines in `mask` (bit n = line n), in the same bits of the result.
    /// The default reads them one by one.
    fn get_multiple(&self, mask: u64) -> Result<u64> {
        let mut bits = 0;
        for offset in (0..64).filter(|o| mask & (1 << o) != 0) {
            bits |= u64::from(self.get(offset)?) << offset;
        }
        Ok(bits)
    }

    /// Drives the outputs in `mask` to the values in `bits`. The default sets them one by one.
    fn set_multiple(&self, mask: u64, bits: u64) {
        for offset in (0..64).filter(|o| mask & (1 << o) != 0) {
            self.set(offset, bits & (1 << offset) != 0);
        }
    }
}

/// A GPIO controller whose lines are interrupt sources, multiplexed onto one parent
/// interrupt. The callbacks run in atomic context (interrupts off, the line's descriptor lock
/// held): they must not sleep, and state they share with process context goes under
/// [`SpinLock::lock_irqsave`](crate::sync::SpinLock::lock_irqsave).
pub trait IrqChip: Chip {
    /// The chip's name in `/proc/interrupts`.
    const IRQ_NAME: &'static CStr;

    /// Acknowledges (clears) a latched interrupt of line `hwirq`.
    fn ack(&self, hwirq: u32);
    /// Stops line `hwirq` from raising the parent interrupt.
    fn mask(&self, hwirq: u32);
    /// Lets line `hwirq` raise the parent interrupt again.
    fn unmask(&self, hwirq: u32);
    /// Configures what raises line `hwirq`'s interrupt; returns the flow handler that suits
    /// it (edge or level), or an error the consumer's request gets.
    fn set_type(&self, hwirq: u32, trigger: Trigger) -> Result<Flow>;
    /// The parent interrupt fired: call [`Lines::handle`] for each line with an interrupt
    /// pending.
    fn handle_parent(&self, lines: &Lines<'_>);
}

/// The lines' interrupts, as the chained parent handler sees them.
pub struct Lines<'a> {
    gc: *mut bindings::gpio_chip,
    _chip: core::marker::PhantomData<&'a ()>,
}

impl Lines<'_> {
    /// Runs the interrupt handlers of line `offset` (`generic_handle_domain_irq`). An offset
    /// with no mapped interrupt is ignored.
    pub fn handle(&self, offset: u32) {
        // SAFETY: `gc` is the registered chip whose chained handler is running (see
        // `parent_handler`), so its irq domain exists until the chip is removed, which first
        // removes this handler.
        unsafe { bindings::rust_helper_gpio_chip_handle_irq(self.gc, offset) };
    }
}

/// A registered GPIO chip (`/dev/gpiochipN`, `/sys/class/gpio/gpiochip<base>`); dropping it
/// removes the chip (and its interrupt domain and chained handler), then drops the data.
///
/// # Invariants
/// `inner.gc` is registered with gpiolib while `self` exists, with `gpiochip_get_data` pointing
/// to `inner.data`; `inner` never moves; `inner.parent` holds a reference on the parent device.
pub struct Registration<T: Chip> {
    inner: Pin<KBox<Inner<T>>>,
}

struct Inner<T> {
    gc: UnsafeCell<bindings::gpio_chip>,
    /// The parent interrupts array gpiolib reads (`girq->parents`).
    parents: UnsafeCell<[c_uint; 1]>,
    parent: *mut bindings::device,
    data: T,
    _pin: PhantomPinned,
}

// SAFETY: gpiolib synchronises its own use of the C struct; the Rust side shares `&T`, and `T`
// is `Send + Sync`.
unsafe impl<T: Chip> Send for Registration<T> {}
// SAFETY: as above.
unsafe impl<T: Chip> Sync for Registration<T> {}

impl<T: Chip> Registration<T> {
    /// Registers a chip of `ngpio` lines (at most [`MAX_LINES`]) under `parent`, labelled with
    /// the parent's name, with a dynamic base.
    pub fn register(parent: &Device, ngpio: u16, data: T, flags: Gfp) -> Result<Self> {
        Self::register_inner(parent, ngpio, data, None, flags)
    }

    /// The driver's data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    fn register_inner(
        parent: &Device,
        ngpio: u16,
        data: T,
        irq: Option<(
            u32,
            &'static bindings::irq_chip,
            bindings::irq_flow_handler_t,
        )>,
        flags: Gfp,
    ) -> Result<Self> {
        if ngpio == 0 || ngpio > MAX_LINES {
            return Err(EINVAL);
        }
        let gc = bindings::gpio_chip {
            label: parent.c_name().as_ptr(),
            parent: parent.as_raw(),
            owner: &raw const crate::module::__THIS_MODULE as *mut bindings::module,
            request: Some(bindings::rust_helper_gpiochip_generic_request),
            free: Some(bindings::rust_helper_gpiochip_generic_free),
            get_direction: Some(get_direction::<T>),
            direction_input: Some(direction_input::<T>),
            direction_output: Some(direction_output::<T>),
            get: Some(get::<T>),
            set: Some(set::<T>),
            get_multiple: Some(get_multiple::<T>),
            set_multiple: Some(set_multiple::<T>),
            base: -1,
            ngpio,
            can_sleep: false,
            ..Default::default()
        };
        let inner = KBox::pin(
            Inner {
                gc: UnsafeCell::new(gc),
                parents: UnsafeCell::new([0]),
                parent: parent.as_raw(),
                data,
                _pin: PhantomPinned,
            },
            flags,
        )?;
        let gc = inner.gc.get();
        if let Some((parent_irq, chip, handler)) = irq {
            // SAFETY: `gc` is pinned and not yet registered; the irq chip is 'static; `parents`
            // lives (pinned) as long as the chip is registered. Fails (EOPNOTSUPP) on kernels
            // without a gpiolib irqchip.
            to_result(unsafe {
                *inner.parents.get() = [parent_irq];
                bindings::rust_helper_gpio_chip_set_irq(
                    gc,
                    chip,
                    handler,
                    inner.parents.get().cast::<c_uint>(),
                    1,
                )
            })?;
        }
        // SAFETY: the parent is live for this call; the reference keeps `label` and `parent`
        // valid while the chip is registered.
        unsafe { bindings::get_device(inner.parent) };
        let data_ptr = &raw const inner.data as *mut c_void;
        // SAFETY: `gc` is fully set up and pinned, `data_ptr` points into the same pinned block
        // and is only read as `&T`; gpiolib may call the callbacks (and the chained handler)
        // before this returns, and `data` is already in place.
        let ret = unsafe { bindings::rust_helper_gpiochip_add_data(gc, data_ptr) };
        if let Err(e) = to_result(ret) {
            // SAFETY: taken above; the chip is not registered.
            unsafe { bindings::put_device(inner.parent) };
            return Err(e);
        }
        // INVARIANT: registered above, data pointer set, reference taken.
        Ok(Self { inner })
    }
}

impl<T: IrqChip> Registration<T> {
    /// Like [`register`](Self::register), with the lines' interrupts demultiplexed from the
    /// parent interrupt `parent_irq` through a chained handler.
    pub fn register_with_irq(
        parent: &Device,
        ngpio: u16,
        data: T,
        parent_irq: u32,
        flags: Gfp,
    ) -> Result<Self> {
        Self::register_inner(
            parent,
            ngpio,
            data,
            Some((parent_irq, IrqVTable::<T>::get(), Some(parent_handler::<T>))),
            flags,
        )
    }
}

impl<T: Chip> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant). gpiochip_remove removes the chained handler and
        // the irq domain, and waits for no callback of ours to run any more; then the
        // reference on the parent is dropped, and `inner` (with the data) after this.
        unsafe {
            bindings::rust_helper_gpiochip_remove(self.inner.gc.get());
            bindings::put_device(self.inner.parent);
        }
    }
}

/// The driver's data of a `gpio_chip` of ours: the `gpio_chip` is the `gc` field of a pinned
/// `Inner<T>`, so the data is found from it by address arithmetic (`container_of`), with no call
/// to `gpiochip_get_data` (out of line, through a helper) on every line operation.
///
/// # Safety
/// `gc` is a chip registered by `Registration<T>`, during one of its callbacks.
unsafe fn chip_data<'a, T: Chip>(gc: *mut bindings::gpio_chip) -> &'a T {
    // `UnsafeCell<gpio_chip>` has the layout of `gpio_chip`: `gc` is the field's address.
    let inner = gc
        .cast::<u8>()
        .wrapping_sub(core::mem::offset_of!(Inner<T>, gc))
        .cast::<Inner<T>>();
    // SAFETY: `gc` is the `gc` field of the pinned `Inner<T>` of a live registration (caller),
    // so `inner` is that `Inner<T>`; its `data` is live until the registration (which removes
    // the chip first) drops, and is only ever shared (`&T`).
    unsafe { &(*inner).data }
}

/// `offset` checked against the line count.
///
/// # Safety
/// As for [`chip_data`].
unsafe fn line(gc: *mut bindings::gpio_chip, offset: c_uint) -> Result<u32> {
    // SAFETY: a live chip (caller).
    let ngpio = unsafe { (*gc).ngpio };
    if offset < u32::from(ngpio) {
        Ok(offset)
    } else {
        Err(EINVAL)
    }
}

fn errno(r: Result<c_int>) -> c_int {
    r.unwrap_or_else(|e| e.to_errno())
}

unsafe extern "C" fn get_direction<T: Chip>(gc: *mut bindings::gpio_chip, offset: c_uint) -> c_int {
    // SAFETY: a callback of our chip.
    errno(unsafe { line(gc, offset) }.and_then(|o| {
        // SAFETY: a callback of our chip.
        Ok(match unsafe { chip_data::<T>(gc) }.get_direction(o)? {
            Direction::In => bindings::GPIO_LINE_DIRECTION_IN,
            Direction::Out => bindings::GPIO_LINE_DIRECTION_OUT,
        })
    }))
}

unsafe extern "C" fn direction_input<T: Chip>(
    gc: *mut bindings::gpio_chip,
    offset: c_uint,
) -> c_int {
    // SAFETY: a callback of our chip.
    errno(unsafe { line(gc, offset) }.and_then(|o| {
        // SAFETY: a callback of our chip.
        unsafe { chip_data::<T>(gc) }.direction_input(o)?;
        Ok(0)
    }))
}

unsafe extern "C" fn direction_output<T: Chip>(
    gc: *mut bindings::gpio_chip,
    offset: c_uint,
    value: c_int,
) -> c_int {
    // SAFETY: a callback of our chip.
    errno(unsafe { line(gc, offset) }.and_then(|o| {
        // SAFETY: a callback of our chip.
        unsafe { chip_data::<T>(gc) }.direction_output(o, value != 0)?;
        Ok(0)
    }))
}

unsafe extern "C" fn get<T: Chip>(gc: *mut bindings::gpio_chip, offset: c_uint) -> c_int {
    // SAFETY: a callback of our chip.
    errno(unsafe { line(gc, offset) }.and_then(|o| {
        // SAFETY: a callback of our chip.
        Ok(c_int::from(unsafe { chip_data::<T>(gc) }.get(o)?))
    }))
}

unsafe extern "C" fn set<T: Chip>(gc: *mut bindings::gpio_chip, offset: c_uint, value: c_int) {
    // SAFETY: a callback of our chip.
    if let Ok(o) = unsafe { line(gc, offset) } {
        // SAFETY: a callback of our chip.
        unsafe { chip_data::<T>(gc) }.set(o, value != 0);
    }
}

/// The chip's valid-lines mask.
///
/// # Safety
/// As for [`chip_data`].
unsafe fn line_mask(gc: *mut bindings::gpio_chip) -> u64 {
    // SAFETY: a live chip (caller); ngpio is at most 64 (checked at registration).
    let ngpio = u32::from(unsafe { (*gc).ngpio });
    u64::MAX >> (64 - ngpio)
}

unsafe extern "C" fn get_multiple<T: Chip>(
    gc: *mut bindings::gpio_chip,
    mask: *mut c_ulong,
    bits: *mut c_ulong,
) -> c_int {
    // SAFETY: gpiolib passes bitmaps of at least `ngpio` bits (one word: ngpio <= 64), for the
    // duration of the call.
    let (mask, bits) = unsafe { (&*mask, &mut *bits) };
    // SAFETY: a callback of our chip.
    let lines: u64 = *mask & unsafe { line_mask(gc) };
    // SAFETY: a callback of our chip.
    match unsafe { chip_data::<T>(gc) }.get_multiple(lines) {
        Ok(values) => {
            *bits = (*bits & !lines) | (values & lines);
            0
        }
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn set_multiple<T: Chip>(
    gc: *mut bindings::gpio_chip,
    mask: *mut c_ulong,
    bits: *mut c_ulong,
) {
    // SAFETY: as in `get_multiple`.
    let (mask, bits): (u64, u64) = unsafe { (*mask, *bits) };
    // SAFETY: a callback of our chip.
    let lines = mask & unsafe { line_mask(gc) };
    // SAFETY: a callback of our chip.
    unsafe { chip_data::<T>(gc) }.set_multiple(lines, bits & lines);
}

/// The static `irq_chip` of chips of type `T`.
struct IrqVTable<T>(core::marker::PhantomData<T>);

impl<T: IrqChip> IrqVTable<T> {
    const CHIP: bindings::irq_chip = bindings::irq_chip {
        name: T::IRQ_NAME.as_ptr(),
        irq_ack: Some(irq_ack::<T>),
        irq_mask: Some(irq_mask::<T>),
        irq_unmask: Some(irq_unmask::<T>),
        irq_set_type: Some(irq_set_type::<T>),
        irq_request_resources: Some(bindings::rust_helper_gpiochip_irq_reqres),
        irq_release_resources: Some(bindings::rust_helper_gpiochip_irq_relres),
        flags: bindings::IRQCHIP_IMMUTABLE,
        // SAFETY: every other field is an optional callback or plain data, for which all-zeroes
        // means "not implemented".
        ..unsafe { core::mem::zeroed() }
    };

    fn get() -> &'static bindings::irq_chip {
        &Self::CHIP
    }
}

/// The gpio chip, its data and the line of an interrupt of ours.
///
/// # Safety
/// `d` is the `irq_data` of an interrupt in the domain of a chip registered by
/// `Registration<T>`, during an irq_chip callback.
unsafe fn irq_line<'a, T: IrqChip>(
    d: *mut bindings::irq_data,
) -> (*mut bindings::gpio_chip, &'a T, u32) {
    // SAFETY: gpiolib sets the chip data of its domain's interrupts to the gpio_chip; the
    // chip is registered while its interrupts exist.
    unsafe {
        let gc = bindings::rust_helper_irq_data_get_irq_chip_data(d).cast::<bindings::gpio_chip>();
        let hwirq = bindings::rust_helper_irqd_to_hwirq(d) as u32;
        (gc, chip_data::<T>(gc), hwirq)
    }
}

unsafe extern "C" fn irq_ack<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: an irq_chip callback of our chip.
    let (_, chip, hwirq) = unsafe { irq_line::<T>(d) };
    chip.ack(hwirq);
}

unsafe extern "C" fn irq_mask<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: an irq_chip callback of our chip.
    let (gc, chip, hwirq) = unsafe { irq_line::<T>(d) };
    chip.mask(hwirq);
    // SAFETY: an immutable chip must tell gpiolib (it tracks enabled lines).
    unsafe { bindings::rust_helper_gpiochip_disable_irq(gc, hwirq) };
}

unsafe extern "C" fn irq_unmask<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: an irq_chip callback of our chip.
    let (gc, chip, hwirq) = unsafe { irq_line::<T>(d) };
    // SAFETY: as in `irq_mask`.
    unsafe { bindings::rust_helper_gpiochip_enable_irq(gc, hwirq) };
    chip.unmask(hwirq);
}

unsafe extern "C" fn irq_set_type<T: IrqChip>(d: *mut bindings::irq_data, ty: c_uint) -> c_int {
    // SAFETY: an irq_chip callback of our chip.
    let (_, chip, hwirq) = unsafe { irq_line::<T>(d) };
    match Trigger::from_bits(ty).and_then(|t| chip.set_type(hwirq, t)) {
        Ok(flow) => {
            // SAFETY: called with the descriptor locked, as irq_set_handler_locked requires.
            unsafe { bindings::rust_helper_irq_set_handler_locked(d, flow.handler()) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn parent_handler<T: IrqChip>(desc: *mut bindings::irq_desc) {
    // SAFETY: gpiolib installed this handler with the gpio_chip as handler data; the chip stays
    // registered while the handler is installed.
    let gc = unsafe { bindings::rust_helper_irq_desc_get_handler_data(desc) }
        .cast::<bindings::gpio_chip>();
    // SAFETY: as above.
    let chip = unsafe { chip_data::<T>(gc) };
    let lines = Lines {
        gc,
        _chip: core::marker::PhantomData,
    };
    // SAFETY: the chained handler of `desc`.
    unsafe { irq::chained(desc, || chip.handle_parent(&lines)) };
}

// ---------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------

/// A GPIO line a kernel consumer holds as an input, by its global number (`gpio_request_one`
/// with `GPIOF_IN`); freed (`gpio_free`) when dropped. While it is held, gpiolib keeps the
/// chip's module loaded.
///
/// # Invariants
/// `gpio` was requested by this value and is freed only by its `drop`.
pub struct Line {
    gpio: u32,
}

impl Line {
    /// Requests line `gpio` (global number: the chip's base plus the offset) as an input,
    /// labelled `label` (the consumer shown in `gpioinfo`). `EBUSY` if someone holds it,
    /// `EINVAL`/`EPROBE_DEFER` if no chip has it.
    pub fn request_input(gpio: u32, label: &'static CStr) -> Result<Line> {
        // SAFETY: `label` is static (gpiolib keeps the pointer while the line is held).
        to_result(unsafe { bindings::rust_helper_gpio_request_input(gpio, label.as_ptr()) })?;
        // INVARIANT: requested above.
        Ok(Line { gpio })
    }

    /// The global number.
    pub fn number(&self) -> u32 {
        self.gpio
    }

    /// The line's level (raw: no active-low inversion). In any context, for a chip that does
    /// not sleep (gpiolib warns otherwise).
    pub fn value(&self) -> Result<bool> {
        // SAFETY: a line we hold (type invariant).
        let v = unsafe { bindings::rust_helper_gpio_get_value(self.gpio) };
        to_result(v).map(|()| v != 0)
    }

    /// The interrupt number of the line (mapped by the chip's irqchip on first use).
    pub fn irq(&self) -> Result<u32> {
        // SAFETY: a line we hold (type invariant).
        let irq = unsafe { bindings::rust_helper_gpio_to_irq(self.gpio) };
        to_result(irq)?;
        u32::try_from(irq).map_err(|_| EINVAL)
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        // SAFETY: requested by us and not freed yet (type invariant).
        unsafe { bindings::rust_helper_gpio_free(self.gpio) };
    }
}

/// A consumer's handler of a GPIO line's interrupt: it owns the [`Line`], so the line stays
/// held (and its interrupt mapped) for as long as the handler can run.
pub trait LineHandler: ThreadedHandler {
    /// The line whose interrupt this handles.
    fn line(&self) -> &Line;
}

/// Requests the interrupt of `handler`'s line with `trigger` (`IRQF_TRIGGER_*`), threaded and
/// oneshot (see [`ThreadedHandler`]): the chip's `set_type` programs the trigger and picks the
/// flow handler (a level trigger gets `handle_level_irq`). Dropping the registration frees the
/// interrupt; the line is freed when the last reference to the handler goes.
pub fn request_irq<T: LineHandler>(
    handler: Arc<T>,
    trigger: Trigger,
    name: &'static CStr,
) -> Result<ThreadedRegistration<T>> {
    let irq = handler.line().irq()?;
    // SAFETY: `irq` is the interrupt of a line the handler holds; the registration keeps the
    // handler (and so the line, and through gpiolib the chip's module) until free_irq. (Like
    // any gpiolib consumer's, C or Rust, it relies on the provider's device not being unbound
    // through sysfs while a line is held: gpiolib then removes the domain under its users.)
    unsafe { ThreadedRegistration::request(irq, name, trigger, handler) }
}
