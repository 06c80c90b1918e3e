//! Open files as file operations see them, and `poll()` support.

use core::cell::UnsafeCell;
use kernel_sys as bindings;

/// An open file (`struct file`), borrowed for the duration of a file operation.
#[repr(transparent)]
pub struct File(UnsafeCell<bindings::file>);

impl File {
    /// Borrows the C `struct file`.
    ///
    /// # Safety
    /// `ptr` must point to a live `struct file` for the returned lifetime (true for the
    /// duration of a file operation the VFS called with it).
    pub(crate) unsafe fn from_ptr<'a>(ptr: *mut bindings::file) -> &'a File {
        // SAFETY: `File` is a transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast::<File>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.0.get()
    }

    /// The `O_*` flags the file was opened with (and `fcntl(F_SETFL)` changed since).
    pub fn flags(&self) -> u32 {
        // SAFETY: the file is live (see `from_ptr`).
        unsafe { bindings::rust_helper_file_flags(self.as_ptr()) }
    }

    /// Whether operations on this file must not block (`O_NONBLOCK`): they return `EAGAIN`.
    pub fn is_nonblocking(&self) -> bool {
        self.flags() & bindings::O_NONBLOCK != 0
    }
}

/// The poll table of a `poll()`/`select()`/`epoll` call; see
/// [`PollCondVar::poll_wait`](crate::sync::PollCondVar::poll_wait).
pub struct PollTable(*mut bindings::poll_table_struct);

impl PollTable {
    /// # Safety
    /// `ptr` is the poll table (possibly NULL) the VFS passed to this poll call.
    pub(crate) unsafe fn from_ptr(ptr: *mut bindings::poll_table_struct) -> Self {
        Self(ptr)
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::poll_table_struct {
        self.0
    }
}

bitflags::bitflags! {
    /// The readiness a `poll` file operation reports (`EPOLL*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PollFlags: u32 {
        /// Data can be read.
        const IN = bindings::EPOLLIN;
        /// Normal data can be read.
        const RDNORM = bindings::EPOLLRDNORM;
        /// Data can be written.
        const OUT = bindings::EPOLLOUT;
        /// Normal data can be written.
        const WRNORM = bindings::EPOLLWRNORM;
        /// An error condition.
        const ERR = bindings::EPOLLERR;
        /// Hang-up.
        const HUP = bindings::EPOLLHUP;
    }
}
