//! PID 1 duties. As PID 1 of a sandbox the agent forks before any thread exists: the parent
//! stays PID 1, reaps every orphan that the kernel re-parents to it, and forwards termination
//! signals to the child, which runs the server. When the server exits, so does PID 1 (and with
//! it the sandbox), with the server's status.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};

/// Returns `None` in the process that should serve (the forked child, or the agent itself when
/// it is not PID 1), and `Some(exit code)` in PID 1 once the server has exited.
pub fn become_init_if_pid1() -> anyhow::Result<Option<i32>> {
    if getpid().as_raw() != 1 {
        return Ok(None);
    }
    let mut handled = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        handled.add(signal);
    }
    // Blocked before the fork so no SIGCHLD or SIGTERM can slip between fork and sigwait.
    let previous = handled.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
    // SAFETY: no other thread exists yet (the tokio runtime is built after this call), so the
    // child may run arbitrary code after fork.
    match unsafe { fork() }? {
        ForkResult::Child => {
            previous.thread_set_mask()?;
            Ok(None)
        }
        ForkResult::Parent { child } => Ok(Some(supervise(child, &handled))),
    }
}

/// PID 1's loop: wait for signals; reap on SIGCHLD, forward the others to the server.
fn supervise(server: Pid, handled: &SigSet) -> i32 {
    loop {
        match handled.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap_all(server) {
                    return code;
                }
            }
            Ok(signal) => {
                let _ = kill(server, signal);
            }
            Err(_) => continue,
        }
    }
}

/// Reaps every exited child; returns the server's exit code if it was among them.
fn reap_all(server: Pid) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == server => return Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == server => {
                return Some(128 + signal as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return None,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}
