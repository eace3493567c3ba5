//! A command's process-group leader and the rule that makes signalling its group safe: the
//! group is signalled only while the leader is unreaped.
//!
//! Why: a process id is free for reuse once its process is reaped and no process uses it as a
//! group id any more. Every command leads a new session, so a reused pid is likely to lead a
//! group again — quite possibly another command of this agent — and a `killpg` meant for the
//! old command would land on it. While the leader is alive or a zombie its pid cannot be
//! reused, so the group id still means the command's group.
//!
//! How: the supervisor waits for the leader's exit without reaping it ([`exited`]), and reaps it
//! only through [`Leader::reap`], which takes the lock [`Leader::kill_group`] signals under and
//! records the reap before it happens. A kill therefore either signals an unreaped leader's group
//! or does nothing.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard};

use super::child_process::ChildProcess;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The leader of a command's process group (its pid is the group id).
#[derive(Debug)]
pub struct Leader {
    pid: u32,
    /// Set when the leader is reaped; no signal goes out after.
    reaped: Mutex<bool>,
}

impl Leader {
    pub fn new(pid: u32) -> Leader {
        Leader {
            pid,
            reaped: Mutex::new(false),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGKILLs the leader's process group, unless the leader was reaped: then the group id may
    /// belong to someone else. A group that is already gone is not an error.
    pub fn kill_group(&self) {
        let reaped = self.lock();
        if !*reaped && self.pid > 1 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Reaps `child`, the leader, once [`exited`] has resolved: from here on its group is never
    /// signalled. The reap is recorded under the lock kills take, so none slips in between.
    pub async fn reap(&self, child: &mut ChildProcess) -> io::Result<ExitStatus> {
        let exited = {
            let mut reaped = self.lock();
            *reaped = true;
            child.try_wait()
        };
        match exited? {
            Some(status) => Ok(status),
            // Its exit could not be watched: an ordinary wait, now that no signal goes out.
            None => child.wait().await,
        }
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        self.reaped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Resolves once process `pid` (a child of this process) has exited, leaving it unreaped: a
/// pidfd turns readable then. Where pidfds are unavailable, a blocking thread waits with
/// `WNOWAIT`, which does not reap either. Also resolves when the exit cannot be watched at all
/// ([`Leader::reap`] then waits the ordinary way).
pub async fn exited(pid: u32) {
    // SAFETY: the OwnedFd is valid and open, and stays so (unchanged) until the AsyncFd owning
    // it is dropped.
    if let Ok(pidfd) = pidfd_open(pid)
        && let Ok(pidfd) = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
    {
        let _ = pidfd.readable().await;
        return;
    }
    let _ = tokio::task::spawn_blocking(move || wait_without_reaping(pid)).await;
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn wait_without_reaping(pid: u32) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    while let Err(nix::errno::Errno::EINTR) = waitid(Id::Pid(pid), flags) {}
}
