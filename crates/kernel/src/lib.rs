//! Safe abstractions over the Linux kernel's C API, for drivers written in Rust.
//!
//! Drivers depend on this crate only. It is the one place where the raw bindings
//! (`kernel-sys`) and the allocator internals (`kernel-alloc`) are touched; everything it exports
//! is safe to use, with the reasons documented at each `unsafe` block inside.
//!
//! One file per kernel concept: [`module`](mod@module) (declaring a module, parameters), [`print`]
//! (printk), [`error`] (errno), [`alloc`] (`KBox`, `KVec`, `KVVec`: fallible allocation with the
//! GFP flags at every call), [`uaccess`] (user memory), [`sync`] (`Arc`, mutex, spinlock, wait
//! queues), [`file`](mod@file), [`miscdev`] (misc character devices), [`ioctl`] (typed ioctl numbers), [`device`],
//! [`amba`] and [`pci`] (bus drivers), [`io`] (MMIO windows and typed registers), [`dma`]
//! (coherent DMA memory), [`irq`] (interrupt handlers; trigger types, flow and chained
//! handlers for interrupt chips), [`gpio`] (GPIO controllers and their irqchips), [`block`]
//! (blk-mq block devices), [`time`],
//! [`panic`](mod@panic), and [`selftest`] (scaffolding for the layer's own self-tests, not for drivers).

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod alloc;
pub mod amba;
pub mod block;
pub mod device;
pub mod dma;
pub mod error;
pub mod file;
pub mod gpio;
pub mod io;
pub mod ioctl;
pub mod irq;
pub mod miscdev;
pub mod module;
pub mod panic;
pub mod pci;
pub mod print;
#[doc(hidden)]
pub mod selftest;
pub mod str;
pub mod sync;
pub mod task;
pub mod time;
pub mod uaccess;

pub use error::{code, Error, Result};
pub use zerocopy;

#[doc(hidden)]
pub use kernel_sys as __bindings;

/// What most drivers need, in one `use kernel::prelude::*;`.
pub mod prelude {
    pub use crate::alloc::{Gfp, KBox, KVBox, KVVec, KVec};
    pub use crate::error::{code::*, Error, Result};
    pub use crate::file::{File, PollFlags, PollTable};
    pub use crate::miscdev::{self, MiscDevice};
    pub use crate::module::{Module, ThisModule};
    pub use crate::str::{CStr, StackString};
    pub use crate::sync::{Arc, CondVar, Mutex, PollCondVar, SpinLock};
    pub use crate::uaccess::{UserSliceReader, UserSliceWriter};
    pub use crate::{module, new_condvar, new_mutex, new_poll_condvar, new_spinlock};
    pub use crate::{pr_alert, pr_crit, pr_debug, pr_emerg, pr_err, pr_info, pr_notice, pr_warn};
}
