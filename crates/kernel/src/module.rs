//! Declaring a module: [`module!`](crate::module) writes `init_module`/`cleanup_module`, the
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
//!     },
//! }
//! ```

use crate::error::Result;
use core::cell::UnsafeCell;
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

/// Where `module!` keeps the module's value between `init_module` and `cleanup_module`.
#[doc(hidden)]
pub struct ModuleSlot<T>(UnsafeCell<Option<T>>);

// SAFETY: written only by `init_module` before anything else can reach the module, and by
// `cleanup_module` after everything else is gone; the kernel serialises the two.
unsafe impl<T: Sync> Sync for ModuleSlot<T> {}

impl<T: Module> ModuleSlot<T> {
    #[doc(hidden)]
    pub const fn new() -> Self {
        Self(UnsafeCell::new(None))
    }

    #[doc(hidden)]
    pub fn init(&self, name: &str) -> core::ffi::c_int {
        match T::init(ThisModule::get()) {
            Ok(m) => {
                // SAFETY: init_module runs once, before any other access (see `Sync` impl).
                unsafe { *self.0.get() = Some(m) };
                0
            }
            Err(e) => {
                crate::print::printk(
                    crate::print::Level::Err,
                    name,
                    format_args!("init failed: {e:?}"),
                );
                e.to_errno()
            }
        }
    }

    #[doc(hidden)]
    pub fn exit(&self, name: &str) {
        // SAFETY: cleanup_module runs once, after every other user of the module is gone.
        drop(unsafe { (*self.0.get()).take() });
        // Everything the module allocated must be freed by now: tests check this line.
        let live = crate::alloc::live_allocations();
        let level = if live == 0 {
            crate::print::Level::Info
        } else {
            crate::print::Level::Err
        };
        crate::print::printk(level, name, format_args!("exit: live_allocations={live}"));
    }
}

/// A module parameter's storage: the kernel's `param_ops_*` write it (at load time; the
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

#[doc(hidden)]
#[macro_export]
macro_rules! __param_type {
    (u32) => {
        "uint"
    };
    (i32) => {
        "int"
    };
    (bool) => {
        "bool"
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __param_ops {
    (u32) => {
        $crate::__bindings::param_ops_uint
    };
    (i32) => {
        $crate::__bindings::param_ops_int
    };
    (bool) => {
        $crate::__bindings::param_ops_bool
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
        $(params: { $($pname:ident: $ptype:ident = $pdefault:expr, $pdesc:literal,)* },)?
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
            __MODULE.init($name)
        }

        #[cfg(not(test))]
        #[no_mangle]
        extern "C" fn cleanup_module() {
            __MODULE.exit($name)
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
                pub static $pname: $crate::module::Param<$ptype> =
                    $crate::module::Param::new($pdefault);
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
    ($module:literal, $pname:ident, $ptype:ident, $pdesc:literal) => {
        $crate::__modinfo!(
            "parmtype",
            ::core::concat!(
                ::core::stringify!($pname),
                ":",
                $crate::__param_type!($ptype)
            )
        );
        $crate::__modinfo!(
            "parm",
            ::core::concat!(::core::stringify!($pname), ":", $pdesc)
        );
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
