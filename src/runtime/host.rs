//! Running host tools (`mount`, `umount`, `mke2fs`, `e2fsck`, `resize2fs`, the OCI runtime)
//! with their output captured, so a failure reports the exact command and what it printed;
//! and other blocking host work, off the async workers.

use std::ffi::OsStr;
use std::process::{Output, Stdio};

use tokio::process::Command;

use super::RuntimeError;

/// Runs `program args…` to completion; a non-zero exit becomes [`RuntimeError::Command`].
pub async fn run<I, S>(program: impl AsRef<OsStr>, args: I) -> Result<Output, RuntimeError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args);
    let output = output(&mut command).await?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failure(&command, &output))
    }
}

/// Runs a prepared command with stdin closed and stdout/stderr captured; only a failure to
/// spawn is an error, the caller judges the exit status.
pub async fn output(command: &mut Command) -> Result<Output, RuntimeError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.output().await.map_err(|e| RuntimeError::Command {
        command: describe(command),
        status: "not started".to_string(),
        output: e.to_string(),
    })
}

/// The error for a command that ran and exited unsuccessfully.
pub fn failure(command: &Command, output: &Output) -> RuntimeError {
    failure_of(describe(command), output)
}

/// [`failure`] of a command described as `command` (one not run through tokio).
pub fn failure_of(command: String, output: &Output) -> RuntimeError {
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.trim().is_empty() {
        if !text.is_empty() {
            text.push_str(" | ");
        }
        text.push_str(stdout.trim());
    }
    RuntimeError::Command {
        command,
        status: output.status.to_string(),
        output: text,
    }
}

/// `program arg arg…` for messages.
pub fn describe(command: &Command) -> String {
    let std = command.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs blocking `work` (mounts, syscalls, small files) off the async workers; a panic in it,
/// or a runtime shutting down before it ran, becomes an error naming `what` was being done.
pub async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(if e.is_panic() {
            RuntimeError::panicked(what)
        } else {
            RuntimeError::BlockingTask {
                what,
                reason: "it was cancelled: the server is shutting down",
            }
        })
    })
}
