//! ioctl numbers: the `_IOC` encoding of `include/uapi/asm-generic/ioctl.h`, as `const fn`s so
//! a driver's command numbers are constants checked at compile time.
//!
//! A command packs a direction (does the argument go to the driver, come back, or both), a type
//! letter (the driver's "magic"), a number and the size of the argument. The layout is the
//! asm-generic one, used by x86 and arm64.
//!
//! Drivers declare their commands as types that carry the argument type, so a handler copies
//! the argument without spelling its size, and cannot read a "read" command's argument:
//!
//! ```ignore
//! pub type GetCapacity = Ior<u32, b'r', 1>; // _IOR('r', 1, __u32)
//! pub type SetCapacity = Iow<u32, b'r', 2>; // _IOW('r', 2, __u32)
//! pub type Clear = Io<b'r', 3>;             // _IO('r', 3)
//!
//! match cmd {
//!     GetCapacity::CMD => GetCapacity::write(arg, &capacity)?,
//!     SetCapacity::CMD => set(SetCapacity::read(arg)?)?,
//!     Clear::CMD => clear(),
//!     _ => return Err(ENOTTY),
//! }
//! ```

use crate::error::Result;
use crate::uaccess::UserSlice;
use core::marker::PhantomData;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Bits of the command number.
pub const NRBITS: u32 = 8;
/// Bits of the type letter.
pub const TYPEBITS: u32 = 8;
/// Bits of the argument size.
pub const SIZEBITS: u32 = 14;
/// Bits of the direction.
pub const DIRBITS: u32 = 2;

const NRSHIFT: u32 = 0;
const TYPESHIFT: u32 = NRSHIFT + NRBITS;
const SIZESHIFT: u32 = TYPESHIFT + TYPEBITS;
const DIRSHIFT: u32 = SIZESHIFT + SIZEBITS;

/// No argument data.
pub const NONE: u32 = 0;
/// User space writes, the driver reads (`copy_from_user`).
pub const WRITE: u32 = 1;
/// The driver writes, user space reads (`copy_to_user`).
pub const READ: u32 = 2;

/// Encodes a command; fails the build if a field does not fit.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < (1 << SIZEBITS), "ioctl argument too large for _IOC");
    (dir << DIRSHIFT)
        | ((ty as u32) << TYPESHIFT)
        | ((nr as u32) << NRSHIFT)
        | ((size as u32) << SIZESHIFT)
}

/// `_IO(ty, nr)`: no argument.
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(NONE, ty, nr, 0)
}

/// `_IOR(ty, nr, T)`: the driver returns a `T` to user space.
pub const fn ior<T>(ty: u8, nr: u8) -> u32 {
    ioc(READ, ty, nr, core::mem::size_of::<T>())
}

/// `_IOW(ty, nr, T)`: user space passes a `T` to the driver.
pub const fn iow<T>(ty: u8, nr: u8) -> u32 {
    ioc(WRITE, ty, nr, core::mem::size_of::<T>())
}

/// `_IOWR(ty, nr, T)`: both.
pub const fn iowr<T>(ty: u8, nr: u8) -> u32 {
    ioc(READ | WRITE, ty, nr, core::mem::size_of::<T>())
}

/// `_IOC_DIR(cmd)`.
pub const fn dir(cmd: u32) -> u32 {
    (cmd >> DIRSHIFT) & ((1 << DIRBITS) - 1)
}

/// `_IOC_TYPE(cmd)`.
pub const fn ty(cmd: u32) -> u8 {
    (cmd >> TYPESHIFT) as u8
}

/// `_IOC_NR(cmd)`.
pub const fn nr(cmd: u32) -> u8 {
    (cmd >> NRSHIFT) as u8
}

/// `_IOC_SIZE(cmd)`.
pub const fn size(cmd: u32) -> usize {
    ((cmd >> SIZESHIFT) & ((1 << SIZEBITS) - 1)) as usize
}

/// `_IO(TY, NR)`: a command without an argument.
pub struct Io<const TY: u8, const NR: u8>;

impl<const TY: u8, const NR: u8> Io<TY, NR> {
    /// The command number.
    pub const CMD: u32 = io(TY, NR);
}

/// `_IOR(TY, NR, T)`: the driver writes a `T` to the user's argument.
pub struct Ior<T, const TY: u8, const NR: u8>(PhantomData<fn() -> T>);

impl<T: IntoBytes + Immutable, const TY: u8, const NR: u8> Ior<T, TY, NR> {
    /// The command number.
    pub const CMD: u32 = ior::<T>(TY, NR);

    /// Copies `value` to the user pointer `arg` (`EFAULT` if it is not writable).
    pub fn write(arg: usize, value: &T) -> Result {
        UserSlice::new(arg, core::mem::size_of::<T>())
            .writer()
            .write(value)
    }
}

/// `_IOW(TY, NR, T)`: user space passes a `T` to the driver.
pub struct Iow<T, const TY: u8, const NR: u8>(PhantomData<fn() -> T>);

impl<T: FromBytes + IntoBytes, const TY: u8, const NR: u8> Iow<T, TY, NR> {
    /// The command number.
    pub const CMD: u32 = iow::<T>(TY, NR);

    /// Copies the argument in from the user pointer `arg` (`EFAULT` if it is not readable).
    pub fn read(arg: usize) -> Result<T> {
        UserSlice::new(arg, core::mem::size_of::<T>())
            .reader()
            .read()
    }
}

/// `_IOWR(TY, NR, T)`: user space passes a `T` and the driver writes one back.
pub struct Iowr<T, const TY: u8, const NR: u8>(PhantomData<fn() -> T>);

impl<T: FromBytes + IntoBytes + Immutable, const TY: u8, const NR: u8> Iowr<T, TY, NR> {
    /// The command number.
    pub const CMD: u32 = iowr::<T>(TY, NR);

    /// Copies the argument in from the user pointer `arg`.
    pub fn read(arg: usize) -> Result<T> {
        UserSlice::new(arg, core::mem::size_of::<T>())
            .reader()
            .read()
    }

    /// Copies `value` back to the user pointer `arg`.
    pub fn write(arg: usize, value: &T) -> Result {
        UserSlice::new(arg, core::mem::size_of::<T>())
            .writer()
            .write(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_c_headers() {
        // Values from <asm-generic/ioctls.h> and friends, through the libc crate.
        assert_eq!(u64::from(io(b'T', 0x01)), libc::TCGETS);
        assert_eq!(u64::from(ior::<u32>(b'T', 0x30)), libc::TIOCGPTN);
        assert_eq!(u64::from(iow::<i32>(b'T', 0x31)), libc::TIOCSPTLCK);
        assert_eq!(ior::<[u8; 8]>(b'f', 1), 0x8008_6601); // FS_IOC_GETFLAGS (64-bit)
        assert_eq!(iowr::<u64>(b'r', 7), 0xc008_7207);
    }

    #[test]
    fn typed_commands_carry_their_size() {
        assert_eq!(Ior::<u32, b'T', 0x30>::CMD, ior::<u32>(b'T', 0x30));
        assert_eq!(Iow::<[u8; 40], b'r', 2>::CMD, iow::<[u8; 40]>(b'r', 2));
        assert_eq!(Iowr::<u64, b'r', 7>::CMD, 0xc008_7207);
        assert_eq!(Io::<b'T', 1>::CMD as u64, libc::TCGETS);
        // Usable as patterns.
        match ior::<u32>(b'T', 0x30) {
            Ior::<u32, b'T', 0x30>::CMD => {}
            _ => panic!("no match"),
        }
    }

    #[test]
    fn decodes_what_it_encodes() {
        let cmd = iowr::<[u8; 40]>(b'r', 0x04);
        assert_eq!(
            (dir(cmd), ty(cmd), nr(cmd), size(cmd)),
            (READ | WRITE, b'r', 4, 40)
        );
        let cmd = io(b'x', 0xff);
        assert_eq!(
            (dir(cmd), ty(cmd), nr(cmd), size(cmd)),
            (NONE, b'x', 0xff, 0)
        );
        assert_eq!(size(ioc(READ, 0, 0, (1 << SIZEBITS) - 1)), 16383);
    }
}
