//! `cargo xtask new-driver NAME`: a new driver folder, `drivers/NAME/`, from the template in
//! `xtask/templates/driver/`: a misc device that builds, loads and passes its own test as
//! generated. Nothing outside the folder needs editing: the workspace takes `drivers/*`, the
//! build takes every driver crate, and the guest runner takes every `drivers/*/guest.rs`.

use crate::util::{self, Result};

/// Names the guest runner's own suites use: a driver may not take them.
const RESERVED: &[&str] = &[
    "selftests",
    "rust_selftests",
    "panic",
    "lifetime",
    "runner",
    "planted",
    "atomic_sleep",
    "kmemleak",
    "kernel",
    "guest",
    "xtask",
];

/// Checks `name` for a driver: a lower-case Rust identifier, also usable as a module name.
pub fn check_name(name: &str) -> Result {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(format!(
            "`{name}` is not a valid driver name: use 1 to 32 of a-z, 0-9 and _, starting with a \
             letter (it names the crate, the module and /dev/<name>)"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is taken by the test runner; pick another name"
        ));
    }
    Ok(())
}

/// `AbcDef` from `abc_def`, for the module's type name.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Creates `drivers/<name>/` from the template.
pub fn run(name: &str) -> Result {
    check_name(name)?;
    let root = util::root();
    let dir = root.join("drivers").join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let template = root.join("xtask/templates/driver");
    let files = [
        ("Cargo.toml.in", "Cargo.toml"),
        ("src/lib.rs.in", "src/lib.rs"),
        ("guest.rs.in", "guest.rs"),
    ];
    for (from, to) in files {
        let text = util::read(&template.join(from))?
            .replace("@NAME@", name)
            .replace("@CAMEL@", &camel(name));
        util::write(&dir.join(to), text)?;
        println!("created drivers/{name}/{to}");
    }
    println!(
        "\nNext: `cargo xtask qemu-test --driver {name}` builds it and runs its test; then make it \
         yours: the driver in src/lib.rs, its tests in guest.rs (see the README's \"Writing a new \
         driver\")."
    );
    Ok(())
}

/// The proof that a new driver is one folder: in a copy of this workspace (the files git tracks
/// or would track),
/// `cargo xtask new-driver demo_drv` and then `cargo xtask qemu-test --arch x86_64 --driver
/// demo_drv` must build the new module, boot, and pass its test, with no other edit. Kernel
/// downloads are shared with this workspace; everything else builds afresh in the copy.
pub fn check_in_copy() -> crate::testrun::Record {
    let name = "new_driver.template_builds_and_passes_in_a_fresh_copy";
    match copy_and_run() {
        Ok(()) => crate::testrun::Record::passed(name),
        Err(e) => crate::testrun::Record::failed(name, e.lines().map(String::from).collect()),
    }
}

fn copy_and_run() -> Result {
    let root = util::root();
    let copy = root.join("target/new-driver-check/ws");
    util::step(&format!("new-driver check in {}", copy.display()));
    if copy.exists() {
        std::fs::remove_dir_all(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    }
    let listing = util::cmd(
        "git",
        [
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    )
    .current_dir(&root)
    .output()
    .map_err(|e| format!("git ls-files: {e}"))?;
    for file in listing.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file);
        let (from, to) = (root.join(&*file), copy.join(&*file));
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        util::mkdir(to.parent().unwrap())?;
        std::fs::copy(&from, &to).map_err(|e| format!("copying {file}: {e}"))?;
    }
    util::mkdir(&copy.join("target"))?;
    std::os::unix::fs::symlink(root.join("target/kernel"), copy.join("target/kernel"))
        .map_err(|e| format!("linking the kernel downloads: {e}"))?;
    // The guest's Debian tools, unpacked and resolved once (guesttools).
    util::mkdir(&root.join("target/debs"))?;
    std::os::unix::fs::symlink(root.join("target/debs"), copy.join("target/debs"))
        .map_err(|e| format!("linking the Debian package downloads: {e}"))?;

    let xtask = |args: &[&str]| -> Result<String> {
        let out = util::cmd("cargo", ["xtask"])
            .args(args)
            .current_dir(&copy)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .map_err(|e| format!("cargo xtask {}: {e}", args.join(" ")))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            Err(format!(
                "`cargo xtask {}` failed in the copy:\n{}",
                args.join(" "),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ))
        }
    };
    xtask(&["new-driver", "demo_drv"])?;
    let out = xtask(&["qemu-test", "--arch", "x86_64", "--driver", "demo_drv"])?;
    let ran = out
        .lines()
        .any(|l| l.starts_with("ok ") && l.ends_with("x86_64.demo_drv.message_round_trip"));
    if !ran {
        return Err(format!(
            "the new driver's test did not run and pass:\n{out}"
        ));
    }
    std::fs::remove_dir_all(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("mydrv").is_ok());
        assert!(check_name("gpio_pl061").is_ok());
        for bad in ["", "MyDrv", "1drv", "my-drv", "lifetime", "a.b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(camel("gpio_pl061"), "GpioPl061");
    }
}
