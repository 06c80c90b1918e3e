//! The I/O queue pair: blk-mq requests become NVM Read/Write/Flush commands with PRPs, and
//! the interrupt handler turns completions back into ended requests.
//!
//! Shared by `queue_rq` (any CPU, must not sleep) and the interrupt handler: the rings and the
//! table of requests in flight are behind one spinlock taken with interrupts off. Nothing is
//! allocated here: each tag has its own PRP list page, allocated with the queue.

use crate::regs;
use crate::spec::{io_opcode, Command, Completion};
use crate::{Bar0, Nvme, NvmeLite};
use kernel::block::mq::{self, Op, Request, Status};
use kernel::device::Device;
use kernel::dma::{self, CoherentAllocation};
use kernel::irq::{self, IrqReturn};
use kernel::prelude::*;
use kernel::sync::atomic::{AtomicU32, Ordering};
use zerocopy::little_endian::U64;

/// Entries per I/O queue (the tag set has one fewer: a full ring keeps one slot empty).
pub const IO_DEPTH: u16 = 32;
/// PRP entries in one list page.
const PRPS_PER_PAGE: usize = 512;
/// The memory page size (CC.MPS = 0).
const PAGE: u64 = 4096;

/// I/O completions consumed so far, on every queue of every controller (for `drop_at`).
static COMPLETIONS: AtomicU32 = AtomicU32::new(0);

/// An I/O queue pair (one per CPU, up to the controller's limit): what `queue_rq` and its
/// interrupt handler share.
pub struct IoQueue {
    /// Queue identifier (1-based: 0 is the admin queue); hardware queue `qid - 1` of blk-mq.
    qid: u16,
    /// The interrupt vector of its completion queue.
    vector: u32,
    bar: Arc<Bar0>,
    ring: SpinLock<Ring>,
    /// One PRP list page per tag.
    prp_lists: CoherentAllocation<U64>,
    sq_doorbell: usize,
    cq_doorbell: usize,
    /// log2 of the logical block size.
    lba_shift: u32,
    /// Namespace size in 512-byte sectors.
    capacity_sectors: u64,
    /// Fault injection (`drop_completion=N`): the Nth I/O completion (counted over all
    /// queues) is ignored (0: never).
    drop_at: u32,
}

struct Ring {
    sq: CoherentAllocation<Command>,
    cq: CoherentAllocation<Completion>,
    sq_tail: u16,
    cq_head: u16,
    phase: bool,
    /// The request each command identifier (= tag) stands for, while in flight.
    inflight: KVec<Option<Request<NvmeLite>>>,
    /// The command each request in flight was submitted as (by tag): after a controller reset
    /// the same commands are submitted again (their data stays mapped).
    cmds: KVec<Command>,
    /// Commands (by tag, one bit each) the controller completed but whose completion was not
    /// delivered (`drop_completion`): the controller is done with their buffers.
    lost: u64,
    /// Commands (by tag) an Abort was sent for since they were (re)submitted: a second timeout
    /// resets the controller.
    aborted: u64,
    state: State,
}

/// Whether commands reach the controller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Submissions ring the doorbell.
    Live,
    /// A controller reset is in progress: new requests are kept (in `inflight`/`cmds`) and
    /// submitted when the queues are back; no doorbell is written.
    Resetting,
    /// The controller is gone (surprise removal) or could not be brought back: no more
    /// doorbells, every request fails.
    Dead,
}

/// What the timeout handler found about a request (see [`IoQueue::check_timeout`]).
pub enum Timeout {
    /// It completed meanwhile.
    Completed,
    /// Its completion was lost (`drop_completion`): here it is, the controller is done with it.
    Lost(Request<NvmeLite>),
    /// The controller still owns it, and no Abort was sent for it yet (one is now due).
    AbortDue,
    /// The controller still owns it although an Abort was sent: reset the controller.
    AbortedBefore,
}

const _: () = assert!(
    IO_DEPTH as u32 <= u64::BITS,
    "one bit of `lost` and `aborted` per tag"
);

impl IoQueue {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dev: &Device,
        bar: Arc<Bar0>,
        qid: u16,
        vector: u32,
        stride: usize,
        lba_shift: u32,
        capacity_sectors: u64,
        drop_at: u32,
    ) -> Result<Self> {
        let mut inflight = KVec::with_capacity(IO_DEPTH.into(), Gfp::KERNEL)?;
        let mut cmds = KVec::with_capacity(IO_DEPTH.into(), Gfp::KERNEL)?;
        for _ in 0..IO_DEPTH {
            inflight.push(None, Gfp::KERNEL)?;
            cmds.push(Command::default(), Gfp::KERNEL)?;
        }
        let ring = Ring {
            sq: CoherentAllocation::alloc(dev, IO_DEPTH.into(), Gfp::KERNEL)?,
            cq: CoherentAllocation::alloc(dev, IO_DEPTH.into(), Gfp::KERNEL)?,
            sq_tail: 0,
            cq_head: 0,
            phase: true,
            inflight,
            cmds,
            lost: 0,
            aborted: 0,
            state: State::Live,
        };
        Ok(Self {
            qid,
            vector,
            bar,
            ring: new_spinlock!(ring, "nvme_lite.ioq", Gfp::KERNEL)?,
            prp_lists: CoherentAllocation::alloc(
                dev,
                usize::from(IO_DEPTH) * PRPS_PER_PAGE,
                Gfp::KERNEL,
            )?,
            sq_doorbell: regs::DOORBELLS + 2 * usize::from(qid) * stride,
            cq_doorbell: regs::DOORBELLS + (2 * usize::from(qid) + 1) * stride,
            lba_shift,
            capacity_sectors,
            drop_at,
        })
    }

    /// Its queue identifier.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// The interrupt vector of its completion queue.
    pub fn vector(&self) -> u32 {
        self.vector
    }

    /// The bus addresses of the submission and completion rings, for Create I/O SQ/CQ.
    pub fn ring_addresses(&self) -> (u64, u64) {
        self.ring
            .lock_irqsave(|r| (r.sq.dma_handle(), r.cq.dma_handle()))
    }

    /// Fills in PRP1/PRP2 for the mapped request (using the tag's PRP list if more than two
    /// pages).
    fn set_prps(&self, rq: &Request<NvmeLite>, cmd: &mut Command) -> Result {
        let list_base = rq.tag() as usize * PRPS_PER_PAGE;
        let segments = (0..).map_while(|i| rq.dma_segment(i));
        let prps = prp_entries(segments, |n, addr| {
            self.prp_lists.write(list_base + n, &U64::new(addr));
        })?;
        cmd.prp1.set(prps.prp1);
        match prps.count {
            0 => {}
            1 => cmd.prp2.set(prps.second),
            _ => cmd.prp2.set(self.prp_lists.dma_handle_of(list_base)?),
        }
        Ok(())
    }

    fn build(&self, rq: &mut Request<NvmeLite>) -> core::result::Result<Command, Status> {
        let mut cmd = Command::default();
        cmd.nsid.set(1);
        match rq.op() {
            Op::Flush => {
                cmd.opcode = io_opcode::FLUSH;
                return Ok(cmd);
            }
            Op::Read => cmd.opcode = io_opcode::READ,
            Op::Write => cmd.opcode = io_opcode::WRITE,
            Op::Other(_) => return Err(Status::NotSupp),
        }
        let sectors = u64::from(rq.bytes()) >> 9;
        let end = rq.sector().checked_add(sectors).ok_or(Status::IoErr)?;
        let blocks = u64::from(rq.bytes()) >> self.lba_shift;
        if end > self.capacity_sectors || blocks == 0 || blocks > 0x1_0000 {
            return Err(Status::IoErr);
        }
        rq.dma_map().map_err(|_| Status::Resource)?;
        self.set_prps(rq, &mut cmd).map_err(|_| Status::IoErr)?;
        // CDW10/11: starting LBA; CDW12 15:0: number of logical blocks, zero-based.
        let slba = rq.sector() >> (self.lba_shift - 9);
        cmd.cdw10.set(slba as u32);
        cmd.cdw11.set((slba >> 32) as u32);
        cmd.cdw12.set((blocks - 1) as u32);
        Ok(cmd)
    }

    /// Puts a request on the ring (queue_rq's work).
    #[allow(clippy::result_large_err)]
    fn submit(
        &self,
        mut rq: Request<NvmeLite>,
    ) -> core::result::Result<(), (Request<NvmeLite>, Status)> {
        let mut cmd = match self.build(&mut rq) {
            Ok(c) => c,
            Err(s) => return Err((rq, s)),
        };
        let tag = rq.tag();
        cmd.cid.set(tag as u16);
        self.ring.lock_irqsave(|r| {
            if r.state == State::Dead {
                return Err((rq, Status::IoErr));
            }
            let slot = match r.inflight.as_mut_slice().get_mut(tag as usize) {
                Some(s) if s.is_none() => s,
                _ => return Err((rq, Status::IoErr)),
            };
            *slot = Some(rq);
            if let Some(saved) = r.cmds.as_mut_slice().get_mut(tag as usize) {
                *saved = cmd;
            }
            r.aborted &= !(1 << tag);
            if r.state == State::Live {
                self.push(r, &cmd);
                self.ring_sq(r);
            }
            Ok(())
        })
    }

    /// Writes `cmd` at the submission queue's tail (the doorbell is rung separately).
    fn push(&self, r: &mut Ring, cmd: &Command) {
        r.sq.write(r.sq_tail.into(), cmd);
        r.sq_tail = (r.sq_tail + 1) % IO_DEPTH;
    }

    /// Announces the submission queue's tail. writel orders the entries' (and PRP lists')
    /// writes to DMA memory before the doorbell.
    fn ring_sq(&self, r: &Ring) {
        let _ = self.bar.try_write32(r.sq_tail.into(), self.sq_doorbell);
    }

    /// Consumes the posted completions; ends their requests after letting go of the lock.
    pub fn process_completions(&self) -> IrqReturn {
        let mut done: [Option<(Request<NvmeLite>, Status)>; IO_DEPTH as usize] =
            [const { None }; IO_DEPTH as usize];
        let consumed = self.ring.lock_irqsave(|r| {
            let (mut count, mut consumed) = (0, 0);
            while count < done.len() {
                let head = usize::from(r.cq_head);
                if r.cq.read(head).phase() != r.phase {
                    break;
                }
                dma::rmb();
                let cqe = r.cq.read(head);
                consumed += 1;
                r.cq_head += 1;
                if r.cq_head == IO_DEPTH {
                    r.cq_head = 0;
                    r.phase = !r.phase;
                }
                let cid = usize::from(cqe.cid.get());
                let nth = COMPLETIONS.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
                if self.drop_at != 0 && nth == self.drop_at {
                    // Fault injection: the request stays in flight until it times out; the
                    // controller is done with it, which the timeout handler may rely on.
                    pr_warn!("drop_completion: ignoring completion of command {cid}\n");
                    if cid < IO_DEPTH as usize {
                        r.lost |= 1 << cid;
                    }
                    continue;
                }
                let sf = cqe.status_field();
                // While the controller is being reset, a command it fails without Do Not Retry
                // (QEMU aborts what it had in flight) stays, to be submitted again.
                if r.state == State::Resetting && sf != 0 && sf & DNR == 0 {
                    continue;
                }
                match r
                    .inflight
                    .as_mut_slice()
                    .get_mut(cid)
                    .and_then(Option::take)
                {
                    Some(rq) => {
                        done[count] = Some((rq, status(sf)));
                        count += 1;
                    }
                    None => pr_warn!("completion for unknown command {cid}\n"),
                }
            }
            // Also when the only entry consumed was a dropped one: the controller must see
            // its slot free. Not while resetting or dead: those queues no longer exist.
            if consumed > 0 && r.state == State::Live {
                let _ = self.bar.try_write32(r.cq_head.into(), self.cq_doorbell);
            }
            consumed
        });
        for (rq, st) in done.iter_mut().filter_map(Option::take) {
            rq.end(st);
        }
        if consumed > 0 {
            IrqReturn::Handled
        } else {
            IrqReturn::None
        }
    }
}

impl IoQueue {
    /// The controller is gone (surprise removal, CSTS reads all-ones) or could not be brought
    /// back after a reset: from now on requests fail without touching the device, and those in
    /// flight end with an I/O error now (their completions will never come).
    pub fn kill(&self) {
        let mut done: [Option<Request<NvmeLite>>; IO_DEPTH as usize] =
            [const { None }; IO_DEPTH as usize];
        self.ring.lock_irqsave(|r| {
            r.state = State::Dead;
            for (slot, d) in r.inflight.as_mut_slice().iter_mut().zip(done.iter_mut()) {
                *d = slot.take();
            }
        });
        for rq in done.iter_mut().filter_map(Option::take) {
            rq.end(Status::IoErr);
        }
    }

    /// The timeout handler's view of the request with tag `tag` (call after reaping the
    /// completion queue). Marks it aborted when it reports [`Timeout::AbortDue`].
    pub fn check_timeout(&self, tag: u32) -> Timeout {
        let bit = 1u64.checked_shl(tag).unwrap_or(0);
        self.ring.lock_irqsave(|r| {
            let Some(slot) = r.inflight.as_mut_slice().get_mut(tag as usize) else {
                return Timeout::Completed;
            };
            match slot {
                None => Timeout::Completed,
                Some(_) if r.lost & bit != 0 => {
                    r.lost &= !bit;
                    slot.take().map_or(Timeout::Completed, Timeout::Lost)
                }
                Some(_) if r.aborted & bit != 0 => Timeout::AbortedBefore,
                Some(_) => {
                    r.aborted |= bit;
                    Timeout::AbortDue
                }
            }
        })
    }

    /// First step of a controller reset: from now on new requests are held back (no doorbell).
    pub fn begin_reset(&self) {
        self.ring.lock_irqsave(|r| {
            if r.state == State::Live {
                r.state = State::Resetting;
            }
        });
    }

    /// After the controller was disabled (it no longer owns any command or buffer): reaps the
    /// completions it posted before (failures without Do Not Retry stay, to be submitted
    /// again: QEMU fails the commands it had in flight when it is reset), takes back request `culprit` if it is still in flight, and
    /// empties the rings (cleared completion ring, indices and phase as new). The other
    /// requests stay, to be submitted again by [`resume`](Self::resume).
    pub fn after_disable(&self, culprit: Option<u32>) -> Option<Request<NvmeLite>> {
        let _ = self.process_completions();
        self.ring.lock_irqsave(|r| {
            let rq = culprit.and_then(|tag| {
                r.inflight
                    .as_mut_slice()
                    .get_mut(tag as usize)
                    .and_then(Option::take)
            });
            for i in 0..usize::from(IO_DEPTH) {
                r.cq.write(i, &Completion::default());
            }
            r.sq_tail = 0;
            r.cq_head = 0;
            r.phase = true;
            r.lost = 0;
            r.aborted = 0;
            rq
        })
    }

    /// Last step of a controller reset, once the I/O queues exist again: submits every request
    /// still in flight again (the same command, its data still mapped: reads, writes and
    /// flushes may be repeated) and lets new ones through. Returns how many were resubmitted.
    pub fn resume(&self) -> usize {
        self.ring.lock_irqsave(|r| {
            if r.state != State::Resetting {
                return 0;
            }
            let mut n = 0;
            for tag in 0..usize::from(IO_DEPTH) {
                let held = r.inflight.as_slice().get(tag).is_some_and(Option::is_some);
                if let Some(&cmd) = r.cmds.as_slice().get(tag).filter(|_| held) {
                    self.push(r, &cmd);
                    n += 1;
                }
            }
            r.state = State::Live;
            if n > 0 {
                self.ring_sq(r);
            }
            n
        })
    }
}

/// The data pointer of a command, from its DMA segments.
#[derive(Debug, PartialEq, Eq)]
struct Prps {
    /// PRP Entry 1: the first segment's address (may have a page offset).
    prp1: u64,
    /// How many page entries follow it (0: none, 1: `second` is PRP2, more: a PRP list).
    count: usize,
    /// The first of them.
    second: u64,
}

/// Splits DMA segments into PRP entries (NVMe 1.4, 4.3): PRP1 is the first segment's
/// address; every further memory page the transfer touches is one entry, passed to
/// `entry(index, address)` (the PRP list). The queue's virtual boundary (4 KiB) guarantees
/// that only the first segment starts, and only the last ends, inside a page.
fn prp_entries(
    segments: impl Iterator<Item = (u64, u32)>,
    mut entry: impl FnMut(usize, u64),
) -> Result<Prps> {
    let mut prps = Prps {
        prp1: 0,
        count: 0,
        second: 0,
    };
    for (i, (addr, len)) in segments.enumerate() {
        let end = addr + u64::from(len);
        let mut a = addr;
        if i == 0 {
            prps.prp1 = addr;
            a = (addr & !(PAGE - 1)) + PAGE;
        } else if addr % PAGE != 0 {
            return Err(EINVAL);
        }
        while a < end {
            if prps.count >= PRPS_PER_PAGE {
                return Err(EINVAL);
            }
            if prps.count == 0 {
                prps.second = a;
            }
            entry(prps.count, a);
            prps.count += 1;
            a += PAGE;
        }
    }
    Ok(prps)
}

/// Do Not Retry, in the Status Field (without the phase bit).
const DNR: u16 = 1 << 14;

/// NVMe status (Status Field without the phase bit) → block status, as `nvme_error_status()`.
fn status(sf: u16) -> Status {
    match sf & 0x7ff {
        0 => Status::Ok,
        // Invalid Command Opcode, Invalid Field, Invalid Namespace.
        0x01 | 0x02 | 0x0b => Status::NotSupp,
        // LBA Out of Range.
        0x80 => Status::Target,
        // Capacity Exceeded.
        0x81 => Status::NoSpc,
        // Reservation Conflict.
        0x83 => Status::Nexus,
        // Write Fault, Unrecovered Read Error.
        0x280 | 0x281 => Status::Medium,
        // End-to-end Guard, Application Tag, Reference Tag check errors.
        0x282..=0x284 => Status::Protection,
        _ => Status::IoErr,
    }
}

impl irq::Handler for IoQueue {
    fn handle(&self) -> IrqReturn {
        self.process_completions()
    }
}

impl mq::Operations for NvmeLite {
    type QueueData = Nvme;
    type RequestData = ();

    fn new_request_data() {}

    fn queue_rq(
        nvme: &Nvme,
        rq: Request<NvmeLite>,
        _is_last: bool,
    ) -> core::result::Result<(), (Request<NvmeLite>, Status)> {
        match nvme.queue(rq.hw_queue()) {
            Some(q) => q.submit(rq),
            None => Err((rq, Status::IoErr)),
        }
    }

    fn timeout(nvme: &Nvme, hw_queue: u32, tag: u32) -> mq::TimeoutAction {
        nvme.timed_out(hw_queue, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prps(segments: &[(u64, u32)]) -> (Prps, Vec<u64>) {
        let mut list = Vec::new();
        let p = prp_entries(segments.iter().copied(), |n, a| {
            assert_eq!(n, list.len());
            list.push(a);
        })
        .unwrap();
        (p, list)
    }

    #[test]
    fn prp_one_page_needs_prp1_only() {
        let (p, list) = prps(&[(0x10_0000, 4096)]);
        assert_eq!((p.prp1, p.count), (0x10_0000, 0));
        assert!(list.is_empty());
        let (p, _) = prps(&[(0x10_0200, 512)]);
        assert_eq!((p.prp1, p.count), (0x10_0200, 0));
    }

    #[test]
    fn prp_offset_crossing_a_page_uses_prp2() {
        let (p, list) = prps(&[(0x10_0e00, 1024)]);
        assert_eq!((p.prp1, p.count, p.second), (0x10_0e00, 1, 0x10_1000));
        assert_eq!(list, [0x10_1000]);
    }

    #[test]
    fn prp_list_over_several_segments() {
        // 512 bytes into a page, then two more pages elsewhere: 4 pages touched.
        let (p, list) = prps(&[(0x10_0200, 0x1e00), (0x20_0000, 0x2000)]);
        assert_eq!((p.prp1, p.count), (0x10_0200, 3));
        assert_eq!(list, [0x10_1000, 0x20_0000, 0x20_1000]);
    }

    #[test]
    fn prp_rejects_a_gap_inside_a_page() {
        assert!(prp_entries([(0x1000, 4096), (0x3200, 512)].into_iter(), |_, _| {}).is_err());
    }

    #[test]
    fn status_mapping() {
        assert_eq!(status(0), Status::Ok);
        assert_eq!(status(0x80), Status::Target);
        assert_eq!(status(0x281), Status::Medium);
        assert_eq!(status(0x4000 | 0x02), Status::NotSupp);
        assert_eq!(status(0x06), Status::IoErr);
    }
}
