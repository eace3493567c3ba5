//! Boot hooks: every executable in `/etc/langsmith/boot.d/` of the sandbox's root, run once per
//! boot by PID 1 in lexical order of their names, before the data-plane server starts (so a
//! sandbox turns `ready` after its hooks, e.g. with sshd listening). The default snapshot
//! starts sshd this way; an image without the directory boots as before.
//!
//! A hook gets `/dev/null` as stdin and the agent's stderr as stdout and stderr. PID 1 waits
//! for the hook process itself, not for daemons it leaves behind (those are re-parented to
//! PID 1, which reaps them when they end). All hooks together are waited for at most
//! [`BOOT_HOOKS_BUDGET`], well inside the server's deadline for a fresh agent to answer: a hook
//! still running then is left running and the boot goes on (later hooks are started without
//! waiting), so a broken hook cannot keep a sandbox from answering.
//!
//! Runs in PID 1 before any thread exists, with SIGCHLD (and the termination signals) blocked:
//! waiting uses `sigtimedwait` on SIGCHLD, and a termination signal stays pending for the
//! supervisor. The children get an empty signal mask from `std::process::Command`.

use super::log::agent_log;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

/// Where the hooks live in the sandbox's root filesystem.
pub const BOOT_DIR: &str = "/etc/langsmith/boot.d";

/// How long PID 1 waits for the hooks, all together, before the server starts regardless
/// (the server gives a fresh agent 20 s to answer).
pub const BOOT_HOOKS_BUDGET: Duration = Duration::from_secs(10);

/// The executables (regular files with an execute bit, symlinks followed) in `dir`, by name;
/// none when `dir` does not exist. Names starting with `.` are skipped.
pub fn hooks_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut hooks: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect();
    hooks.sort();
    hooks
}

/// Run every hook of [`BOOT_DIR`], one after the other.
pub fn run_all() {
    let deadline = Instant::now() + BOOT_HOOKS_BUDGET;
    for hook in hooks_in(Path::new(BOOT_DIR)) {
        let left = deadline.saturating_duration_since(Instant::now());
        // One left running is PID 1's child like any other; the supervisor reaps it.
        drop(run_one(&hook, left));
    }
    reap_exited();
}

/// Run `hook`, waiting at most `limit` for it; failures are reported on stderr only. Returns
/// the hook when it was left running.
pub fn run_one(hook: &Path, limit: Duration) -> Option<Child> {
    let name = hook.display();
    let stdout = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::inherit(),
    };
    let mut child = match Command::new(hook)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            agent_log!("boot hook {name}: cannot start it: {e}");
            return None;
        }
    };
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return None,
            Ok(Some(status)) => {
                agent_log!("boot hook {name} failed ({status})");
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                agent_log!("boot hook {name}: {e}");
                return None;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            agent_log!(
                "boot hook {name} still runs after {}s; booting without waiting",
                limit.as_secs()
            );
            return Some(child);
        }
        wait_for_sigchld(left);
    }
}

/// Sleep until a SIGCHLD is pending (and take it) or `limit` passes. That needs SIGCHLD
/// blocked, as it is in PID 1; where it is not (tests), a short pause stands in.
fn wait_for_sigchld(limit: Duration) {
    let blocked = SigSet::thread_get_mask().is_ok_and(|m| m.contains(Signal::SIGCHLD));
    if !blocked {
        std::thread::sleep(limit.min(Duration::from_millis(10)));
        return;
    }
    // SAFETY: plain libc calls on locally owned, initialised values.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let timeout = libc::timespec {
            tv_sec: limit.as_secs() as libc::time_t,
            tv_nsec: limit.subsec_nanos() as libc::c_long,
        };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &timeout);
    }
}

/// Reap children that already exited (what a hook's daemon left behind while its SIGCHLD was
/// taken here); live daemons are untouched.
fn reap_exited() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        // The file is written by `cp`, not by this process: tests run on many threads, and a
        // program another test starts at the moment this process holds the file open for
        // writing would inherit that descriptor until its exec, which makes running the
        // script fail with ETXTBSY ("text file busy").
        let draft = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(draft.path(), format!("#!/bin/sh\n{body}\n")).unwrap();
        let path = dir.join(name);
        let copied = std::process::Command::new("cp")
            .arg(draft.path())
            .arg(&path)
            .status()
            .unwrap();
        assert!(copied.success());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn only_executables_count_in_name_order_and_a_missing_dir_has_none() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "50-b", "", 0o755);
        script(dir.path(), "10-a", "", 0o700);
        script(dir.path(), "30-plain", "", 0o644);
        script(dir.path(), ".hidden", "", 0o755);
        std::fs::create_dir(dir.path().join("20-dir")).unwrap();
        let names: Vec<String> = hooks_in(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["10-a", "50-b"]);
        assert!(hooks_in(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn a_hook_runs_with_empty_stdin_and_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = script(
            dir.path(),
            "10-write",
            &format!(
                "cat > '{}'; echo done >> '{}'",
                out.display(),
                out.display()
            ),
            0o755,
        );
        run_one(&hook, Duration::from_secs(30));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "done\n");
    }

    #[test]
    fn a_hook_that_outlives_its_limit_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let hook = script(dir.path(), "10-slow", "exec sleep 600", 0o755);
        let mut left = run_one(&hook, Duration::from_millis(200)).expect("left running");
        assert!(left.try_wait().unwrap().is_none());
        left.kill().unwrap();
        left.wait().unwrap();
    }
}
