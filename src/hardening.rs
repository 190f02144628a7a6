//! Process hardening: the `vault` binary calls [`harden_process`] first
//! thing in `main`, before it parses arguments or reads the environment, so
//! no secret is in memory yet.
//!
//! - `RLIMIT_CORE` = 0, soft and hard: a crash or a SIGABRT writes no core
//!   file holding tokens, keys or the passphrase, and the process cannot
//!   raise the limit again.
//! - Linux: `PR_SET_DUMPABLE` = 0. Besides core dumps, this makes the
//!   process's `/proc/<pid>` files belong to root and refuses `ptrace` and
//!   reads of `/proc/<pid>/{environ,mem,…}` to other processes of the same
//!   user (without `CAP_SYS_PTRACE`). Root can still read everything.

/// A hardening step the operating system refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardeningError {
    /// `setrlimit(RLIMIT_CORE, 0)` failed.
    #[error("could not disable core dumps (RLIMIT_CORE): {0}")]
    CoreLimit(#[source] std::io::Error),
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error(
        "could not make the process non-dumpable (PR_SET_DUMPABLE); other processes of your user may read its memory: {0}"
    )]
    Dumpable(#[source] std::io::Error),
}

/// Disables core dumps and, on Linux, marks the process non-dumpable.
///
/// Both steps are attempted even when the first fails.
///
/// # Errors
///
/// The first step the operating system refused. The caller decides what
/// to do; the `vault` binary warns and goes on (see SECURITY.md).
pub fn harden_process() -> Result<(), HardeningError> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let core = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| HardeningError::CoreLimit(e.into()));
    core.and(not_dumpable())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn not_dumpable() -> Result<(), HardeningError> {
    use rustix::process::{DumpableBehavior, set_dumpable_behavior};
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| HardeningError::Dumpable(e.into()))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[allow(clippy::unnecessary_wraps)] // same signature as the Linux step
fn not_dumpable() -> Result<(), HardeningError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use rustix::process::{Resource, Rlimit, getrlimit};

    use super::*;

    /// Changes this test process for good: no core file, not dumpable.
    #[test]
    fn harden_process_leaves_no_core_limit_and_a_non_dumpable_process() {
        harden_process().expect("harden");
        assert_eq!(
            getrlimit(Resource::Core),
            Rlimit {
                current: Some(0),
                maximum: Some(0)
            }
        );
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(
            rustix::process::dumpable_behavior().expect("PR_GET_DUMPABLE"),
            rustix::process::DumpableBehavior::NotDumpable
        );
        // Idempotent: a second call (lowering 0 to 0) succeeds.
        harden_process().expect("again");
    }
}
