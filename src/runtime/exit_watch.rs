//! Noticing that a sandbox's container ended, whoever ended it: a process in it that made
//! PID 1 exit, the OOM killer, a host administrator. The container's init process is
//! watched through a pidfd (`pidfd_open`), which becomes readable when the process exits,
//! so nothing polls. The server is not that process's parent (runc detaches it), so only the
//! fact of the exit is known, not its status.

use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::RuntimeError;

/// A running container's init process, watched for its exit.
pub struct ExitWatch {
    pidfd: AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Watch process `pid`, which must be the init process of `container` (its cgroup is
    /// checked after the pidfd is held, so a recycled process id is never watched instead).
    pub(super) fn open(pid: i32, container: &str) -> Result<ExitWatch, RuntimeError> {
        let not_running = || RuntimeError::NotRunning(container.to_string());
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(not_running());
        }
        // SAFETY: the descriptor was just returned to us and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        if !in_cgroup_of(pid, container) {
            return Err(not_running());
        }
        // SAFETY: an `OwnedFd` keeps its one descriptor open until it is dropped, and the
        // `AsyncFd` owns it.
        let pidfd =
            unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }
                .map_err(|e| {
                    let watching = format!("the init process of {container}");
                    RuntimeError::io("watch", watching)(e.into_parts().1)
                })?;
        Ok(ExitWatch { pidfd })
    }

    /// Resolves once the process has exited (at once if it already has).
    pub async fn exited(self) {
        let _ = self.pidfd.readable().await;
    }
}

/// Whether process `pid` belongs to `container`'s cgroup.
fn in_cgroup_of(pid: i32, container: &str) -> bool {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let expected = format!(":{}", super::bundle::cgroup_path(container));
    cgroups.lines().any(|line| line.ends_with(&expected))
}
