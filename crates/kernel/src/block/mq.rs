//! blk-mq: a driver implements [`Operations`] (`queue_rq`, optionally `timeout`), creates a
//! [`TagSet`] (queue depth, per-request data initialised in place) and a [`GenDisk`] on it
//! (name, capacity, logical block size, transfer limits); dropping the disk removes
//! `/dev/<name>` after every request in flight has completed (`del_gendisk` freezes the
//! queue), and the tag set goes with the last reference.
//!
//! # Requests
//!
//! `queue_rq` receives a started request as an owned [`Request`] token. The driver either ends
//! it ([`Request::end`]) or keeps it while the hardware works, typically in a table indexed by
//! [`Request::tag`] that its interrupt handler takes it back from. A token dropped without
//! being ended ends the request with an I/O error, so no request is ever lost. The request's
//! data is mapped for DMA with [`Request::dma_map`] (a scatterlist inside the request's
//! per-request area, up to [`MAX_SEGMENTS`] segments) and unmapped when it ends.
//!
//! `queue_rq` runs with preemption possibly disabled and the completion path runs in interrupt
//! context: neither may sleep. Allocation there must be `Gfp::ATOMIC` (or better, none).

use crate::alloc::{Gfp, KBox};
use crate::device;
use crate::error::{code::*, Error, Result};
use crate::str::StackString;
use crate::sync::Arc;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_uint};
use core::marker::PhantomData;
use core::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use core::ptr::NonNull;
use kernel_sys as bindings;

/// The most scatterlist segments one request can be mapped into (the disk's `max_segments`
/// never exceeds it).
pub const MAX_SEGMENTS: usize = 32;

/// A block I/O status (`blk_status_t`), what a request ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok,
    /// Generic I/O error (`EIO`).
    IoErr,
    /// Operation not supported (`EOPNOTSUPP`).
    NotSupp,
    /// Medium error (`ENODATA`).
    Medium,
    /// Target error (`EREMOTEIO`).
    Target,
    /// Reservation conflict (`EBADE`).
    Nexus,
    /// Timeout (`ETIMEDOUT`).
    Timeout,
    /// Data integrity error (`EILSEQ`).
    Protection,
    /// No space (`ENOSPC`).
    NoSpc,
    /// Out of resources for now: from `queue_rq`, the block layer requeues the request.
    Resource,
}

impl Status {
    fn raw(self) -> bindings::blk_status_t {
        match self {
            Status::Ok => bindings::BLK_STS_OK,
            Status::IoErr => bindings::BLK_STS_IOERR,
            Status::NotSupp => bindings::BLK_STS_NOTSUPP,
            Status::Medium => bindings::BLK_STS_MEDIUM,
            Status::Target => bindings::BLK_STS_TARGET,
            Status::Nexus => bindings::BLK_STS_NEXUS,
            Status::Timeout => bindings::BLK_STS_TIMEOUT,
            Status::Protection => bindings::BLK_STS_PROTECTION,
            Status::NoSpc => bindings::BLK_STS_NOSPC,
            Status::Resource => bindings::BLK_STS_RESOURCE,
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read sectors into memory.
    Read,
    /// Write sectors from memory.
    Write,
    /// Make volatile writes durable.
    Flush,
    /// Anything else (discard, write zeroes, ...): the raw `REQ_OP_*`.
    Other(u32),
}

/// What to do about a request that timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutAction {
    /// Keep waiting (restart its timer).
    ResetTimer,
    /// The driver has dealt with it (ended it, or will).
    Done,
}

/// A blk-mq driver.
pub trait Operations: Sized + 'static {
    /// What the tag set shares with every call (the hardware queue state).
    type QueueData: Send + Sync;
    /// Per-request driver data, created in place when the block layer allocates its requests.
    type RequestData: Send + Sync;

    /// The initial per-request data (called once per request slot, at tag set creation).
    fn new_request_data() -> Self::RequestData;

    /// A new, started request. Must not sleep. On error, the request is handed back with a
    /// status: [`Status::Resource`] requeues it, anything else ends it with that status.
    #[allow(clippy::result_large_err)]
    fn queue_rq(
        queue: &Self::QueueData,
        rq: Request<Self>,
        is_last: bool,
    ) -> core::result::Result<(), (Request<Self>, Status)>;

    /// The request with tag `tag` on hardware queue `hw_queue` timed out (see
    /// [`Request::hw_queue`]). Called from blk-mq's timeout work: process context, may sleep
    /// (but must not wait for the queue to freeze). The default keeps waiting.
    fn timeout(_queue: &Self::QueueData, _hw_queue: u32, _tag: u32) -> TimeoutAction {
        TimeoutAction::ResetTimer
    }
}

/// The per-request area (`blk_mq_rq_to_pdu`): the abstraction's scatterlist, then the driver's.
#[repr(C)]
struct Pdu<T: Operations> {
    sg: [MaybeUninit<bindings::scatterlist>; MAX_SEGMENTS],
    /// Entries mapped by `dma_map_sg` (0: not mapped); `map_nents` what was passed to it.
    mapped: c_int,
    map_nents: c_int,
    dir: c_int,
    data: T::RequestData,
}

/// Which CPUs submit to which hardware queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueMap {
    /// blk-mq's default: the CPUs spread evenly over the queues.
    Spread,
    /// Hardware queue `i` serves the CPUs that interrupt vector `first + i` of the tag set's
    /// (PCI) device runs on, so a request completes on a CPU that may have submitted it. For
    /// vectors allocated with [`pci::Affinity::Spread`](crate::pci::Affinity::Spread) (`first`
    /// is then its `pre_vectors`); with any other device or vectors, the same as `Spread`.
    Vectors {
        /// The vector of hardware queue 0.
        first: u32,
    },
}

/// What the tag set's `driver_data` points to.
struct Shared<T: Operations> {
    data: Arc<T::QueueData>,
    map: QueueMap,
    dev: device::DeviceRef,
}

/// A tag set: `depth` request slots per hardware queue, each with its per-request data.
///
/// # Invariants
/// `raw` is an allocated tag set (`blk_mq_alloc_tag_set`) whose `driver_data` is `shared`, a
/// leaked `KBox<Shared<T>>`, both freed only in `drop`.
pub struct TagSet<T: Operations> {
    raw: KBox<UnsafeCell<bindings::blk_mq_tag_set>>,
    shared: NonNull<Shared<T>>,
}

// SAFETY: the C tag set is used by the block layer under its own locking; `Shared` is
// `Send + Sync` (an `Arc` of a `Send + Sync` type and a device reference).
unsafe impl<T: Operations> Send for TagSet<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Operations> Sync for TagSet<T> {}

impl<T: Operations> TagSet<T> {
    /// Creates a tag set with one hardware queue of `depth` requests, for DMA by `dev`;
    /// `queue` is given to every `queue_rq`.
    pub fn new(
        dev: &device::Device,
        depth: u32,
        queue: Arc<T::QueueData>,
        flags: Gfp,
    ) -> Result<Arc<Self>> {
        Self::with_queues(dev, 1, QueueMap::Spread, depth, queue, flags)
    }

    /// Creates a tag set with `nr_hw_queues` hardware queues (numbered from 0, see
    /// [`Request::hw_queue`]; `map` says which CPUs use which) of `depth` requests each.
    pub fn with_queues(
        dev: &device::Device,
        nr_hw_queues: u32,
        map: QueueMap,
        depth: u32,
        queue: Arc<T::QueueData>,
        flags: Gfp,
    ) -> Result<Arc<Self>> {
        if nr_hw_queues == 0
            || matches!(map, QueueMap::Vectors { first } if first > i32::MAX as u32)
        {
            return Err(EINVAL);
        }
        const { assert!(align_of::<Pdu<T>>() <= 8) };
        let shared = KBox::into_raw(KBox::new(
            Shared {
                data: queue,
                map,
                dev: dev.to_ref(),
            },
            flags,
        )?);
        // SAFETY: zeroes are a valid placeholder for the opaque blob; initialised below.
        let raw = KBox::new(UnsafeCell::new(unsafe { core::mem::zeroed() }), flags);
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                // SAFETY: leaked just above, not shared yet.
                drop(unsafe { KBox::from_raw(shared) });
                return Err(e);
            }
        };
        // SAFETY: `raw` is ours and does not move (own heap block); the ops table is static.
        let ret = unsafe {
            bindings::rust_helper_blk_mq_tag_set_init(
                raw.get(),
                &OpsTable::<T>::OPS,
                nr_hw_queues,
                depth,
                size_of::<Pdu<T>>() as c_uint,
                shared.cast(),
            );
            bindings::blk_mq_alloc_tag_set(raw.get())
        };
        if ret != 0 {
            // SAFETY: as above: not shared, the tag set allocation failed.
            drop(unsafe { KBox::from_raw(shared) });
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: allocated, `driver_data` = `shared`.
        Arc::new(
            TagSet {
                raw,
                // SAFETY: `into_raw` never returns null.
                shared: unsafe { NonNull::new_unchecked(shared) },
            },
            flags,
        )
    }

    /// The queue data.
    pub fn queue_data(&self) -> &Arc<T::QueueData> {
        // SAFETY: live until `drop` (type invariant).
        unsafe { &self.shared.as_ref().data }
    }
}

impl<T: Operations> Drop for TagSet<T> {
    fn drop(&mut self) {
        // SAFETY: allocated (type invariant); the last disk on it is gone (disks hold an
        // `Arc` of the tag set), so no request is in flight or can be.
        unsafe { bindings::blk_mq_free_tag_set(self.raw.get()) };
        // SAFETY: leaked at creation, nothing points to it any more.
        drop(unsafe { KBox::from_raw(self.shared.as_ptr()) });
    }
}

/// The limits and geometry of a disk.
#[derive(Clone, Copy, Debug)]
pub struct DiskParams {
    /// Size in 512-byte sectors.
    pub capacity_sectors: u64,
    /// Logical block size in bytes (512..=4096, a power of two).
    pub logical_block_size: u32,
    /// The largest request, in 512-byte sectors.
    pub max_hw_sectors: u32,
    /// The most segments in one request (at most [`MAX_SEGMENTS`]).
    pub max_segments: u16,
    /// Segment boundary mask: a request's segments must not straddle a gap at such an
    /// alignment (`PAGE_SIZE - 1` for NVMe PRPs: only the first segment may start, and only
    /// the last end, inside a page).
    pub virt_boundary_mask: u64,
    /// Whether the device has a volatile write cache (then it gets flush requests).
    pub write_cache: bool,
}

/// A disk (`/dev/<name>`) on a tag set; removed when dropped.
///
/// # Invariants
/// `disk` was allocated on `tagset` and added; it is deleted and put in `drop`.
pub struct GenDisk<T: Operations> {
    disk: NonNull<bindings::gendisk>,
    _tagset: Arc<TagSet<T>>,
}

// SAFETY: the gendisk is managed by the block layer under its own locking; dropping it
// (process context) is the only thing done with the pointer.
unsafe impl<T: Operations> Send for GenDisk<T> {}
// SAFETY: `&GenDisk` offers nothing that touches the pointer.
unsafe impl<T: Operations> Sync for GenDisk<T> {}

impl<T: Operations> GenDisk<T> {
    /// Creates and adds the disk `name` (at most 31 bytes: `/dev/<name>`), under the tag set's
    /// device in sysfs, with `params`. Process context.
    pub fn new(
        tagset: Arc<TagSet<T>>,
        name: core::fmt::Arguments<'_>,
        params: DiskParams,
    ) -> Result<Self> {
        let mut cname = StackString::<32>::new();
        core::fmt::write(&mut cname, name).map_err(|_| EINVAL)?;
        if params.max_segments as usize > MAX_SEGMENTS || params.max_segments == 0 {
            return Err(EINVAL);
        }
        let mut err: c_int = 0;
        // SAFETY: the tag set is allocated (its invariant) and outlives the disk (we keep an
        // `Arc`); no queue data pointer.
        let disk = unsafe {
            bindings::rust_helper_blk_mq_alloc_disk(
                tagset.raw.get(),
                core::ptr::null_mut(),
                &mut err,
            )
        };
        let disk = NonNull::new(disk).ok_or_else(|| Error::from_errno(err))?;
        // SAFETY: a fresh disk and its queue, not added yet: we may set them up.
        let ret = unsafe {
            let d = disk.as_ptr();
            let q = bindings::rust_helper_gendisk_queue(d);
            bindings::rust_helper_gendisk_set_fops(d);
            let bytes = cname.as_bytes();
            let n = bytes.len().min(bindings::DISK_NAME_LEN as usize - 1);
            let dst = bindings::rust_helper_gendisk_name(d).cast::<u8>();
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
            dst.add(n).write(0);
            bindings::set_capacity(d, params.capacity_sectors);
            bindings::blk_queue_logical_block_size(q, params.logical_block_size);
            bindings::blk_queue_physical_block_size(q, params.logical_block_size);
            bindings::blk_queue_max_hw_sectors(q, params.max_hw_sectors);
            bindings::blk_queue_max_segments(q, params.max_segments);
            if params.virt_boundary_mask != 0 {
                bindings::blk_queue_virt_boundary(q, params.virt_boundary_mask as _);
            }
            bindings::blk_queue_write_cache(q, params.write_cache, false);
            let parent = tagset.shared.as_ref().dev.as_raw();
            bindings::device_add_disk(parent, d, core::ptr::null_mut())
        };
        if ret != 0 {
            // SAFETY: allocated above, never added.
            unsafe { bindings::put_disk(disk.as_ptr()) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: allocated on `tagset` and added.
        Ok(Self {
            disk,
            _tagset: tagset,
        })
    }
}

impl<T: Operations> Drop for GenDisk<T> {
    fn drop(&mut self) {
        // SAFETY: added (type invariant). del_gendisk freezes the queue, waiting for every
        // request in flight to end, then removes the disk; put_disk drops our reference.
        unsafe {
            bindings::del_gendisk(self.disk.as_ptr());
            bindings::put_disk(self.disk.as_ptr());
        }
    }
}

/// A started request owned by the driver (see the [module documentation](self)).
///
/// # Invariants
/// `rq` is a started request of a `TagSet<T>`, not yet ended; this token is its only owner.
pub struct Request<T: Operations> {
    rq: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

// SAFETY: a started request may be completed from any CPU (interrupt handlers do); the
// per-request data is `Send + Sync`.
unsafe impl<T: Operations> Send for Request<T> {}
// SAFETY: `&Request` only reads immutable request fields and `&RequestData` (`Sync`).
unsafe impl<T: Operations> Sync for Request<T> {}

impl<T: Operations> Request<T> {
    fn raw(&self) -> *mut bindings::request {
        self.rq.as_ptr()
    }

    fn pdu(&self) -> *mut Pdu<T> {
        // SAFETY: a live request of a tag set whose cmd_size is `size_of::<Pdu<T>>()`.
        unsafe { bindings::rust_helper_blk_mq_rq_to_pdu(self.raw()).cast() }
    }

    fn shared(&self) -> &Shared<T> {
        // SAFETY: the tag set (and its `Shared`) outlives its requests in flight.
        unsafe { &*(bindings::rust_helper_rq_tag_set_data(self.raw()) as *const Shared<T>) }
    }

    /// The operation.
    pub fn op(&self) -> Op {
        // SAFETY: live request (type invariant).
        let op = unsafe { bindings::rust_helper_req_op(self.raw()) };
        match op {
            bindings::REQ_OP_READ => Op::Read,
            bindings::REQ_OP_WRITE => Op::Write,
            bindings::REQ_OP_FLUSH => Op::Flush,
            other => Op::Other(other),
        }
    }

    /// The first sector (512 bytes) it addresses.
    pub fn sector(&self) -> u64 {
        // SAFETY: live request.
        unsafe { bindings::rust_helper_blk_rq_pos(self.raw()) }
    }

    /// Its length in bytes.
    pub fn bytes(&self) -> u32 {
        // SAFETY: live request.
        unsafe { bindings::rust_helper_blk_rq_bytes(self.raw()) }
    }

    /// Its tag: unique among the requests in flight on its hardware queue, below the depth.
    pub fn tag(&self) -> u32 {
        // SAFETY: live request.
        unsafe { bindings::rust_helper_rq_tag(self.raw()) as u32 }
    }

    /// The hardware queue it was issued on (below the tag set's `nr_hw_queues`). Tags are
    /// unique per hardware queue.
    pub fn hw_queue(&self) -> u32 {
        // SAFETY: live request, started: its hardware context is set.
        unsafe { bindings::rust_helper_rq_hw_queue(self.raw()) }
    }

    /// The driver's per-request data.
    pub fn data(&self) -> &T::RequestData {
        // SAFETY: initialised by `init_request`, dropped only by `exit_request` (tag set
        // teardown, no request in flight).
        unsafe { &(*self.pdu()).data }
    }

    /// Maps the request's data for DMA by the tag set's device; returns the number of
    /// segments ([`dma_segment`](Self::dma_segment) `0..n`). Unmapped when the request ends.
    /// Must not be called twice. Does not sleep.
    pub fn dma_map(&mut self) -> Result<usize> {
        let pdu = self.pdu();
        // SAFETY: our request; its scatterlist was initialised with MAX_SEGMENTS entries by
        // `init_request` and the queue's max_segments keeps the mapping within them.
        unsafe {
            if (*pdu).mapped != 0 {
                return Err(EINVAL);
            }
            let sg = (*pdu).sg.as_mut_ptr().cast::<bindings::scatterlist>();
            let nents = bindings::rust_helper_blk_rq_map_sg(self.raw(), sg);
            if nents <= 0 || nents as usize > MAX_SEGMENTS {
                return Err(EIO);
            }
            let dir = if self.op() == Op::Write {
                bindings::DMA_TO_DEVICE
            } else {
                bindings::DMA_FROM_DEVICE
            };
            let mapped =
                bindings::dma_map_sg_attrs(self.shared().dev.as_raw(), sg, nents, dir as _, 0)
                    as c_int;
            if mapped <= 0 {
                return Err(ENOMEM);
            }
            (*pdu).mapped = mapped;
            (*pdu).map_nents = nents;
            (*pdu).dir = dir;
            Ok(mapped as usize)
        }
    }

    /// Mapped segment `i` as (bus address, length); `None` past the mapped count.
    pub fn dma_segment(&self, i: usize) -> Option<(u64, u32)> {
        let pdu = self.pdu();
        // SAFETY: our request; entries below `mapped` were filled by dma_map_sg.
        unsafe {
            if i >= (*pdu).mapped as usize {
                return None;
            }
            let sg = (*pdu).sg.as_mut_ptr().cast::<bindings::scatterlist>();
            Some((
                bindings::rust_helper_sg_dma_address(sg, i as c_int),
                bindings::rust_helper_sg_dma_len(sg, i as c_int),
            ))
        }
    }

    fn unmap(&self) {
        let pdu = self.pdu();
        // SAFETY: our request; unmaps exactly what `dma_map` mapped, once.
        unsafe {
            if (*pdu).mapped != 0 {
                let sg = (*pdu).sg.as_mut_ptr().cast::<bindings::scatterlist>();
                bindings::dma_unmap_sg_attrs(
                    self.shared().dev.as_raw(),
                    sg,
                    (*pdu).map_nents,
                    (*pdu).dir as _,
                    0,
                );
                (*pdu).mapped = 0;
            }
        }
    }

    /// Ends the request with `status` (unmapping its data). Any context.
    pub fn end(self, status: Status) {
        let this = ManuallyDrop::new(self);
        this.unmap();
        // SAFETY: started and owned (type invariant); the token is consumed.
        unsafe { bindings::blk_mq_end_request(this.raw(), status.raw()) };
    }
}

impl<T: Operations> Drop for Request<T> {
    fn drop(&mut self) {
        self.unmap();
        // SAFETY: started and owned; a dropped token ends its request with an error.
        unsafe { bindings::blk_mq_end_request(self.raw(), Status::IoErr.raw()) };
    }
}

/// The `blk_mq_ops` of drivers of type `T`.
struct OpsTable<T>(PhantomData<T>);

impl<T: Operations> OpsTable<T> {
    const OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(queue_rq::<T>),
        timeout: Some(timeout::<T>),
        map_queues: Some(map_queues::<T>),
        init_request: Some(init_request::<T>),
        exit_request: Some(exit_request::<T>),
        // SAFETY: every other field is an optional function pointer: all-zeroes is "none".
        ..unsafe { core::mem::zeroed() }
    };
}

unsafe extern "C" fn map_queues<T: Operations>(set: *mut bindings::blk_mq_tag_set) {
    // SAFETY: blk-mq passes our live tag set, whose `driver_data` is its `Shared<T>`.
    let shared = unsafe { &*(bindings::rust_helper_blk_mq_tag_set_data(set) as *const Shared<T>) };
    let first = match shared.map {
        QueueMap::Spread => -1,
        // `with_queues` checked it fits.
        QueueMap::Vectors { first } => first as c_int,
    };
    // SAFETY: `set` is live and being mapped by blk-mq; `dev` is kept alive by `shared`.
    unsafe { bindings::rust_helper_blk_mq_map_hw_queues(set, shared.dev.as_raw(), first) };
}

unsafe extern "C" fn queue_rq<T: Operations>(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: blk-mq passes a live hardware context of our tag set and the request to queue.
    let (shared, rq, last) = unsafe {
        (
            &*(bindings::rust_helper_hctx_tag_set_data(hctx) as *const Shared<T>),
            (*bd).rq,
            (*bd).last,
        )
    };
    // SAFETY: a new request of our tag set.
    unsafe { bindings::blk_mq_start_request(rq) };
    let Some(rq) = NonNull::new(rq) else {
        return bindings::BLK_STS_IOERR;
    };
    // INVARIANT: started above; ownership passes to the driver.
    let req = Request::<T> {
        rq,
        _p: PhantomData,
    };
    match T::queue_rq(&shared.data, req, last) {
        Ok(()) => bindings::BLK_STS_OK,
        Err((req, status)) => {
            // The block layer requeues or ends it, according to the status.
            req.unmap();
            core::mem::forget(req);
            match status {
                Status::Ok => bindings::BLK_STS_IOERR,
                s => s.raw(),
            }
        }
    }
}

unsafe extern "C" fn timeout<T: Operations>(
    rq: *mut bindings::request,
) -> bindings::blk_eh_timer_return {
    // SAFETY: a live, started request of our tag set.
    let (shared, hw_queue, tag) = unsafe {
        (
            &*(bindings::rust_helper_rq_tag_set_data(rq) as *const Shared<T>),
            bindings::rust_helper_rq_hw_queue(rq),
            bindings::rust_helper_rq_tag(rq) as u32,
        )
    };
    match T::timeout(&shared.data, hw_queue, tag) {
        TimeoutAction::ResetTimer => bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER,
        TimeoutAction::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
    }
}

unsafe extern "C" fn init_request<T: Operations>(
    _set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx_idx: c_uint,
    _numa_node: c_uint,
) -> c_int {
    // SAFETY: a request slot of our tag set, its pdu `size_of::<Pdu<T>>()` bytes, aligned
    // (checked in `TagSet::new`), uninitialised: written in place here.
    unsafe {
        let pdu = bindings::rust_helper_blk_mq_rq_to_pdu(rq).cast::<Pdu<T>>();
        let sg = (&raw mut (*pdu).sg).cast::<bindings::scatterlist>();
        bindings::sg_init_table(sg, MAX_SEGMENTS as c_uint);
        (&raw mut (*pdu).mapped).write(0);
        (&raw mut (*pdu).map_nents).write(0);
        (&raw mut (*pdu).dir).write(0);
        (&raw mut (*pdu).data).write(T::new_request_data());
    }
    0
}

unsafe extern "C" fn exit_request<T: Operations>(
    _set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx_idx: c_uint,
) {
    // SAFETY: initialised by `init_request`; the tag set is being freed, no request in flight.
    unsafe {
        let pdu = bindings::rust_helper_blk_mq_rq_to_pdu(rq).cast::<Pdu<T>>();
        core::ptr::drop_in_place(&raw mut (*pdu).data);
    }
}
