//! The mount namespace every start's view of the host is copied from.
//!
//! runc starts a sandbox in a throwaway mount namespace (see `runc_view`). Copying the
//! host's namespace for each start would copy every other sandbox's mounts too (six or seven
//! each), which then had to be detached one by one, each detach waiting for an RCU grace
//! period: with 300 sandboxes up that was 90–160 ms of a start, and runc and its init read
//! the whole mount table several times besides.
//!
//! So the server makes one namespace when it starts, holding only the mounts a start needs
//! from the host: `/`, the pseudo-filesystems (`/proc`, `/sys`, `/dev` and what is mounted
//! under them) and the mounts that lead to the paths runc and the view use (the runtime's
//! root, the agent's files, the runc binary, `/run`, `/usr`…). Every other mount, the
//! sandboxes' and the host's alike, is detached from it, so it pins no filesystem a host
//! administrator or another server may want to unmount. Its mounts are private: what the
//! host mounts later never shows up in it, which is what keeps it small. A start copies it
//! (a few dozen mounts at most) and attaches a copy of its own sandbox's mounts (see
//! [`ViewTemplate::enter_copy`]).
//!
//! The namespace lives as long as the descriptor this holds: it ends with the server.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use super::{RuntimeError, detached_mount, mount_table};

/// Pseudo-filesystems kept whole: runc reads `/proc`, writes cgroups under `/sys/fs/cgroup`
/// and binds device nodes from `/dev`. None of them holds a disk.
const KEPT_WHOLE: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Paths whose mounts are kept besides the caller's: the mounts that lead to the runtime's
/// libraries and configuration, and to `/run`, where the views live. Mounts below these
/// (a separate `/usr/local`, a file bound over `/etc/hosts`) are detached like any other.
const KEPT_PATHS: [&str; 6] = ["/usr", "/lib", "/lib64", "/etc", "/bin", "/run"];

/// The template namespace. Cheap to clone; all clones share the one namespace.
#[derive(Debug, Clone)]
pub struct ViewTemplate {
    namespace: Arc<OwnedFd>,
}

impl ViewTemplate {
    /// Makes the template, keeping the mounts that lead to each of `needed` (and those of
    /// [`KEPT_WHOLE`] and [`KEPT_PATHS`]). Blocking: on a thread of its own, which ends
    /// with it.
    pub fn build(needed: &[PathBuf]) -> Result<ViewTemplate, RuntimeError> {
        let mut needed = needed.to_vec();
        needed.extend(KEPT_PATHS.iter().map(PathBuf::from));
        std::thread::scope(|scope| {
            scope
                .spawn(|| build_here(&needed))
                .join()
                .unwrap_or_else(|_| Err(RuntimeError::panicked("making the views' template")))
        })
        .map(|namespace| ViewTemplate {
            namespace: Arc::new(namespace),
        })
    }

    /// Moves the calling thread into a new mount namespace copied from the template, with a
    /// copy of every mount at or below `own` (one sandbox's directory) attached where it is
    /// on the host. The thread's working directory and root change with it: call it on a
    /// thread made for the one start (it unshares its filesystem attributes first).
    pub fn enter_copy(&self, own: &Path) -> Result<(), RuntimeError> {
        let fail = |what: &'static str| {
            let own = own.to_path_buf();
            move |e: nix::Error| RuntimeError::io(what, own)(e.into())
        };
        // Taken while still in the host's namespace, where the sandbox's mounts are.
        let tree = detached_mount::copy(own, true)?;
        unshare(CloneFlags::CLONE_FS).map_err(fail("unshare the filesystem attributes for"))?;
        setns(self.namespace.as_fd(), CloneFlags::CLONE_NEWNS)
            .map_err(fail("enter the views' template for"))?;
        unshare(CloneFlags::CLONE_NEWNS).map_err(fail("make a mount namespace for"))?;
        detached_mount::attach(&tree, own)?;
        // The copies may still be peers of the host's mounts: nothing done in this
        // namespace may reach the host.
        let none: Option<&str> = None;
        mount(none, own, none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
            .map_err(fail("make private the mounts under"))
    }
}

/// [`ViewTemplate::build`]'s steps, on the thread that ends with them.
fn build_here(needed: &[PathBuf]) -> Result<OwnedFd, RuntimeError> {
    let os = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: nix::Error| RuntimeError::io(what, path)(e.into())
    };
    let root = Path::new("/");
    unshare(CloneFlags::CLONE_NEWNS)
        .map_err(os("make a mount namespace for the views at", root))?;
    let none: Option<&str> = None;
    mount(
        none,
        root,
        none,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        none,
    )
    .map_err(os("make private the mounts under", root))?;
    let points: Vec<PathBuf> = mount_table::read_this_threads()?
        .into_iter()
        .map(|mount| mount.point)
        .collect();
    // A detach takes the mounts below along, which is why a kept mount's parents are kept
    // too: each leads to whatever the kept one leads to. Children go first all the same,
    // so each is detached, and reported if it cannot be, by its own name.
    for point in unneeded(&points, needed).into_iter().rev() {
        match umount2(&point, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            // EINVAL: gone with a detached parent (or hidden under a later mount).
            Ok(()) | Err(nix::Error::EINVAL) => {}
            // Left in the template, it pins its filesystem until the server stops.
            Err(e) => tracing::warn!(
                mount = %point.display(),
                "the views' template keeps a mount it cannot detach: {e}"
            ),
        }
    }
    std::fs::File::open("/proc/thread-self/ns/mnt")
        .map(OwnedFd::from)
        .map_err(RuntimeError::io("open", "the views' template namespace"))
}

/// The mount points (in `points`' order) that lead to none of `needed` and lie under none
/// of [`KEPT_WHOLE`]. A point leads to a path when the path is at or below it.
fn unneeded(points: &[PathBuf], needed: &[PathBuf]) -> Vec<PathBuf> {
    points
        .iter()
        .filter(|point| {
            let kept_whole = KEPT_WHOLE.iter().any(|dir| point.starts_with(dir));
            let leads_to_needed = needed.iter().any(|path| path.starts_with(point));
            !kept_whole && !leads_to_needed
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::DetachOnDrop;

    #[test]
    fn only_mounts_that_lead_to_a_needed_path_or_are_pseudo_filesystems_are_kept() {
        let points: Vec<PathBuf> = [
            "/",
            "/proc",
            "/proc/sys/fs/binfmt_misc",
            "/sys/fs/cgroup",
            "/tmp",
            "/tmp/state/sandboxes/a/lower",
            "/tmp/other-server/sandboxes/b/lower",
            "/srv/disk",
            "/run",
            "/run/user/1000",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let needed = [PathBuf::from("/tmp/state"), PathBuf::from("/run/langsmith")];
        assert_eq!(
            unneeded(&points, &needed),
            [
                "/tmp/state/sandboxes/a/lower",
                "/tmp/other-server/sandboxes/b/lower",
                "/srv/disk",
                "/run/user/1000",
            ]
            .iter()
            .map(PathBuf::from)
            .collect::<Vec<_>>()
        );
    }

    /// The mount points under `dir` in the calling thread's namespace.
    fn points_under(dir: &Path) -> Vec<PathBuf> {
        let table = mount_table::read_this_threads().unwrap();
        let mut points: Vec<PathBuf> = mount_table::under(&table, dir)
            .into_iter()
            .map(|mount| mount.point)
            .collect();
        points.sort();
        points
    }

    #[test]
    fn a_copy_has_its_own_sandbox_mounts_and_no_other_mount_under_the_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (own, other, later) = (root.join("own"), root.join("other"), root.join("later"));
        let mut mounted = DetachOnDrop(Vec::new());
        let tmpfs = |point: &Path, mounted: &mut DetachOnDrop| {
            std::fs::create_dir_all(point).unwrap();
            let none: Option<&str> = None;
            mount(Some("test"), point, Some("tmpfs"), MsFlags::empty(), none).unwrap();
            mounted.0.push(point.to_path_buf());
        };
        // Made before the template: one kept out of it, one whose copy is taken later.
        tmpfs(&other, &mut mounted);
        tmpfs(&own.join("run"), &mut mounted);
        let template = ViewTemplate::build(std::slice::from_ref(&root)).unwrap();
        // Made after it: the copy of `own` brings it along; `later` stays on the host.
        tmpfs(&own.join("upper"), &mut mounted);
        tmpfs(&later, &mut mounted);
        std::fs::write(own.join("upper/marker"), "mine").unwrap();
        let (inside_root, inside_own) = (root.clone(), own.clone());
        let (seen, marker) = std::thread::spawn(move || {
            template.enter_copy(&inside_own).unwrap();
            let marker = std::fs::read_to_string(inside_own.join("upper/marker")).unwrap();
            (points_under(&inside_root), marker)
        })
        .join()
        .unwrap();
        assert_eq!(seen, [own.clone(), own.join("run"), own.join("upper")]);
        assert_eq!(marker, "mine");
        // The host's namespace still has every mount, and none of the copy's.
        assert_eq!(
            points_under(&root),
            [later, other, own.join("run"), own.join("upper")]
        );
    }
}
