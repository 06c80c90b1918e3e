//! The drivers' own suites, found under `drivers/*/guest{.rs,/mod.rs}` by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/drivers.rs"));
