//! Signalling a command's process group, with real processes: a kill reaches the group while
//! its leader is unreaped (alive, or exited but not yet waited for), and nothing once the leader
//! was reaped — its pid, and with it the group id, may then belong to another command.

use tokio::io::AsyncReadExt;

use crate::agent::leader::{Leader, exited};
use crate::agent::spawn::{Spawned, spawn};

/// Starts a command whose leader exits at once, leaving a background member of its group
/// (with its output elsewhere, so the pipes close with the leader). Answers the command and the
/// member's pid.
async fn leader_with_a_background_member() -> (Spawned, u32) {
    let mut spawned = spawn(&super::sh("sleep 300 >/dev/null 2>&1 & echo $!")).unwrap();
    let mut stdout = String::new();
    spawned.stdout.read_to_string(&mut stdout).await.unwrap();
    let member = stdout.trim().parse().unwrap();
    (spawned, member)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_is_killed_while_the_leader_is_unreaped() {
    let (mut spawned, member) = leader_with_a_background_member().await;
    let leader = Leader::new(spawned.pid);
    exited(leader.pid()).await; // a zombie now: its pid still names the group
    leader.kill_group();
    assert!(
        terminates(member),
        "the background member survived the kill"
    );
    leader.reap(&mut spawned.child).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_signal_goes_out_once_the_leader_was_reaped() {
    let (mut spawned, member) = leader_with_a_background_member().await;
    let leader = Leader::new(spawned.pid);
    exited(leader.pid()).await;
    leader.reap(&mut spawned.child).await.unwrap();
    // The surviving member keeps the group id in use here; were the kill sent, it would die.
    // Had the pid been reused instead, a stranger's group would have been hit.
    leader.kill_group();
    let signalled = sigkill_reached(member);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(member as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(!signalled, "a kill reached the group of a reaped leader");
}

/// Whether `pid` has terminated (reaped, or a zombie awaiting its new parent). A SIGKILLed
/// process may still be tearing down its memory when its pipes report EOF, so this waits for
/// the kernel's exit notification (pidfd readable); the generous limit only bounds a failure.
pub fn terminates(pid: u32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        return true; // no such process any more
    }
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the descriptor is ours and closed right after.
    let ready = unsafe { libc::poll(&mut poll, 1, 10_000) };
    unsafe { libc::close(fd) };
    ready == 1
}

/// Whether a SIGKILL already sent to `pid` shows: the process is gone, dead, or has the
/// signal pending (the kernel marks it before `kill` returns). A process that was never
/// signalled shows none of these, so this cannot fail a correct agent.
fn sigkill_reached(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let sigkill_pending = |name: &str| {
        u64::from_str_radix(&field(name), 16).is_ok_and(|mask| mask & (1 << (9 - 1)) != 0)
    };
    let dead = field("State:").starts_with(['Z', 'X']);
    dead || sigkill_pending("SigPnd:") || sigkill_pending("ShdPnd:")
}
