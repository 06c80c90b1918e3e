//! The current task: pending signals, capabilities, and the sleeping rules.

use kernel_sys as bindings;

/// Whether a signal is pending for the current task: a sleeping operation should give up with
/// `ERESTARTSYS` (the system call then restarts or fails with `EINTR`, as the signal's
/// `SA_RESTART` says).
pub fn signal_pending() -> bool {
    // SAFETY: reads the current task's flags; always valid in process context, and false in
    // others.
    unsafe { bindings::rust_helper_signal_pending() != 0 }
}

/// Documents, and on debug kernels (`CONFIG_DEBUG_ATOMIC_SLEEP`) checks, that the caller may
/// sleep: called in atomic context it reports "sleeping function called from invalid context".
pub fn might_sleep() {
    // SAFETY: no preconditions; it only checks the context.
    unsafe { bindings::rust_helper_might_sleep() }
}

/// Whether the current task may administer the system (`capable(CAP_SYS_ADMIN)`), as
/// privileged ioctls require (the C NVMe driver's passthrough commands, for one). The check is
/// recorded for auditing as in C. Process context.
pub fn capable_sys_admin() -> bool {
    // SAFETY: checks the current task's credentials; a valid capability number.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as core::ffi::c_int) }
}

/// The number of CPUs the system may ever run (`num_possible_cpus()`): blk-mq maps each of them
/// to a hardware queue.
pub fn possible_cpus() -> u32 {
    // SAFETY: reads the constant possible-CPU mask; no preconditions.
    unsafe { bindings::rust_helper_num_possible_cpus() }
}
