//! Starting a command: shell resolution, environment, working directory, user, and the child's
//! stdio (pipes, or a PTY). Every command leads a new session (`setsid`) so one `killpg`
//! reaches the whole tree it starts.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

use super::child_process::{self, ChildProcess, Launch};
use super::pty::PtyMaster;
use super::user::{UserError, resolve_user};
use crate::api::exec::defaults;

/// The shell tried when the default `/bin/bash` is absent (busybox and distroless-ish images).
pub const FALLBACK_SHELL: &str = "/bin/sh";

/// What to run.
#[derive(Debug, Clone)]
pub enum Program {
    /// `<shell> -c <command>`, or an interactive `<shell>` when `command` is absent (PTY consoles).
    Shell {
        shell: Option<String>,
        command: Option<String>,
    },
    /// Run directly, `argv[0]` resolved through `PATH`.
    Argv(Vec<String>),
}

/// Everything needed to start one command.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    pub program: Program,
    /// Merged over the agent's own environment.
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    /// `uid[:gid]` or a user name from `/etc/passwd`.
    pub user: Option<String>,
    /// Keep stdin open as a pipe (otherwise it is at EOF from the start).
    pub stdin_pipe: bool,
    pub pty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "no shell to run the command: neither {} nor {FALLBACK_SHELL} exists in this sandbox; \
         install one or pass an existing `shell`",
        defaults::SHELL
    )]
    NoDefaultShell,
    #[error("shell {0} does not exist in this sandbox; pass an existing `shell` (e.g. /bin/sh)")]
    ShellMissing(String),
    #[error("working directory {0} does not exist or is not a directory; create it first")]
    CwdMissing(String),
    #[error("the command is empty; pass at least a program name")]
    EmptyArgv,
    #[error(transparent)]
    User(#[from] UserError),
    #[error("could not allocate a pseudo-terminal: {0}")]
    Pty(std::io::Error),
    #[error("could not start {program}: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
}

pub type BoxedReader = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxedWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// A started command and the agent's ends of its stdio.
pub struct Spawned {
    pub child: ChildProcess,
    /// Process id of the leader, which is also its process-group id.
    pub pid: u32,
    pub stdin: Option<BoxedWriter>,
    pub stdout: BoxedReader,
    /// Whether `stdout` was widened (see [`super::wide_pipe`]): only a wide pipe holds
    /// enough for its reader to let it fill between reads.
    pub stdout_wide: bool,
    /// Absent under a PTY (everything arrives on `stdout`).
    pub stderr: Option<BoxedReader>,
    /// The PTY master, kept for window-size changes.
    pub pty: Option<PtyMaster>,
}

/// Starts `request`. Errors say what is missing and what to do next.
pub fn spawn(request: &SpawnRequest) -> Result<Spawned, SpawnError> {
    let (program, args) = command_line(&request.program)?;
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    // The UTS name, not the agent's own `HOSTNAME`: a warm sandbox a create adopted was
    // renamed after its agent started (see the runtime's live settings).
    if let Ok(hostname) = nix::unistd::gethostname() {
        env.insert("HOSTNAME".into(), hostname);
    }
    env.extend(
        request
            .env
            .iter()
            .map(|(key, value)| (key.into(), value.into())),
    );
    if let Some(cwd) = &request.cwd
        && !Path::new(cwd).is_dir()
    {
        return Err(SpawnError::CwdMissing(cwd.clone()));
    }
    let mut user = None;
    if let Some(spec) = &request.user {
        let resolved = resolve_user(spec, Path::new("/"))?;
        for (key, value) in resolved.env() {
            if !request.env.contains_key(key) {
                env.insert(key.into(), value.into());
            }
        }
        user = Some((resolved.uid, resolved.gid));
    }
    let io_error = |source| SpawnError::Io {
        program: program.clone(),
        source,
    };
    let launch = |stdio, controlling_terminal, env: BTreeMap<OsString, OsString>| Launch {
        program: program.clone().into(),
        args: args.iter().map(OsString::from).collect(),
        env: env.into_iter().collect(),
        cwd: request.cwd.as_ref().map(OsString::from),
        user,
        stdio,
        controlling_terminal,
    };
    if request.pty {
        // A default only: the request's (or the agent's own) TERM wins.
        env.entry("TERM".into())
            .or_insert_with(|| "xterm-256color".into());
        let (master, slave) = PtyMaster::open().map_err(SpawnError::Pty)?;
        let stdio = [
            slave.try_clone().map_err(SpawnError::Pty)?,
            slave.try_clone().map_err(SpawnError::Pty)?,
            slave,
        ];
        let child = child_process::start(launch(stdio, true, env)).map_err(io_error)?;
        return Ok(Spawned {
            pid: child.id(),
            child,
            stdin: Some(Box::new(master.clone())),
            stdout: Box::new(master.clone()),
            stdout_wide: false,
            stderr: None,
            pty: Some(master),
        });
    }
    let stdin = if request.stdin_pipe {
        Some(pipe().map_err(io_error)?)
    } else {
        None
    };
    let (stdout, stdout_end) = pipe().map_err(io_error)?;
    let (stderr, stderr_end) = pipe().map_err(io_error)?;
    let (stdin, stdin_end) = match stdin {
        Some((read_end, writer)) => (Some(writer), read_end),
        None => (None, dev_null().map_err(io_error)?),
    };
    let stdio = [stdin_end, stdout_end, stderr_end];
    let child = child_process::start(launch(stdio, false, env)).map_err(io_error)?;
    let stdin = match stdin {
        Some(fd) => {
            Some(Box::new(pipe::Sender::from_owned_fd(fd).map_err(io_error)?) as BoxedWriter)
        }
        None => None,
    };
    let stdout = super::wide_pipe::widen(pipe::Receiver::from_owned_fd(stdout).map_err(io_error)?);
    let stderr = pipe::Receiver::from_owned_fd(stderr).map_err(io_error)?;
    Ok(Spawned {
        pid: child.id(),
        child,
        stdin,
        stdout_wide: stdout.is_wide(),
        stdout: Box::new(stdout),
        stderr: Some(Box::new(stderr)),
        pty: None,
    })
}

/// A pipe as (read end, write end), neither inherited by other commands.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// `/dev/null` for reading: the stdin of a command that gets none.
fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(std::fs::File::open("/dev/null")?.into())
}

/// The program and its arguments for `program`.
fn command_line(program: &Program) -> Result<(String, Vec<String>), SpawnError> {
    match program {
        Program::Argv(argv) => {
            let (first, rest) = argv.split_first().ok_or(SpawnError::EmptyArgv)?;
            Ok((first.clone(), rest.to_vec()))
        }
        Program::Shell { shell, command } => {
            let shell = resolve_shell(shell.as_deref())?;
            let args = match command {
                Some(command) => vec!["-c".to_string(), command.clone()],
                None => Vec::new(),
            };
            Ok((shell, args))
        }
    }
}

/// The default shell falls back to `/bin/sh` because every client sends `/bin/bash` even when
/// the user never chose it; any other explicitly requested shell must exist.
pub fn resolve_shell(requested: Option<&str>) -> Result<String, SpawnError> {
    match requested {
        None | Some(defaults::SHELL) | Some("") => [defaults::SHELL, FALLBACK_SHELL]
            .into_iter()
            .find(|candidate| Path::new(candidate).exists())
            .map(str::to_string)
            .ok_or(SpawnError::NoDefaultShell),
        Some(shell) if shell.contains('/') && !Path::new(shell).exists() => {
            Err(SpawnError::ShellMissing(shell.to_string()))
        }
        Some(shell) => Ok(shell.to_string()),
    }
}

/// Exit code of a finished process: its status, or 128 + signal like a shell reports it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shell_falls_back_but_an_explicit_one_must_exist() {
        let expected = if Path::new(defaults::SHELL).exists() {
            defaults::SHELL
        } else {
            FALLBACK_SHELL
        };
        assert_eq!(resolve_shell(None).unwrap(), expected);
        assert_eq!(resolve_shell(Some(defaults::SHELL)).unwrap(), expected);
        assert_eq!(resolve_shell(Some(FALLBACK_SHELL)).unwrap(), FALLBACK_SHELL);
        let missing = resolve_shell(Some("/nonexistent")).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent does not exist"), "{missing}");
    }
}
