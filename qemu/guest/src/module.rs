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

/// Is module `name` loaded? (`nvme-core` and `nvme_core` are the same module.)
pub fn is_loaded(name: &str) -> bool {
    crate::procfs::module_loaded(&name.replace('-', "_"))
}

/// The modules named in the `depends=` record of a module file's `.modinfo` (modpost writes the
/// file names: `nvme-core`, `t10-pi`).
pub fn depends(ko: &[u8]) -> Vec<String> {
    let key = b"\0depends=";
    let Some(at) = ko.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let value = &ko[at + key.len()..];
    let value = &value[..value.iter().position(|&b| b == 0).unwrap_or(value.len())];
    String::from_utf8_lossy(value)
        .split(',')
        .filter(|d| !d.is_empty())
        .map(String::from)
        .collect()
}

/// Loads `/lib/modules/<name>.ko` after the modules it depends on (each
/// `/lib/modules/<dep>.ko`, recursively; there is no `modprobe` in the guest), skipping those
/// already loaded. Returns the modules it loaded, in order (unload them in reverse: see
/// [`unload_all`]), also when a later one failed to load.
pub fn load_with_deps(name: &str) -> (Vec<String>, Result<(), LoadError>) {
    let mut loaded = Vec::new();
    let result = load_tree(name, &mut loaded);
    (loaded, result)
}

fn load_tree(name: &str, loaded: &mut Vec<String>) -> Result<(), LoadError> {
    if is_loaded(name) {
        return Ok(());
    }
    let path = format!("/lib/modules/{name}.ko");
    let ko = std::fs::read(&path).map_err(|e| LoadError {
        path: path.clone(),
        params: String::new(),
        at_open: true,
        errno: e.into(),
    })?;
    for dep in depends(&ko) {
        load_tree(&dep, loaded)?;
    }
    load(&path, "")?;
    loaded.push(name.replace('-', "_"));
    Ok(())
}

/// Unloads `modules` in reverse order (each retrying for up to `timeout` while in use); stops
/// at the first failure, naming the module.
pub fn unload_all(modules: &[String], timeout: Duration) -> Result<(), String> {
    for m in modules.iter().rev() {
        unload_retrying(m, timeout).map_err(|e| format!("rmmod {m}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_from_modinfo() {
        let ko = b"\x7fELF...\0license=GPL\0depends=nvme-core,t10-pi\0retpoline=Y\0";
        assert_eq!(depends(ko), ["nvme-core", "t10-pi"]);
        assert!(depends(b"\0license=GPL\0depends=\0name=x\0").is_empty());
        assert!(depends(b"no modinfo").is_empty());
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
