//! The OCI runtime driver: `runc --root <root>/runc …` for run, state, list and delete. Our
//! own state root keeps us away from the host's containers and theirs away from us.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::layout::{CONTAINER_PREFIX, SandboxLayout};
use super::sealed_binary::SealedBinary;
use super::{ContainerState, RuntimeError, host, spawn_in_namespace};

/// Runs the configured OCI runtime binary against the runtime's own state directory.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    /// Where `binary` is ([`Runc::located`]), looked up once.
    located: Option<PathBuf>,
    state_root: PathBuf,
    /// What `run` starts (see `sealed_binary`); `None` if the copy could not be made, and
    /// then `binary` itself, which runc copies on each start.
    sealed: Option<SealedBinary>,
}

impl Runc {
    /// A driver of `binary`; [`Runc::seal`] then makes the copy `run` starts from.
    pub fn new(binary: PathBuf, state_root: PathBuf) -> Runc {
        Runc {
            located: locate(&binary),
            binary,
            state_root,
            sealed: None,
        }
    }

    /// Makes the sealed copy `run` starts from, once it has run (`--version`): a host may
    /// forbid executing memory (SELinux, IMA, `vm.memfd_noexec`). Without a copy starts
    /// still work, each a little slower; the reason is logged. Blocking: reads the whole
    /// binary and runs the copy.
    pub fn seal(&mut self) {
        let copied = self
            .binary_path()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
            .and_then(|path| SealedBinary::copy_of(&path))
            .and_then(|sealed| {
                let ran = std::process::Command::new(sealed.exec_path())
                    .arg0(&self.binary)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()?;
                if !ran.success() {
                    return Err(std::io::Error::other(format!("--version {ran}")));
                }
                Ok(sealed)
            });
        match copied {
            Ok(sealed) => self.sealed = Some(sealed),
            Err(e) => tracing::info!(
                binary = %self.binary.display(),
                "starting containers from the OCI runtime binary itself, not a sealed copy of it: {e}"
            ),
        }
    }

    /// Where the binary is: looked up in `PATH` when it is a bare name. `None` if it is
    /// nowhere to be found.
    pub fn located(&self) -> Option<&Path> {
        self.located.as_deref()
    }

    /// [`Runc::located`], symbolic links resolved.
    pub fn binary_path(&self) -> Option<PathBuf> {
        self.located().and_then(|path| path.canonicalize().ok())
    }

    /// Checks that the binary runs at all (`runc --version`), so a bad setting fails at startup.
    pub fn check(&self) -> Result<(), RuntimeError> {
        let fail = |reason: String| RuntimeError::RuntimeBinary {
            binary: self.binary.clone(),
            reason,
        };
        let output = std::process::Command::new(&self.binary)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(fail(format!(
                "--version exited {}: {}",
                output.status,
                stderr.trim()
            )));
        }
        Ok(())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.state_root);
        command
    }

    /// `runc run -d`: creates and starts the container in the background. Its stdout and
    /// stderr (the agent's, and runc's own complaints) go to the agent log on its tmpfs.
    /// `agent_socket` becomes the container process's descriptor 3 (`--preserve-fds 1`):
    /// the agent serves on it, so the socket's path stays on the host, where the sandbox
    /// cannot replace it.
    ///
    /// runc runs in `mount_namespace` (the sandbox's view: see `runc_view`), which a thread
    /// of its own enters to start it (see `spawn_in_namespace`). runc always runs to its end,
    /// even if this future is dropped: `run -d` ends once the container has started, and a
    /// server that stopped meanwhile takes a running container over when it starts again.
    pub async fn run_detached(
        &self,
        container: &str,
        layout: &SandboxLayout,
        agent_socket: &UnixListener,
        mount_namespace: BorrowedFd<'_>,
    ) -> Result<(), RuntimeError> {
        // Host root's alone: the sandbox's root cannot reopen it through `/proc/1/fd`.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&layout.agent_log)
            .map_err(RuntimeError::io("open", &layout.agent_log))?;
        let log_err = log
            .try_clone()
            .map_err(RuntimeError::io("open", &layout.agent_log))?;
        let mut command = self.command();
        command
            .arg("run")
            .arg("-d")
            .arg("--preserve-fds")
            .arg("1")
            .arg("--pid-file")
            .arg(&layout.pid_file)
            .arg("--bundle")
            .arg(&layout.bundle)
            .arg(container);
        let described = host::describe(&command);
        let std = command.as_std();
        let argv: Vec<OsString> = std::iter::once(std.get_program())
            .chain(std.get_args())
            .map(OsString::from)
            .collect();
        let failed = |status: String, output: String| RuntimeError::Command {
            command: described.clone(),
            status,
            output,
        };
        let copy = |fd: BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|e| failed("not started".into(), e.to_string()))
        };
        let null = std::fs::File::open("/dev/null")
            .map_err(|e| failed("not started".into(), e.to_string()))?;
        // Copies of the caller's descriptors: the thread that starts runc owns what it uses.
        // (`setns` moves runc to the namespace's `/`; every path it is given is absolute.)
        let program = spawn_in_namespace::Program {
            argv,
            executable: self.sealed.clone(),
            namespace: copy(mount_namespace)?,
            descriptors: vec![
                null.into(),
                log.into(),
                log_err.into(),
                copy(agent_socket.as_fd())?,
            ],
        };
        let status = spawn_in_namespace::run(program)
            .await
            .map_err(|e| failed("not started".into(), e.to_string()))?;
        if status.success() {
            return Ok(());
        }
        Err(failed(
            status.to_string(),
            "its complaint is in the agent log".to_string(),
        ))
    }

    /// Whether runc may know `container`: it keeps one directory per container, named by
    /// its id, in its state root (runc and crun alike), from `create` until `delete`. Without
    /// one there is nothing to ask, and not starting a runc process to hear "does not exist"
    /// saves milliseconds on every new sandbox's start and every stopped one's teardown.
    async fn has_record(&self, container: &str) -> bool {
        // An error (other than "not found") is not a "no": runc is asked.
        tokio::fs::try_exists(self.state_root.join(container))
            .await
            .unwrap_or(true)
    }

    /// The container's state; anything runc cannot report is `Absent`.
    pub async fn state(&self, container: &str) -> ContainerState {
        if !self.has_record(container).await {
            return ContainerState::Absent;
        }
        let mut command = self.command();
        command.arg("state").arg(container);
        let Ok(output) = host::output(&mut command).await else {
            return ContainerState::Absent;
        };
        if !output.status.success() {
            return ContainerState::Absent;
        }
        let status = serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .ok()
            .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string));
        match status.as_deref() {
            Some("running") => ContainerState::Running,
            Some("paused") => ContainerState::Frozen,
            Some(_) => ContainerState::Stopped,
            None => ContainerState::Absent,
        }
    }

    /// Sandbox ids of every container in our state root.
    pub async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let mut command = self.command();
        command.arg("list").arg("--quiet");
        let output = host::output(&mut command).await?;
        if !output.status.success() {
            return Err(host::failure(&command, &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.trim().strip_prefix(CONTAINER_PREFIX))
            .map(str::to_string)
            .collect())
    }

    /// `runc pause` / `runc resume`: freeze or thaw every process of the container (the
    /// cgroup freezer), so its files can be read while nothing writes them.
    pub async fn set_frozen(&self, container: &str, frozen: bool) -> Result<(), RuntimeError> {
        let mut command = self.command();
        command
            .arg(if frozen { "pause" } else { "resume" })
            .arg(container);
        let output = host::output(&mut command).await?;
        if output.status.success() {
            return Ok(());
        }
        Err(host::failure(&command, &output))
    }

    /// Kills (SIGKILL: the whole pid namespace goes with its init) and deletes the container.
    /// A container that does not exist is not an error.
    pub async fn delete(&self, container: &str) -> Result<(), RuntimeError> {
        if !self.has_record(container).await {
            return Ok(());
        }
        let mut command = self.command();
        command.arg("delete").arg("--force").arg(container);
        let output = host::output(&mut command).await?;
        if output.status.success() || self.state(container).await == ContainerState::Absent {
            return Ok(());
        }
        Err(host::failure(&command, &output))
    }
}

/// Where `binary` is: itself when it names a path, else the first file of that name in
/// `PATH`.
fn locate(binary: &Path) -> Option<PathBuf> {
    if binary.components().count() > 1 {
        return Some(binary.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn runc_found_in_path_runs_from_a_sealed_copy_and_a_script_from_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut runc = Runc::new(PathBuf::from("runc"), dir.path().join("state"));
        if runc.located().is_none() {
            eprintln!("skipped: runc is not installed");
            return;
        }
        runc.seal();
        let sealed = runc.sealed.as_ref().expect("a sealed copy of runc");
        let version = std::process::Command::new(sealed.exec_path())
            .arg("--version")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&version.stdout).contains("runc version"));

        let script = dir.path().join("runtime");
        std::fs::write(&script, "#!/bin/sh\nexec runc \"$@\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut wrapped = Runc::new(script.clone(), dir.path().join("state"));
        wrapped.seal();
        assert!(wrapped.sealed.is_none());
        assert_eq!(wrapped.binary_path(), Some(script.canonicalize().unwrap()));
    }
}
