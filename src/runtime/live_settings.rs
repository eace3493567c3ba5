//! What a running sandbox can take on without a restart: its hostname and its cgroup limits.
//!
//! A start that finds its container already running brings these to the spec's. That is how
//! a create adopts a warm sandbox (started ahead of time under a placeholder hostname, with
//! the limits of the create before it). A boot resumed after a server restart gets them too,
//! so a rename or a new limit recorded while it was provisioning applies then; nothing is
//! written where the value already matches.
//!
//! `/etc/hostname` and `/etc/hosts` are rewritten first, and only where they still hold
//! exactly what the start wrote for the old name: read through the upper layer on the host,
//! never following a symlink, never waiting on a FIFO, never reading more than that. Then
//! the hostname is set, from a short-lived thread that joins the container's UTS namespace
//! (the sandbox itself holds no capability to do it); a failure before that leaves the old
//! name everywhere, so a retry sees it again. The agent gives every command it starts
//! `HOSTNAME` from the UTS name. The limits are written to the container's cgroup files,
//! where runc put them (`bundle::cgroup_path`), on cgroup v2 or v1's hierarchies.

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
    let namespace = open_uts_namespace(pid)?;
    let old = in_namespace(&namespace, nix::unistd::gethostname)?
        .to_string_lossy()
        .into_owned();
    if old != spec.hostname {
        rewrite_identity_files(
            &layout.upper_raw.join("upper").join("etc"),
            &old,
            &spec.hostname,
        )?;
        let hostname = spec.hostname.clone();
        in_namespace(&namespace, move || nix::unistd::sethostname(&hostname))?;
    }
    set_limits(&Cgroup::of(container), spec)
}

/// The UTS namespace of process `pid`, refused if it is the server's own (a pid file that
/// names a process outside the sandbox must not rename the host).
fn open_uts_namespace(pid: u32) -> Result<(fs::File, PathBuf), RuntimeError> {
    use std::os::unix::fs::MetadataExt;
    let path = PathBuf::from(format!("/proc/{pid}/ns/uts"));
    let namespace = fs::File::open(&path).map_err(RuntimeError::io("open", &path))?;
    let ours =
        fs::metadata("/proc/self/ns/uts").map_err(RuntimeError::io("read", "/proc/self/ns/uts"))?;
    let theirs = namespace
        .metadata()
        .map_err(RuntimeError::io("read", &path))?;
    if (ours.dev(), ours.ino()) == (theirs.dev(), theirs.ino()) {
        return Err(RuntimeError::io("use", &path)(std::io::Error::other(
            "process is not in a sandbox's UTS namespace",
        )));
    }
    Ok((namespace, path))
}

/// Runs `work` in a thread of its own that joins the UTS namespace first: it never leaves
/// the namespace, it ends in it.
fn in_namespace<T: Send + 'static>(
    (namespace, path): &(fs::File, PathBuf),
    work: impl FnOnce() -> nix::Result<T> + Send + 'static,
) -> Result<T, RuntimeError> {
    let namespace = namespace
        .try_clone()
        .map_err(RuntimeError::io("open", path))?;
    std::thread::spawn(move || {
        nix::sched::setns(namespace.as_fd(), CloneFlags::CLONE_NEWUTS)?;
        work()
    })
    .join()
    .map_err(|_| RuntimeError::panicked("setting the hostname"))?
    .map_err(|errno| RuntimeError::io("set the hostname in", path)(errno.into()))
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
            OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let Ok(fd) = opened else { continue };
        let file = fs::File::from(fd);
        // Only a regular file of exactly the expected size is read, and no more of it.
        let expected = was.len() as u64;
        if !file
            .metadata()
            .is_ok_and(|meta| meta.is_file() && meta.len() == expected)
        {
            continue;
        }
        let mut current = Vec::with_capacity(was.len());
        let target = etc.join(name);
        if (&file).take(expected).read_to_end(&mut current).is_err() || current != was.as_bytes() {
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
