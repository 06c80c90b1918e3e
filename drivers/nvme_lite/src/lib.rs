//! `nvme_lite`: a PCI driver for NVMe controllers (class 0x010802), in safe Rust, exposing
//! namespace 1 as the block device `/dev/nvme_lite<N>n1`.
//!
//! Bring-up follows `drivers/nvme/host/pci.c`: map BAR0, read CAP and VS, disable the
//! controller (waiting for CSTS.RDY to clear, at most CAP.TO), set up the admin queue pair in
//! coherent DMA memory, enable (waiting for CSTS.RDY, at most CAP.TO; CSTS.CFS is an error),
//! Identify Controller and Namespace 1 (the admin queue is polled), Set Features (Number of
//! Queues: one pair per CPU), allocate interrupt vectors (MSI-X, else MSI, else the pin: one
//! per I/O queue pair plus the admin's, as many as the controller allows), create each I/O
//! completion + submission queue pair on its own vector, then a blk-mq tag set with one
//! hardware queue per pair, and the disk. Reads, writes and
//! flushes go through `io.rs`. On unbind (and `rmmod`): remove the disk (waiting for I/O in
//! flight), delete the I/O queues, shut the controller down (CC.SHN, waiting for CSTS.SHST),
//! then free interrupts, DMA memory and BAR0, in that order.
//!
//! Each controller also gets `/dev/nvme-lite<N>`, the node nvme-cli talks to (admin
//! passthrough of read-only commands, `passthru.rs`); `remove` deregisters it first.
//!
//! Reading order: `regs.rs` (registers), `spec.rs` (commands, Identify pages), `queue.rs` (the
//! polled admin queue), this file (probe, enable, identify, queues, remove), `io.rs` (the I/O
//! path and the interrupt handler), `reset.rs` (timeout recovery: Abort, then a controller
//! reset), `passthru.rs` (the admin queue, shared with nvme-cli).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod io;
mod passthru;
mod queue;
mod regs;
mod reset;
mod spec;

use io::{IoQueue, IO_DEPTH};
use kernel::block::mq::{DiskParams, GenDisk, QueueMap, TagSet};
use kernel::device::DeviceRef as GenericDevice;
use kernel::dma::CoherentAllocation;
use kernel::pci::{self, Affinity, Bar, IrqKinds, IrqVectors};
use kernel::prelude::*;
use kernel::sync::atomic::{AtomicU32, Ordering};
use kernel::time::{msleep, Instant};
use passthru::Admin;
use queue::QueuePair;
use regs::{Cap, Cc, Csts};
use spec::{admin_opcode, cns, feature, Command, IdentifyController, IdentifyNamespace};

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
/// The most I/O queues we create (one per CPU up to this).
const MAX_IO_QUEUES: u32 = 64;
/// The largest transfer we ask for, whatever MDTS allows: 512 KiB (129 PRP entries).
const MAX_TRANSFER: u64 = 512 * 1024;

/// BAR0: registers and at least the admin doorbells.
pub(crate) type Bar0 = Bar<{ regs::BAR0_MIN }>;

/// Controllers probed so far: the `<N>` of `/dev/nvme_lite<N>n1`.
static INSTANCES: AtomicU32 = AtomicU32::new(0);

/// What Identify said.
struct Identity {
    mdts: u8,
    write_cache: bool,
    /// Namespace 1: size in logical blocks and log2 of the block size.
    nsze: u64,
    lba_shift: u32,
}

/// What the block layer's callbacks share: the I/O queue for `queue_rq`, and for the timeout
/// handler (`reset.rs`) everything a controller reset needs.
pub struct Nvme {
    /// The I/O queues: blk-mq's hardware queue `i` is `queues[i]`, queue identifier `i + 1`.
    queues: KVec<Arc<IoQueue>>,
    /// The admin queue: probe, the timeout handler (Abort, reset), the node's passthrough
    /// commands and remove take turns (`passthru.rs`); shared with the node's open files,
    /// which lose it on removal.
    admin: Arc<Admin>,
    bar: Arc<Bar0>,
    dev: GenericDevice,
    cap: Cap,
}

impl Nvme {
    /// The I/O queue of blk-mq's hardware queue `hw_queue`.
    fn queue(&self, hw_queue: u32) -> Option<&Arc<IoQueue>> {
        self.queues.as_slice().get(hw_queue as usize)
    }

    /// Fails every request, now and from now on, on every queue.
    fn kill(&self) {
        for q in self.queues.as_slice() {
            q.kill();
        }
    }
}

/// One bound controller. `remove` deregisters `/dev/nvme-lite<N>`, takes the disk down,
/// deletes the I/O queues, takes the admin queue back from the node's files and shuts the
/// controller down; then the fields drop in order: interrupt handlers and vectors, the I/O
/// queue's DMA memory, and BAR0 last.
struct Controller {
    node: Option<passthru::Node>,
    disk: Option<GenDisk<NvmeLite>>,
    _irqs: IrqVectors<IoQueue>,
    nvme: Arc<Nvme>,
    io_queues_live: bool,
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
        let bar: Arc<Bar0> = Arc::new(pdev.iomap_region(0, c"nvme_lite")?, Gfp::KERNEL)?;
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
        if !cap.supports_nvm() || cap.mpsmin() != 0 || cap.mqes() < u32::from(IO_DEPTH) {
            pr_err!(
                "{}: no NVM command set, 4 KiB pages or deep enough queues\n",
                dev.name()
            );
            return Err(ENODEV);
        }
        let admin = Admin::new(
            QueuePair::new(&dev, 0, ADMIN_DEPTH, cap.doorbell_stride())?,
            bar.clone(),
            dev.clone(),
            Gfp::KERNEL,
        )?;
        disable(&bar, &dev, cap)?;
        admin.with(|a| enable(&bar, &dev, cap, &a.queue))?;
        // From here on, a failure shuts the controller down before the DMA memory goes.
        let set_up = (|| {
            let id = admin.with(|a| identify(&bar, &dev, &mut a.queue))?;
            let capacity_sectors = id.nsze << (id.lba_shift - 9);
            // One I/O queue pair per CPU, as many as the controller allows, each with its own
            // interrupt vector: vector 0 belongs to the admin queue (polled: never requested),
            // queue N gets vector N. The kernel spreads vectors 1.. over the CPUs and blk-mq
            // gives each queue the CPUs of its vector (`QueueMap::Vectors` below), so a read
            // completes on the CPU that issued it. With a single vector (MSI or the pin), one
            // queue shares it.
            let cpus = kernel::task::possible_cpus().clamp(1, MAX_IO_QUEUES);
            let allowed = admin.with(|a| set_queue_count(&bar, &mut a.queue, cpus))?;
            let mut irqs = pdev.alloc_irq_vectors::<IoQueue>(
                1,
                cpus.min(allowed) + 1,
                IrqKinds::ALL,
                Affinity::Spread { pre_vectors: 1 },
            )?;
            let vectors = irqs.count();
            let count = cpus.min(allowed).min(vectors.saturating_sub(1)).max(1);
            let mut queues = KVec::with_capacity(count as usize, Gfp::KERNEL)?;
            for qid in 1..=count {
                let vector = if vectors >= 2 { qid } else { 0 };
                let io = Arc::new(
                    IoQueue::new(
                        &dev,
                        bar.clone(),
                        qid as u16,
                        vector,
                        cap.doorbell_stride(),
                        id.lba_shift,
                        capacity_sectors,
                        module_params::drop_completion.get(),
                    )?,
                    Gfp::KERNEL,
                )?;
                irqs.request(vector, c"nvme_lite", io.clone(), Gfp::KERNEL)?;
                queues.push(io, Gfp::KERNEL)?;
            }
            pr_info!(
                "{}: {} interrupt vector(s) ({}); {count} I/O queue(s): {cpus} CPU(s), the controller allows {allowed}\n",
                dev.name(),
                vectors,
                if irqs.is_msix() {
                    "MSI-X"
                } else {
                    "MSI or INTx"
                }
            );
            admin.with(|a| {
                queues
                    .iter()
                    .try_for_each(|io| create_io_queue(&bar, &mut a.queue, io))
            })?;
            let nvme = Arc::new(
                Nvme {
                    queues,
                    admin: admin.clone(),
                    bar: bar.clone(),
                    dev: dev.clone(),
                    cap,
                },
                Gfp::KERNEL,
            )?;
            Ok((id, nvme, irqs, capacity_sectors))
        })();
        let (id, nvme, irqs, capacity_sectors) = match set_up {
            Ok(v) => v,
            Err(e) => {
                shutdown(&bar, &dev);
                return Err(e);
            }
        };
        // I/O queue N has vector N when there are several (see above).
        let map = if irqs.count() >= 2 {
            QueueMap::Vectors { first: 1 }
        } else {
            QueueMap::Spread
        };
        let mdts_bytes = match id.mdts {
            0 => 0,
            m => 4096u64.checked_shl(m.into()).unwrap_or(0),
        };
        let max_transfer = match mdts_bytes {
            0 => MAX_TRANSFER,
            m => m.min(MAX_TRANSFER),
        };
        nvme.admin.set_mdts(mdts_bytes);
        let mut ctrl = Controller {
            node: None,
            disk: None,
            _irqs: irqs,
            nvme,
            io_queues_live: true,
        };
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let params = DiskParams {
            capacity_sectors,
            logical_block_size: 1 << id.lba_shift,
            max_hw_sectors: (max_transfer >> 9) as u32,
            max_segments: kernel::block::mq::MAX_SEGMENTS as u16,
            virt_boundary_mask: 4095,
            write_cache: id.write_cache,
        };
        let disk = TagSet::with_queues(
            &ctrl.nvme.dev,
            ctrl.nvme.queues.len() as u32,
            map,
            u32::from(IO_DEPTH) - 1,
            ctrl.nvme.clone(),
            Gfp::KERNEL,
        )
        .and_then(|set| GenDisk::new(set, format_args!("nvme_lite{instance}n1"), params));
        match disk {
            Ok(d) => ctrl.disk = Some(d),
            Err(e) => {
                ctrl.quiesce();
                return Err(e);
            }
        }
        match passthru::register(&ctrl.nvme.admin, instance) {
            Ok(node) => ctrl.node = Some(node),
            Err(e) => {
                ctrl.quiesce();
                return Err(e);
            }
        }
        pr_info!(
            "{}: disk nvme_lite{instance}n1, admin node nvme-lite{instance}\n",
            ctrl.nvme.dev.name()
        );
        Ok(ctrl)
    }

    fn remove(_pdev: &pci::Device, mut ctrl: Controller) {
        ctrl.quiesce();
        pr_info!("{}: removed\n", ctrl.nvme.dev.name());
    }
}

impl Controller {
    /// Removes the disk (waiting for I/O in flight), deletes the I/O queues and shuts the
    /// controller down.
    ///
    /// If the controller is gone (surprise removal: CSTS reads all-ones, as `nvme_remove()`
    /// checks with `pci_device_is_present()`), requests in flight and new ones fail at once and
    /// nothing further touches its registers.
    ///
    /// First of all `/dev/nvme-lite<N>` goes (no new opens; files still open get `ENODEV` once
    /// the admin queue is revoked).
    fn quiesce(&mut self) {
        drop(self.node.take());
        let n = self.nvme.clone();
        if n.bar.read32::<{ regs::CSTS }>() == u32::MAX {
            pr_warn!(
                "{}: device gone (CSTS reads all-ones): failing I/O\n",
                n.dev.name()
            );
            n.kill();
            drop(self.disk.take());
            self.io_queues_live = false;
            drop(n.admin.revoke());
            return;
        }
        // Waits for every request in flight, and for a timeout handler (and a reset) running.
        drop(self.disk.take());
        if self.io_queues_live {
            self.io_queues_live = false;
            // Every submission queue first, then the completion queues they post to.
            for (opcode, what) in [
                (admin_opcode::DELETE_SQ, "Delete I/O SQ"),
                (admin_opcode::DELETE_CQ, "Delete I/O CQ"),
            ] {
                for q in n.queues.as_slice() {
                    let mut cmd = Command {
                        opcode,
                        ..Default::default()
                    };
                    cmd.cdw10.set(q.qid().into());
                    if let Err(e) = n.admin.execute(cmd, ADMIN_TIMEOUT_MS) {
                        pr_err!("{}: {what} {} failed: {e:?}\n", n.dev.name(), q.qid());
                    }
                }
            }
        }
        // Waits for a passthrough command in flight (bounded by its timeout).
        let admin = n.admin.revoke();
        shutdown(&n.bar, &n.dev);
        drop(admin);
    }
}

impl Drop for Controller {
    /// Whatever path got here, the admin queue's memory goes with the binding, even if a file
    /// of the node still holds the `Admin` (a no-op after `quiesce`).
    fn drop(&mut self) {
        drop(self.node.take());
        drop(self.nvme.admin.revoke());
    }
}

fn csts(bar: &Bar0) -> Csts {
    Csts::from_bits_retain(bar.read32::<{ regs::CSTS }>())
}

/// Waits until `done(CSTS)`, for at most `timeout_ms`; CSTS.CFS is an error.
fn wait_csts(
    bar: &Bar0,
    dev: &GenericDevice,
    what: &str,
    timeout_ms: u64,
    done: impl Fn(Csts) -> bool,
) -> Result {
    let start = Instant::now();
    loop {
        let csts = csts(bar);
        if done(csts) {
            return Ok(());
        }
        if csts.contains(Csts::CFS) && csts.bits() != !0 {
            pr_err!("{}: controller fatal status while {what}\n", dev.name());
            return Err(EIO);
        }
        if start.elapsed_ms() > timeout_ms {
            pr_err!(
                "{}: timed out after {timeout_ms} ms {what} (CSTS={:#x})\n",
                dev.name(),
                csts.bits()
            );
            return Err(ETIMEDOUT);
        }
        msleep(1);
    }
}

/// Clears CC.EN and waits for CSTS.RDY to follow (at most CAP.TO).
fn disable(bar: &Bar0, dev: &GenericDevice, cap: Cap) -> Result {
    let cc = Cc::from_bits_retain(bar.read32::<{ regs::CC }>());
    bar.write32::<{ regs::CC }>((cc - Cc::EN).bits());
    wait_csts(bar, dev, "disabling", cap.timeout_ms(), |c| {
        !c.contains(Csts::RDY)
    })
}

/// Programs the admin queue, sets CC (EN=1) and waits for CSTS.RDY (at most CAP.TO).
fn enable(bar: &Bar0, dev: &GenericDevice, cap: Cap, admin: &QueuePair) -> Result {
    let depth = u32::from(ADMIN_DEPTH) - 1;
    bar.write32::<{ regs::AQA }>((depth << 16) | depth);
    bar.write64::<{ regs::ASQ }>(admin.sq.dma_handle());
    bar.write64::<{ regs::ACQ }>(admin.cq.dma_handle());
    bar.write32::<{ regs::CC }>(Cc::new(0).bits());
    wait_csts(bar, dev, "enabling", cap.timeout_ms(), |c| {
        c.contains(Csts::RDY)
    })
}

/// Normal shutdown (CC.SHN = 01b), waiting for CSTS.SHST = complete. Errors are logged:
/// nothing else can be done about them on the way out.
fn shutdown(bar: &Bar0, dev: &GenericDevice) {
    let cc = Cc::from_bits_retain(bar.read32::<{ regs::CC }>());
    bar.write32::<{ regs::CC }>(((cc - Cc::SHN_ABRUPT) | Cc::SHN_NORMAL).bits());
    let _ = wait_csts(bar, dev, "shutting down", SHUTDOWN_TIMEOUT_MS, |c| {
        c & Csts::SHST_MASK == Csts::SHST_COMPLETE
    });
}

/// Identify Controller, then Identify Namespace 1; logs what they say.
fn identify(bar: &Bar0, dev: &GenericDevice, admin: &mut QueuePair) -> Result<Identity> {
    let page = CoherentAllocation::<IdentifyController>::alloc(dev, 1, Gfp::KERNEL)?;
    let mut cmd = Command {
        opcode: admin_opcode::IDENTIFY,
        ..Default::default()
    };
    cmd.prp1.set(page.dma_handle());
    cmd.cdw10.set(cns::CONTROLLER);
    admin.execute_polled(bar, cmd, ADMIN_TIMEOUT_MS)?;
    let id = page.read_boxed(0, Gfp::KERNEL)?;
    pr_info!(
        "{}: model \"{}\" serial \"{}\" firmware \"{}\", {} namespace(s), MDTS {}\n",
        dev.name(),
        spec::ascii(&id.mn),
        spec::ascii(&id.sn),
        spec::ascii(&id.fr),
        id.nn.get(),
        id.mdts
    );
    if id.nn.get() == 0 {
        return Err(ENODEV);
    }
    let (mdts, write_cache) = (id.mdts, id.vwc & 1 != 0);
    drop(id);
    drop(page);

    let page = CoherentAllocation::<IdentifyNamespace>::alloc(dev, 1, Gfp::KERNEL)?;
    let mut cmd = Command {
        opcode: admin_opcode::IDENTIFY,
        ..Default::default()
    };
    cmd.nsid.set(1);
    cmd.prp1.set(page.dma_handle());
    cmd.cdw10.set(cns::NAMESPACE);
    admin.execute_polled(bar, cmd, ADMIN_TIMEOUT_MS)?;
    let ns = page.read_boxed(0, Gfp::KERNEL)?;
    let bs = ns.block_size();
    pr_info!(
        "{}: namespace 1: {} blocks of {} bytes ({} MiB)\n",
        dev.name(),
        ns.nsze.get(),
        bs,
        (ns.nsze.get() * u64::from(bs)) >> 20
    );
    if !(512..=4096).contains(&bs) || ns.nsze.get() == 0 {
        return Err(ENODEV);
    }
    Ok(Identity {
        mdts,
        write_cache,
        nsze: ns.nsze.get(),
        lba_shift: bs.trailing_zeros(),
    })
}

/// Set Features (Number of Queues): asks for `wanted` I/O submission and completion queues;
/// returns how many pairs the controller allows (Dword 0: NSQA 15:0, NCQA 31:16, zero-based).
fn set_queue_count(bar: &Bar0, admin: &mut QueuePair, wanted: u32) -> Result<u32> {
    let mut cmd = Command {
        opcode: admin_opcode::SET_FEATURES,
        ..Default::default()
    };
    cmd.cdw10.set(feature::NUM_QUEUES);
    let n = wanted - 1;
    cmd.cdw11.set((n << 16) | n);
    let result = admin.execute_polled(bar, cmd, ADMIN_TIMEOUT_MS)?;
    Ok((result & 0xffff).min(result >> 16) + 1)
}

/// Create I/O CQ `qid` (interrupts on its vector), then Create I/O SQ `qid` on it.
fn create_io_queue(bar: &Bar0, admin: &mut QueuePair, io: &IoQueue) -> Result {
    let (sq, cq) = io.ring_addresses();
    let qid = u32::from(io.qid());
    let qsize = (u32::from(IO_DEPTH) - 1) << 16;
    let mut cmd = Command {
        opcode: admin_opcode::CREATE_CQ,
        ..Default::default()
    };
    cmd.prp1.set(cq);
    cmd.cdw10.set(qsize | qid);
    cmd.cdw11.set((io.vector() << 16) | 0b11); // IV, IEN, PC
    admin.execute_polled(bar, cmd, ADMIN_TIMEOUT_MS)?;

    let mut cmd = Command {
        opcode: admin_opcode::CREATE_SQ,
        ..Default::default()
    };
    cmd.prp1.set(sq);
    cmd.cdw10.set(qsize | qid);
    cmd.cdw11.set((qid << 16) | 1); // CQID, PC
    admin.execute_polled(bar, cmd, ADMIN_TIMEOUT_MS)?;
    Ok(())
}

kernel::module! {
    type: NvmeLite,
    name: "nvme_lite",
    author: "Rust for Linux examples",
    description: "NVMe-lite: a PCI NVMe block driver in safe Rust",
    license: "GPL",
    params: {
        drop_completion: u32 = 0, "Fault injection: ignore the Nth I/O completion (0: never), so that request times out",
    },
}
