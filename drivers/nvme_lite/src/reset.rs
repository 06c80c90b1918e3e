//! Timeout recovery, as `nvme_timeout()` in `drivers/nvme/host/pci.c`.
//!
//! blk-mq calls the timeout handler from its timeout work (kblockd: process context, which
//! may sleep, as the C driver's handler does when it disables the controller). For the request
//! that timed out:
//!
//! 1. The controller is gone (CSTS all-ones): fail everything. It reports a fatal status
//!    (CSTS.CFS): reset at once.
//! 2. Reap the completion queue (a lost interrupt); if the request completed, done. If its
//!    completion was posted but lost (`drop_completion`), end it with a timeout error.
//! 3. First timeout of a command the controller still owns: send an Admin Abort for its SQID
//!    and CID and restart its timer. If the controller aborts it, its completion (status
//!    "Command Abort Requested") ends it through the normal path.
//! 4. It times out again (the Abort did not help: QEMU's controller cannot abort a command
//!    its block backend holds), or the Abort itself fails: reset the controller. Disabling it
//!    (CC.EN = 0, CSTS.RDY = 0 within CAP.TO) makes it forget every command, so only then do
//!    the timed-out request's buffers go back to the block layer: it ends with
//!    `BLK_STS_TIMEOUT` (it already had two timeouts; retrying the command that stalled the
//!    controller could stall it again, reset after reset). The other requests in flight did
//!    nothing wrong: they keep their mapped data and are submitted again, as they were, once
//!    the controller is enabled and the I/O queues (all of them) are created again (reads, writes and
//!    flushes can be repeated). Each has its own timer, so a command that keeps stalling
//!    still ends after its own abort and reset.
//!
//! Completions the controller posts until it is disabled end their requests as usual, except
//! failures without Do Not Retry (QEMU fails the commands it had in flight when it is reset,
//! as a real controller may abort them): those are submitted again, as the C driver retries
//! them.
//!
//! New requests arriving during the reset are held (not announced to the controller) and
//! submitted with the others. If the controller cannot be brought back, every request fails.

use crate::io::{IoQueue, Timeout};
use crate::queue::CommandError;
use crate::regs::{self, Csts};
use crate::spec::{admin_opcode, Command};
use crate::{create_io_queue, disable, enable, set_queue_count, Nvme, ADMIN_TIMEOUT_MS};
use kernel::block::mq::{Status, TimeoutAction};
use kernel::prelude::*;

impl Nvme {
    /// blk-mq's timeout for the request with tag `tag` on hardware queue `hw_queue` (see the
    /// module documentation).
    pub fn timed_out(&self, hw_queue: u32, tag: u32) -> TimeoutAction {
        let name = self.dev.name();
        let Some(q) = self.queue(hw_queue) else {
            return TimeoutAction::ResetTimer;
        };
        let qid = q.qid();
        let csts = self.bar.read32::<{ regs::CSTS }>();
        if csts == u32::MAX {
            pr_warn!("{name}: I/O {tag} timeout, device gone (CSTS reads all-ones): failing I/O\n");
            self.kill();
            return TimeoutAction::Done;
        }
        let _ = q.process_completions();
        let fatal = Csts::from_bits_retain(csts).contains(Csts::CFS);
        match q.check_timeout(tag) {
            Timeout::Completed => {
                pr_warn!("{name}: I/O {tag} QID {qid} timeout, completion polled\n");
                TimeoutAction::Done
            }
            Timeout::Lost(rq) => {
                pr_warn!("{name}: I/O command {tag} timed out: ending it with an error\n");
                rq.end(Status::Timeout);
                TimeoutAction::Done
            }
            Timeout::AbortDue if !fatal => {
                pr_warn!("{name}: I/O {tag} QID {qid} timeout, aborting\n");
                match self.abort(qid, tag) {
                    Ok(()) => TimeoutAction::ResetTimer,
                    Err(e) => {
                        pr_warn!("{name}: Abort failed ({e:?})\n");
                        self.reset(q, tag);
                        TimeoutAction::Done
                    }
                }
            }
            Timeout::AbortDue | Timeout::AbortedBefore => {
                if fatal {
                    pr_warn!("{name}: controller fatal status (CSTS={csts:#x})\n");
                }
                self.reset(q, tag);
                TimeoutAction::Done
            }
        }
    }

    /// Sends an Abort for command `tag` of submission queue `qid` and waits for its completion
    /// (the admin queue is polled). Dword 0 bit 0 of the result is 0 if the command was
    /// aborted, 1 if not.
    fn abort(&self, qid: u16, tag: u32) -> core::result::Result<(), CommandError> {
        let mut cmd = Command {
            opcode: admin_opcode::ABORT,
            ..Default::default()
        };
        cmd.cdw10.set((tag << 16) | u32::from(qid));
        // Waits for a passthrough command holding the admin queue (bounded by its timeout).
        let result = self.admin.execute(cmd, ADMIN_TIMEOUT_MS)?;
        pr_warn!(
            "{}: Abort of I/O {tag} QID {qid}: the controller says {}\n",
            self.dev.name(),
            if result & 1 == 0 {
                "aborted"
            } else {
                "not aborted"
            }
        );
        Ok(())
    }

    /// Resets the controller because of request `tag` of queue `culprit` (see the module
    /// documentation).
    fn reset(&self, culprit: &IoQueue, tag: u32) {
        let name = self.dev.name();
        pr_warn!(
            "{name}: I/O {tag} QID {} timeout, reset controller\n",
            culprit.qid()
        );
        // The admin queue to ourselves for the whole reset: a passthrough command holding it
        // finishes first (bounded by its timeout), and none starts before the controller is
        // back. Nothing below waits for anything but the controller, bounded by CAP.TO and
        // the admin timeout. Revoked (the controller is being removed): fail everything.
        let mut timed_out = None;
        let back = self.admin.with(|admin| {
            let queues = self.queues.as_slice();
            for q in queues {
                q.begin_reset();
            }
            if let Err(e) = disable(&self.bar, &self.dev, self.cap) {
                // The C driver at this point disables the PCI function (no more bus mastering)
                // and cancels everything; a controller ignoring CC.EN for CAP.TO is broken.
                pr_err!("{name}: reset: disabling failed ({e:?}): failing I/O\n");
                return Err(e);
            }
            // Disabled: the controller owns no command and no buffer any more.
            for q in queues {
                let is_culprit = q.qid() == culprit.qid();
                if let Some(rq) = q.after_disable(is_culprit.then_some(tag)) {
                    timed_out = Some(rq);
                }
            }
            admin.disabled();
            enable(&self.bar, &self.dev, self.cap, &admin.queue)?;
            set_queue_count(&self.bar, &mut admin.queue, queues.len() as u32)?;
            queues
                .iter()
                .try_for_each(|q| create_io_queue(&self.bar, &mut admin.queue, q))
        });
        match back {
            Ok(()) => {
                let n: usize = self.queues.iter().map(|q| q.resume()).sum();
                pr_warn!("{name}: reset done: {n} command(s) submitted again\n");
            }
            Err(e) => {
                pr_err!("{name}: reset: the controller did not come back ({e:?}): failing I/O\n");
                self.kill();
            }
        }
        // Ended last: blk-mq may reuse its tag as soon as it is freed.
        if let Some(rq) = timed_out {
            rq.end(Status::Timeout);
        }
    }
}
