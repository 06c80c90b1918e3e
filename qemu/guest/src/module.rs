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

/// Is module `name` loaded?
pub fn is_loaded(name: &str) -> bool {
    crate::procfs::module_loaded(name)
}

#[cfg(test)]
mod tests {
    use super::*;

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
