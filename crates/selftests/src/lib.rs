//! Self-tests of the `kernel` crate, run inside the kernel when the module loads.
//!
//! Results go to the kernel log as a KTAP document, one line per printk record
//! (`rust_selftests: ok 3 alloc_align_4`); the in-guest runner collects them. Each test returns
//! `Err(())` after printing a `# ...` diagnostic that says what was expected and what happened.
//!
//! `trigger_panic=1` makes the load panic instead, to test the panic handler (in a boot of its
//! own: the oops kills the loading process and taints the kernel). `kasan_oob=1` makes a
//! deliberate out-of-bounds write instead, which a KASAN kernel must report, `plant_leak=1`
//! leaks a heap block, which kmemleak must report, `lock_inversion=1` takes two mutexes in
//! both orders, which lockdep must report, and `atomic_sleep=1` allocates with `GFP_KERNEL`
//! under a spinlock, which `CONFIG_DEBUG_ATOMIC_SLEEP` must report.
//!
//! `lifetime=1` skips the tests and registers two misc devices for the guest's `lifetime`
//! suite instead (see [`lifetime`]): teardown that must not wait for user space.
//!
//! The crate denies `unsafe` but for three marked calls into `kernel::selftest`, the test
//! scaffolding that is `unsafe` precisely so that drivers cannot use it.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

mod lifetime;

use core::alloc::Layout;
use kernel::alloc::live_allocations;
use kernel::prelude::*;
use kernel::selftest::{RawBlock, UserMapping};
use kernel::uaccess::UserSlice;

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
    let mut v: KVec<u8> = KVec::new();
    check!(
        v.reserve(usize::MAX / 2, Gfp::KERNEL | Gfp::NOWARN)
            .is_err(),
        "absurd KVec reservation succeeded"
    );
    let mut w: KVVec<u8> = KVVec::new();
    check!(
        w.reserve(usize::MAX / 2, Gfp::KERNEL | Gfp::NOWARN)
            .is_err(),
        "absurd KVVec reservation succeeded"
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
        let b = ok(KBox::new([7u64; 64], Gfp::KERNEL), "KBox::new")?;
        check!(b.iter().all(|&x| x == 7), "boxed contents");
        let mut v: KVec<u32> = KVec::new();
        for i in 0..10_000u32 {
            ok(v.push(i, Gfp::KERNEL), "push")?;
        }
        check!(
            v.len() == 10_000 && v.iter().enumerate().all(|(i, &x)| x == i as u32),
            "vec contents"
        );
        ok(
            v.extend_from_slice(&[1, 2, 3], Gfp::KERNEL),
            "extend_from_slice",
        )?;
        check!(v[10_000..] == [1, 2, 3], "extended tail");
        let w: KVec<u8> = ok(KVec::with_capacity(100, Gfp::KERNEL), "with_capacity")?;
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

/// A 1 MiB buffer (the chardev's largest FIFO) comes from kvmalloc, which falls back to
/// vmalloc rather than needing an order-8 contiguous block; growing it keeps the contents.
fn kvvec_large_buffer() -> Outcome {
    let before = live_allocations();
    {
        let mut v = ok(
            KVVec::from_elem(0x5au8, 1 << 20, Gfp::KERNEL),
            "1 MiB KVVec",
        )?;
        check!(
            v.len() == 1 << 20 && v.iter().all(|&b| b == 0x5a),
            "contents"
        );
        ok(v.push(1, Gfp::KERNEL), "growing past 1 MiB")?;
        check!(
            v[..1 << 20].iter().all(|&b| b == 0x5a) && v[1 << 20] == 1,
            "contents after growth"
        );
        check!(live_allocations() == before + 1, "one live block");
    }
    check!(live_allocations() == before, "KVVec leaked");
    Ok(())
}

/// `Arc`: clones share one value, the last drop frees it, exactly once.
fn arc_shares_and_frees_once() -> Outcome {
    use core::sync::atomic::{AtomicU32, Ordering};
    static DROPS: AtomicU32 = AtomicU32::new(0);
    struct Counted(u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }
    let before = live_allocations();
    let a = ok(Arc::new(Counted(42), Gfp::KERNEL), "Arc::new")?;
    let b = a.clone();
    let c = b.clone();
    check!(Arc::ptr_eq(&a, &c) && c.0 == 42, "clones share the value");
    drop(a);
    drop(b);
    check!(
        DROPS.load(Ordering::Relaxed) == 0,
        "dropped while referenced"
    );
    check!(live_allocations() == before + 1, "one live block");
    drop(c);
    check!(
        DROPS.load(Ordering::Relaxed) == 1,
        "not dropped exactly once"
    );
    check!(live_allocations() == before, "Arc leaked");
    Ok(())
}

fn mutex_lock_unlock() -> Outcome {
    let m = ok(new_mutex!(0u32, "selftest.mutex", Gfp::KERNEL), "new_mutex")?;
    for _ in 0..1000 {
        *m.lock() += 1;
    }
    let g = ok(m.lock_interruptible(), "lock_interruptible")?;
    check!(*g == 1000, "counter {}", *g);
    check!(m.try_lock().is_none(), "try_lock of a held mutex succeeded");
    drop(g);
    check!(m.try_lock().is_some(), "try_lock of a free mutex failed");
    Ok(())
}

fn spinlock_lock_unlock() -> Outcome {
    let s = ok(
        new_spinlock!(0u64, "selftest.spinlock", Gfp::KERNEL),
        "new_spinlock",
    )?;
    for _ in 0..1000 {
        *s.lock() += 1;
        s.lock_irqsave(|n| *n += 1);
    }
    check!(*s.lock() == 2000, "counter {}", *s.lock());
    Ok(())
}

/// Nested irqsave sections unwind in order by construction; the values come back out.
fn spinlock_irqsave_nests() -> Outcome {
    let a = ok(
        new_spinlock!(1u32, "selftest.irq_a", Gfp::KERNEL),
        "new_spinlock",
    )?;
    let b = ok(
        new_spinlock!(2u32, "selftest.irq_b", Gfp::KERNEL),
        "new_spinlock",
    )?;
    let sum = a.lock_irqsave(|x| {
        b.lock_irqsave(|y| {
            core::mem::swap(x, y);
            *x + *y
        })
    });
    check!(sum == 3, "sum {sum}");
    check!(
        *a.lock() == 2 && *b.lock() == 1,
        "swap inside nested sections"
    );
    Ok(())
}

/// Always the same order (mutex, then spinlock inside it), as lockdep requires; allocation
/// under the spinlock uses GFP_ATOMIC. On the debug kernel (`CONFIG_DEBUG_ATOMIC_SLEEP`) this
/// is clean, where `GFP_KERNEL` would be reported (see `atomic_sleep=1`).
fn nested_locks_and_atomic_allocation() -> Outcome {
    let outer = ok(new_mutex!(0u32, "selftest.outer", Gfp::KERNEL), "new_mutex")?;
    let inner = ok(
        new_spinlock!(KVec::<u32>::new(), "selftest.inner", Gfp::KERNEL),
        "new_spinlock",
    )?;
    let before = live_allocations();
    for i in 0..100u32 {
        let mut o = outer.lock();
        inner
            .lock_irqsave(|v| v.push(i, Gfp::ATOMIC))
            .map_err(|e| {
                pr_info!("# GFP_ATOMIC push under a spinlock: {e:?}");
            })?;
        *o += 1;
    }
    check!(live_allocations() == before + 1, "expected one live block");
    let ok_values = inner.lock_irqsave(|v| v.iter().copied().eq(0..100));
    check!(ok_values, "values pushed under the lock");
    // Freeing needs no flags: kfree never sleeps.
    inner.lock_irqsave(|v| *v = KVec::new());
    check!(live_allocations() == before, "block not freed");
    Ok(())
}

fn condvar_notify_without_waiters() -> Outcome {
    let cv = ok(new_condvar!("selftest.condvar", Gfp::KERNEL), "new_condvar")?;
    cv.notify_all();
    cv.notify_all();
    let pcv = ok(
        new_poll_condvar!("selftest.pollcv", Gfp::KERNEL),
        "new_poll_condvar",
    )?;
    pcv.notify_all();
    drop(pcv); // wake_up_pollfree + synchronize_rcu with no poller: returns.
    Ok(())
}

/// User memory in the loading process (`insmod`), unmapped before the load returns.
fn user_mapping(len: usize) -> Result<UserMapping> {
    // SAFETY: module init runs in process context, in `insmod`'s task, which has a user address
    // space; every mapping is dropped inside the test that made it, before init returns.
    #[allow(unsafe_code)]
    unsafe {
        UserMapping::new(len)
    }
}

/// Copies between kernel buffers and real user pages of the loading process.
fn usercopy_round_trip() -> Outcome {
    let map = ok(user_mapping(2 * PAGE_SIZE), "vm_mmap")?;
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
    let map = ok(user_mapping(PAGE_SIZE), "vm_mmap")?;
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
    let mut map = ok(user_mapping(2 * PAGE_SIZE), "vm_mmap")?;
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

/// Streams get partial progress: a copy that runs into the hole reports the bytes before it and
/// moves the cursor past them; the next copy, starting at the hole, is `EFAULT`.
fn usercopy_partial_progress() -> Outcome {
    let mut map = ok(user_mapping(2 * PAGE_SIZE), "vm_mmap")?;
    let edge = map.addr() + PAGE_SIZE - 32;
    let pattern: [u8; 64] = core::array::from_fn(|i| 0x40 + i as u8);
    ok(
        UserSlice::new(edge, 32)
            .writer()
            .write_slice(&pattern[..32]),
        "fill the mapped part",
    )?;
    ok(map.unmap_range(PAGE_SIZE, PAGE_SIZE), "vm_munmap")?;

    let mut reader = UserSlice::new(edge, 64).reader();
    let mut buf = [0u8; 64];
    // The architecture's copy routine may stop a few bytes short of the fault (arm64 reports
    // 16 here, x86_64 32): at least one byte, at most the 32 before the hole.
    let n = ok(reader.read_some(&mut buf), "read_some across the hole")?;
    check!(
        (1..=32).contains(&n),
        "read_some copied {n} bytes, expected 1..=32 (the bytes before the hole)"
    );
    check!(buf[..n] == pattern[..n], "bytes before the hole");
    check!(
        reader.len() == 64 - n,
        "cursor after a partial read: {} left",
        reader.len()
    );
    let mut rest = UserSlice::new(edge + 32, 32).reader();
    check!(
        rest.read_some(&mut buf) == Err(EFAULT),
        "read_some at the hole"
    );

    let mut writer = UserSlice::new(edge, 64).writer();
    let n = ok(writer.write_some(&pattern), "write_some across the hole")?;
    check!(
        (1..=32).contains(&n),
        "write_some copied {n} bytes, expected 1..=32 (the bytes before the hole)"
    );
    check!(
        writer.len() == 64 - n,
        "cursor after a partial write: {} left",
        writer.len()
    );
    let mut rest = UserSlice::new(edge + 32, 32).writer();
    check!(
        rest.write_some(&pattern) == Err(EFAULT),
        "write_some at the hole"
    );
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

/// Registering creates the device; dropping the registration removes it and frees everything.
fn miscdev_register_and_drop() -> Outcome {
    let before = live_allocations();
    for _ in 0..3 {
        let idle = ok(Arc::new(Idle, Gfp::KERNEL), "Arc::new")?;
        let reg = ok(
            miscdev::Registration::register(c"rust_selftest_misc", idle, Gfp::KERNEL),
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

/// A registration with a formatted name owns it: the name is checked (empty, `/`, over 63
/// bytes: `EINVAL`), the buffer lives as long as the registration and is freed with it.
fn miscdev_formatted_name() -> Outcome {
    let before = live_allocations();
    for i in 0..3 {
        let idle = ok(Arc::new(Idle, Gfp::KERNEL), "Arc::new")?;
        let reg = ok(
            miscdev::Registration::register_fmt(
                format_args!("rust_selftest_misc{i}"),
                idle,
                Gfp::KERNEL,
            ),
            "register_fmt",
        )?;
        check!(
            live_allocations() > before,
            "registration allocated nothing"
        );
        drop(reg);
    }
    let long = [b'x'; 64];
    let long = core::str::from_utf8(&long).unwrap_or("");
    for (name, what) in [
        (format_args!(""), "an empty name"),
        (format_args!("a/b"), "a name with a slash"),
        (format_args!("{long}"), "a 64-byte name"),
    ] {
        let idle = ok(Arc::new(Idle, Gfp::KERNEL), "Arc::new")?;
        check!(
            matches!(
                miscdev::Registration::register_fmt(name, idle, Gfp::KERNEL),
                Err(e) if e == EINVAL
            ),
            "register_fmt accepted {what}"
        );
    }
    check!(
        live_allocations() == before,
        "formatted registrations leaked {} blocks",
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

/// Every parameter type has the value the `selftests` suite passes at load:
/// `p_u8=255 p_u16=65535 p_i16=-32768 p_i32=-2147483648 p_u64=18446744073709551615
/// p_i64=-9223372036854775808 p_usize=12345 p_str=hello p_array=7,8` (the extremes of each
/// type, so a wrong width or sign shows).
fn module_params_have_their_values() -> Outcome {
    use module_params as p;
    check!(p::p_u8.get() == u8::MAX, "p_u8 {}", p::p_u8.get());
    check!(p::p_u16.get() == u16::MAX, "p_u16 {}", p::p_u16.get());
    check!(p::p_i16.get() == i16::MIN, "p_i16 {}", p::p_i16.get());
    check!(p::p_i32.get() == i32::MIN, "p_i32 {}", p::p_i32.get());
    check!(p::p_u64.get() == u64::MAX, "p_u64 {}", p::p_u64.get());
    check!(p::p_i64.get() == i64::MIN, "p_i64 {}", p::p_i64.get());
    check!(p::p_usize.get() == 12345, "p_usize {}", p::p_usize.get());
    check!(p::p_str.get() == c"hello", "p_str {:?}", p::p_str.get());
    check!(
        p::p_array.values() == [7, 8],
        "p_array {:?}",
        p::p_array.values()
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
    ("kvvec_large_buffer", kvvec_large_buffer),
    ("arc_shares_and_frees_once", arc_shares_and_frees_once),
    ("mutex_lock_unlock", mutex_lock_unlock),
    ("spinlock_lock_unlock", spinlock_lock_unlock),
    ("spinlock_irqsave_nests", spinlock_irqsave_nests),
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
    ("usercopy_partial_progress", usercopy_partial_progress),
    ("miscdev_register_and_drop", miscdev_register_and_drop),
    ("miscdev_formatted_name", miscdev_formatted_name),
    ("errno_mapping", errno_mapping),
    (
        "module_params_have_their_values",
        module_params_have_their_values,
    ),
];

/// log2(PAGE_SIZE) + 1 alignment tests: 1, 2, 4, ..., 4096.
const ALIGN_TESTS: usize = 13;

/// The loaded module: nothing, or the `lifetime=1` devices.
struct SelfTests {
    _lifetime: Option<lifetime::Devices>,
}

impl Module for SelfTests {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if module_params::trigger_panic.get() {
            panic!("deliberate panic requested by trigger_panic=1");
        }
        if module_params::lifetime.get() {
            return Ok(SelfTests {
                _lifetime: Some(lifetime::Devices::register()?),
            });
        }
        let mut planted = false;
        // The lock inversion comes first: a KASAN report taints the kernel with
        // LOCKDEP_NOW_UNRELIABLE, which turns lockdep off for the rest of the boot.
        if module_params::lock_inversion.get() {
            pr_info!("lock_inversion=1: taking two mutexes in both orders");
            let a = new_mutex!((), "selftest.planted_a", Gfp::KERNEL)?;
            let b = new_mutex!((), "selftest.planted_b", Gfp::KERNEL)?;
            {
                let _a = a.lock();
                let _b = b.lock();
            }
            // The opposite order: a deadlock waiting to happen with two threads. lockdep must
            // report it (the wrappers give each creation site its own lock class).
            let _b = b.lock();
            let _a = a.lock();
            planted = true;
        }
        if module_params::kasan_oob.get() {
            pr_info!("kasan_oob=1: writing one byte past a 32-byte block");
            // SAFETY: none: a deliberate out-of-bounds write, for KASAN to report. It runs only
            // with kasan_oob=1, in a boot of its own on the debug kernel.
            #[allow(unsafe_code)]
            unsafe {
                kernel::selftest::planted_out_of_bounds_write()
            };
            planted = true;
        }
        if module_params::plant_leak.get() {
            pr_info!("plant_leak=1: leaking a 100-byte block");
            // Safe Rust may leak: forgetting a box is not undefined behaviour, just a leak.
            core::mem::forget(KBox::new([0x6bu8; 100], Gfp::KERNEL)?);
            planted = true;
        }
        if module_params::atomic_sleep.get() {
            pr_info!("atomic_sleep=1: allocating with GFP_KERNEL under a spinlock");
            let lock = new_spinlock!(KVec::<u8>::new(), "selftest.atomic_sleep", Gfp::KERNEL)?;
            // The bug: GFP_KERNEL may sleep, and a spinlock holder must not. Flags are not a
            // safety condition, so this compiles; the debug kernel must report it.
            let mut v = lock.lock();
            v.extend_from_slice(&[0u8; 64], Gfp::KERNEL)?;
            drop(v);
            planted = true;
        }
        if planted {
            return Ok(SelfTests { _lifetime: None });
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
        Ok(SelfTests { _lifetime: None })
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
        lock_inversion: bool = false, "Take two mutexes in both orders at load, to test lockdep",
        atomic_sleep: bool = false, "Allocate with GFP_KERNEL under a spinlock, to test DEBUG_ATOMIC_SLEEP",
        lifetime: bool = false, "Skip the tests; register the lifetime suite's misc devices",
        p_u8: u8 = 1, "A u8 parameter (module_params test)",
        p_u16: u16 = 2, "A u16 parameter (module_params test)",
        p_i16: i16 = -3, "An i16 parameter (module_params test)",
        p_i32: i32 = -4, "An i32 parameter (module_params test)",
        p_u64: u64 = 5, "A u64 parameter (module_params test)",
        p_i64: i64 = -6, "An i64 parameter (module_params test)",
        p_usize: usize = 7, "A usize parameter (module_params test)",
        p_str: str = c"default", "A string parameter (module_params test)",
        p_array: [u32; 4] = [1, 2, 3, 4], "An array parameter (module_params test)",
    },
}
