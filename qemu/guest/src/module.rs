//! Loading and unloading kernel modules with `finit_module` / `delete_module` (no `insmod`).

use std::fmt;
use std::fs::File;
use std::time::{Duration, Instant};

use crate::sys::{self, Errno, SysResult};

/// Why a module could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The `.ko` file.
    pub path: String,
    /// The parameter string passed to `finit_module`.
    pub params: String,
    /// `true` if opening the file failed, `false` if `finit_module` did.
    pub at_open: bool,
    /// The error.
    pub errno: Errno,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, errno) = (&self.path, self.errno);
        if self.at_open {
            write!(f, "cannot open {path}: {errno}")?;
            if errno == Errno::ENOENT {
                write!(f, " (the module is not in the initramfs)")?;
            }
            return Ok(());
        }
        write!(
            f,
            "finit_module({path}, {:?}) failed with {errno}",
            self.params
        )?;
        let hint = match errno.0 {
            libc::EEXIST => " (a module of that name is already loaded)",
            libc::ENOEXEC => {
                " (not a valid module for this kernel: ELF format or vermagic; see the kernel log)"
            }
            libc::EKEYREJECTED | libc::ENOKEY => " (module signature rejected)",
            libc::EINVAL => {
                " (bad parameter, or the module's init returned -EINVAL; see the kernel log)"
            }
            _ => " (returned by the module's init or the loader; see the kernel log)",
        };
        f.write_str(hint)
    }
}

/// Loads the module file at `path` with parameters `params` (e.g. `"capacity=128"`).
pub fn load(path: &str, params: &str) -> Result<(), LoadError> {
    let error = |at_open, errno| LoadError {
        path: path.to_string(),
        params: params.to_string(),
        at_open,
        errno,
    };
    let file = File::open(path).map_err(|e| error(true, e.into()))?;
    sys::finit_module(&file, params).map_err(|errno| error(false, errno))
}

/// Unloads module `name` without waiting: fails with `EAGAIN` (or `EBUSY`) while it is in use.
pub fn unload(name: &str) -> SysResult<()> {
    sys::delete_module(name)
}

/// Unloads module `name`, retrying for up to `timeout` while it is still in use (references
/// held by files whose last close is still being processed).
pub fn unload_retrying(name: &str, timeout: Duration) -> SysResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match unload(name) {
            Err(e) if (e == Errno::EAGAIN || e == Errno::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Loads one of the kernel's own modules that xtask ships in `/lib/modules/` (its stock
/// modules: `ext4`, `gpio_keys`, ...), after the modules it depends on (the `depends=` entry
/// of its `.modinfo`, as `modprobe` would). Already loaded modules are left alone, and a
/// module the kernel has built in (no `.ko` shipped; listed in the `modules.builtin` xtask
/// ships) counts as loaded. Returns the modules this call loaded, dependencies first, for [`unload_all`].
pub fn load_stock(name: &str) -> Result<Vec<String>, LoadError> {
    let mut loaded = Vec::new();
    load_stock_into(name, &mut loaded)?;
    Ok(loaded)
}

fn load_stock_into(name: &str, loaded: &mut Vec<String>) -> Result<(), LoadError> {
    let name = name.replace('-', "_");
    if is_loaded(&name) || loaded.contains(&name) {
        return Ok(());
    }
    let path = format!("/lib/modules/{name}.ko");
    let image = match std::fs::read(&path) {
        Ok(image) => image,
        Err(_) if built_in(&name) => return Ok(()),
        Err(e) => {
            return Err(LoadError {
                path,
                params: String::new(),
                at_open: true,
                errno: e.into(),
            })
        }
    };
    for dep in modinfo(&image, "depends")
        .split(',')
        .filter(|d| !d.is_empty())
    {
        load_stock_into(dep, loaded)?;
    }
    load(&path, "")?;
    loaded.push(name);
    Ok(())
}

/// Whether the kernel has module `name` built in, by its `modules.builtin`
/// (`kernel/fs/ext4/ext4.ko` lines).
fn built_in(name: &str) -> bool {
    std::fs::read_to_string("/lib/modules/modules.builtin").is_ok_and(|list| {
        list.lines().any(|l| {
            l.rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".ko"))
                .is_some_and(|m| m.replace('-', "_") == name)
        })
    })
}

/// Unloads `modules` in reverse order (what [`load_stock`] returned), each retrying for up to
/// `timeout`; the first failure is returned after trying them all.
pub fn unload_all(modules: &[String], timeout: Duration) -> SysResult<()> {
    let mut result = Ok(());
    for m in modules.iter().rev() {
        if let Err(e) = unload_retrying(m, timeout) {
            result = result.and(Err(e));
        }
    }
    result
}

/// The value of `key` in a module image's `.modinfo` strings (`key=value`, NUL-separated), or
/// "" if it has none.
fn modinfo<'a>(image: &'a [u8], key: &str) -> &'a str {
    let needle = format!("\0{key}=");
    image
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .and_then(|at| {
            let value = &image[at + needle.len()..];
            let end = value.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&value[..end]).ok()
        })
        .unwrap_or("")
}

/// Is module `name` loaded?
pub fn is_loaded(name: &str) -> bool {
    crate::procfs::module_loaded(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_finds_a_key_between_nuls() {
        let image = b"\x7fELF...\0license=GPL\0depends=jbd2,mbcache,crc16\0intree=Y\0";
        assert_eq!(modinfo(image, "depends"), "jbd2,mbcache,crc16");
        assert_eq!(modinfo(image, "license"), "GPL");
        assert_eq!(modinfo(image, "vermagic"), "");
        assert_eq!(modinfo(b"\0depends=\0", "depends"), "");
    }

    #[test]
    fn load_errors_explain_themselves() {
        let missing = load("/nonexistent/chardev.ko", "").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "cannot open /nonexistent/chardev.ko: ENOENT (the module is not in the initramfs)"
        );
        let exists = LoadError {
            path: "/lib/modules/chardev.ko".into(),
            params: "capacity=128".into(),
            at_open: false,
            errno: Errno(libc::EEXIST),
        };
        assert_eq!(
            exists.to_string(),
            "finit_module(/lib/modules/chardev.ko, \"capacity=128\") failed with EEXIST \
             (a module of that name is already loaded)"
        );
    }
}
