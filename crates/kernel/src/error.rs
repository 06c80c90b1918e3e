//! Kernel errors: a negative errno, as every kernel API returns them.

use core::fmt;
use core::num::NonZeroI32;

/// An error code of the kernel (an errno value such as `EINVAL`).
///
/// # Invariants
/// The value is in `-MAX_ERRNO..0`, the range the kernel reserves for errors (`IS_ERR_VALUE`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error(NonZeroI32);

/// The kernel's `MAX_ERRNO`: error pointers and errno returns are in `-4095..0`.
pub const MAX_ERRNO: i32 = 4095;

/// The errno values drivers return, named as in C.
pub mod code {
    use super::Error;
    use kernel_sys as bindings;

    macro_rules! codes {
        ($($name:ident: $doc:literal,)*) => {
            $(
                #[doc = $doc]
                pub const $name: Error = Error::from_const(bindings::$name as i32);
            )*
            /// Every code above with its name, for `Debug`: the one list of errnos.
            pub(super) const NAMES: &[(Error, &str)] = &[$(($name, stringify!($name)),)*];
        };
    }

    codes! {
        EPERM: "Operation not permitted.",
        ENOENT: "No such file or directory.",
        EINTR: "Interrupted system call.",
        EIO: "I/O error.",
        ENXIO: "No such device or address.",
        E2BIG: "Argument list too long.",
        EAGAIN: "Try again (would block).",
        ENOMEM: "Out of memory.",
        EACCES: "Permission denied.",
        EFAULT: "Bad address.",
        EBUSY: "Device or resource busy.",
        EEXIST: "File exists.",
        ENODEV: "No such device.",
        EINVAL: "Invalid argument.",
        ENOSPC: "No space left on device.",
        ESPIPE: "Illegal seek.",
        ERANGE: "Result out of range.",
        ENOTTY: "Inappropriate ioctl for device.",
        EOVERFLOW: "Value too large for the defined data type.",
        ETIMEDOUT: "Timed out.",
        ERESTARTSYS: "Interrupted by a signal: restart the system call if the handler allows it.",
    }
}

impl Error {
    /// Builds an error from a positive errno constant; fails the build for a bad one.
    const fn from_const(errno: i32) -> Error {
        assert!(errno > 0 && errno <= MAX_ERRNO);
        match NonZeroI32::new(-errno) {
            Some(v) => Error(v),
            None => panic!(),
        }
    }

    /// The error a kernel function reported by returning `ret` (a negative errno).
    ///
    /// A value outside the errno range is a bug in the caller's reading of the C API; it is
    /// mapped to `EINVAL` rather than trusted.
    pub fn from_errno(ret: i32) -> Error {
        match NonZeroI32::new(ret) {
            // INVARIANT: checked to be in -MAX_ERRNO..0.
            Some(v) if (-MAX_ERRNO..0).contains(&ret) => Error(v),
            _ => code::EINVAL,
        }
    }

    /// The negative errno to return to C.
    pub fn to_errno(self) -> i32 {
        self.0.get()
    }

    /// The positive errno number.
    pub fn errno(self) -> u32 {
        self.0.get().unsigned_abs()
    }

    /// The C name (`"EINVAL"`) of a code in [`code`].
    pub fn name(self) -> Option<&'static str> {
        code::NAMES
            .iter()
            .find(|(e, _)| *e == self)
            .map(|(_, n)| *n)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Error({})", self.0),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The result of a fallible kernel operation.
pub type Result<T = (), E = Error> = core::result::Result<T, E>;

/// Converts a C `int` return (0 or a negative errno) into a [`Result`].
pub fn to_result(ret: core::ffi::c_int) -> Result {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(())
    }
}

/// Converts a Rust result into the `long`-style return of a file operation.
pub fn from_result<T: TryInto<isize>>(r: Result<T>) -> isize {
    match r {
        Ok(v) => v.try_into().unwrap_or(code::EOVERFLOW.to_errno() as isize),
        Err(e) => e.to_errno() as isize,
    }
}

#[cfg(test)]
mod tests {
    use super::code::*;
    use super::*;

    #[test]
    fn errno_values_match_the_c_library() {
        assert_eq!(EINVAL.to_errno(), -libc::EINVAL);
        assert_eq!(EFAULT.errno(), libc::EFAULT as u32);
        assert_eq!(ENOTTY.to_errno(), -libc::ENOTTY);
        assert_eq!(EAGAIN.to_errno(), -libc::EAGAIN);
        assert_eq!(ESPIPE.to_errno(), -libc::ESPIPE);
        assert_eq!(ERESTARTSYS.to_errno(), -512);
    }

    #[test]
    fn from_errno_round_trips_and_rejects_garbage() {
        for e in [EPERM, EINTR, ENOMEM, EBUSY, ENOTTY, ERESTARTSYS] {
            assert_eq!(Error::from_errno(e.to_errno()), e);
        }
        assert_eq!(Error::from_errno(0), EINVAL);
        assert_eq!(Error::from_errno(5), EINVAL);
        assert_eq!(Error::from_errno(-4096), EINVAL);
        assert_eq!(Error::from_errno(-4095).errno(), 4095);
    }

    #[test]
    fn results_convert_both_ways() {
        assert_eq!(to_result(0), Ok(()));
        assert_eq!(to_result(7), Ok(()));
        assert_eq!(to_result(-14), Err(EFAULT));
        assert_eq!(from_result::<usize>(Ok(42)), 42);
        assert_eq!(from_result::<usize>(Err(ENOTTY)), -25);
        assert_eq!(from_result::<usize>(Ok(usize::MAX)), -75);
        assert_eq!(
            format!("{:?} {}", EAGAIN, Error::from_errno(-200)),
            "EAGAIN Error(-200)"
        );
    }

    #[test]
    fn every_code_has_its_name() {
        for (e, n) in code::NAMES {
            assert_eq!(format!("{e:?}"), *n);
        }
        assert_eq!(
            format!("{ENOSPC:?} {ETIMEDOUT:?} {EOVERFLOW:?}"),
            "ENOSPC ETIMEDOUT EOVERFLOW"
        );
        assert!(code::NAMES.len() >= 20);
    }
}
