//! The runtime layer's error type: every failure names what was being done and, where the
//! user can act, what to do next.

use std::path::PathBuf;

use super::agent_files::AgentFilesError;
use super::readiness::AgentError;

/// Everything that can go wrong while preparing, starting, stopping or removing a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The sandbox id cannot name a container or a directory.
    #[error(
        "invalid sandbox id {id:?}: {reason} (use 1-64 characters from A-Z a-z 0-9 _ . -, not starting with . or -)"
    )]
    InvalidId { id: String, reason: &'static str },

    /// The operation needs the sandbox's container to be running.
    #[error("sandbox {0} is not running")]
    NotRunning(String),

    /// A field of the sandbox specification is unusable.
    #[error("invalid sandbox spec for {id}: {reason}")]
    InvalidSpec { id: String, reason: String },

    /// The runtime settings cannot work on this machine.
    #[error("invalid runtime configuration: {0}")]
    InvalidConfig(String),

    /// The OCI runtime binary is missing or broken.
    #[error(
        "OCI runtime `{binary}` cannot be run: {reason}; install runc or point the runtime setting at a working binary"
    )]
    RuntimeBinary { binary: PathBuf, reason: String },

    /// The agent executable (or the libraries it needs) could not be placed under the root.
    #[error("cannot prepare the agent files in {dir}: {reason}")]
    AgentFiles {
        dir: PathBuf,
        #[source]
        reason: AgentFilesError,
    },

    /// The snapshot image a sandbox should boot from is not there.
    #[error("snapshot image {0} does not exist; build or pull the snapshot again")]
    SnapshotMissing(PathBuf),

    /// A filesystem operation on the host failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A host tool (`mount`, `umount`, `mke2fs`, `e2fsck`, `resize2fs`, the OCI runtime) failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },

    /// Loop devices a teardown let go of are still bound: something on the host still holds
    /// their filesystems open (a shell inside a mount, a process in the sandbox's cgroup).
    #[error(
        "loop devices {0} are still bound after the sandbox's disks were unmounted; find what holds them (`fuser -m`, `losetup -l`) and retry"
    )]
    LoopsStillBound(String),

    /// The sandbox's disk image could not be grown to a larger requested capacity.
    #[error(
        "cannot grow the sandbox disk {image} to {capacity} bytes: {reason}; start it with its previous capacity, or copy its files out and recreate it"
    )]
    GrowDisk {
        image: PathBuf,
        capacity: u64,
        reason: String,
    },

    /// The OCI config could not be generated.
    #[error("cannot generate the OCI config: {0}")]
    Bundle(String),

    /// Blocking host work (mounts, syscalls, small files) did not finish.
    #[error("{what} did not finish: {reason}")]
    BlockingTask {
        what: &'static str,
        reason: &'static str,
    },

    /// The container started but the agent never answered `GET /healthz`. The message
    /// carries the log's end but not its host path (`log`), since it reaches API answers.
    #[error(
        "sandbox {id} did not start: {reason}\n--- last lines of the agent log ---\n{log_tail}"
    )]
    NotReady {
        id: String,
        reason: String,
        /// Where the whole log is kept on the host, for the operator.
        log: PathBuf,
        log_tail: String,
    },

    /// The agent of a sandbox cannot be reached (or its socket was taken over).
    #[error(
        "cannot reach the agent of sandbox {id}: {reason}; if the sandbox is running, restart it"
    )]
    AgentUnreachable {
        id: String,
        #[source]
        reason: AgentError,
    },

    /// Mounts under the sandbox directory survived unmounting, so its files were kept.
    #[error(
        "sandbox {id} still has mounts after unmounting ({mounts}); its files were left in place — stop whatever holds them and destroy again"
    )]
    StillMounted { id: String, mounts: String },
}

impl RuntimeError {
    /// Host work on its own thread panicked (a bug; the panic itself went to the log).
    pub(crate) fn panicked(what: &'static str) -> Self {
        RuntimeError::BlockingTask {
            what,
            reason: "it panicked",
        }
    }

    /// Wraps an I/O error with the action and path it concerned.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RuntimeError::Io {
            action,
            path,
            source,
        }
    }
}
