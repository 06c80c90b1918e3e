//! Small safe wrappers around the raw system calls the runner needs.
//!
//! Almost every `unsafe` block of the runner lives in this module, each one wrapped in a function
//! whose signature makes misuse impossible (or, for [`ioctl_with`], checked). The rest of the
//! code base is plain safe Rust.
//!
//! Nothing here hard-codes an architecture-specific number: system call numbers, signal numbers,
//! `errno` values and flags all come from the `libc` crate, so the same source builds for
//! x86_64 and aarch64.

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A process id.
pub type Pid = libc::pid_t;

/// An `errno` value returned by a failed system call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// Interrupted system call (a signal handler ran and the call was not restarted).
    pub const EINTR: Errno = Errno(libc::EINTR);
    /// Resource temporarily unavailable (also `EWOULDBLOCK`).
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    /// Bad address (a user pointer the kernel could not access).
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    /// Device or resource busy.
    pub const EBUSY: Errno = Errno(libc::EBUSY);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// Inappropriate ioctl for device (an unknown ioctl command).
    pub const ENOTTY: Errno = Errno(libc::ENOTTY);
    /// Illegal seek (the file is a stream, not seekable).
    pub const ESPIPE: Errno = Errno(libc::ESPIPE);

    /// The `errno` of the last failed libc call on this thread.
    pub fn last() -> Errno {
        Errno::from(io::Error::last_os_error())
    }

    /// The symbolic name (`"EAGAIN"`), if this is a well-known value.
    pub fn name(self) -> Option<&'static str> {
        let name = match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::ENXIO => "ENXIO",
            libc::E2BIG => "E2BIG",
            libc::ENOEXEC => "ENOEXEC",
            libc::EBADF => "EBADF",
            libc::ECHILD => "ECHILD",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::ENFILE => "ENFILE",
            libc::EMFILE => "EMFILE",
            libc::ENOTTY => "ENOTTY",
            libc::ETXTBSY => "ETXTBSY",
            libc::EFBIG => "EFBIG",
            libc::ENOSPC => "ENOSPC",
            libc::ESPIPE => "ESPIPE",
            libc::EROFS => "EROFS",
            libc::EPIPE => "EPIPE",
            libc::ERANGE => "ERANGE",
            libc::ENOSYS => "ENOSYS",
            libc::EOVERFLOW => "EOVERFLOW",
            libc::EBADMSG => "EBADMSG",
            libc::ENOKEY => "ENOKEY",
            libc::EKEYREJECTED => "EKEYREJECTED",
            libc::ENOPKG => "ENOPKG",
            // Kernel-internal restart codes (include/linux/errno.h). User space must never see
            // them; if it does, a driver returned one where it should not have.
            512 => "ERESTARTSYS (kernel-internal, leaked to user space)",
            513 => "ERESTARTNOINTR (kernel-internal, leaked to user space)",
            514 => "ERESTARTNOHAND (kernel-internal, leaked to user space)",
            516 => "ERESTART_RESTARTBLOCK (kernel-internal, leaked to user space)",
            _ => return None,
        };
        Some(name)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<io::Error> for Errno {
    fn from(err: io::Error) -> Errno {
        Errno(err.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// The result of a system call: the value, or the `errno` it failed with.
pub type SysResult<T> = Result<T, Errno>;

fn cvt(ret: libc::c_int) -> SysResult<libc::c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn cvt_long(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> SysResult<usize> {
    usize::try_from(ret).map_err(|_| Errno::last())
}

fn cstring(s: &str) -> SysResult<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// Which side of a [`fork`] we are on.
pub enum Fork {
    /// We are the new child process.
    Child,
    /// We are the parent; the child has this pid.
    Parent(Pid),
}

/// Forks the calling process.
///
/// The runner never creates threads, which is what makes `fork` sound here: the child gets a
/// consistent copy of the whole address space, with no lock held by a thread that does not
/// exist in the child.
pub fn fork() -> SysResult<Fork> {
    // SAFETY: fork has no memory-safety preconditions for a single-threaded process, and the
    // runner is single-threaded (see above).
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
}

/// Ends the calling process immediately with `code`, without running destructors or `atexit`
/// handlers. Forked children use it so that they never run the parent's cleanup code.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WaitStatus::Exited(code) => write!(f, "exited with status {code}"),
            WaitStatus::Signaled(sig) => write!(f, "was killed by signal {}", signal_name(sig)),
        }
    }
}

/// Waits for the child `pid` (or any child, for `-1`). With `block == false` returns `Ok(None)`
/// if it has not ended yet. Retries on `EINTR`.
pub fn wait_pid(pid: Pid, block: bool) -> SysResult<Option<(Pid, WaitStatus)>> {
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret < 0 {
            let err = Errno::last();
            if err == Errno::EINTR {
                continue;
            }
            return Err(err);
        }
        if ret == 0 {
            return Ok(None);
        }
        let decoded = if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        };
        return Ok(Some((ret, decoded)));
    }
}

/// Reaps every child that has already ended; returns `true` if no child is left at all.
///
/// As PID 1 the runner inherits every orphaned process (e.g. helpers of a test that was killed
/// on timeout), so it calls this after each test to keep the process table clean.
pub fn reap_exited_children() -> bool {
    loop {
        match wait_pid(-1, false) {
            Ok(Some(_)) => continue,
            Ok(None) => return false,
            Err(_) => return true, // ECHILD: no children left
        }
    }
}

/// Sends `sig` to process `pid` (to the whole process group `-pid` if `pid` is negative).
pub fn kill(pid: Pid, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: kill has no memory-safety preconditions.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Moves process `pid` (0 = the caller) into process group `pgid` (0 = a new group led by it).
pub fn setpgid(pid: Pid, pgid: Pid) -> SysResult<()> {
    // SAFETY: setpgid has no memory-safety preconditions.
    cvt(unsafe { libc::setpgid(pid, pgid) }).map(drop)
}

/// Sets the real, effective and saved user ID of the calling process (`setuid`). From root to
/// another user this also clears every capability (no `SECBIT_KEEP_CAPS`): a way to test that
/// a driver refuses a privileged ioctl (`CAP_SYS_ADMIN`) on a descriptor opened before.
pub fn setuid(uid: libc::uid_t) -> SysResult<()> {
    // SAFETY: setuid has no memory-safety preconditions.
    cvt(unsafe { libc::setuid(uid) }).map(drop)
}

/// The calling process's pid.
pub fn getpid() -> Pid {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

/// The number of CPUs online (at least 1).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

/// Pins the calling thread to CPU `cpu` (`EINVAL` if it is not online).
pub fn pin_to_cpu(cpu: usize) -> SysResult<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(Errno::EINVAL);
    }
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes the bit of a CPU number below CPU_SETSIZE (checked) inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    cvt(unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) }).map(drop)
}

/// The symbolic name of a signal number (`"SIGSEGV (11)"`).
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    format!("{name} ({sig})")
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

static SIGNALS_CAUGHT: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_signal(_sig: libc::c_int) {
    // Atomics are async-signal-safe; this is all the handler does.
    SIGNALS_CAUGHT.fetch_add(1, Ordering::SeqCst);
}

/// Installs a handler for `sig` that just counts deliveries (see [`signals_caught`]).
///
/// `restart` selects `SA_RESTART`: with it, a system call that the signal interrupts is
/// transparently restarted after the handler returns (if the driver returned `-ERESTARTSYS`);
/// without it the call fails with `EINTR`.
pub fn catch_signal(sig: libc::c_int, restart: bool) -> SysResult<()> {
    // SAFETY: `sigaction` is a plain C struct for which all-zero bytes are a valid value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = if restart { libc::SA_RESTART } else { 0 };
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    cvt(unsafe { libc::sigemptyset(&mut action.sa_mask) })?;
    // SAFETY: `action` is fully initialised and the handler is an `extern "C"` function that
    // only touches an atomic, which is async-signal-safe.
    cvt(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) }).map(drop)
}

/// How many signals the handler installed by [`catch_signal`] has seen in this process.
pub fn signals_caught() -> u32 {
    SIGNALS_CAUGHT.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------------------------

/// Creates a pipe (both ends close-on-exec): `(read end, write end)`.
pub fn pipe() -> SysResult<(File, File)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill in.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// Sets `O_NONBLOCK` on an open file descriptor.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: F_GETFL/F_SETFL on a valid descriptor have no memory-safety preconditions.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// Polls one descriptor for `events`, waiting at most `timeout_ms` (0 = just look, -1 = forever).
/// Returns the `revents` mask, which is 0 if the timeout expired.
pub fn poll(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout_ms: i32,
) -> SysResult<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd, matching the count of 1.
    let ready = cvt(unsafe { libc::poll(&mut pfd, 1, timeout_ms) })?;
    Ok(if ready == 0 { 0 } else { pfd.revents })
}

/// Repositions a file offset (`whence` is `SEEK_SET`, `SEEK_CUR` or `SEEK_END`).
pub fn lseek(fd: BorrowedFd<'_>, offset: i64, whence: libc::c_int) -> SysResult<i64> {
    // SAFETY: lseek has no memory-safety preconditions.
    let ret = unsafe { libc::lseek(fd.as_raw_fd(), offset as libc::off_t, whence) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as i64)
    }
}

/// Plain data that the kernel may read from and overwrite byte by byte in an `ioctl`.
///
/// # Safety
///
/// Every bit pattern must be a valid value of the implementing type (integers, arrays of them,
/// `#[repr(C)]` structs made only of those, without padding that matters).
pub unsafe trait Plain: Copy {}

// SAFETY: every bit pattern is a valid integer.
unsafe impl Plain for u32 {}
// SAFETY: every bit pattern is a valid integer.
unsafe impl Plain for u64 {}
// SAFETY: every bit pattern is a valid array of bytes.
unsafe impl<const N: usize> Plain for [u8; N] {}

/// `ioctl(fd, cmd, arg)` for a command that creates a file descriptor and returns it inside
/// `arg` (as `GPIO_V2_GET_LINE_IOCTL` does); `new_fd` reads it out of the filled-in argument.
/// The descriptor is owned by the result and closed when it drops.
pub fn ioctl_new_fd<T: Plain>(
    fd: BorrowedFd<'_>,
    cmd: u32,
    arg: &mut T,
    new_fd: impl FnOnce(&T) -> libc::c_int,
) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    ioctl_with(fd, cmd, arg)?;
    let raw = new_fd(arg);
    if raw < 0 || !fd_is_open(raw) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the successful ioctl just created this descriptor for this process (the
    // command's contract, named by the caller); nothing else owns it, so the result may close
    // it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

/// `ioctl(fd, cmd, 0)`: a command that takes no argument.
pub fn ioctl_none(fd: BorrowedFd<'_>, cmd: u32) -> SysResult<libc::c_int> {
    // SAFETY: the argument is 0, so a (misbehaving) driver that tried to dereference it would
    // hit the never-mapped first page and fail with EFAULT; no user memory can be touched.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), cmd as libc::Ioctl, 0usize) })
}

/// `ioctl(fd, cmd, &mut arg)`: a command whose argument points at `arg`.
///
/// Panics if `cmd` encodes (in its `_IOC_SIZE` field) a size larger than `T`, since the kernel
/// would then access memory past `arg`.
pub fn ioctl_with<T: Plain>(fd: BorrowedFd<'_>, cmd: u32, arg: &mut T) -> SysResult<libc::c_int> {
    let encoded_size = crate::uapi::ioc_size(cmd) as usize;
    assert!(
        encoded_size <= std::mem::size_of::<T>(),
        "ioctl {cmd:#x} encodes a {encoded_size}-byte argument but the buffer has only {} bytes",
        std::mem::size_of::<T>()
    );
    let ptr: *mut T = arg;
    // SAFETY: `ptr` points to a live, exclusively borrowed `T` of at least `_IOC_SIZE(cmd)`
    // bytes (asserted above), and `T: Plain` so any bytes the kernel writes form a valid `T`.
    cvt(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            cmd as libc::Ioctl,
            ptr.cast::<libc::c_void>(),
        )
    })
}

/// `ioctl(fd, cmd, &mut arg)` for a command whose argument also names a data buffer by
/// address and length (NVMe passthrough's `addr` and `data_len`): `place(arg, addr, len)`
/// stores `data`'s address and length into the argument just before the call, so the kernel
/// may write `data` (at most `len` bytes) as well as `arg`.
///
/// Panics as [`ioctl_with`] does if `cmd` encodes a size larger than `T`.
pub fn ioctl_with_buffer<T: Plain>(
    fd: BorrowedFd<'_>,
    cmd: u32,
    arg: &mut T,
    data: &mut [u8],
    place: impl FnOnce(&mut T, u64, u32),
) -> SysResult<libc::c_int> {
    let len = u32::try_from(data.len()).expect("a data buffer under 4 GiB");
    place(arg, data.as_mut_ptr() as u64, len);
    let encoded_size = crate::uapi::ioc_size(cmd) as usize;
    assert!(
        encoded_size <= std::mem::size_of::<T>(),
        "ioctl {cmd:#x} encodes a {encoded_size}-byte argument but the buffer has only {} bytes",
        std::mem::size_of::<T>()
    );
    let ptr: *mut T = arg;
    // SAFETY: `ptr` points to a live, exclusively borrowed `T` of at least `_IOC_SIZE(cmd)`
    // bytes, and `data` is exclusively borrowed for the call too, its address and length in
    // the argument (the command's contract, as the caller's `place` wrote it); `T: Plain` and
    // bytes accept whatever the kernel writes.
    cvt(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            cmd as libc::Ioctl,
            ptr.cast::<libc::c_void>(),
        )
    })
}

/// A user address that is guaranteed not to be accessible, for testing `EFAULT` paths.
#[derive(Clone, Copy, Debug)]
pub enum BadAddress {
    /// Address `0x1`: inside the first page, which Linux never maps (`vm.mmap_min_addr`).
    NearNull,
    /// A page that was just obtained with `mmap` and released again with `munmap`.
    Unmapped,
}

impl BadAddress {
    /// Both kinds, for tests that try each.
    pub const ALL: [BadAddress; 2] = [BadAddress::NearNull, BadAddress::Unmapped];
}

impl fmt::Display for BadAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadAddress::NearNull => f.write_str("address 0x1"),
            BadAddress::Unmapped => f.write_str("an unmapped page"),
        }
    }
}

/// A system call that takes a user buffer; see [`call_with_bad_address`].
#[derive(Clone, Copy, Debug)]
pub enum RawCall {
    /// `read(fd, addr, len)`.
    Read(usize),
    /// `write(fd, addr, len)`.
    Write(usize),
    /// `ioctl(fd, cmd, addr)`.
    Ioctl(u32),
}

/// Performs `call` on `fd` with a buffer address that is not valid user memory, returning what
/// the kernel returned. A correct driver answers `EFAULT`.
pub fn call_with_bad_address(
    fd: BorrowedFd<'_>,
    call: RawCall,
    bad: BadAddress,
) -> SysResult<usize> {
    let addr: usize = match bad {
        BadAddress::NearNull => 1,
        BadAddress::Unmapped => {
            // A fresh mapping, unmapped again: an address nothing in this process uses.
            let pages = crate::mem::Pages::new(1)?;
            let addr = pages.at(0) as usize;
            drop(pages);
            addr
        }
    };
    // From here until the call returns nothing allocates, and the runner is single-threaded,
    // so the address stays unmapped: the kernel cannot touch any Rust object through it.
    let raw = fd.as_raw_fd();
    let ret = match call {
        RawCall::Read(len) => {
            // SAFETY: `addr` is not mapped (see above); the kernel validates user pointers and
            // fails with EFAULT instead of touching our memory.
            cvt_size(unsafe { libc::read(raw, addr as *mut libc::c_void, len) })?
        }
        RawCall::Write(len) => {
            // SAFETY: as for `Read`; the kernel only reads from `addr`.
            cvt_size(unsafe { libc::write(raw, addr as *const libc::c_void, len) })?
        }
        RawCall::Ioctl(cmd) => {
            let arg = addr as *mut libc::c_void;
            // SAFETY: as for `Read`: whatever the command, the kernel cannot reach our memory.
            let ret = cvt(unsafe { libc::ioctl(raw, cmd as libc::Ioctl, arg) })?;
            ret as usize
        }
    };
    Ok(ret)
}

/// A 64-bit counter in a `MAP_SHARED` anonymous page: after `fork` the parent and all children
/// see (and atomically update) the same value.
pub struct SharedCounter {
    ptr: NonNull<AtomicU64>,
}

impl SharedCounter {
    /// Maps a fresh shared page holding a counter of 0.
    pub fn new() -> SysResult<SharedCounter> {
        // SAFETY: a new anonymous shared mapping cannot alias any existing Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                crate::mem::page_size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(ptr.cast::<AtomicU64>()).ok_or(Errno(libc::ENOMEM))?;
        Ok(SharedCounter { ptr })
    }

    /// The shared counter.
    pub fn get(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned (so suitably aligned for AtomicU64), was
        // zero-filled by the kernel (a valid AtomicU64 of 0), and lives until `self` is dropped.
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and no reference to it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), crate::mem::page_size()) };
    }
}

// ---------------------------------------------------------------------------------------------
// Modules, mounts, power
// ---------------------------------------------------------------------------------------------

/// `finit_module(fd, params, 0)`: loads the kernel module in `file` with the parameter string
/// `params` (e.g. `"capacity=128"`, or `""`). Returns when the module's init function returned.
pub fn finit_module(file: &File, params: &str) -> SysResult<()> {
    let params = cstring(params)?;
    let fd = file.as_raw_fd() as libc::c_long;
    let flags: libc::c_long = 0;
    // SAFETY: finit_module reads only the NUL-terminated `params`, which outlives the call.
    cvt_long(unsafe { libc::syscall(libc::SYS_finit_module, fd, params.as_ptr(), flags) }).map(drop)
}

/// `delete_module(name, O_NONBLOCK)`: unloads a module; fails (`EAGAIN`/`EBUSY`) instead of
/// waiting if it is still in use.
pub fn delete_module(name: &str) -> SysResult<()> {
    let name = cstring(name)?;
    let flags = libc::O_NONBLOCK as libc::c_long;
    // SAFETY: delete_module reads only the NUL-terminated `name`, which outlives the call.
    cvt_long(unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), flags) }).map(drop)
}

/// `mount(source, target, fstype, 0, NULL)`.
pub fn mount(source: &str, target: &str, fstype: &str) -> SysResult<()> {
    let (source, target, fstype) = (cstring(source)?, cstring(target)?, cstring(fstype)?);
    // SAFETY: all strings are NUL-terminated and outlive the call; data may be NULL.
    cvt(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    })
    .map(drop)
}

/// Flushes all file system buffers.
pub fn sync() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() }
}

/// Waits until everything written to the terminal `fd` has been transmitted (so the last lines
/// on the serial console are not lost when the machine powers off).
pub fn drain_terminal(fd: impl AsFd) {
    // SAFETY: tcdrain has no memory-safety preconditions; failure (not a tty) is harmless.
    unsafe { libc::tcdrain(fd.as_fd().as_raw_fd()) };
}

/// Is `fd` an open file descriptor?
pub fn fd_is_open(fd: libc::c_int) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; it fails with EBADF if not open.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Makes `target` a duplicate of `fd` (`dup2`).
pub fn dup2(fd: BorrowedFd<'_>, target: libc::c_int) -> SysResult<()> {
    // SAFETY: dup2 has no memory-safety preconditions; `target` is one of the standard
    // descriptors, which no Rust object owns.
    cvt(unsafe { libc::dup2(fd.as_raw_fd(), target) }).map(drop)
}

/// Powers the machine off. Only returns (with the error) if that failed.
pub fn power_off() -> Errno {
    // SAFETY: reboot has no memory-safety preconditions; as PID 1 we have CAP_SYS_BOOT.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    Errno::last()
}
