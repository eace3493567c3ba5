//! Running commands over `WS {dp}/execute/ws` (`spec/dataplane.md` §3).
//!
//! [`Client::exec`] sends `execute`, waits for `started` and hands back a [`Command`]: a handle
//! whose events (`stdout`/`stderr` chunks, then `exit` or a typed `error`) arrive on a channel
//! while a background task owns the socket. The task tracks byte offsets; when the socket drops
//! before a terminal message it re-attaches with `reconnect` from those offsets (≤ 5 tries,
//! backoff 0.5·2ⁿ s), so every byte is delivered once.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use super::exec_session::Session;
use super::files::dataplane_url;
use super::{Client, ClientError};
use crate::api::exec::ExecuteMessage;

/// Options of one command; `None` leaves the server default.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub shell: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    /// Wall-clock limit; `0` = none.
    pub timeout_seconds: Option<i64>,
    /// Start with stdin at EOF (otherwise stdin is a pipe fed by [`Command::send_input`]).
    pub close_stdin: bool,
}

/// What a running command reports, in order.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    Stdout(String),
    Stderr(String),
    /// Terminal: the command ended with this code.
    Exit(i32),
    /// Terminal: a typed failure (`CommandTimeout`, …) or a lost connection.
    Error(ClientError),
}

/// Collected output of a finished command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

pub(super) enum Control {
    Input(String),
    CloseStdin,
    Kill,
}

/// A running command. Clones share the same event stream (each event is delivered once).
#[derive(Clone, Debug)]
pub struct Command {
    pub command_id: String,
    pub pid: Option<u32>,
    events: Arc<Mutex<mpsc::UnboundedReceiver<ExecEvent>>>,
    control: mpsc::UnboundedSender<Control>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl Command {
    /// The next event; `None` after the terminal event was taken.
    pub async fn next_event(&self) -> Option<ExecEvent> {
        self.events.lock().await.recv().await
    }

    /// Collect the remaining output until the command ends.
    pub async fn wait(&self) -> Result<ExecOutput, ClientError> {
        let mut out = ExecOutput::default();
        while let Some(event) = self.next_event().await {
            match event {
                ExecEvent::Stdout(s) => out.stdout.push_str(&s),
                ExecEvent::Stderr(s) => out.stderr.push_str(&s),
                ExecEvent::Exit(code) => {
                    out.exit_code = code;
                    return Ok(out);
                }
                ExecEvent::Error(e) => return Err(e),
            }
        }
        Err(ClientError::Protocol(
            "the command's event stream ended without an exit".into(),
        ))
    }

    /// SIGKILL the command's process group; the exit still arrives as an event.
    pub fn kill(&self) {
        let _ = self.control.send(Control::Kill);
    }

    /// Write to the command's stdin (ignored when stdin is closed).
    pub fn send_input(&self, data: impl Into<String>) {
        let _ = self.control.send(Control::Input(data.into()));
    }

    /// Half-close stdin.
    pub fn close_stdin(&self) {
        let _ = self.control.send(Control::CloseStdin);
    }
}

/// `http://` → `ws://`, anything else → `wss://`; `/execute/ws` appended.
pub fn exec_ws_url(dataplane: &str) -> String {
    let url = dataplane_url(dataplane, "/execute/ws");
    match url.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => format!("wss://{}", url.strip_prefix("https://").unwrap_or(&url)),
    }
}

impl Client {
    /// Start `command` (a shell string) and return once the server acknowledged it.
    pub async fn exec(
        &self,
        dataplane: &str,
        command: &str,
        opts: &ExecOptions,
    ) -> Result<Command, ClientError> {
        super::install_crypto_provider();
        let execute = ExecuteMessage {
            command: Some(command.to_string()),
            timeout_seconds: opts.timeout_seconds,
            shell: opts.shell.clone(),
            env: opts.env.clone(),
            cwd: opts.cwd.clone(),
            command_id: Some(uuid::Uuid::now_v7().simple().to_string()),
            close_stdin: opts.close_stdin.then_some(true),
            ..Default::default()
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let session = Session {
            url: exec_ws_url(dataplane),
            api_key: self.api_key().to_string(),
            execute,
            offsets: [0, 0],
            events: events_tx,
            started: Some(started_tx),
        };
        tokio::spawn(session.run(control_rx));
        match started_rx.await {
            Ok(Ok((command_id, pid))) => Ok(Command {
                command_id,
                pid,
                events: Arc::new(Mutex::new(events_rx)),
                control: control_tx,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Protocol(
                "exec session ended before it started".into(),
            )),
        }
    }

    /// Run `command` to completion and collect its output.
    pub async fn run(
        &self,
        dataplane: &str,
        command: &str,
        opts: &ExecOptions,
    ) -> Result<ExecOutput, ClientError> {
        self.exec(dataplane, command, opts).await?.wait().await
    }
}
