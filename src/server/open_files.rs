//! The server's limit on open files, raised at start-up to what the host allows.
//!
//! Every sandbox holds about three of the server's descriptors for as long as it lives (its
//! egress proxy's sockets, the agent connection dialled ahead for its next exec, …), besides
//! those of requests in flight. A shell commonly hands its processes a soft limit of 1024,
//! at which creates began to fail with "Too many open files" at about 300 sandboxes. The
//! hard limit is the ceiling the host means (systemd's default is 524288), and a process may
//! raise its own soft limit up to it without any privilege, as the Go runtime and most
//! servers do at start-up.
//!
//! Processes the server starts inherit the raised soft limit. That is harmless for the ones
//! it runs (runc, `nft`, `mke2fs`), and a sandbox's own processes get theirs from the bundle
//! (see `runtime::bundle`).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors a sandbox keeps open in the server, roughly: how many sandboxes a limit allows
/// is what the start-up log reports.
pub const PER_SANDBOX: u64 = 3;

/// The soft limit before and after [`raise_to_hard_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
}

/// Raises this process's soft limit on open files to its hard limit.
pub fn raise_to_hard_limit() -> nix::Result<OpenFiles> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(OpenFiles {
        before: soft,
        now: soft.max(hard),
    })
}

/// Raises the limit and says so in the log; a failure is logged, not fatal (the server then
/// serves as many sandboxes as the limit it was given allows).
pub fn raise_and_log() {
    match raise_to_hard_limit() {
        Ok(OpenFiles { before, now }) if before != now => tracing::info!(
            "open file limit raised from {before} to {now} (about {} sandboxes)",
            now / PER_SANDBOX
        ),
        Ok(OpenFiles { now, .. }) => tracing::debug!(
            "open file limit {now} (about {} sandboxes)",
            now / PER_SANDBOX
        ),
        Err(e) => tracing::warn!(
            "cannot raise the open file limit ({e}); each sandbox holds about {PER_SANDBOX} of the server's descriptors"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a child process: lowering the limit of the test process itself could fail
    /// other tests running beside it.
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        // SAFETY: the child only calls async-signal-safe functions (rlimit calls, _exit).
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let code = (|| {
                    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
                    let low = hard.min(64);
                    setrlimit(Resource::RLIMIT_NOFILE, low, hard).ok()?;
                    let raised = raise_to_hard_limit().ok()?;
                    let (soft_after, hard_after) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
                    let expected = OpenFiles {
                        before: low,
                        now: hard,
                    };
                    Some(raised == expected && soft_after == hard && hard_after == hard)
                })();
                // SAFETY: leaves the forked child at once, without running the parent's
                // destructors or test harness.
                unsafe { libc::_exit(if code == Some(true) { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Exited(child, 0),
                    "the child's limit was not raised to its hard limit"
                );
            }
        }
    }
}
