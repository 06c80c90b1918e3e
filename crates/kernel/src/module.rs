//! Declaring a module: [`module!`](crate::module!) writes `init_module`/`cleanup_module`, the
//! `.modinfo` entries (license, author, description, parameters), the module parameters and
//! the panic handler, around a type implementing [`Module`].
//!
//! ```ignore
//! kernel::module! {
//!     type: RustPipe,
//!     name: "chardev",
//!     author: "...",
//!     description: "A FIFO character device",
//!     license: "GPL",
//!     params: {
//!         capacity: u32 = 4096, "FIFO capacity in bytes",
//!         label: str = c"fifo", "A name for the log",
//!         weights: [u16; 4] = [1, 1, 1, 1], "Up to four weights",
//!     },
//! }
//! ```
//!
//! # Parameters
//!
//! Each parameter becomes a `static` in the generated `module_params` module, set by `insmod
//! <module>.ko name=value` before `init` runs and read-only afterwards (mode 0444 in
//! `/sys/module/<module>/parameters/`). The types, and the kernel `param_ops` behind them:
//!
//! | Rust | kernel | read with |
//! | --- | --- | --- |
//! | `u8` | `byte` | [`Param::get`] |
//! | `u16`, `i16` | `ushort`, `short` | [`Param::get`] |
//! | `u32`, `i32` | `uint`, `int` | [`Param::get`] |
//! | `u64`, `i64` | `ullong`, `long` | [`Param::get`] |
//! | `usize`, `isize` | `ulong`, `long` | [`Param::get`] |
//! | `bool` | `bool` (`1`/`0`, `y`/`n`) | [`Param::get`] |
//! | `str` (default a `c"..."` literal) | `charp` | [`StrParam::get`]: `&CStr` |
//! | `[T; N]`, `T` one of the scalars above | `array of T` (`name=1,2,3`) | [`ArrayParam::values`]: the values given |
//!
//! Any other type fails the build with a message listing these.

use crate::alloc::DebugfsCounters;
use crate::error::Result;
use core::cell::UnsafeCell;
use core::ffi::CStr;
use kernel_sys as bindings;

/// The module being built (`THIS_MODULE`).
#[repr(transparent)]
pub struct ThisModule(UnsafeCell<bindings::module>);

// SAFETY: only the address is used (as the owner of file operations); the kernel synchronises
// its own accesses to `struct module`.
unsafe impl Sync for ThisModule {}

extern "C" {
    /// Defined in the `.mod.c` that modpost generates for every module.
    #[doc(hidden)]
    #[link_name = "__this_module"]
    pub static __THIS_MODULE: ThisModule;
}

impl ThisModule {
    /// This module.
    pub fn get() -> &'static ThisModule {
        // SAFETY: `__this_module` is defined by the module's own `.mod.o` and lives as long as
        // the module's code.
        unsafe { &__THIS_MODULE }
    }
}

/// A kernel module: created at load (`insmod`), dropped at unload (`rmmod`).
pub trait Module: Sized + Sync + Send + 'static {
    /// Sets the module up; an error fails the load with that errno.
    fn init(module: &'static ThisModule) -> Result<Self>;
}

/// Where `module!` keeps the module's value between `init_module` and `cleanup_module`, with
/// the module's allocation counters in debugfs (`kernel::alloc`).
#[doc(hidden)]
pub struct ModuleSlot<T>(UnsafeCell<Option<(T, DebugfsCounters)>>);

// SAFETY: written only by `init_module` before anything else can reach the module, and by
// `cleanup_module` after everything else is gone; the kernel serialises the two. The counters'
// pointer is only used by `Drop`, in `cleanup_module`.
unsafe impl<T: Sync> Sync for ModuleSlot<T> {}

impl<T: Module> ModuleSlot<T> {
    #[doc(hidden)]
    pub const fn new() -> Self {
        Self(UnsafeCell::new(None))
    }

    #[doc(hidden)]
    pub fn init(&self, name: &CStr) -> core::ffi::c_int {
        // First, so a test can read what probe allocates while the module is still loading.
        let counters = DebugfsCounters::create(name);
        match T::init(ThisModule::get()) {
            Ok(m) => {
                // SAFETY: init_module runs once, before any other access (see `Sync` impl).
                unsafe { *self.0.get() = Some((m, counters)) };
                0
            }
            Err(e) => {
                crate::print::printk(
                    crate::print::Level::Err,
                    name.to_str().unwrap_or("?"),
                    format_args!("init failed: {e:?}"),
                );
                e.to_errno()
            }
        }
    }

    #[doc(hidden)]
    pub fn exit(&self, name: &CStr) {
        // SAFETY: cleanup_module runs once, after every other user of the module is gone.
        // A tuple drops in field order: the module, then its counters.
        drop(unsafe { (*self.0.get()).take() });
        // Everything the module allocated must be freed by now: tests check this line.
        let live = crate::alloc::live_allocations();
        let level = if live == 0 {
            crate::print::Level::Info
        } else {
            crate::print::Level::Err
        };
        crate::print::printk(
            level,
            name.to_str().unwrap_or("?"),
            format_args!("exit: live_allocations={live}"),
        );
    }
}

/// A scalar module parameter's storage: the kernel's `param_ops_*` write it (at load time; the
/// parameters are read-only in sysfs), the module reads it with [`get`](Param::get).
#[repr(transparent)]
pub struct Param<T: Copy>(UnsafeCell<T>);

// SAFETY: the kernel writes parameters while parsing `insmod` arguments, before `init_module`;
// afterwards they are read-only (permission 0444), so shared reads are race-free.
unsafe impl<T: Copy> Sync for Param<T> {}

impl<T: Copy> Param<T> {
    #[doc(hidden)]
    pub const fn new(default: T) -> Self {
        Self(UnsafeCell::new(default))
    }

    /// The parameter's value.
    pub fn get(&self) -> T {
        // SAFETY: see the `Sync` impl: no writer exists once the module runs.
        unsafe { *self.0.get() }
    }

    #[doc(hidden)]
    pub const fn as_ptr(&self) -> *mut T {
        self.0.get()
    }
}

/// A string module parameter (`charp`): a pointer the kernel sets to its own copy of the value
/// given at load (freed when the module is unloaded), or to the default.
#[repr(transparent)]
pub struct StrParam(UnsafeCell<*const core::ffi::c_char>);

// SAFETY: as for `Param`: written only before `init_module`, read-only afterwards; the string
// it points to lives until the module is unloaded.
unsafe impl Sync for StrParam {}

impl StrParam {
    #[doc(hidden)]
    pub const fn new(default: &'static core::ffi::CStr) -> Self {
        Self(UnsafeCell::new(default.as_ptr()))
    }

    /// The parameter's value.
    pub fn get(&self) -> &core::ffi::CStr {
        // SAFETY: see the `Sync` impl.
        let ptr = unsafe { *self.0.get() };
        if ptr.is_null() {
            return c"";
        }
        // SAFETY: the default literal, or `param_set_charp`'s NUL-terminated copy, which lives
        // as long as the module (the borrow of `self`, a static of the module, cannot outlive
        // it).
        unsafe { core::ffi::CStr::from_ptr(ptr) }
    }

    #[doc(hidden)]
    pub const fn as_ptr(&self) -> *mut *const core::ffi::c_char {
        self.0.get()
    }
}

/// An array module parameter (`name=1,2,3`): up to `N` values; [`values`](Self::values) are the
/// ones given (all `N` defaults if the parameter was not given).
pub struct ArrayParam<T: Copy, const N: usize> {
    values: UnsafeCell<[T; N]>,
    count: UnsafeCell<core::ffi::c_uint>,
}

// SAFETY: as for `Param`.
unsafe impl<T: Copy, const N: usize> Sync for ArrayParam<T, N> {}

impl<T: Copy, const N: usize> ArrayParam<T, N> {
    #[doc(hidden)]
    pub const fn new(default: [T; N]) -> Self {
        assert!(N > 0 && N <= u32::MAX as usize);
        Self {
            values: UnsafeCell::new(default),
            count: UnsafeCell::new(N as core::ffi::c_uint),
        }
    }

    /// The values given at load.
    pub fn values(&self) -> &[T] {
        // SAFETY: see the `Sync` impl; `param_array_set` stores at most `N` (`max`) values and
        // their number.
        unsafe {
            let n = (*self.count.get() as usize).min(N);
            &(&*self.values.get())[..n]
        }
    }

    #[doc(hidden)]
    pub const fn as_ptr(&self) -> *mut T {
        self.values.get().cast()
    }

    #[doc(hidden)]
    pub const fn count_ptr(&self) -> *mut core::ffi::c_uint {
        self.count.get()
    }
}

/// The `struct kparam_array` an array parameter's `kernel_param` points to.
#[doc(hidden)]
#[repr(transparent)]
pub struct ParamArrayDesc(pub bindings::kparam_array);

// SAFETY: immutable after link time; the kernel only reads it (and writes through its pointers,
// see `ArrayParam`).
unsafe impl Sync for ParamArrayDesc {}

// `long` parameters are Rust's i64/isize: true of every 64-bit kernel this crate builds for.
const _: () = assert!(core::mem::size_of::<core::ffi::c_long>() == 8);

#[doc(hidden)]
#[macro_export]
macro_rules! __param_kind {
    (u8) => {
        "byte"
    };
    (u16) => {
        "ushort"
    };
    (i16) => {
        "short"
    };
    (u32) => {
        "uint"
    };
    (i32) => {
        "int"
    };
    (u64) => {
        "ullong"
    };
    (i64) => {
        "long"
    };
    (usize) => {
        "ulong"
    };
    (isize) => {
        "long"
    };
    (bool) => {
        "bool"
    };
    (str) => {
        "charp"
    };
    ([$t:ident; $n:expr]) => {
        ::core::concat!("array of ", $crate::__param_kind!($t))
    };
    ($other:tt) => {
        ::core::compile_error!(::core::concat!(
            "unsupported module parameter type `",
            ::core::stringify!($other),
            "`: use u8, u16, i16, u32, i32, u64, i64, usize, isize, bool, ",
            "str (a C string, default c\"...\") or an array [T; N] of those scalars"
        ))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __param_ops {
    (u8) => {
        $crate::__bindings::param_ops_byte
    };
    (u16) => {
        $crate::__bindings::param_ops_ushort
    };
    (i16) => {
        $crate::__bindings::param_ops_short
    };
    (u32) => {
        $crate::__bindings::param_ops_uint
    };
    (i32) => {
        $crate::__bindings::param_ops_int
    };
    (u64) => {
        $crate::__bindings::param_ops_ullong
    };
    (i64) => {
        $crate::__bindings::param_ops_long
    };
    (usize) => {
        $crate::__bindings::param_ops_ulong
    };
    (isize) => {
        $crate::__bindings::param_ops_long
    };
    (bool) => {
        $crate::__bindings::param_ops_bool
    };
    (str) => {
        $crate::__bindings::param_ops_charp
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __param_storage {
    (str, $default:expr) => { $crate::module::StrParam };
    ([$t:ident; $n:expr], $default:expr) => { $crate::module::ArrayParam<$t, $n> };
    ($t:ident, $default:expr) => { $crate::module::Param<$t> };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __param_new {
    (str, $default:expr) => {
        $crate::module::StrParam::new($default)
    };
    ([$t:ident; $n:expr], $default:expr) => {
        $crate::module::ArrayParam::new($default)
    };
    ($t:ident, $default:expr) => {
        $crate::module::Param::new($default)
    };
}

/// A `struct kernel_param` in the `__param` section, as `module_param()` emits it.
#[doc(hidden)]
#[repr(transparent)]
pub struct ParamEntry(pub bindings::kernel_param);

// SAFETY: the entry is immutable after link time; the kernel only reads it.
unsafe impl Sync for ParamEntry {}

/// Emits one NUL-terminated `.modinfo` string (`key=value`).
///
/// `global_asm!` rather than a `#[used]` static: rustc now marks `#[used]` sections
/// SHF_GNU_RETAIN, and a second `.modinfo` section with other flags is one the module loader
/// never reads (it finds only the first).
#[doc(hidden)]
#[macro_export]
macro_rules! __modinfo {
    ($key:literal, $value:expr) => {
        ::core::arch::global_asm!(
            ".pushsection .modinfo,\"a\"",
            ::core::concat!(".asciz \"", $key, "=", $value, "\""),
            ".popsection",
        );
    };
}

/// Declares a kernel module; see the [module documentation](self).
#[macro_export]
macro_rules! module {
    (
        type: $type:ty,
        name: $name:literal,
        author: $author:literal,
        description: $description:literal,
        license: $license:literal,
        $(params: { $($pname:ident: $ptype:tt = $pdefault:expr, $pdesc:literal,)* },)?
    ) => {
        /// This module's name, the prefix of its log lines.
        pub(crate) const __LOG_PREFIX: &str = $name;

        $crate::__modinfo!("license", $license);
        $crate::__modinfo!("author", $author);
        $crate::__modinfo!("description", $description);

        static __MODULE: $crate::module::ModuleSlot<$type> = $crate::module::ModuleSlot::new();

        #[cfg(not(test))]
        #[no_mangle]
        extern "C" fn init_module() -> ::core::ffi::c_int {
            __MODULE.init($crate::__cstr!($name))
        }

        #[cfg(not(test))]
        #[no_mangle]
        extern "C" fn cleanup_module() {
            __MODULE.exit($crate::__cstr!($name))
        }

        // Host unit tests have no init_module; keep the module's code reachable for them.
        #[cfg(test)]
        const _: fn(&'static $crate::module::ThisModule) -> $crate::error::Result<$type> =
            <$type as $crate::module::Module>::init;

        #[cfg(not(test))]
        #[panic_handler]
        fn __panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::panic::panic($name, info)
        }

        /// The module's parameters (`insmod <module>.ko name=value`), read-only in sysfs.
        #[allow(non_upper_case_globals, dead_code)]
        pub mod module_params {
            #[allow(unused_imports)]
            use super::*;
            $($(
                #[doc = $pdesc]
                pub static $pname: $crate::__param_storage!($ptype, $pdefault) =
                    $crate::__param_new!($ptype, $pdefault);
            )*)?
        }

        $($(
            $crate::__module_param!($name, $pname, $ptype, $pdesc);
        )*)?
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __module_param {
    ($module:literal, $pname:ident, $ptype:tt, $pdesc:literal) => {
        $crate::__modinfo!(
            "parmtype",
            ::core::concat!(
                ::core::stringify!($pname),
                ":",
                $crate::__param_kind!($ptype)
            )
        );
        $crate::__modinfo!(
            "parm",
            ::core::concat!(::core::stringify!($pname), ":", $pdesc)
        );
        $crate::__param_entry!($pname, $ptype);
    };
}

/// The `struct kernel_param` of one parameter, in the `__param` section the loader reads.
#[doc(hidden)]
#[macro_export]
macro_rules! __param_entry {
    ($pname:ident, [$t:ident; $n:expr]) => {
        #[cfg(not(test))]
        const _: () = {
            static ARRAY: $crate::module::ParamArrayDesc =
                $crate::module::ParamArrayDesc($crate::__bindings::kparam_array {
                    max: $n as _,
                    elemsize: ::core::mem::size_of::<$t>() as _,
                    num: module_params::$pname.count_ptr(),
                    ops: &raw const $crate::__param_ops!($t),
                    elem: module_params::$pname.as_ptr().cast(),
                });
            #[used]
            #[link_section = "__param"]
            static ENTRY: $crate::module::ParamEntry =
                $crate::module::ParamEntry($crate::__bindings::kernel_param {
                    name: $crate::__cstr!(::core::stringify!($pname)).as_ptr(),
                    mod_: &raw const $crate::module::__THIS_MODULE as *mut _,
                    ops: &raw const $crate::__bindings::param_array_ops,
                    perm: 0o444,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: $crate::__bindings::kernel_param__bindgen_ty_1 {
                        arr: &raw const ARRAY.0,
                    },
                });
        };
    };
    ($pname:ident, $ptype:tt) => {
        #[cfg(not(test))]
        const _: () = {
            #[used]
            #[link_section = "__param"]
            static ENTRY: $crate::module::ParamEntry =
                $crate::module::ParamEntry($crate::__bindings::kernel_param {
                    name: $crate::__cstr!(::core::stringify!($pname)).as_ptr(),
                    mod_: &raw const $crate::module::__THIS_MODULE as *mut _,
                    ops: &raw const $crate::__param_ops!($ptype),
                    perm: 0o444,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: $crate::__bindings::kernel_param__bindgen_ty_1 {
                        arg: module_params::$pname.as_ptr().cast(),
                    },
                });
        };
    };
}
