//! What runc sees of a sandbox while it starts it, in a mount namespace of its own.
//!
//! runc sets up the container's mounts from inside its user namespace, as the sandbox's
//! root, which host directories owned by host root do not let through: the state directory
//! (often under `/root`, mode 0700) is out of its reach, and must stay so. So everything the
//! container mounts is gathered at `/run/langsmith/views/<digest>/` (of the runtime root and
//! the sandbox id): a small tmpfs owned by the
//! sandbox's root (mode 0700) holding the root filesystem (the overlay), the agent's files
//! (bound read-only), `resolv.conf` and the egress CA.
//!
//! That tmpfs and everything on it exist only in a throwaway mount namespace, made by a
//! thread of the server for one start as a copy of the views' template (see
//! `view_template`: the host's mounts a start needs, private, so nothing propagates
//! back) with the sandbox's own mounts attached, and entered by `runc run` alone. The
//! container copies what it needs into its own namespace; once runc has returned and the
//! namespace's descriptor is dropped, the namespace and its mounts are gone. The host
//! never has the overlay mounted, and a crash mid-start leaves no view mount behind. On
//! the host, the view's `rootfs` is an empty directory: runc enters it before it joins the
//! container in `runc exec`.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};

use super::id_range::IdRange;
use super::layout::SandboxLayout;
use super::view_template::ViewTemplate;
use super::{RuntimeError, idmapped, rootfs};

/// Where the views live: on the host's `/run` tmpfs, so a reboot leaves none behind.
pub const ROOT: &str = "/run/langsmith/views";
/// Its parent, which every sandbox's root must be able to walk through too.
const PARENT: &str = "/run/langsmith";

/// The paths runc is given for one sandbox.
#[derive(Debug, Clone)]
pub struct RuncView {
    pub dir: PathBuf,
    /// The overlay (the sandbox's `/`).
    pub rootfs: PathBuf,
    /// The agent executable and its libraries, bound read-only.
    pub agent: PathBuf,
    pub resolv_conf: PathBuf,
    pub egress_ca: PathBuf,
}

/// What goes into a view besides the sandbox's layers.
pub struct ViewContents {
    pub agent_dir: PathBuf,
    pub hostname: String,
    pub resolv_conf: String,
    pub egress_ca: Option<String>,
}

impl RuncView {
    /// The view of sandbox `id` of the runtime at `root`. Named by a digest of both, so two
    /// servers' sandboxes of the same id never share one.
    pub fn of(root: &Path, id: &str) -> RuncView {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(root.as_os_str().as_encoded_bytes());
        hash.update([0]);
        hash.update(id.as_bytes());
        let dir = Path::new(ROOT).join(&hex::encode(hash.finalize())[..32]);
        RuncView {
            rootfs: dir.join("rootfs"),
            agent: dir.join("agent"),
            resolv_conf: dir.join("resolv.conf"),
            egress_ca: dir.join("egress-ca.pem"),
            dir,
        }
    }

    /// Builds the view in a new mount namespace and answers that namespace, for `runc run`
    /// to enter. Blocking: mounts, on a thread of its own.
    pub fn prepare(
        &self,
        template: &ViewTemplate,
        layout: &SandboxLayout,
        range: IdRange,
        contents: &ViewContents,
    ) -> Result<OwnedFd, RuntimeError> {
        self.create_host_dirs()?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.build_in_own_namespace(template, layout, range, contents))
                .join()
                .unwrap_or_else(|_| Err(RuntimeError::panicked("preparing runc's view")))
        })
    }

    /// Removes the view's host directories (never mounted on the host). Safe to repeat.
    pub fn remove(&self) -> Result<(), RuntimeError> {
        for dir in [&self.rootfs, &self.dir] {
            match fs::remove_dir(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(RuntimeError::io("remove", dir)(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `/run/langsmith/views` (walkable by every sandbox's root), this view's directory and
    /// its empty `rootfs/`, on the host.
    fn create_host_dirs(&self) -> Result<(), RuntimeError> {
        for (dir, mode) in [
            (Path::new(ROOT), 0o711),
            (&self.dir, 0o700),
            (&self.rootfs, 0o700),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(dir)
                .map_err(RuntimeError::io("create directory", dir))?;
        }
        // Whatever the umask made of them.
        for dir in [PARENT, ROOT] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o711))
                .map_err(RuntimeError::io("open up", dir))?;
        }
        Ok(())
    }

    /// Runs on a thread of its own, which ends with it: its mount namespace, working
    /// directory and credentials change, and nothing else's does.
    fn build_in_own_namespace(
        &self,
        template: &ViewTemplate,
        layout: &SandboxLayout,
        range: IdRange,
        contents: &ViewContents,
    ) -> Result<OwnedFd, RuntimeError> {
        let os = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |e: nix::Error| RuntimeError::io(what, path)(e.into())
        };
        template.enter_copy(&layout.dir)?;
        let none: Option<&str> = None;
        let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        let tmpfs_options = format!("size=1m,mode=0700,uid={0},gid={0}", range.first);
        mount(
            Some("langsmith-view"),
            &self.dir,
            Some("tmpfs"),
            quiet | MsFlags::MS_NOEXEC,
            Some(tmpfs_options.as_str()),
        )
        .map_err(os("mount a tmpfs at", &self.dir))?;
        for dir in [&self.rootfs, &self.agent] {
            fs::create_dir(dir).map_err(RuntimeError::io("create directory", dir))?;
        }
        mount(
            Some(&contents.agent_dir),
            &self.agent,
            none,
            MsFlags::MS_BIND,
            none,
        )
        .map_err(os("bind the agent at", &self.agent))?;
        let read_only = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | quiet;
        mount(none, &self.agent, none, read_only, none)
            .map_err(os("make read-only", &self.agent))?;
        write_public(&self.resolv_conf, &contents.resolv_conf)?;
        if let Some(pem) = &contents.egress_ca {
            write_public(&self.egress_ca, pem)?;
        }
        let namespace = fs::File::open("/proc/thread-self/ns/mnt")
            .map(OwnedFd::from)
            .map_err(RuntimeError::io("open", "this thread's mount namespace"))?;
        idmapped::become_sandbox_root(range, &layout.dir)?;
        rootfs::mount_overlay(layout, &self.rootfs)?;
        rootfs::write_identity_files(&self.rootfs, &contents.hostname)?;
        Ok(namespace)
    }
}

/// Writes `text` to a new file readable by all (the sandbox's root reads it as "other").
fn write_public(path: &Path, text: &str) -> Result<(), RuntimeError> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(RuntimeError::io("create", path))?;
    file.write_all(text.as_bytes())
        .map_err(RuntimeError::io("write", path))?;
    // The umask may have narrowed the mode given at creation.
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .map_err(RuntimeError::io("open up", path))
}
