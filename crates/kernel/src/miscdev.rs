//! Misc character devices (`/dev/<name>`, major 10): a driver implements [`MiscDevice`] and
//! registers it with [`Registration::register`]; dropping the registration removes the device.
//!
//! The adapter below owns the C side: it builds the `file_operations` table, turns each C call
//! into a call of the trait, keeps the per-open state behind `file->private_data`, and converts
//! results to errno returns. Drivers never see a raw pointer.

use crate::alloc::{try_box, Box};
use crate::error::{code::*, from_result, Result};
use crate::file::{File, PollFlags, PollTable};
use crate::module::ThisModule;
use crate::sync::{CondVar, SpinLock};
use crate::uaccess::{UserSlice, UserSliceReader, UserSliceWriter};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};
use core::marker::PhantomPinned;
use core::pin::Pin;
use kernel_sys as bindings;

/// A misc device: the state shared by every open file, and the file operations.
///
/// Each `open()` creates a [`Self::OpenFile`] (per-open state, dropped at the last `close()`).
/// Operations a device does not implement return the conventional error (`EINVAL` for
/// read/write, `ENOTTY` for ioctl). Seeking is not supported (`ESPIPE`): files are streams.
pub trait MiscDevice: Send + Sync + Sized + 'static {
    /// Per-open state.
    type OpenFile: Send + Sync;

    /// A process opened the device.
    fn open(&self, file: &File) -> Result<Self::OpenFile>;

    /// The last reference to an open file went away.
    fn release(&self, _open: Self::OpenFile, _file: &File) {}

    /// `read()`: fill `buf` (its length is the user's count); return the bytes produced.
    fn read(
        &self,
        _open: &Self::OpenFile,
        _file: &File,
        _buf: &mut UserSliceWriter,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// `write()`: consume from `buf`; return the bytes taken.
    fn write(
        &self,
        _open: &Self::OpenFile,
        _file: &File,
        _buf: &mut UserSliceReader,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// `poll()`/`select()`: register wait queues with `table` and report readiness now.
    fn poll(&self, _open: &Self::OpenFile, _file: &File, _table: &PollTable) -> PollFlags {
        PollFlags::IN | PollFlags::RDNORM | PollFlags::OUT | PollFlags::WRNORM
    }

    /// `ioctl()`: `cmd` is the command number, `arg` the raw argument (often a user pointer:
    /// use [`UserSlice`] on it).
    fn ioctl(&self, _open: &Self::OpenFile, _file: &File, _cmd: u32, _arg: usize) -> Result<isize> {
        Err(ENOTTY)
    }
}

/// A registered misc device; deregisters when dropped.
///
/// Dropping it removes `/dev/<name>` at once and then waits until every file still open on the
/// device has been closed (open files point into the registration). At module exit there are
/// none: an open file holds a reference on its module. Do not drop a registration from inside
/// one of its own file operations: it would wait for itself.
///
/// # Invariants
/// `inner.misc` is registered with the misc core while `self` exists, and `inner` never moves
/// (pinned heap block): the misc core and open files point into it. `inner.open_files` counts
/// the files past a successful `open` and not yet released.
pub struct Registration<T: MiscDevice> {
    inner: Pin<Box<Inner<T>>>,
}

#[repr(C)]
struct Inner<T: MiscDevice> {
    // First field: the misc core hands the open() callback a pointer to it.
    misc: UnsafeCell<bindings::miscdevice>,
    fops: bindings::file_operations,
    device: T,
    /// A spinlock, not an atomic or a mutex: the last `release` notifies under it and the
    /// dropping thread frees `Inner` only after taking it, and unlocking a spinlock touches it
    /// no more after the release store (a mutex unlock may, so a mutex cannot guard its own
    /// lifetime).
    open_files: SpinLock<usize>,
    /// Notified when `open_files` drops to zero.
    all_closed: CondVar,
    _pin: PhantomPinned,
}

// SAFETY: after registration the C structs are only touched by the misc core under its own
// locking; the Rust side only shares `&T`, and `T: Sync`.
unsafe impl<T: MiscDevice> Sync for Registration<T> {}
// SAFETY: the registration can be dropped (deregistered) from any thread.
unsafe impl<T: MiscDevice> Send for Registration<T> {}

impl<T: MiscDevice> Registration<T> {
    /// Creates `/dev/<name>` with a dynamic minor, served by `device`.
    pub fn register(name: &'static CStr, device: T, module: &'static ThisModule) -> Result<Self> {
        let fops = bindings::file_operations {
            owner: module.as_ptr(),
            // No llseek: `stream_open` clears FMODE_LSEEK, so lseek() fails with ESPIPE.
            read: Some(read::<T>),
            write: Some(write::<T>),
            poll: Some(poll::<T>),
            unlocked_ioctl: Some(ioctl::<T>),
            // SAFETY: returns a kernel function pointer (or NULL without CONFIG_COMPAT).
            compat_ioctl: unsafe { bindings::rust_helper_compat_ptr_ioctl() },
            open: Some(open::<T>),
            release: Some(release::<T>),
            ..Default::default()
        };
        let misc = bindings::miscdevice {
            minor: bindings::MISC_DYNAMIC_MINOR,
            name: name.as_ptr(),
            ..Default::default()
        };
        let mut inner = Box::into_pin(try_box(Inner {
            misc: UnsafeCell::new(misc),
            fops,
            device,
            open_files: crate::new_spinlock!(0, "miscdev.open_files")?,
            all_closed: crate::new_condvar!("miscdev.all_closed")?,
            _pin: PhantomPinned,
        })?);
        // SAFETY: we do not move out of the pinned box; we only set a pointer field.
        let inner_mut = unsafe { inner.as_mut().get_unchecked_mut() };
        inner_mut.misc.get_mut().fops = &inner_mut.fops;
        // SAFETY: `misc` is fully initialised and pinned; on success it stays registered until
        // `drop` deregisters it.
        crate::error::to_result(unsafe { bindings::misc_register(inner.misc.get()) })?;
        // INVARIANT: registered above; pinned.
        Ok(Self { inner })
    }

    /// The device state.
    pub fn device(&self) -> &T {
        &self.inner.device
    }
}

impl<T: MiscDevice> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant). misc_deregister takes the misc core's lock, which
        // misc_open holds while it calls our `open`: when it returns, no open is running and
        // none can start.
        unsafe { bindings::misc_deregister(self.inner.misc.get()) };
        // Files opened before still point into `inner`: wait for their release.
        let inner = &self.inner;
        inner
            .all_closed
            .wait_until(|| *inner.open_files.lock() == 0);
    }
}

/// What `file->private_data` points to after `open`.
///
/// # Invariants
/// `inner` outlives this: the registration waits for every open file's release before freeing
/// it, and this is freed in `release`.
struct Open<T: MiscDevice> {
    inner: *const Inner<T>,
    state: T::OpenFile,
}

/// # Safety
/// `file` is a file of a device registered by `Registration<T>`, past a successful `open`.
unsafe fn open_data<'a, T: MiscDevice>(
    file: *mut bindings::file,
) -> (&'a T, &'a T::OpenFile, &'a File) {
    // SAFETY: `open` stored a leaked `Box<Open<T>>` there, freed only in `release`, after every
    // other operation on the file ended; the device outlives its open files (module reference).
    unsafe {
        let open = &*bindings::rust_helper_file_private(file).cast::<Open<T>>();
        (&(*open.inner).device, &open.state, File::from_ptr(file))
    }
}

unsafe extern "C" fn open<T: MiscDevice>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: misc_open set private_data to our `miscdevice`, the first field of a pinned,
    // registered `Inner<T>` (repr(C)), so the cast recovers the `Inner`.
    let inner = unsafe { &*bindings::rust_helper_file_private(file).cast::<Inner<T>>() };
    // SAFETY: the VFS passes a live file for the duration of the call.
    let f = unsafe { File::from_ptr(file) };
    let result = (|| {
        // Allocate first: once the driver's `open` succeeded, nothing may fail before the file
        // is set up (its `release` would never run).
        let slot = try_box(core::mem::MaybeUninit::<Open<T>>::uninit())?;
        let state = inner.device.open(f)?;
        let open = Box::write(slot, Open::<T> { inner, state });
        *inner.open_files.lock() += 1;
        // SAFETY: `file` is live; a stream has no file position (read/write ignore it).
        unsafe {
            bindings::stream_open(inode, file);
            bindings::rust_helper_file_set_private(file, Box::into_raw(open).cast::<c_void>());
        }
        Ok(0)
    })();
    from_result::<i32>(result) as c_int
}

unsafe extern "C" fn release<T: MiscDevice>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `open` succeeded on this file, so private_data is our leaked box; this is the
    // last operation on the file, so we may take the box back.
    let open = unsafe { Box::from_raw(bindings::rust_helper_file_private(file).cast::<Open<T>>()) };
    // SAFETY: `inner` outlives the open file (see `Open`); the file is live for this call.
    let (inner, f) = unsafe { (&*open.inner, File::from_ptr(file)) };
    let Open { state, .. } = *open;
    inner.device.release(state, f);
    let mut open_files = inner.open_files.lock();
    *open_files -= 1;
    if *open_files == 0 {
        inner.all_closed.notify_all();
    }
    // `inner` may be freed as soon as the lock is released: nothing may touch it after this.
    drop(open_files);
    0
}

unsafe extern "C" fn read<T: MiscDevice>(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: a file of our device, after a successful open.
    let (device, open, f) = unsafe { open_data::<T>(file) };
    let mut writer = UserSlice::new(buf as usize, count).writer();
    from_result(device.read(open, f, &mut writer))
}

unsafe extern "C" fn write<T: MiscDevice>(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: a file of our device, after a successful open.
    let (device, open, f) = unsafe { open_data::<T>(file) };
    let mut reader = UserSlice::new(buf as usize, count).reader();
    from_result(device.write(open, f, &mut reader))
}

unsafe extern "C" fn poll<T: MiscDevice>(
    file: *mut bindings::file,
    table: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: a file of our device, after a successful open.
    let (device, open, f) = unsafe { open_data::<T>(file) };
    // SAFETY: the poll table of this call.
    let table = unsafe { PollTable::from_ptr(table) };
    device.poll(open, f, &table).bits()
}

unsafe extern "C" fn ioctl<T: MiscDevice>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: a file of our device, after a successful open.
    let (device, open, f) = unsafe { open_data::<T>(file) };
    from_result(device.ioctl(open, f, cmd, arg as usize)) as c_long
}
