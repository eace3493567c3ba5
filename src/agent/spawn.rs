//! Starting a command: shell resolution, environment, working directory, user, and the child's
//! stdio (pipes, or a PTY). Every command leads a new session (`setsid`) so one `killpg`
//! reaches the whole tree it starts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, Command};

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
    pub child: Child,
    /// Process id of the leader, which is also its process-group id.
    pub pid: u32,
    pub stdin: Option<BoxedWriter>,
    pub stdout: BoxedReader,
    /// Absent under a PTY (everything arrives on `stdout`).
    pub stderr: Option<BoxedReader>,
    /// The PTY master, kept for window-size changes.
    pub pty: Option<PtyMaster>,
}

/// Starts `request`. Errors say what is missing and what to do next.
pub fn spawn(request: &SpawnRequest) -> Result<Spawned, SpawnError> {
    let (program, args) = command_line(&request.program)?;
    let mut cmd = Command::new(&program);
    // The UTS name, not the agent's own `HOSTNAME`: a warm sandbox a create adopted was
    // renamed after its agent started (see the runtime's live settings).
    if let Ok(hostname) = nix::unistd::gethostname() {
        cmd.env("HOSTNAME", hostname);
    }
    cmd.args(&args).envs(&request.env).kill_on_drop(false);
    if let Some(cwd) = &request.cwd {
        if !Path::new(cwd).is_dir() {
            return Err(SpawnError::CwdMissing(cwd.clone()));
        }
        cmd.current_dir(cwd);
    }
    if let Some(spec) = &request.user {
        let user = resolve_user(spec, Path::new("/"))?;
        cmd.uid(user.uid).gid(user.gid);
        for (key, value) in user.env() {
            if !request.env.contains_key(key) {
                cmd.env(key, value);
            }
        }
    }
    if request.pty {
        spawn_on_pty(cmd, program)
    } else {
        spawn_with_pipes(cmd, program, request.stdin_pipe)
    }
}

fn spawn_with_pipes(
    mut cmd: Command,
    program: String,
    stdin_pipe: bool,
) -> Result<Spawned, SpawnError> {
    cmd.stdin(if stdin_pipe {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: setsid, open and write are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            first_to_go_under_oom();
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|source| SpawnError::Io { program, source })?;
    let pid = child.id().unwrap_or_default();
    let stdin = child.stdin.take().map(|s| Box::new(s) as BoxedWriter);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stdout = Box::new(super::wide_pipe::widen(stdout)) as BoxedReader;
    let stderr = child.stderr.take().map(|s| Box::new(s) as BoxedReader);
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout,
        stderr,
        pty: None,
    })
}

fn spawn_on_pty(mut cmd: Command, program: String) -> Result<Spawned, SpawnError> {
    let (master, slave) = PtyMaster::open().map_err(SpawnError::Pty)?;
    let stdio = |fd: &std::os::fd::OwnedFd| fd.try_clone().map(Stdio::from);
    cmd.stdin(stdio(&slave).map_err(SpawnError::Pty)?)
        .stdout(stdio(&slave).map_err(SpawnError::Pty)?)
        .stderr(stdio(&slave).map_err(SpawnError::Pty)?);
    // A default only: the request's (or the agent's own) TERM wins.
    let requested = cmd.as_std().get_envs().any(|(key, _)| key == "TERM");
    if !requested && std::env::var_os("TERM").is_none() {
        cmd.env("TERM", "xterm-256color");
    }
    // SAFETY: setsid, ioctl, open and write are async-signal-safe; fd 0 is the PTY slave.
    unsafe {
        cmd.pre_exec(|| {
            first_to_go_under_oom();
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|source| SpawnError::Io { program, source })?;
    drop(slave); // the child holds it now; the master sees EOF when the child side closes
    let pid = child.id().unwrap_or_default();
    Ok(Spawned {
        child,
        pid,
        stdin: Some(Box::new(master.clone())),
        stdout: Box::new(master.clone()),
        stderr: None,
        pty: Some(master),
    })
}

/// Marks the (forked, not yet exec'd) command as the OOM killer's first choice, so a command
/// that exhausts the sandbox's memory (a leak, a fork bomb) never takes the agent — PID 1,
/// whose death ends the whole sandbox — with it. Raising the score needs no privilege, and
/// every process the command starts inherits it. Best effort: without /proc it is skipped.
/// Only async-signal-safe calls: it runs between fork and exec.
fn first_to_go_under_oom() {
    const PATH: &[u8] = b"/proc/self/oom_score_adj\0";
    const MOST_EXPENDABLE: &[u8] = b"1000";
    // SAFETY: PATH is NUL-terminated; the fd is closed before returning.
    unsafe {
        let fd = libc::open(PATH.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            let _ = libc::write(fd, MOST_EXPENDABLE.as_ptr().cast(), MOST_EXPENDABLE.len());
            libc::close(fd);
        }
    }
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
