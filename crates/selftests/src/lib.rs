//! Self-tests of the `kernel` crate, run inside the kernel at module load.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use kernel::prelude::*;

struct SelfTests;

impl Module for SelfTests {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("KTAP version 1");
        pr_info!("1..1");
        pr_info!("ok 1 hello trigger={}", module_params::trigger_panic.get());
        if module_params::trigger_panic.get() {
            panic!("deliberate panic requested by trigger_panic=1");
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
    },
}
