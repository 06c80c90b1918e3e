//! A submission/completion queue pair in coherent DMA memory, and the admin queue's polled
//! command path.
//!
//! The submission queue is a ring we write at `sq_tail` and announce through the tail
//! doorbell; the controller writes completions at `cq_head` and flips each entry's phase bit on
//! every pass, so an entry is new when its phase equals the one we expect (1 on the first pass).

use crate::spec::{Command, Completion};
use crate::{regs, Bar0};
use kernel::device::Device;
use kernel::dma::{self, CoherentAllocation};
use kernel::prelude::*;
use kernel::time::{msleep, Instant};

/// A queue pair; `qid` 0 is the admin queue.
pub struct QueuePair {
    pub sq: CoherentAllocation<Command>,
    pub cq: CoherentAllocation<Completion>,
    qid: u16,
    depth: u16,
    sq_tail: u16,
    cq_head: u16,
    phase: bool,
    next_cid: u16,
    /// Byte offset of this queue's SQ tail doorbell in BAR0 (the CQ head doorbell follows
    /// one stride later).
    doorbell: usize,
    stride: usize,
}

/// How a command failed.
#[derive(Debug)]
pub enum CommandError {
    /// No completion within the time allowed.
    Timeout,
    /// The controller completed it with this Status Field.
    Status(u16),
    /// Anything else (a doorbell out of BAR0, a completion for another command).
    Other(Error),
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        match e {
            CommandError::Timeout => ETIMEDOUT,
            CommandError::Status(_) => EIO,
            CommandError::Other(e) => e,
        }
    }
}

impl QueuePair {
    /// Allocates a queue pair of `depth` entries for queue `qid`.
    pub fn new(dev: &Device, qid: u16, depth: u16, stride: usize) -> Result<Self> {
        Ok(Self {
            sq: CoherentAllocation::alloc(dev, depth.into(), Gfp::KERNEL)?,
            cq: CoherentAllocation::alloc(dev, depth.into(), Gfp::KERNEL)?,
            qid,
            depth,
            sq_tail: 0,
            cq_head: 0,
            phase: true,
            next_cid: 0,
            doorbell: regs::DOORBELLS + 2 * usize::from(qid) * stride,
            stride,
        })
    }

    /// Forgets everything in flight: the controller was disabled (CC.EN = 0 resets its queue
    /// pointers). The completion ring is cleared, so no stale phase bit looks new once the
    /// controller runs again.
    pub fn reset_state(&mut self) {
        for i in 0..usize::from(self.depth) {
            self.cq.write(i, &Completion::default());
        }
        self.sq_tail = 0;
        self.cq_head = 0;
        self.phase = true;
    }

    /// Puts `cmd` (with a fresh command identifier) into the submission queue and rings the
    /// doorbell; returns the identifier.
    fn submit(&mut self, bar: &Bar0, mut cmd: Command) -> Result<u16> {
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        cmd.cid.set(cid);
        self.sq.write(self.sq_tail.into(), &cmd);
        self.sq_tail = (self.sq_tail + 1) % self.depth;
        // writel orders the entry's write to DMA memory before the doorbell.
        bar.try_write32(self.sq_tail.into(), self.doorbell)?;
        Ok(cid)
    }

    /// The next completion if the controller has posted one; consumes it and rings the CQ head
    /// doorbell.
    fn poll_one(&mut self, bar: &Bar0) -> Result<Option<Completion>> {
        if self.cq.read(self.cq_head.into()).phase() != self.phase {
            return Ok(None);
        }
        // The phase bit was read before the rest of the entry.
        dma::rmb();
        let cqe = self.cq.read(self.cq_head.into());
        self.cq_head += 1;
        if self.cq_head == self.depth {
            self.cq_head = 0;
            self.phase = !self.phase;
        }
        bar.try_write32(self.cq_head.into(), self.doorbell + self.stride)?;
        Ok(Some(cqe))
    }

    /// Submits `cmd` and polls for its completion for up to `timeout_ms` (sleeping between
    /// polls: process context only). Returns the completion's result (DW0).
    pub fn execute_polled(
        &mut self,
        bar: &Bar0,
        cmd: Command,
        timeout_ms: u64,
    ) -> core::result::Result<u32, CommandError> {
        let cid = self.submit(bar, cmd).map_err(CommandError::Other)?;
        let start = Instant::now();
        loop {
            if let Some(cqe) = self.poll_one(bar).map_err(CommandError::Other)? {
                if cqe.cid.get() != cid || cqe.sq_id.get() != self.qid {
                    return Err(CommandError::Other(EIO));
                }
                return match cqe.status_field() {
                    0 => Ok(cqe.result.get()),
                    s => Err(CommandError::Status(s)),
                };
            }
            if start.elapsed_ms() > timeout_ms {
                return Err(CommandError::Timeout);
            }
            msleep(1);
        }
    }
}
