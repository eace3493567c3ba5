//! PID 1 duties. As PID 1 of a sandbox the agent forks before any thread exists: the parent
//! stays PID 1, reaps every orphan that the kernel re-parents to it, and forwards termination
//! signals to the child, which runs the server. A server that dies on its own (a user's
//! `kill -9 -1`, a crash) is started again, so the sandbox keeps answering; once a
//! termination signal was forwarded, the server's exit ends PID 1 (and the sandbox) with its
//! status.
//!
//! Before the first fork PID 1 adds the server's egress CA to the trust store (`trust`) and
//! runs the image's boot hooks (`boot_hooks`), once per boot: a restarted server does not run
//! them again.

use super::log::agent_log;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};
use std::time::{Duration, Instant};

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
    super::trust::install();
    super::boot_hooks::run_all();
    loop {
        let started = Instant::now();
        // SAFETY: PID 1 never starts a thread (the tokio runtime is built in the child after
        // this returns), so the child may run arbitrary code after fork.
        let forked = match unsafe { fork() } {
            Ok(forked) => forked,
            // PID 1 never gives up on its own: its exit would end the sandbox.
            Err(e) => {
                agent_log!("cannot start the data-plane server ({e}); trying again");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        match forked {
            ForkResult::Child => {
                previous.thread_set_mask()?;
                return Ok(None);
            }
            ForkResult::Parent { child } => match supervise(child, &handled) {
                Ended::ShutDown(code) => return Ok(Some(code)),
                Ended::Died(code) => {
                    agent_log!("the data-plane server exited ({code}); restarting it");
                    // A server that cannot even start must not make PID 1 spin.
                    if started.elapsed() < Duration::from_secs(1) {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            },
        }
    }
}

/// How a server process ended.
enum Ended {
    /// After a termination signal was forwarded to it: the sandbox is being stopped.
    ShutDown(i32),
    /// On its own: start another.
    Died(i32),
}

/// PID 1's loop: wait for signals; reap on SIGCHLD, forward the others to the server.
fn supervise(server: Pid, handled: &SigSet) -> Ended {
    let mut terminating = false;
    loop {
        match handled.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap_all(server) {
                    return if terminating {
                        Ended::ShutDown(code)
                    } else {
                        Ended::Died(code)
                    };
                }
            }
            Ok(signal) => {
                terminating = true;
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
