//! Misc character devices (`/dev/<name>`, major 10): a driver implements [`MiscDevice`] and
//! registers it with [`Registration::register`]; dropping the registration removes the device.
//!
//! The adapter below owns the C side: one static `file_operations` table per device type,
//! C callbacks turned into trait calls, the per-open state behind `file->private_data`, and
//! results converted to errno returns. Drivers never see a raw pointer.
//!
//! # Lifetimes
//!
//! The device state lives in an [`Arc`]: the registration holds one reference and every open
//! file another. Dropping the registration removes `/dev/<name>` and returns at once, even with
//! files still open; those keep working on the state, and whoever lets go last frees it. The
//! `file_operations` table is a `static`, and names this module as its owner, so the VFS holds
//! a module reference for each open file: the code behind the table cannot be unloaded under
//! it, and the table is never freed at all.

use crate::alloc::{Gfp, KBox, KVec};
use crate::error::{code::*, from_result, Result};
use crate::file::{File, PollFlags, PollTable};
use crate::sync::Arc;
use crate::uaccess::{UserSlice, UserSliceReader, UserSliceWriter};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};
use core::marker::{PhantomData, PhantomPinned};
use core::pin::Pin;
use kernel_sys as bindings;

/// A misc device: the state shared by every open file, and the file operations.
///
/// Each `open()` creates a [`Self::OpenFile`] (per-open state, dropped at the last `close()`).
/// Operations a device does not implement return the conventional error (`EINVAL` for
/// read/write, `ENOTTY` for ioctl).
///
/// # Streams and positions
///
/// By default a device is a stream, like a pipe: there is no file position, `lseek()` fails with
/// `ESPIPE`, and the `pos` that `read`/`write` receive is a scratch 0. A device whose contents
/// sit at offsets (a register file, a text report) sets [`POSITIONED`](Self::POSITIONED): then
/// `pos` is the file position (or `pread`'s offset), which `read`/`write` advance by what they
/// moved, and `lseek()` works, `SEEK_END` relative to [`size`](Self::size).
///
/// # Per-open state
///
/// One open file can be used by several threads at once (threads share descriptors; `fork`
/// shares open files), so the file operations get `&Self::OpenFile`. Mutable per-open state
/// needs interior mutability: an atomic for a counter, a [`Mutex`](crate::sync::Mutex) for
/// anything larger (uncontended, it costs one atomic operation to take).
pub trait MiscDevice: Send + Sync + Sized + 'static {
    /// Per-open state.
    type OpenFile: Send + Sync;

    /// Whether the device has file positions (see [Streams and positions](Self#streams-and-positions)).
    const POSITIONED: bool = false;

    /// A process opened the device.
    ///
    /// The misc core calls this with its global lock held, which every `open()` of every misc
    /// device on the system also takes: do not wait here for anything another task may hold
    /// for long (a lock held across user copies, I/O). Keep it to setting up per-open state.
    fn open(&self, file: &File) -> Result<Self::OpenFile>;

    /// The last reference to an open file went away.
    fn release(&self, _open: Self::OpenFile, _file: &File) {}

    /// `read()`: fill `buf` (its length is the user's count) from position `pos`, advance `pos`
    /// by what was produced, and return that count.
    fn read(
        &self,
        _open: &Self::OpenFile,
        _file: &File,
        _buf: &mut UserSliceWriter,
        _pos: &mut i64,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// `write()`: consume from `buf` at position `pos`, advance `pos` by what was taken, and
    /// return that count.
    fn write(
        &self,
        _open: &Self::OpenFile,
        _file: &File,
        _buf: &mut UserSliceReader,
        _pos: &mut i64,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// The end of the contents, for `lseek(fd, off, SEEK_END)` on a positioned device.
    fn size(&self, _open: &Self::OpenFile) -> i64 {
        0
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
/// The name is either a `'static` string ([`register`](Self::register)) or formatted at
/// registration and owned by the registration ([`register_fmt`](Self::register_fmt), e.g. one
/// node per controller: `nvme-lite0`, `nvme-lite1`).
///
/// Dropping it removes `/dev/<name>` and returns without waiting: files still open keep their
/// own reference to the device state (see the [module documentation](self)). It may be dropped
/// from anywhere in process context, including from the device's own file operations, except
/// from its `open` (which runs under the misc core's lock that deregistration takes).
///
/// # Invariants
/// `inner.misc` is registered with the misc core while `self` exists, and `inner` never moves
/// (pinned heap block): the misc core points into it.
pub struct Registration<T: MiscDevice> {
    inner: Pin<KBox<Inner<T>>>,
}

#[repr(C)]
struct Inner<T: MiscDevice> {
    // First field: the misc core hands the open() callback a pointer to it.
    misc: UnsafeCell<bindings::miscdevice>,
    device: Arc<T>,
    /// The NUL-terminated name `misc.name` points into, when formatted at registration (the
    /// misc core keeps the pointer for `/proc/misc` until deregistration). A heap buffer: it
    /// does not move with `Inner`.
    _name: Option<KVec<u8>>,
    _pin: PhantomPinned,
}

// SAFETY: after registration the C struct is only touched by the misc core under its own
// locking; the Rust side only shares `Arc<T>`, which is `Send + Sync` for `T: Send + Sync`.
unsafe impl<T: MiscDevice> Sync for Registration<T> {}
// SAFETY: the registration can be dropped (deregistered) from any thread.
unsafe impl<T: MiscDevice> Send for Registration<T> {}

impl<T: MiscDevice> Registration<T> {
    /// Creates `/dev/<name>` with a dynamic minor, served by `device`. The registration's
    /// bookkeeping is allocated with `flags`; registering itself may sleep.
    pub fn register(name: &'static CStr, device: Arc<T>, flags: Gfp) -> Result<Self> {
        Self::register_inner(name.as_ptr(), None, device, flags)
    }

    /// Creates `/dev/<name>` with a dynamic minor, `name` formatted now into a buffer the
    /// registration owns (allocated with `flags`, freed after deregistration):
    ///
    /// ```ignore
    /// let node = Registration::register_fmt(format_args!("nvme-lite{n}"), state, Gfp::KERNEL)?;
    /// ```
    ///
    /// `EINVAL` for an empty name, one with a NUL or a `/`, or one longer than 63 bytes;
    /// `ENOMEM` if the buffer cannot be allocated; the misc core's error (as for
    /// [`register`](Self::register)) if the name is taken.
    pub fn register_fmt(
        name: core::fmt::Arguments<'_>,
        device: Arc<T>,
        flags: Gfp,
    ) -> Result<Self> {
        let mut buf = NameBuf {
            bytes: KVec::new(),
            flags,
            err: None,
        };
        if core::fmt::write(&mut buf, name).is_err() {
            return Err(buf.err.unwrap_or(EINVAL));
        }
        let mut bytes = buf.bytes;
        if bytes.is_empty() || bytes.len() > 63 || bytes.iter().any(|&b| b == 0 || b == b'/') {
            return Err(EINVAL);
        }
        bytes.push(0, flags)?;
        let ptr = bytes.as_slice().as_ptr().cast::<c_char>();
        // `ptr` points into the vector's heap buffer, which `Inner` keeps (and never grows).
        Self::register_inner(ptr, Some(bytes), device, flags)
    }

    /// Registers with `name` pointing to a NUL-terminated string that lives as long as the
    /// registration: a `'static` one, or the heap buffer of `owned`.
    fn register_inner(
        name: *const c_char,
        owned: Option<KVec<u8>>,
        device: Arc<T>,
        flags: Gfp,
    ) -> Result<Self> {
        let misc = bindings::miscdevice {
            minor: bindings::MISC_DYNAMIC_MINOR,
            name,
            fops: VTable::<T>::get(),
            ..Default::default()
        };
        let inner = KBox::pin(
            Inner {
                misc: UnsafeCell::new(misc),
                device,
                _name: owned,
                _pin: PhantomPinned,
            },
            flags,
        )?;
        // SAFETY: `misc` is fully initialised and pinned; its name is NUL-terminated and lives
        // as long as `inner` (static, or the buffer `inner` owns); on success it stays
        // registered until `drop` deregisters it.
        crate::error::to_result(unsafe { bindings::misc_register(inner.misc.get()) })?;
        // INVARIANT: registered above; pinned.
        Ok(Self { inner })
    }

    /// The device state.
    pub fn device(&self) -> &Arc<T> {
        &self.inner.device
    }
}

impl<T: MiscDevice> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant). misc_deregister takes the misc core's lock, which
        // misc_open holds while it calls our `open`: when it returns, no open is running and
        // none can start, so nothing points into `inner` any more and it may be freed. Open
        // files hold their own `Arc` of the device.
        unsafe { bindings::misc_deregister(self.inner.misc.get()) };
    }
}

/// A `fmt::Write` sink that grows a [`KVec`] with the given flags and remembers an allocation
/// failure (formatting itself only reports that *something* failed).
struct NameBuf {
    bytes: KVec<u8>,
    flags: Gfp,
    err: Option<crate::error::Error>,
}

impl core::fmt::Write for NameBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.bytes
            .extend_from_slice(s.as_bytes(), self.flags)
            .map_err(|e| {
                self.err = Some(e);
                core::fmt::Error
            })
    }
}

/// The `file_operations` of devices of type `T`: a constant, promoted to a `static` by taking
/// its address, so it outlives every file (the VFS reads `f_op->owner` after `release`).
struct VTable<T>(PhantomData<T>);

impl<T: MiscDevice> VTable<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        // The VFS takes a reference on this module for every open file.
        owner: &raw const crate::module::__THIS_MODULE as *mut bindings::module,
        // Streams have no llseek, and `stream_open` clears FMODE_LSEEK: lseek() fails with
        // ESPIPE.
        llseek: if T::POSITIONED {
            Some(llseek::<T>)
        } else {
            None
        },
        read: Some(read::<T>),
        write: Some(write::<T>),
        poll: Some(poll::<T>),
        unlocked_ioctl: Some(ioctl::<T>),
        compat_ioctl: Some(compat_ioctl::<T>),
        open: Some(open::<T>),
        release: Some(release::<T>),
        // SAFETY: every other field is an optional function pointer or plain data, for which
        // all-zeroes means "not implemented".
        ..unsafe { core::mem::zeroed() }
    };

    fn get() -> &'static bindings::file_operations {
        &Self::FOPS
    }
}

/// What `file->private_data` points to after `open`.
struct Open<T: MiscDevice> {
    device: Arc<T>,
    state: T::OpenFile,
}

/// # Safety
/// `file` is a file of a device registered by `Registration<T>`, past a successful `open` and
/// before `release`.
unsafe fn open_data<'a, T: MiscDevice>(
    file: *mut bindings::file,
) -> (&'a T, &'a T::OpenFile, &'a File) {
    // SAFETY: `open` stored a leaked `KBox<Open<T>>` there, freed only in `release`, after every
    // other operation on the file ended.
    unsafe {
        let open = &*bindings::rust_helper_file_private(file).cast::<Open<T>>();
        (&*open.device, &open.state, File::from_ptr(file))
    }
}

unsafe extern "C" fn open<T: MiscDevice>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: misc_open set private_data to our `miscdevice`, the first field of a pinned,
    // registered `Inner<T>` (repr(C)), and holds the misc core's lock for this call, so the
    // registration cannot be dropped under us.
    let inner = unsafe { &*bindings::rust_helper_file_private(file).cast::<Inner<T>>() };
    // SAFETY: the VFS passes a live file for the duration of the call.
    let f = unsafe { File::from_ptr(file) };
    let result = (|| {
        // Allocate first: once the driver's `open` succeeded, nothing may fail before the file
        // is set up (its `release` would never run).
        let slot = KBox::<Open<T>>::new_uninit(Gfp::KERNEL)?;
        let state = inner.device.open(f)?;
        let open = KBox::write(
            slot,
            Open {
                device: inner.device.clone(),
                state,
            },
        );
        // SAFETY: `file` is live; a stream has no file position (the VFS then passes no
        // position to read/write).
        unsafe {
            if !T::POSITIONED {
                bindings::stream_open(inode, file);
            }
            bindings::rust_helper_file_set_private(file, KBox::into_raw(open).cast::<c_void>());
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
    let open =
        unsafe { KBox::from_raw(bindings::rust_helper_file_private(file).cast::<Open<T>>()) };
    // SAFETY: the file is live for this call.
    let f = unsafe { File::from_ptr(file) };
    let Open { device, state } = KBox::into_inner(open);
    device.release(state, f);
    // `device` (this file's reference) drops here; if the registration is gone and this was
    // the last file, the device state is freed now.
    0
}

/// Runs `op` with the position the VFS passed (`NULL` for streams: a scratch 0 instead).
///
/// # Safety
/// `pos` is NULL or the position pointer of the current read/write call.
unsafe fn with_pos<R>(pos: *mut bindings::loff_t, op: impl FnOnce(&mut i64) -> R) -> R {
    let mut scratch = 0;
    // SAFETY: the VFS's `loff_t` for this call (the file's position, or a pread offset), not
    // touched by anyone else until the call returns; or our scratch.
    let pos = unsafe { pos.as_mut() }.unwrap_or(&mut scratch);
    op(pos)
}

unsafe extern "C" fn read<T: MiscDevice>(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: a file of our device, after a successful open.
    let (device, open, f) = unsafe { open_data::<T>(file) };
    let mut writer = UserSlice::new(buf as usize, count).writer();
    // SAFETY: the position pointer of this call.
    from_result(unsafe { with_pos(pos, |pos| device.read(open, f, &mut writer, pos)) })
}

unsafe extern "C" fn write<T: MiscDevice>(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: a file of our device, after a successful open.
    let (device, open, f) = unsafe { open_data::<T>(file) };
    let mut reader = UserSlice::new(buf as usize, count).reader();
    // SAFETY: the position pointer of this call.
    from_result(unsafe { with_pos(pos, |pos| device.write(open, f, &mut reader, pos)) })
}

unsafe extern "C" fn llseek<T: MiscDevice>(
    file: *mut bindings::file,
    offset: bindings::loff_t,
    whence: c_int,
) -> bindings::loff_t {
    // SAFETY: a file of our device, after a successful open.
    let (device, open, _) = unsafe { open_data::<T>(file) };
    // SAFETY: a live file; the kernel's helper validates `whence` and the result (no negative
    // positions, EINVAL otherwise) and updates `f_pos` under the file's position lock.
    unsafe { bindings::generic_file_llseek_size(file, offset, whence, i64::MAX, device.size(open)) }
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

unsafe extern "C" fn compat_ioctl<T: MiscDevice>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // A 32-bit process's pointer argument, zero-extended: C's `compat_ptr_ioctl`.
    // SAFETY: forwarded from the VFS, as for `ioctl`.
    unsafe { ioctl::<T>(file, cmd, arg as u32 as c_ulong) }
}
