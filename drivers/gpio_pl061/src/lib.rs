//! `gpio_pl061`: the ARM PrimeCell PL061 GPIO controller, as `drivers/gpio/gpio-pl061.c`.
//!
//! Eight lines, each an input or an output, each an interrupt source (either edge, both edges,
//! or a level), all multiplexed onto one interrupt of the controller. An AMBA driver binds it by
//! peripheral ID; the lines appear as a gpiolib chip (`/dev/gpiochipN`, sysfs) and its
//! interrupts as an irqchip chained from the controller's interrupt.
//!
//! Reading top to bottom: the register map, the chip (line and interrupt operations), the
//! driver (probe), the module.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use kernel::amba;
use kernel::gpio::{self, Direction};
use kernel::io::{IoRegion, ReadOnly, ReadWrite, Reg8, WriteOnly};
use kernel::irq::{Flow, Trigger};
use kernel::prelude::*;

/// The register map (PL061 TRM, "Summary of PrimeCell GPIO registers").
mod regs {
    use super::*;

    /// Size of the register window.
    pub const SIZE: usize = 0x1000;
    /// 0x000-0x3FC - GPIODATA: line levels. Address bits [9:2] are a mask: a read returns the
    /// masked lines (others read 0), a write changes only them. See [`data_offset`].
    pub const DATA_WINDOW: usize = 0x400;
    /// 0x400 - GPIODIR: 1 = output.
    pub const DIR: Reg8<0x400, ReadWrite> = Reg8::new();
    /// 0x404 - GPIOIS: interrupt sense, 1 = level, 0 = edge.
    pub const IS: Reg8<0x404, ReadWrite> = Reg8::new();
    /// 0x408 - GPIOIBE: 1 = both edges (GPIOIEV ignored).
    pub const IBE: Reg8<0x408, ReadWrite> = Reg8::new();
    /// 0x40C - GPIOIEV: interrupt event, 1 = rising edge / high level.
    pub const IEV: Reg8<0x40C, ReadWrite> = Reg8::new();
    /// 0x410 - GPIOIE: interrupt mask, 1 = enabled.
    pub const IE: Reg8<0x410, ReadWrite> = Reg8::new();
    /// 0x414 - GPIORIS: raw interrupt status.
    #[allow(dead_code)]
    pub const RIS: Reg8<0x414, ReadOnly> = Reg8::new();
    /// 0x418 - GPIOMIS: masked interrupt status (RIS & IE).
    pub const MIS: Reg8<0x418, ReadOnly> = Reg8::new();
    /// 0x41C - GPIOIC: write 1 to clear an edge interrupt.
    pub const IC: Reg8<0x41C, WriteOnly> = Reg8::new();

    /// The GPIODATA address that reaches the lines of `mask`.
    pub const fn data_offset(mask: u8) -> usize {
        (mask as usize) << 2
    }
    const _: () = assert!(data_offset(0xff) < DATA_WINDOW);
}

/// Number of lines.
const NGPIO: u16 = 8;

/// One PL061.
struct Pl061 {
    io: IoRegion<{ regs::SIZE }>,
    /// Serialises read-modify-write sequences of the registers (process context and the
    /// irqchip callbacks): taken with interrupts off. GPIODATA needs no lock: its address mask
    /// makes every write touch only the lines it names.
    lock: SpinLock<()>,
}

/// The bit of line `offset` (`offset < NGPIO`, as gpiolib guarantees).
fn bit(offset: u32) -> u8 {
    1 << (offset % u32::from(NGPIO))
}

/// A line's bits in GPIOIS, GPIOIBE and GPIOIEV (TRM: "Interrupt sense", "Interrupt both
/// edges", "Interrupt event").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sense {
    /// GPIOIS: 1 = level, 0 = edge.
    level: bool,
    /// GPIOIBE: 1 = both edges (GPIOIEV then ignored).
    both: bool,
    /// GPIOIEV: 1 = rising edge or high level, 0 = falling edge or low level.
    high_or_rising: bool,
}

impl Sense {
    /// The bits for `trigger`, and the flow handler its interrupts need.
    fn of(trigger: Trigger) -> (Sense, Flow) {
        let sense = |level, both, high_or_rising| Sense {
            level,
            both,
            high_or_rising,
        };
        match trigger {
            Trigger::LevelHigh => (sense(true, false, true), Flow::Level),
            Trigger::LevelLow => (sense(true, false, false), Flow::Level),
            Trigger::EdgeBoth => (sense(false, true, false), Flow::Edge),
            Trigger::EdgeRising => (sense(false, false, true), Flow::Edge),
            Trigger::EdgeFalling => (sense(false, false, false), Flow::Edge),
            Trigger::None => (sense(false, false, false), Flow::Bad),
        }
    }
}

impl Pl061 {
    fn write_data(&self, mask: u8, value: u8) -> Result {
        self.io.try_write8(value, regs::data_offset(mask))
    }

    fn read_data(&self, mask: u8) -> Result<u8> {
        self.io.try_read8(regs::data_offset(mask))
    }
}

impl gpio::Chip for Pl061 {
    fn get_direction(&self, offset: u32) -> Result<Direction> {
        Ok(if self.io.read(regs::DIR) & bit(offset) != 0 {
            Direction::Out
        } else {
            Direction::In
        })
    }

    fn direction_input(&self, offset: u32) -> Result {
        self.lock.lock_irqsave(|_| {
            let dir = self.io.read(regs::DIR) & !bit(offset);
            self.io.write(regs::DIR, dir);
        });
        Ok(())
    }

    fn direction_output(&self, offset: u32, value: bool) -> Result {
        let (mask, value) = (bit(offset), if value { bit(offset) } else { 0 });
        self.lock.lock_irqsave(|_| {
            self.write_data(mask, value)?;
            let dir = self.io.read(regs::DIR) | mask;
            self.io.write(regs::DIR, dir);
            // Again: the PL061 does not latch a value written while the line is an input.
            self.write_data(mask, value)
        })
    }

    fn get(&self, offset: u32) -> Result<bool> {
        Ok(self.read_data(bit(offset))? != 0)
    }

    fn set(&self, offset: u32, value: bool) {
        let _ = self.write_data(bit(offset), if value { bit(offset) } else { 0 });
    }

    fn get_multiple(&self, mask: u64) -> Result<u64> {
        Ok(self.read_data(mask as u8)?.into())
    }

    fn set_multiple(&self, mask: u64, bits: u64) {
        let _ = self.write_data(mask as u8, bits as u8);
    }
}

impl gpio::IrqChip for Pl061 {
    const IRQ_NAME: &'static CStr = c"pl061";

    fn ack(&self, hwirq: u32) {
        self.io.write(regs::IC, bit(hwirq));
    }

    fn mask(&self, hwirq: u32) {
        self.lock.lock_irqsave(|_| {
            let ie = self.io.read(regs::IE) & !bit(hwirq);
            self.io.write(regs::IE, ie);
        });
    }

    fn unmask(&self, hwirq: u32) {
        self.lock.lock_irqsave(|_| {
            let ie = self.io.read(regs::IE) | bit(hwirq);
            self.io.write(regs::IE, ie);
        });
    }

    fn set_type(&self, hwirq: u32, trigger: Trigger) -> Result<Flow> {
        let b = bit(hwirq);
        let (sense, flow) = Sense::of(trigger);
        let put = |reg: u8, on: bool| if on { reg | b } else { reg & !b };
        self.lock.lock_irqsave(|_| {
            let (is, ibe, iev) = (
                put(self.io.read(regs::IS), sense.level),
                put(self.io.read(regs::IBE), sense.both),
                put(self.io.read(regs::IEV), sense.high_or_rising),
            );
            // Polarity first: selecting a level before its polarity could latch the wrong one.
            self.io.write(regs::IEV, iev);
            self.io.write(regs::IBE, ibe);
            self.io.write(regs::IS, is);
            // Then clear what the old configuration (or the switch) latched, as the PL061-based
            // Stellaris GPIO's datasheet prescribes for a new sense, so the consumer's first
            // interrupt is one of its own trigger (a level still present is raised again).
            self.io.write(regs::IC, b);
            Ok(flow)
        })
    }

    fn handle_parent(&self, lines: &gpio::Lines<'_>) {
        let pending = self.io.read(regs::MIS);
        for offset in (0..u32::from(NGPIO)).filter(|&o| pending & bit(o) != 0) {
            lines.handle(offset);
        }
    }
}

kernel::amba_device_table!(PL061_IDS, [amba::DeviceId::new(0x0004_1061, 0x000f_ffff)]);

/// The AMBA driver: binds a PL061, registers its chip.
struct Pl061Driver;

impl amba::Driver for Pl061Driver {
    /// Dropping it removes the chip, then unmaps the registers.
    type Data = gpio::Registration<Pl061>;
    const NAME: &'static CStr = c"gpio_pl061";
    const ID_TABLE: amba::IdTableRef = PL061_IDS.as_ref();

    fn probe(dev: &amba::Device) -> Result<Self::Data> {
        let io = dev.iomap::<{ regs::SIZE }>(c"gpio_pl061")?;
        fault_after(1)?;
        io.write(regs::IE, 0); // all interrupts off until a consumer asks
        let chip = Pl061 {
            io,
            lock: new_spinlock!((), "gpio_pl061.lock", Gfp::KERNEL)?,
        };
        fault_after(2)?;
        let registration = match dev.irq(0) {
            Some(irq) => {
                gpio::Registration::register_with_irq(dev.as_dev(), NGPIO, chip, irq, Gfp::KERNEL)
            }
            None => {
                pr_warn!("{}: no interrupt, IRQ support disabled", name(dev));
                gpio::Registration::register(dev.as_dev(), NGPIO, chip, Gfp::KERNEL)
            }
        }?;
        fault_after(3)?;
        pr_info!("{}: PL061 GPIO chip registered", name(dev));
        Ok(registration)
    }
}

/// Fault injection for the tests: with `fail_probe_at=N`, probe fails with `ENOMEM` right
/// after its step N (1: registers mapped, 2: chip state allocated, 3: chip registered), as if
/// the next allocation had failed; what the steps before took must all be released.
fn fault_after(step: u32) -> Result {
    if module_params::fail_probe_at.get() == step {
        pr_info!("probe: injected failure after step {step}");
        return Err(ENOMEM);
    }
    Ok(())
}

fn name(dev: &amba::Device) -> &str {
    dev.as_dev().name()
}

/// The loaded module: dropping it unregisters the driver (unbinding the devices).
struct GpioPl061 {
    _driver: amba::Registration<Pl061Driver>,
}

impl Module for GpioPl061 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(GpioPl061 {
            _driver: amba::Registration::register(Gfp::KERNEL)?,
        })
    }
}

kernel::module! {
    type: GpioPl061,
    name: "gpio_pl061",
    author: "Rust driver examples",
    description: "ARM PrimeCell PL061 GPIO controller (gpio_chip + irqchip) in safe Rust",
    license: "GPL",
    params: {
        fail_probe_at: u32 = 0, "Tests: fail probe with ENOMEM after step N (1-3; 0: never)",
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_program_the_trm_sense_bits() {
        let s = |level, both, high_or_rising| Sense {
            level,
            both,
            high_or_rising,
        };
        assert_eq!(
            Sense::of(Trigger::LevelHigh),
            (s(true, false, true), Flow::Level)
        );
        assert_eq!(
            Sense::of(Trigger::LevelLow),
            (s(true, false, false), Flow::Level)
        );
        assert_eq!(
            Sense::of(Trigger::EdgeRising),
            (s(false, false, true), Flow::Edge)
        );
        assert_eq!(
            Sense::of(Trigger::EdgeFalling),
            (s(false, false, false), Flow::Edge)
        );
        assert_eq!(Sense::of(Trigger::EdgeBoth).0, s(false, true, false));
        assert_eq!(
            Sense::of(Trigger::None),
            (s(false, false, false), Flow::Bad)
        );
    }
}
