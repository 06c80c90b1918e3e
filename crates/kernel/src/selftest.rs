//! Scaffolding for the abstraction layer's own self-tests (`crates/selftests`), kept apart from
//! the driver API: raw heap blocks for testing the allocator, user memory of the kernel's own
//! for testing the copy routines, and bugs planted on purpose to prove the kernel's checkers
//! see Rust code. Anything here that could break memory safety is an `unsafe fn`, which driver
//! crates (`#![forbid(unsafe_code)]`) cannot call.

use crate::alloc::{Allocator, Gfp, Kmalloc};
use crate::error::{code::ENOMEM, Result};
use core::alloc::Layout;
use core::ptr::NonNull;
use kernel_sys as bindings;

/// A raw, uninitialised kmalloc block of a given layout, freed on drop: for testing the
/// allocator's alignment and failure rules.
///
/// # Invariants
/// `ptr` is a live block of [`Kmalloc`] allocated with `layout`.
pub struct RawBlock {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl RawBlock {
    /// Allocates `layout` with `flags`; `ENOMEM` if the allocator cannot (also for alignments
    /// above PAGE_SIZE, which kmalloc cannot guarantee).
    pub fn new(layout: Layout, flags: Gfp) -> Result<Self> {
        // SAFETY: any layout is accepted (zero sizes included); flags are the caller's.
        let ptr = unsafe { Kmalloc::alloc(layout, flags) };
        // INVARIANT: a live block of `layout`.
        NonNull::new(ptr)
            .map(|ptr| Self { ptr, layout })
            .ok_or(ENOMEM)
    }

    /// The block's address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The block's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }
}

impl Drop for RawBlock {
    fn drop(&mut self) {
        // SAFETY: a live block of Kmalloc with this layout (type invariant).
        unsafe { Kmalloc::free(self.ptr.as_ptr(), self.layout) };
    }
}

// SAFETY: a heap block is not tied to a thread.
unsafe impl Send for RawBlock {}

/// Writes one byte just past the end of a 32-byte heap block: a slab out-of-bounds write that a
/// KASAN kernel must report (the block is freed again).
///
/// # Safety
/// None: this is a deliberate memory-safety bug. Without KASAN the byte lands in the slab's
/// padding or in the next object. Call it only to test KASAN, in a boot of its own.
#[inline(never)]
pub unsafe fn planted_out_of_bounds_write() {
    let Ok(layout) = Layout::from_size_align(32, 8) else {
        return;
    };
    let Ok(block) = RawBlock::new(layout, Gfp::KERNEL) else {
        return;
    };
    // SAFETY: none: this is the planted bug, `addr + 32` is one past the block. The caller
    // accepted that (see `# Safety`).
    unsafe { core::ptr::write_volatile((block.addr() + 32) as *mut u8, 0xa5) };
}

/// Anonymous memory mapped into the current process (`vm_mmap`), unmapped on drop.
///
/// Test scaffolding, for the self-tests that exercise the copy routines on real user pages; not
/// for drivers (it is `unsafe` to create). It is not `Send`: it must be dropped by the task that
/// made it, in the same system call or module load.
pub struct UserMapping {
    addr: usize,
    len: usize,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl UserMapping {
    /// Maps `len` bytes of zeroed, readable and writable user memory (page-rounded by the
    /// kernel) in the current process.
    ///
    /// # Safety
    /// The caller runs in process context with a user address space (not a kernel thread,
    /// whose `current->mm` is NULL), and drops the mapping before returning to user space:
    /// `Drop` unmaps from whatever process is current then.
    pub unsafe fn new(len: usize) -> Result<Self> {
        // SAFETY: an anonymous private mapping with no file; the kernel picks the address and
        // checks everything else.
        let addr = unsafe {
            bindings::vm_mmap(
                core::ptr::null_mut(),
                0,
                len as _,
                (bindings::PROT_READ | bindings::PROT_WRITE) as _,
                (bindings::MAP_PRIVATE | bindings::MAP_ANONYMOUS) as _,
                0,
            )
        } as usize;
        if addr >= (-(crate::error::MAX_ERRNO as isize)) as usize {
            return Err(crate::Error::from_errno(addr as isize as i32));
        }
        Ok(Self {
            addr,
            len,
            _not_send: core::marker::PhantomData,
        })
    }

    /// The user address of the mapping.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// The mapping's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, once created).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Unmaps `len` bytes at `offset` inside the mapping (page-aligned), leaving a hole that
    /// faults: for testing copies that run into unmapped memory.
    pub fn unmap_range(&mut self, offset: usize, len: usize) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(crate::code::EINVAL);
        }
        // SAFETY: the range lies inside our own mapping in the current process.
        crate::error::to_result(unsafe { bindings::vm_munmap((self.addr + offset) as _, len) })
    }
}

impl Drop for UserMapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping in the current process (the creator promised to drop it
        // there); unmapping parts that are already unmapped is harmless.
        unsafe { bindings::vm_munmap(self.addr as _, self.len) };
    }
}
