//! `nvme_lite`: a PCI driver for NVMe controllers (class 0x010802), in safe Rust.
//!
//! This first stage brings a controller up the way `drivers/nvme/host/pci.c` does and reads
//! what it is: map BAR0, read CAP and VS, disable the controller (waiting for CSTS.RDY to clear,
//! at most CAP.TO), set up the admin queue pair in coherent DMA memory, enable it (waiting for
//! CSTS.RDY, at most CAP.TO; CSTS.CFS is an error), then Identify Controller and Identify
//! Namespace 1, polling the admin completion queue. It logs the model, serial number and the
//! namespace's size. On unbind (and `rmmod`) it shuts the controller down (CC.SHN, waiting for
//! CSTS.SHST) before its DMA memory is freed.
//!
//! Reading order: `regs.rs` (registers), `spec.rs` (commands, Identify pages), `queue.rs` (a
//! queue pair, polled commands), then this file: probe, enable, identify, remove.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod queue;
mod regs;
mod spec;

use kernel::device::Device as GenericDevice;
use kernel::dma::CoherentAllocation;
use kernel::pci::{self, Bar};
use kernel::prelude::*;
use kernel::time::{msleep, Instant};
use queue::QueuePair;
use regs::{Cap, Cc, Csts};
use spec::{admin_opcode, cns, Command, IdentifyController, IdentifyNamespace};

kernel::pci_device_table!(
    NVME_IDS,
    "nvme_lite",
    [pci::DeviceId::with_class(0x010802, 0xffffff)]
);

/// Admin queue depth.
const ADMIN_DEPTH: u16 = 32;
/// How long an admin command may take.
const ADMIN_TIMEOUT_MS: u64 = 5_000;
/// How long a normal shutdown may take (the C driver's `shutdown_timeout` default).
const SHUTDOWN_TIMEOUT_MS: u64 = 5_000;

type Bar0 = Bar<{ regs::BAR0_MIN }>;

/// One bound controller. Field order is drop order: the queues' DMA memory is freed before
/// BAR0 is unmapped (the controller is shut down in `remove`, before either).
struct Controller {
    admin: QueuePair,
    bar: Bar0,
    dev: GenericDevice,
    cap: Cap,
}

/// The loaded module: dropping it unregisters the driver (unbinding every controller).
struct NvmeLite {
    _driver: pci::Registration<NvmeLite>,
}

impl Module for NvmeLite {
    fn init(module: &'static ThisModule) -> Result<Self> {
        Ok(NvmeLite {
            _driver: pci::Registration::register(c"nvme_lite", module, Gfp::KERNEL)?,
        })
    }
}

impl pci::Driver for NvmeLite {
    type Data = Controller;
    const ID_TABLE: &'static [pci::DeviceId] = &NVME_IDS;

    fn probe(pdev: &pci::Device) -> Result<Controller> {
        let dev = pdev.as_device();
        pdev.enable_device_mem()?;
        pdev.set_master()?;
        pdev.dma_set_mask_and_coherent(64)?;
        let bar: Bar0 = pdev.iomap_region(0, c"nvme_lite")?;
        let cap = Cap(bar.read64::<{ regs::CAP }>());
        let (major, minor, ter) = regs::version(bar.read32::<{ regs::VS }>());
        pr_info!(
            "{}: {:04x}:{:04x} NVMe {major}.{minor}.{ter}, CAP={:#018x} (MQES={}, TO={} ms, DSTRD stride={})\n",
            dev.name(),
            pdev.vendor_id(),
            pdev.device_id(),
            cap.0,
            cap.mqes(),
            cap.timeout_ms(),
            cap.doorbell_stride()
        );
        if !cap.supports_nvm() || cap.mpsmin() != 0 {
            pr_err!("{}: no NVM command set or 4 KiB pages\n", dev.name());
            return Err(ENODEV);
        }
        let admin = QueuePair::new(&dev, 0, ADMIN_DEPTH, cap.doorbell_stride())?;
        let mut ctrl = Controller {
            admin,
            bar,
            dev,
            cap,
        };
        ctrl.disable()?;
        ctrl.enable()?;
        if let Err(e) = ctrl.identify() {
            ctrl.shutdown();
            return Err(e);
        }
        Ok(ctrl)
    }

    fn remove(_pdev: &pci::Device, mut ctrl: Controller) {
        ctrl.shutdown();
        pr_info!("{}: removed\n", ctrl.dev.name());
    }
}

impl Controller {
    fn csts(&self) -> Csts {
        Csts::from_bits_retain(self.bar.read32::<{ regs::CSTS }>())
    }

    /// Waits until `done(CSTS)`, for at most `timeout_ms`.
    fn wait_csts(&self, what: &str, timeout_ms: u64, done: impl Fn(Csts) -> bool) -> Result {
        let start = Instant::now();
        loop {
            let csts = self.csts();
            if done(csts) {
                return Ok(());
            }
            if csts.contains(Csts::CFS) && csts.bits() != !0 {
                pr_err!(
                    "{}: controller fatal status while {what}\n",
                    self.dev.name()
                );
                return Err(EIO);
            }
            if start.elapsed_ms() > timeout_ms {
                pr_err!(
                    "{}: timed out after {timeout_ms} ms {what} (CSTS={:#x})\n",
                    self.dev.name(),
                    csts.bits()
                );
                return Err(ETIMEDOUT);
            }
            msleep(1);
        }
    }

    /// Clears CC.EN and waits for CSTS.RDY to follow (at most CAP.TO).
    fn disable(&self) -> Result {
        let cc = Cc::from_bits_retain(self.bar.read32::<{ regs::CC }>());
        self.bar.write32::<{ regs::CC }>((cc - Cc::EN).bits());
        self.wait_csts("disabling", self.cap.timeout_ms(), |c| {
            !c.contains(Csts::RDY)
        })
    }

    /// Programs the admin queue, sets CC (EN=1) and waits for CSTS.RDY (at most CAP.TO).
    fn enable(&self) -> Result {
        let depth = u32::from(ADMIN_DEPTH) - 1;
        self.bar.write32::<{ regs::AQA }>(depth << 16 | depth);
        self.bar
            .write64::<{ regs::ASQ }>(self.admin.sq.dma_handle());
        self.bar
            .write64::<{ regs::ACQ }>(self.admin.cq.dma_handle());
        // Polled for now: mask pin-based interrupts so the unhandled line never fires.
        self.bar.write32::<{ regs::INTMS }>(!0);
        self.bar.write32::<{ regs::CC }>(Cc::new(0).bits());
        self.wait_csts("enabling", self.cap.timeout_ms(), |c| c.contains(Csts::RDY))
    }

    /// Normal shutdown (CC.SHN = 01b), waiting for CSTS.SHST = complete. Errors are logged:
    /// nothing else can be done about them on the way out.
    fn shutdown(&mut self) {
        let cc = Cc::from_bits_retain(self.bar.read32::<{ regs::CC }>());
        self.bar
            .write32::<{ regs::CC }>(((cc - Cc::SHN_ABRUPT) | Cc::SHN_NORMAL).bits());
        let _ = self.wait_csts("shutting down", SHUTDOWN_TIMEOUT_MS, |c| {
            c & Csts::SHST_MASK == Csts::SHST_COMPLETE
        });
    }

    /// Identify Controller, then Identify Namespace 1; logs what they say.
    fn identify(&mut self) -> Result {
        let page = CoherentAllocation::<IdentifyController>::alloc(&self.dev, 1, Gfp::KERNEL)?;
        let mut cmd = Command {
            opcode: admin_opcode::IDENTIFY,
            ..Default::default()
        };
        cmd.prp1.set(page.dma_handle());
        cmd.cdw10.set(cns::CONTROLLER);
        self.admin
            .execute_polled(&self.bar, cmd, ADMIN_TIMEOUT_MS)?;
        let id = page.read_boxed(0, Gfp::KERNEL)?;
        pr_info!(
            "{}: model \"{}\" serial \"{}\" firmware \"{}\", {} namespace(s), MDTS {}\n",
            self.dev.name(),
            spec::ascii(&id.mn),
            spec::ascii(&id.sn),
            spec::ascii(&id.fr),
            id.nn.get(),
            id.mdts
        );
        if id.nn.get() == 0 {
            return Err(ENODEV);
        }
        drop(id);
        drop(page);

        let page = CoherentAllocation::<IdentifyNamespace>::alloc(&self.dev, 1, Gfp::KERNEL)?;
        let mut cmd = Command {
            opcode: admin_opcode::IDENTIFY,
            ..Default::default()
        };
        cmd.nsid.set(1);
        cmd.prp1.set(page.dma_handle());
        cmd.cdw10.set(cns::NAMESPACE);
        self.admin
            .execute_polled(&self.bar, cmd, ADMIN_TIMEOUT_MS)?;
        let ns = page.read_boxed(0, Gfp::KERNEL)?;
        let bs = ns.block_size();
        pr_info!(
            "{}: namespace 1: {} blocks of {} bytes ({} MiB)\n",
            self.dev.name(),
            ns.nsze.get(),
            bs,
            (ns.nsze.get() * u64::from(bs)) >> 20
        );
        Ok(())
    }
}

kernel::module! {
    type: NvmeLite,
    name: "nvme_lite",
    author: "Rust for Linux examples",
    description: "NVMe-lite: a PCI NVMe controller driver in safe Rust",
    license: "GPL",
}
