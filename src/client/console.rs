//! An interactive shell in a sandbox: an exec session ([`Client::start_exec`]'s) with a PTY,
//! no command (the sandbox starts the shell itself), no time limits, SSH-agent forwarding when
//! asked for, and `kill_on_disconnect`: a console never re-attaches, so a shell whose socket
//! dropped could never be reached again and would only hold the sandbox's resources.
//!
//! [`Client::start_console`] dials at once; [`Console::open`] waits for the shell, and
//! [`Console::run`] relays the caller's [`ConsoleInput`] (keystrokes, window sizes, a stop
//! request) to it and its output to one writer. This module knows nothing about terminals;
//! the script layer (`script::console`) feeds it from one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::exec::{Command, ExecEvent, ExecOptions, Starting};
use super::{Client, ClientError};
pub use crate::term::ConsoleInput;

/// Local variables a console carries into the sandbox when set and non-empty (as the LangSmith CLI does).
const FORWARDED_VARS: &[&str] = &[
    "TERM",
    "COLORTERM",
    "LANG",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
    "NO_COLOR",
];

/// How to start the console.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    /// Shell to run; `None` = the sandbox's default.
    pub shell: Option<String>,
    /// Environment of the shell (see [`forwarded_env`]).
    pub env: BTreeMap<String, String>,
    /// Local agent socket to forward (`--forward-ssh-agent`).
    pub ssh_agent: Option<PathBuf>,
}

impl ConsoleOptions {
    fn exec_options(&self) -> ExecOptions {
        ExecOptions {
            shell: self.shell.clone().filter(|s| !s.is_empty()),
            env: (!self.env.is_empty()).then(|| self.env.clone()),
            timeout_seconds: Some(0),
            idle_timeout_seconds: Some(-1),
            pty: true,
            kill_on_disconnect: true,
            ssh_agent: self.ssh_agent.clone(),
            // The screen gets the bytes as the terminal wrote them.
            raw_output: true,
            ..Default::default()
        }
    }
}

/// A started shell, not yet relaying.
pub struct Console {
    command: Command,
    /// Last byte shown, to end on a fresh line.
    last_byte: Option<u8>,
}

/// `TERM`, `COLORTERM`, `LANG`, `LC_*` and the colour switches of this process, when non-empty.
pub fn forwarded_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(key, value)| {
            !value.is_empty() && (FORWARDED_VARS.contains(&key.as_str()) || key.starts_with("LC_"))
        })
        .collect()
}

impl Client {
    /// Dial the sandbox's exec socket and ask for an interactive shell on a PTY; returns at
    /// once. Hanging up before [`Console::open`] returned leaves no shell behind. Must be
    /// called within the tokio runtime's context.
    pub fn start_console(&self, dataplane: &str, opts: &ConsoleOptions) -> Starting {
        self.start_session(dataplane, None, &opts.exec_options())
    }
}

impl Console {
    /// Wait until the shell runs, or say why it does not.
    pub async fn open(starting: Starting) -> Result<Console, ClientError> {
        let command = starting
            .started()
            .await
            .map_err(|e| server_said(e, "server error"))?;
        Ok(Console {
            command,
            last_byte: None,
        })
    }

    /// Relays until the shell exits (`Ok`), the caller sends [`ConsoleInput::Stop`] (`Ok`:
    /// the console hangs up, which ends the shell), the server reports an error, or the
    /// socket fails. All output goes to `out`.
    pub async fn run(
        mut self,
        input: mpsc::Receiver<ConsoleInput>,
        out: &mut (dyn Write + Send),
    ) -> Result<(), ClientError> {
        self.command.relay_terminal(input);
        let ended = loop {
            match self.command.next_event().await {
                // Under a PTY everything is on stdout; a stray stderr chunk goes the same way.
                Some(ExecEvent::Stdout(s) | ExecEvent::Stderr(s)) => self.show(out, &s),
                Some(ExecEvent::Exit(_)) => break Ok(()),
                Some(ExecEvent::Error(e)) => break Err(server_said(e, "server")),
                None => break Ok(()), // hung up on a stop request
            }
        };
        self.command.hang_up(); // closes every local agent connection too
        self.command.killer().finished().await;
        if self.last_byte.is_some_and(|byte| byte != b'\n') {
            write_out(out, b"\r\n"); // whatever the CLI prints next starts on its own line
        }
        ended
    }

    fn show(&mut self, out: &mut (dyn Write + Send), bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            self.last_byte = Some(last);
        }
        write_out(out, bytes);
    }
}

/// The sandbox's own `error` message as the console words it (`<context>: <message>`); a lost
/// socket comes worded already.
fn server_said(e: ClientError, context: &str) -> ClientError {
    match e {
        ClientError::Exec { message, .. } => ClientError::Failed(message).context(context),
        other => other,
    }
}

fn write_out(out: &mut (dyn Write + Send), bytes: &[u8]) {
    let _ = out.write_all(bytes);
    let _ = out.flush();
}
