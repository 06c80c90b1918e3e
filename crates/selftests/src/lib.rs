//! Self-tests of the `kernel` crate, run inside the kernel when the module loads.
//!
//! Results go to the kernel log as a KTAP document, one line per printk record
//! (`rust_selftests: ok 3 alloc_align_4`); the in-guest runner collects them. Each test returns
//! `Err(())` after printing a `# ...` diagnostic that says what was expected and what happened.
//!
//! `trigger_panic=1` makes the load panic instead, to test the panic handler (in a boot of its
//! own: the oops kills the loading process and taints the kernel). `kasan_oob=1` makes a
//! deliberate out-of-bounds write instead, which a KASAN kernel must report, and `plant_leak=1`
//! leaks a heap block, which kmemleak must report.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::alloc::Layout;
use kernel::alloc::{live_allocations, try_box_with, vec_with_capacity, RawBlock};
use kernel::prelude::*;
use kernel::uaccess::{UserMapping, UserSlice};

/// The outcome of one test; the failure was already reported as a diagnostic.
type Outcome = core::result::Result<(), ()>;

/// Fails the test with a diagnostic unless `cond` holds.
macro_rules! check {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            pr_info!("# {}:{}: {}", file!(), line!(), format_args!($($msg)*));
            return Err(());
        }
    };
}

/// Fails the test with a diagnostic if `result` is an error.
fn ok<T>(result: Result<T>, what: &str) -> core::result::Result<T, ()> {
    result.map_err(|e| pr_info!("# {what}: unexpected error {e:?}"))
}

const PAGE_SIZE: usize = 4096;

/// Every power-of-two alignment up to PAGE_SIZE, for several sizes around it: blocks are
/// aligned, usable, and counted.
fn alloc_align(align: usize) -> Outcome {
    let before = live_allocations();
    for size in [
        1,
        align / 2 + 1,
        align,
        align + 1,
        3 * align,
        2 * PAGE_SIZE + 8,
    ] {
        let layout = Layout::from_size_align(size.max(1), align).map_err(|_| ())?;
        let block = ok(RawBlock::new(layout, Gfp::KERNEL), "RawBlock::new")?;
        check!(
            block.addr() % align == 0,
            "size {size} align {align}: got {:#x}",
            block.addr()
        );
        check!(
            live_allocations() == before + 1,
            "live count not incremented"
        );
        drop(block);
        check!(live_allocations() == before, "live count not back");
    }
    Ok(())
}

fn alloc_align_above_page_fails() -> Outcome {
    let before = live_allocations();
    let layout = Layout::from_size_align(64, 2 * PAGE_SIZE).map_err(|_| ())?;
    check!(
        RawBlock::new(layout, Gfp::KERNEL).is_err(),
        "align 8192 succeeded"
    );
    check!(
        live_allocations() == before,
        "failed allocation was counted"
    );
    Ok(())
}

fn alloc_zero_size() -> Outcome {
    let before = live_allocations();
    let layout = Layout::from_size_align(0, 64).map_err(|_| ())?;
    let block = ok(RawBlock::new(layout, Gfp::KERNEL), "zero-size RawBlock")?;
    check!(
        block.addr() % 64 == 0,
        "zero-size block {:#x} not aligned to 64",
        block.addr()
    );
    drop(block);
    check!(
        live_allocations() == before,
        "live count not back after zero-size free"
    );
    Ok(())
}

fn alloc_failure_is_clean() -> Outcome {
    let before = live_allocations();
    // Far beyond what kmalloc can ever return (NOWARN: the failure is expected).
    let layout = Layout::from_size_align(1 << 40, 8).map_err(|_| ())?;
    check!(
        RawBlock::new(layout, Gfp::KERNEL | Gfp::NOWARN).is_err(),
        "a 1 TiB kmalloc succeeded"
    );
    check!(
        live_allocations() == before,
        "failed allocation was counted"
    );
    let mut v: Vec<u8> = Vec::new();
    check!(
        v.try_reserve(usize::MAX / 2).is_err(),
        "absurd Vec reservation succeeded"
    );
    check!(
        live_allocations() == before,
        "failed reservation changed the count"
    );
    Ok(())
}

fn box_and_vec_growth() -> Outcome {
    let before = live_allocations();
    {
        let b = ok(try_box([7u64; 64]), "try_box")?;
        check!(b.iter().all(|&x| x == 7), "boxed contents");
        let mut v: Vec<u32> = Vec::new();
        for i in 0..10_000u32 {
            ok(v.try_push(i), "try_push")?;
        }
        check!(
            v.len() == 10_000 && v.iter().enumerate().all(|(i, &x)| x == i as u32),
            "vec contents"
        );
        ok(v.try_extend_from_slice(&[1, 2, 3]), "try_extend_from_slice")?;
        check!(v[10_000..] == [1, 2, 3], "extended tail");
        let w: Vec<u8> = ok(vec_with_capacity(100), "vec_with_capacity")?;
        check!(w.capacity() >= 100, "capacity {}", w.capacity());
        check!(
            live_allocations() == before + 3,
            "expected 3 live blocks, got {}",
            live_allocations() - before
        );
    }
    check!(
        live_allocations() == before,
        "blocks leaked: {}",
        live_allocations() - before
    );
    Ok(())
}

fn mutex_lock_unlock() -> Outcome {
    let m = ok(new_mutex!(0u32, "selftest.mutex"), "new_mutex")?;
    for _ in 0..1000 {
        *m.lock() += 1;
    }
    let g = ok(m.lock_interruptible(), "lock_interruptible")?;
    check!(*g == 1000, "counter {}", *g);
    Ok(())
}

fn spinlock_lock_unlock() -> Outcome {
    let s = ok(new_spinlock!(0u64, "selftest.spinlock"), "new_spinlock")?;
    for _ in 0..1000 {
        *s.lock() += 1;
        *s.lock_irqsave() += 1;
    }
    check!(*s.lock() == 2000, "counter {}", *s.lock());
    Ok(())
}

/// Always the same order (mutex, then spinlock inside it), as lockdep requires; allocation
/// under the spinlock uses GFP_ATOMIC (GFP_KERNEL would sleep in atomic context).
fn nested_locks_and_atomic_allocation() -> Outcome {
    let outer = ok(new_mutex!(0u32, "selftest.outer"), "new_mutex")?;
    let inner = ok(
        new_spinlock!(None::<Box<[u8; 256]>>, "selftest.inner"),
        "new_spinlock",
    )?;
    let before = live_allocations();
    for i in 0..10u8 {
        let mut o = outer.lock();
        let mut guard = inner.lock_irqsave();
        *guard = Some(ok(
            try_box_with([i; 256], Gfp::ATOMIC),
            "GFP_ATOMIC allocation",
        )?);
        *o += 1;
    }
    check!(live_allocations() == before + 1, "expected one live block");
    *inner.lock() = None;
    check!(live_allocations() == before, "block not freed");
    Ok(())
}

fn condvar_notify_without_waiters() -> Outcome {
    let cv = ok(new_condvar!("selftest.condvar"), "new_condvar")?;
    cv.notify_all();
    cv.notify_all();
    Ok(())
}

/// Copies between kernel buffers and real user pages of the loading process.
fn usercopy_round_trip() -> Outcome {
    let map = ok(UserMapping::new(2 * PAGE_SIZE), "vm_mmap")?;
    let data: [u8; 300] = core::array::from_fn(|i| i as u8);
    // Across the boundary between the two pages.
    let at = map.addr() + PAGE_SIZE - 100;
    ok(
        UserSlice::new(at, 300).writer().write_slice(&data),
        "copy_to_user",
    )?;
    let mut back = [0u8; 300];
    ok(
        UserSlice::new(at, 300).reader().read_slice(&mut back),
        "copy_from_user",
    )?;
    check!(back == data, "data changed in the round trip");
    let value: u64 = ok(UserSlice::new(at, 8).reader().read(), "read::<u64>")?;
    check!(
        value == u64::from_le_bytes(data[..8].try_into().unwrap()),
        "typed read {value:#x}"
    );
    Ok(())
}

fn usercopy_short_slice() -> Outcome {
    let map = ok(UserMapping::new(PAGE_SIZE), "vm_mmap")?;
    let mut reader = UserSlice::new(map.addr(), 4).reader();
    let mut buf = [0u8; 8];
    check!(
        reader.read_slice(&mut buf) == Err(EFAULT),
        "reading 8 bytes from a 4-byte slice"
    );
    check!(reader.len() == 4, "a failed read moved the cursor");
    let mut writer = UserSlice::new(map.addr(), 2).writer();
    check!(
        writer.write_slice(&[1, 2, 3]) == Err(EFAULT),
        "writing 3 bytes into 2"
    );
    ok(writer.write_slice(&[1, 2]), "exact write")?;
    check!(writer.is_empty(), "writer not full after exact write");
    Ok(())
}

fn usercopy_faults() -> Outcome {
    let mut map = ok(UserMapping::new(2 * PAGE_SIZE), "vm_mmap")?;
    ok(map.unmap_range(PAGE_SIZE, PAGE_SIZE), "vm_munmap")?;
    let mut buf = [0u8; 64];
    // Runs from a mapped page into the hole.
    let edge = map.addr() + PAGE_SIZE - 32;
    check!(
        UserSlice::new(edge, 64).reader().read_slice(&mut buf) == Err(EFAULT),
        "read across into unmapped page"
    );
    check!(
        UserSlice::new(edge, 64).writer().write_slice(&buf) == Err(EFAULT),
        "write across into unmapped page"
    );
    check!(
        UserSlice::new(0, 8).reader().read_slice(&mut buf[..8]) == Err(EFAULT),
        "NULL user pointer"
    );
    // A kernel address is never a valid user pointer (access_ok).
    let kernel_addr = &buf as *const _ as usize;
    check!(
        UserSlice::new(kernel_addr, 8)
            .reader()
            .read_slice(&mut [0; 8])
            == Err(EFAULT),
        "kernel address as user pointer"
    );
    check!(
        UserSlice::new(usize::MAX - 3, 8)
            .writer()
            .write_slice(&[0; 8])
            == Err(EFAULT),
        "wrapping user range"
    );
    // The mapped part still works.
    ok(
        UserSlice::new(edge, 32).writer().write_slice(&buf[..32]),
        "copy within the mapped page",
    )?;
    Ok(())
}

/// A device with no file operations of its own (the trait's defaults).
struct Idle;

impl MiscDevice for Idle {
    type OpenFile = ();
    fn open(&self, _file: &File) -> Result {
        Ok(())
    }
}

/// Registering creates the device; dropping the registration removes it and frees everything
/// (with no file open, the drop does not wait).
fn miscdev_register_and_drop() -> Outcome {
    let before = live_allocations();
    for _ in 0..3 {
        let reg = ok(
            miscdev::Registration::register(c"rust_selftest_misc", Idle, ThisModule::get()),
            "misc_register",
        )?;
        check!(
            live_allocations() > before,
            "registration allocated nothing"
        );
        drop(reg);
    }
    check!(
        live_allocations() == before,
        "registration leaked {} blocks",
        live_allocations() - before
    );
    Ok(())
}

fn errno_mapping() -> Outcome {
    check!(
        EFAULT.to_errno() == -14 && ENOTTY.to_errno() == -25,
        "errno values"
    );
    check!(Error::from_errno(-11) == EAGAIN, "from_errno(-11)");
    check!(
        Error::from_errno(1) == EINVAL,
        "positive value must map to EINVAL"
    );
    Ok(())
}

/// A named test.
type Test = (&'static str, fn() -> Outcome);

/// The tests, in order.
const TESTS: &[Test] = &[
    ("alloc_align_above_page_fails", alloc_align_above_page_fails),
    ("alloc_zero_size", alloc_zero_size),
    ("alloc_failure_is_clean", alloc_failure_is_clean),
    ("box_and_vec_growth", box_and_vec_growth),
    ("mutex_lock_unlock", mutex_lock_unlock),
    ("spinlock_lock_unlock", spinlock_lock_unlock),
    (
        "nested_locks_and_atomic_allocation",
        nested_locks_and_atomic_allocation,
    ),
    (
        "condvar_notify_without_waiters",
        condvar_notify_without_waiters,
    ),
    ("usercopy_round_trip", usercopy_round_trip),
    ("usercopy_short_slice", usercopy_short_slice),
    ("usercopy_faults", usercopy_faults),
    ("miscdev_register_and_drop", miscdev_register_and_drop),
    ("errno_mapping", errno_mapping),
];

/// log2(PAGE_SIZE) + 1 alignment tests: 1, 2, 4, ..., 4096.
const ALIGN_TESTS: usize = 13;

struct SelfTests;

impl Module for SelfTests {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if module_params::trigger_panic.get() {
            panic!("deliberate panic requested by trigger_panic=1");
        }
        let mut planted = false;
        if module_params::kasan_oob.get() {
            pr_info!("kasan_oob=1: writing one byte past a 32-byte block");
            kernel::debug::planted_out_of_bounds_write();
            planted = true;
        }
        if module_params::plant_leak.get() {
            pr_info!("plant_leak=1: leaking a 100-byte block");
            // Safe Rust may leak: forgetting a box is not undefined behaviour, just a leak.
            core::mem::forget(try_box([0x6bu8; 100])?);
            planted = true;
        }
        if planted {
            return Ok(SelfTests);
        }
        pr_info!("KTAP version 1");
        pr_info!("1..{}", ALIGN_TESTS + TESTS.len());
        let mut n = 0;
        let mut report = |name: core::fmt::Arguments<'_>, outcome: Outcome| {
            n += 1;
            let status = if outcome.is_ok() { "ok" } else { "not ok" };
            pr_info!("{status} {n} {name}");
        };
        for k in 0..ALIGN_TESTS {
            let align = 1usize << k;
            report(format_args!("alloc_align_{align}"), alloc_align(align));
        }
        for (name, test) in TESTS {
            report(format_args!("{name}"), test());
        }
        Ok(SelfTests)
    }
}

module! {
    type: SelfTests,
    name: "rust_selftests",
    author: "Rust driver examples",
    description: "Self-tests of the Rust kernel abstractions (KTAP in the kernel log)",
    license: "GPL",
    params: {
        trigger_panic: bool = false, "Panic at load, to test the panic handler",
        kasan_oob: bool = false, "Make a slab out-of-bounds write at load, to test KASAN",
        plant_leak: bool = false, "Leak a heap block at load, to test kmemleak",
    },
}
