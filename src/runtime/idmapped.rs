//! The kernel side of a sandbox's user namespace, for its filesystems.
//!
//! A sandbox runs in a user namespace that maps its ids 0–65535 onto its host range
//! ([`IdRange`]). Its disks keep their image owners (root's files belong to 0 on disk), so
//! they are mounted *idmapped* (`mount_setattr(MOUNT_ATTR_IDMAP)`; under an overlay, Linux
//! 5.19 or later): through
//! such a mount a file owned by 0 on disk belongs to the range's first id, and a file the
//! sandbox creates as its root is written to disk as 0. The overlay on top is then mounted
//! *as the sandbox's root* (fsuid and fsgid in its range): overlayfs creates its work
//! files and copies files up with its mounter's credentials, and host root's ids have no
//! place on an idmapped mount of the sandbox's range.
//!
//! Everything here blocks (a child process, mount syscalls): callers run it off the async
//! workers.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::id_range::IdRange;
use super::{RuntimeError, detached_mount};
use crate::shared_memory_child;

/// A user namespace holding `range`'s mapping, to idmap mounts with. It lives as long as the
/// descriptor: a holder process creates it and is gone before this returns.
///
/// The holder is made with `clone(CLONE_VM | CLONE_FILES | CLONE_NEWUSER)`: it shares the
/// server's memory and descriptor table instead of copying them (as a `fork` would, to then
/// throw the copies away in an `exec`), runs [`hold`] on a small stack of its own, and is
/// killed once the namespace is open. A user namespace cannot be made by `unshare` in a
/// process with threads, so it takes a process; this is the cheapest one.
pub fn user_namespace(range: IdRange) -> Result<OwnedFd, RuntimeError> {
    let fail = |e| RuntimeError::io("create", "a user namespace for idmapped mounts")(e);
    let mut stack = vec![0u8; HOLDER_STACK];
    let server = std::process::id() as usize;
    // SAFETY: the holder starts with every signal blocked, so no handler of the server's
    // ever runs in it, and it makes raw system calls only: it touches neither the heap nor
    // the thread-local state it shares with this thread, which runs on meanwhile (glibc's
    // `errno` and cancellation flags). It is reaped below, before the stack is freed.
    let pid = unsafe {
        shared_memory_child::clone(
            hold,
            &mut stack,
            libc::CLONE_VM | libc::CLONE_FILES | libc::CLONE_NEWUSER | libc::SIGCHLD,
            server as *mut libc::c_void,
        )
    }
    .map_err(fail)?;
    // The namespace exists once clone has returned.
    let opened = (|| {
        let proc = Path::new("/proc").join(pid.to_string());
        std::fs::write(proc.join("uid_map"), range.map_line())?;
        std::fs::write(proc.join("gid_map"), range.map_line())?;
        File::open(proc.join("ns/user")).map(OwnedFd::from)
    })();
    // SAFETY: `pid` is our child, not reaped yet; waiting for it is what keeps `stack` alive.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        while libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL) < 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
    drop(stack);
    opened.map_err(fail)
}

/// The holder's stack: [`hold`] makes four system calls.
const HOLDER_STACK: usize = 16 * 1024;

/// The holder of [`user_namespace`]: waits, every signal blocked, for its SIGKILL. The death
/// signal ends it should the thread that made it die first; a server that died before the
/// death signal was set is noticed by the holder's new parent, and the holder leaves. Raw
/// system calls only (see [`user_namespace`]): `server` is the server's process id.
extern "C" fn hold(server: *mut libc::c_void) -> libc::c_int {
    // SAFETY: plain system calls on this process alone; none of them returns into code that
    // reads `errno`.
    unsafe {
        libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::syscall(libc::SYS_getppid) as usize != server as usize {
            libc::syscall(libc::SYS_exit, 0);
        }
        loop {
            // No descriptors, no timeout, no signal can arrive: sleeps until killed.
            libc::syscall(
                libc::SYS_ppoll,
                std::ptr::null_mut::<libc::pollfd>(),
                0,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<libc::sigset_t>(),
                size_of::<libc::sigset_t>(),
            );
        }
    }
}

/// Attaches at `target` a copy of the mount at `source`, idmapped through `userns`. The copy
/// keeps the source's flags (`nosuid`, `nodev`, `noexec`, `ro`).
pub fn clone_idmapped(
    source: &Path,
    target: &Path,
    userns: BorrowedFd<'_>,
) -> Result<(), RuntimeError> {
    let tree = detached_mount::copy(source, false)?;
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: `attr` outlives the call and its size is passed; the fds are open.
    let set = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            size_of::<libc::mount_attr>(),
        )
    };
    if set < 0 {
        let error = io::Error::last_os_error();
        if matches!(error.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return Err(RuntimeError::InvalidConfig(format!(
                "this kernel cannot idmap the mount of {} ({error}): sandboxes need Linux 5.19 \
                 or later, with idmapped ext4 mounts under an overlay",
                source.display()
            )));
        }
        return Err(RuntimeError::io("idmap the mount of", source)(error));
    }
    detached_mount::attach(&tree, target)
}

/// Makes the calling thread the sandbox's root for file-system purposes: its fsuid and
/// fsgid become the first of `range`, every capability it is permitted is raised again
/// (changing the fsuid away from 0 drops the file ones), and its working directory becomes
/// `cwd`, after `unshare(CLONE_FS)` so that no other thread's changes. Credentials are per
/// thread: call this on a thread that ends with the work it does as that root.
pub fn become_sandbox_root(range: IdRange, cwd: &Path) -> Result<(), RuntimeError> {
    let fail = |what: &'static str| {
        let error = io::Error::last_os_error();
        move || RuntimeError::io(what, "the mounting thread")(error)
    };
    // SAFETY: plain syscalls on the calling thread's own credentials and fs context.
    unsafe {
        if libc::unshare(libc::CLONE_FS) != 0 {
            return Err(fail("unshare the working directory of")());
        }
    }
    std::env::set_current_dir(cwd).map_err(RuntimeError::io("enter", cwd))?;
    // SAFETY: as above; setfsuid/setfsgid cannot fail for a process with CAP_SETUID/SETGID,
    // and the raw syscalls change this thread alone (no libc broadcast to other threads).
    unsafe {
        libc::syscall(libc::SYS_setfsgid, range.first);
        libc::syscall(libc::SYS_setfsuid, range.first);
        if libc::syscall(libc::SYS_setfsuid, u32::MAX) != range.first as libc::c_long {
            return Err(fail("change the file-system ids of")());
        }
    }
    raise_permitted_capabilities().map_err(RuntimeError::io(
        "raise the capabilities of",
        "the mounting thread",
    ))
}

/// `capget`/`capset` (version 3, this thread): effective = permitted.
fn raise_permitted_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 requires.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for half in &mut data {
        half.effective = half.permitted;
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    /// Whether the calling thread has a child left, running or not reaped.
    fn this_thread_has_a_child() -> bool {
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        let flags = WaitPidFlag::WEXITED
            | WaitPidFlag::WNOHANG
            | WaitPidFlag::WNOWAIT
            | WaitPidFlag::__WALL
            | WaitPidFlag::__WNOTHREAD;
        match waitid(Id::All, flags) {
            Err(nix::errno::Errno::ECHILD) => false,
            Ok(_) => true,
            Err(other) => panic!("waitid: {other}"),
        }
    }

    #[test]
    fn the_namespace_is_a_new_one_and_its_holder_is_reaped() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: mapping ids in a user namespace needs root");
            return;
        }
        let own = std::fs::metadata("/proc/self/ns/user").unwrap();
        let range = IdRange {
            first: 1_500_000_000,
        };
        let namespaces: Vec<File> = (0..3)
            .map(|_| File::from(user_namespace(range).unwrap()))
            .collect();
        let inodes: Vec<u64> = namespaces
            .iter()
            .map(|ns| ns.metadata().unwrap().ino())
            .collect();
        assert!(!inodes.contains(&own.ino()), "{inodes:?} vs {}", own.ino());
        let distinct: std::collections::HashSet<_> = inodes.iter().collect();
        assert_eq!(distinct.len(), 3, "{inodes:?}");
        assert!(!this_thread_has_a_child());
        // The mapping took: the namespace's first id is the range's (an idmapped mount of a
        // tmpfs shows a file owned by root there as owned by `range.first`).
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        let target = dir.path().join("target");
        std::fs::create_dir_all(&source).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        let mounted = nix::mount::mount(
            Some("tmpfs"),
            &source,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=64k"),
        );
        if mounted.is_err() {
            eprintln!("skipped the idmapped part: cannot mount a tmpfs here");
            return;
        }
        std::fs::write(source.join("file"), "x").unwrap();
        let idmapped = clone_idmapped(&source, &target, namespaces[0].as_fd());
        let owner = idmapped
            .as_ref()
            .map(|()| std::fs::metadata(target.join("file")).map(|meta| meta.uid()));
        let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
        let _ = nix::mount::umount2(&source, nix::mount::MntFlags::MNT_DETACH);
        match owner {
            Ok(owner) => assert_eq!(owner.unwrap(), range.first),
            // tmpfs takes idmapped mounts from Linux 6.3; sandboxes need them on ext4 only.
            Err(RuntimeError::InvalidConfig(why)) => eprintln!("skipped the idmapped part: {why}"),
            Err(other) => panic!("{other}"),
        }
    }
}
