//! Where the runtime keeps things under its root directory, and which names are valid.
//!
//! ```text
//! root/runc/                 state dir passed as `runc --root` (never the host's default)
//! root/agent/                the agent executable (+ lib/ for a dynamically linked one)
//! root/blank-images/         freshly formatted upper images by format (`blank_images`)
//! root/sandboxes/<id>/       upper.ext4, id-range (its last host id slot), lower-raw/ and
//!                            upper-raw/ (the layers as stored), lower/ and upperfs/
//!                            (the same, idmapped), capture/ (a capture's view), bundle/,
//!                            run/agent.sock (tmpfs, host only), log/agent.log (tmpfs,
//!                            host only), agent.log (end of the last run's log, kept
//!                            after stop)
//! /run/langsmith/views/<id>/ what runc sees while the sandbox starts (`runc_view`)
//! /run/langsmith/ranges/     which host id range each running sandbox holds (`id_range`)
//! ```

use std::path::{Path, PathBuf};

use super::RuntimeError;

/// Prefix of every container id we create, so `runc list` tells ours from anything else.
pub const CONTAINER_PREFIX: &str = "ls-";

/// The file name of the agent's socket inside `run/` (on the host only).
pub const AGENT_SOCKET_NAME: &str = "agent.sock";

/// Longest path a unix socket address can hold (`sun_path` minus the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Checks that `id` is usable as a directory name and (prefixed) as a runc container id.
pub fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let invalid = |reason| {
        Err(RuntimeError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() || id.len() > 64 {
        return invalid("length must be between 1 and 64");
    }
    if id.starts_with('.') || id.starts_with('-') {
        return invalid("must not start with . or -");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return invalid("contains a character other than A-Z a-z 0-9 _ . -");
    }
    Ok(())
}

/// The runc container id of a sandbox.
pub fn container_id(id: &str) -> String {
    format!("{CONTAINER_PREFIX}{id}")
}

/// The paths of one sandbox's files.
#[derive(Debug, Clone)]
pub struct SandboxLayout {
    pub id: String,
    pub dir: PathBuf,
    pub upper_image: PathBuf,
    /// Where blank upper images are kept for every sandbox (see `blank_images`).
    pub blank_images: PathBuf,
    /// The loop device the upper image was last bound to (`loopN`), kept until a teardown
    /// has seen the kernel let go of it.
    pub upper_loop: PathBuf,
    /// The snapshot image, as stored (owners as the image names them).
    pub lower_raw: PathBuf,
    /// The upper image, as stored.
    pub upper_raw: PathBuf,
    /// The snapshot image, idmapped to the sandbox's host ids.
    pub lower: PathBuf,
    /// The upper image, idmapped to the sandbox's host ids.
    pub upperfs: PathBuf,
    /// Where a capture reads the sandbox's files from.
    pub capture: PathBuf,
    pub run: PathBuf,
    pub log: PathBuf,
    pub bundle: PathBuf,
    pub pid_file: PathBuf,
    /// The live log of PID 1 on the `log/` tmpfs.
    pub agent_log: PathBuf,
    /// The end of the last run's log, saved to the host disk when the tmpfs goes.
    pub saved_log: PathBuf,
    pub socket: PathBuf,
}

impl SandboxLayout {
    pub fn new(sandboxes: &Path, id: &str) -> SandboxLayout {
        let dir = sandboxes.join(id);
        SandboxLayout {
            id: id.to_string(),
            upper_image: dir.join("upper.ext4"),
            blank_images: sandboxes.with_file_name("blank-images"),
            upper_loop: dir.join("upper.loop"),
            lower_raw: dir.join("lower-raw"),
            upper_raw: dir.join("upper-raw"),
            lower: dir.join("lower"),
            upperfs: dir.join("upperfs"),
            capture: dir.join("capture"),
            run: dir.join("run"),
            log: dir.join("log"),
            bundle: dir.join("bundle"),
            pid_file: dir.join("bundle").join("container.pid"),
            agent_log: dir.join("log").join("agent.log"),
            saved_log: dir.join("agent.log"),
            socket: dir.join("run").join(AGENT_SOCKET_NAME),
            dir,
        }
    }

    /// Creates the directories a start needs (the upper image is created by the rootfs code).
    pub fn create_dirs(&self) -> Result<(), RuntimeError> {
        for dir in [
            &self.lower_raw,
            &self.upper_raw,
            &self.lower,
            &self.upperfs,
            &self.run,
            &self.log,
            &self.bundle,
        ] {
            create_private_dir(dir)?;
        }
        Ok(())
    }

    /// Fails early when the socket path would not fit a unix socket address.
    pub fn check_socket_path(&self) -> Result<(), RuntimeError> {
        let len = self.socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(RuntimeError::InvalidConfig(format!(
                "agent socket path {} is {len} bytes, more than a unix socket allows ({MAX_SOCKET_PATH}); use a shorter runtime root",
                self.socket.display()
            )));
        }
        Ok(())
    }
}

/// Creates `dir` (and parents) readable only by root: sandbox files are nobody else's business.
pub fn create_private_dir(dir: &Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(RuntimeError::io("create directory", dir))
}

/// Rejects root paths that would break mount option strings (`lowerdir=a,upperdir=b`).
pub fn validate_root(root: &Path) -> Result<(), RuntimeError> {
    let text = root.to_str().ok_or_else(|| {
        RuntimeError::InvalidConfig(format!("runtime root {} is not UTF-8", root.display()))
    })?;
    if !root.is_absolute() {
        return Err(RuntimeError::InvalidConfig(format!(
            "runtime root {text} must be an absolute path"
        )));
    }
    if text.contains([',', ':', '\\', '\n']) {
        return Err(RuntimeError::InvalidConfig(format!(
            "runtime root {text} contains , : \\ or a newline, which mount options cannot carry; choose another directory"
        )));
    }
    Ok(())
}
