//! The ioctl number encoding shared by every driver's user-space API: the generic Linux
//! `_IOC` layout (`include/uapi/asm-generic/ioctl.h`), which both x86 and arm64 use: bits 0..8
//! hold the command number, 8..16 the "type" (magic letter), 16..30 the argument size and 30..32
//! the direction.

/// Bits of the command number field.
pub const IOC_NRBITS: u32 = 8;
/// Bits of the type (magic) field.
pub const IOC_TYPEBITS: u32 = 8;
/// Bits of the argument-size field.
pub const IOC_SIZEBITS: u32 = 14;
/// Bits of the direction field.
pub const IOC_DIRBITS: u32 = 2;

/// Shift of the command number field.
pub const IOC_NRSHIFT: u32 = 0;
/// Shift of the type field.
pub const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
/// Shift of the size field.
pub const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
/// Shift of the direction field.
pub const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

const _: () = assert!(IOC_DIRSHIFT + IOC_DIRBITS == 32);

/// Direction: no data transfer.
pub const IOC_NONE: u32 = 0;
/// Direction: user space writes, the kernel reads the argument.
pub const IOC_WRITE: u32 = 1;
/// Direction: the kernel writes the argument, user space reads it.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(
        size < (1 << IOC_SIZEBITS),
        "ioctl argument too large for _IOC_SIZE"
    );
    (dir << IOC_DIRSHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IO(type, nr)`: a command without argument.
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(type, nr, T)`: the kernel writes a `T` to the argument pointer.
pub const fn ior<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ, ty, nr, std::mem::size_of::<T>())
}

/// `_IOW(type, nr, T)`: the kernel reads a `T` from the argument pointer.
pub const fn iow<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_WRITE, ty, nr, std::mem::size_of::<T>())
}

/// `_IOC_SIZE(cmd)`: the argument size encoded in a command.
pub const fn ioc_size(cmd: u32) -> u32 {
    (cmd >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)
}
