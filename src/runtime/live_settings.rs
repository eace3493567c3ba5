//! What a running sandbox can take on without a restart: its hostname and its cgroup limits.
//!
//! A start that finds its container already running brings these to the spec's. That is how
//! a create adopts a warm sandbox (started ahead of time under a placeholder hostname, with
//! the limits of the create before it), and it is a no-op for a sandbox whose boot is merely
//! resumed: nothing is written where the value already matches.
//!
//! The hostname is set from a short-lived thread that joins the container's UTS namespace
//! (the sandbox itself holds no capability to do it). `/etc/hostname` and `/etc/hosts` are
//! rewritten only where they still hold the old name as the start wrote them, through the
//! upper layer on the host, never following a symlink. The agent gives every command
//! `HOSTNAME` from the UTS name, so commands see the new name too. The limits are written to
//! the container's cgroup files, where runc put them (`bundle::cgroup_path`), on cgroup v2
//! or on v1's per-controller hierarchies.

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use super::layout::SandboxLayout;
use super::{RuntimeError, SandboxSpec, bundle, rootfs};

/// Brings the running container of `spec` to the spec's hostname and limits; `pid` is its
/// init process. Blocking: call it off the async workers.
pub fn apply(
    layout: &SandboxLayout,
    spec: &SandboxSpec,
    container: &str,
    pid: u32,
) -> Result<(), RuntimeError> {
    let old = set_hostname(pid, &spec.hostname)?;
    if old != spec.hostname {
        rewrite_identity_files(
            &layout.upper_raw.join("upper").join("etc"),
            &old,
            &spec.hostname,
        )?;
    }
    set_limits(&Cgroup::of(container), spec)
}

/// Sets the hostname in the UTS namespace of process `pid`; returns the one it had.
fn set_hostname(pid: u32, hostname: &str) -> Result<String, RuntimeError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/uts"));
    let namespace = fs::File::open(&path).map_err(RuntimeError::io("open", &path))?;
    let hostname = hostname.to_string();
    // A thread of its own: it never leaves the namespace, it ends in it.
    std::thread::spawn(move || -> Result<String, nix::Error> {
        nix::sched::setns(namespace.as_fd(), CloneFlags::CLONE_NEWUTS)?;
        let old = nix::unistd::gethostname()?.to_string_lossy().into_owned();
        if old != hostname {
            nix::unistd::sethostname(&hostname)?;
        }
        Ok(old)
    })
    .join()
    .map_err(|_| RuntimeError::Bundle("setting the hostname panicked".into()))?
    .map_err(|errno| RuntimeError::io("set the hostname in", &path)(errno.into()))
}

/// Rewrites `hostname` and `hosts` in the upper layer's `etc` when they hold what the start
/// wrote for `old` (a file the image or the sandbox made is left alone).
fn rewrite_identity_files(etc: &Path, old: &str, new: &str) -> Result<(), RuntimeError> {
    let Ok(dir) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(etc)
    else {
        return Ok(());
    };
    for (name, was, now) in [
        (
            "hostname",
            rootfs::hostname_file(old),
            rootfs::hostname_file(new),
        ),
        ("hosts", rootfs::hosts_file(old), rootfs::hosts_file(new)),
    ] {
        let opened = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let Ok(fd) = opened else { continue };
        let mut file = fs::File::from(fd);
        let target = etc.join(name);
        let mut current = String::new();
        if file.read_to_string(&mut current).is_err() || current != was {
            continue;
        }
        file.set_len(0)
            .map_err(RuntimeError::io("truncate", &target))?;
        file.write_all_at(now.as_bytes(), 0)
            .map_err(RuntimeError::io("write", &target))?;
    }
    Ok(())
}

/// Where a container's cgroup files are.
enum Cgroup {
    /// One directory under the unified hierarchy.
    V2(PathBuf),
    /// One directory per controller hierarchy.
    V1 {
        cpu: PathBuf,
        memory: PathBuf,
        pids: PathBuf,
    },
}

impl Cgroup {
    fn of(container: &str) -> Cgroup {
        let root = Path::new("/sys/fs/cgroup");
        let relative = bundle::cgroup_path(container);
        let relative = relative.trim_start_matches('/');
        if root.join("cgroup.controllers").exists() {
            Cgroup::V2(root.join(relative))
        } else {
            Cgroup::V1 {
                cpu: root.join("cpu").join(relative),
                memory: root.join("memory").join(relative),
                pids: root.join("pids").join(relative),
            }
        }
    }
}

/// Writes the spec's CPU quota, memory limit and process limit where they differ.
fn set_limits(cgroup: &Cgroup, spec: &SandboxSpec) -> Result<(), RuntimeError> {
    let quota = spec.cpu_millicores * 100;
    match cgroup {
        Cgroup::V2(dir) => {
            write_if_changed(
                &dir.join("cpu.max"),
                &format!("{quota} {}", bundle::CPU_PERIOD_US),
            )?;
            write_if_changed(&dir.join("memory.max"), &spec.mem_bytes.to_string())?;
            write_if_changed(&dir.join("pids.max"), &spec.pids_limit.to_string())
        }
        Cgroup::V1 { cpu, memory, pids } => {
            write_if_changed(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            write_if_changed(
                &memory.join("memory.limit_in_bytes"),
                &spec.mem_bytes.to_string(),
            )?;
            write_if_changed(&pids.join("pids.max"), &spec.pids_limit.to_string())
        }
    }
}

/// Writes `value` to the cgroup file at `path` unless it already reads so. (A memory limit
/// the kernel rounds to pages reads back rounded; writing it again is harmless.)
fn write_if_changed(path: &Path, value: &str) -> Result<(), RuntimeError> {
    let current = fs::read_to_string(path).map_err(RuntimeError::io("read", path))?;
    if current.trim() == value {
        return Ok(());
    }
    fs::write(path, value).map_err(RuntimeError::io("write", path))
}
