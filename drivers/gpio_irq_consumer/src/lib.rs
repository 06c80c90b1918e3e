//! `gpio_irq_consumer`: a kernel consumer of one GPIO line's interrupt, for testing irqchips.
//!
//! User space's GPIO character device only asks for edges; a level-triggered interrupt needs a
//! kernel consumer. This module holds line `gpio` (a global number) as an input and requests its
//! interrupt with `trigger` (`high`, `low`, `rising`, `falling`, `both`), threaded and oneshot
//! as the kernel expects of a level interrupt whose source is quietened in process context:
//! the hard handler counts the interrupt and reads the line's level; the thread sleeps
//! `hold_ms` (a slow consumer) with the interrupt masked, then returns, and the interrupt is
//! unmasked; a level still present fires again at once.
//!
//! `/dev/gpio_irq_consumer` reads as `irq <n>\nfired <n>\nhigh <n>\nlow <n>\nthreads <n>\n`:
//! interrupts taken, how many found the line high and low, thread runs completed.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::gpio::{self, Line, LineHandler};
use kernel::irq::{IrqReturn, ThreadedHandler, ThreadedRegistration, ThreadedReturn, Trigger};
use kernel::miscdev::Registration;
use kernel::prelude::*;
use kernel::time::msleep;

/// The line, and what its interrupt did.
struct Consumer {
    line: Line,
    hold_ms: u32,
    fired: AtomicU64,
    high: AtomicU64,
    low: AtomicU64,
    threads: AtomicU64,
}

impl ThreadedHandler for Consumer {
    fn handle(&self) -> ThreadedReturn {
        self.fired.fetch_add(1, Relaxed);
        // The PL061 does not sleep: its level can be read here, as the interrupt is taken.
        match self.line.value() {
            Ok(true) => self.high.fetch_add(1, Relaxed),
            Ok(false) | Err(_) => self.low.fetch_add(1, Relaxed),
        };
        ThreadedReturn::WakeThread
    }

    fn thread(&self) -> IrqReturn {
        msleep(self.hold_ms);
        self.threads.fetch_add(1, Relaxed);
        IrqReturn::Handled
    }
}

impl LineHandler for Consumer {
    fn line(&self) -> &Line {
        &self.line
    }
}

/// `/dev/gpio_irq_consumer`: the counters as text.
struct Report {
    consumer: Arc<Consumer>,
    irq: u32,
}

impl MiscDevice for Report {
    type OpenFile = ();
    const POSITIONED: bool = true;

    fn open(&self, _file: &File) -> Result<()> {
        Ok(())
    }

    fn read(
        &self,
        _open: &(),
        _file: &File,
        out: &mut UserSliceWriter,
        pos: &mut i64,
    ) -> Result<usize> {
        let c = &self.consumer;
        let mut text = StackString::<128>::new();
        // Cannot fail or truncate: five labels and five 20-digit numbers fit.
        let _ = write!(
            text,
            "irq {}\nfired {}\nhigh {}\nlow {}\nthreads {}\n",
            self.irq,
            c.fired.load(Relaxed),
            c.high.load(Relaxed),
            c.low.load(Relaxed),
            c.threads.load(Relaxed)
        );
        out.read_from_buffer(pos, text.as_bytes())
    }
}

/// The loaded module: the report device goes first, then the interrupt is freed, then (with
/// the last reference to the consumer) the line.
struct GpioIrqConsumer {
    _report: Registration<Report>,
    _irq: ThreadedRegistration<Consumer>,
}

fn trigger(name: &[u8]) -> Result<Trigger> {
    Ok(match name {
        b"high" => Trigger::LevelHigh,
        b"low" => Trigger::LevelLow,
        b"rising" => Trigger::EdgeRising,
        b"falling" => Trigger::EdgeFalling,
        b"both" => Trigger::EdgeBoth,
        _ => return Err(EINVAL),
    })
}

impl Module for GpioIrqConsumer {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let trigger = trigger(module_params::trigger.get().to_bytes())?;
        let number = u32::try_from(module_params::gpio.get()).map_err(|_| EINVAL)?;
        let consumer = Arc::new(
            Consumer {
                line: Line::request_input(number, c"gpio_irq_consumer")?,
                hold_ms: module_params::hold_ms.get(),
                fired: AtomicU64::new(0),
                high: AtomicU64::new(0),
                low: AtomicU64::new(0),
                threads: AtomicU64::new(0),
            },
            Gfp::KERNEL,
        )?;
        let irq = gpio::request_irq(consumer.clone(), trigger, c"gpio_irq_consumer")?;
        let report = Report {
            consumer,
            irq: irq.irq(),
        };
        let report = Registration::register(
            c"gpio_irq_consumer",
            Arc::new(report, Gfp::KERNEL)?,
            Gfp::KERNEL,
        )?;
        Ok(GpioIrqConsumer {
            _report: report,
            _irq: irq,
        })
    }
}

kernel::module! {
    type: GpioIrqConsumer,
    name: "gpio_irq_consumer",
    author: "Rust driver examples",
    description: "Test consumer of a GPIO line's interrupt (threaded, oneshot), counting what fires",
    license: "GPL",
    params: {
        gpio: i32 = -1, "Global number of the line (its chip's base plus the offset)",
        trigger: str = c"high", "high, low (levels), rising, falling or both (edges)",
        hold_ms: u32 = 20, "How long the thread sleeps with the interrupt masked",
    },
}
