//! Running commands over `WS {dp}/execute/ws`.
//!
//! [`Client::start_exec`] spawns the background task that owns the socket and returns a
//! [`Starting`] at once — its [`Killer`] can stop the command even before the server
//! acknowledged it; [`Starting::started`] then waits for `started` and yields a [`Command`].
//! Events (`stdout`/`stderr` chunks, then `exit` or a typed `error`) arrive on a bounded
//! channel, so a slow reader back-pressures the socket instead of growing memory. The task
//! tracks byte offsets; when the socket drops before a terminal message it re-attaches with
//! `reconnect` from those offsets (≤ 5 tries in a row, backoff 0.5·2ⁿ s), so every byte is
//! delivered exactly once. A command started with [`ExecOptions::kill_on_disconnect`] (the
//! interactive console) has one attachment only: it dies with its socket, so the session never
//! re-attaches and [`Killer::hang_up`] stops it without a round trip.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::exec_session::{LostBytes, Session, Started};
use super::{Client, ClientError};
use crate::api::exec::ExecuteMessage;

/// Events buffered between the socket and a slow reader (each ≤ 128 KiB of output as text,
/// ≤ 256 KiB in binary frames).
const EVENT_BUFFER: usize = 16;
/// Chunks of forwarded stdin buffered before the local reader waits.
pub(super) const STDIN_BUFFER: usize = 8;

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
    /// Run under a pseudo-terminal (stdout and stderr merge into `stdout`); its window size
    /// follows [`Command::resize`].
    pub pty: bool,
    /// Seconds the command may go without an attached client; `-1` = forever.
    pub idle_timeout_seconds: Option<i64>,
    /// The command dies when its socket drops. The session then never re-attaches (there
    /// would be nothing to attach to): the first lost socket ends it with an error.
    pub kill_on_disconnect: bool,
    /// Forward the local SSH agent listening on this socket: the sandbox gets an agent socket
    /// of its own whose channels the session serves from this one.
    pub ssh_agent: Option<PathBuf>,
    /// Output is only copied to a file descriptor: ask for it as raw bytes (binary frames,
    /// see [`crate::api::exec_frames`]), exact where it is not UTF-8 and not inflated by
    /// escaping. Chunks are then cut anywhere, even inside a character; a server that does
    /// not offer the frames sends text as always.
    pub raw_output: bool,
}

/// What a running command reports, in order. Output is the command's bytes: UTF-8 text cut at
/// character boundaries, or raw bytes cut anywhere with [`ExecOptions::raw_output`].
#[derive(Debug, Clone)]
pub enum ExecEvent {
    Stdout(Bytes),
    Stderr(Bytes),
    /// Terminal: the command ended with this code (128 + signal number after a signal).
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

/// Requests to the session task that are small and must never wait behind output.
pub(super) enum Control {
    Input(String),
    CloseStdin,
    Kill,
    /// Kill, and from now on drop output nobody may read instead of waiting for a reader.
    Abort,
    Resize {
        cols: u16,
        rows: u16,
    },
}

/// Forwarded local stdin, in order, on its own bounded channel (see [`Command::forward_stdin`]).
pub(super) enum StdinItem {
    Data(String),
    Close,
}

/// Stops a command from any thread, before or after it started. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Killer {
    control: mpsc::UnboundedSender<Control>,
    hang_up: Arc<Notify>,
}

impl Killer {
    /// SIGKILL the command's process group and stop holding its output for a reader; the
    /// session still ends only once the server confirmed the end (or gave up reconnecting).
    pub fn abort(&self) {
        let _ = self.control.send(Control::Abort);
    }

    /// Close the socket and end the session at once, started or not (a dial still under way
    /// is dropped). A command started with [`ExecOptions::kill_on_disconnect`] dies with it;
    /// any other keeps running on the sandbox. The event stream ends without a terminal event.
    pub fn hang_up(&self) {
        self.hang_up.notify_one();
    }

    /// Whether the session task has ended (the command's end was seen or the task gave up).
    pub fn is_finished(&self) -> bool {
        self.control.is_closed()
    }

    /// Resolves once the session task has ended.
    pub async fn finished(&self) {
        self.control.closed().await
    }
}

/// A command whose session task runs but whose `started` may not have arrived yet.
pub struct Starting {
    lost: LostBytes,
    started: oneshot::Receiver<Started>,
    events: mpsc::Receiver<ExecEvent>,
    control: mpsc::UnboundedSender<Control>,
    hang_up: Arc<Notify>,
    stdin: mpsc::Sender<StdinItem>,
    kill_on_disconnect: bool,
}

impl Starting {
    pub fn killer(&self) -> Killer {
        Killer {
            control: self.control.clone(),
            hang_up: self.hang_up.clone(),
        }
    }

    /// Wait for the server's `started` (or the reason there is none).
    pub async fn started(self) -> Result<Command, ClientError> {
        match self.started.await {
            Ok(Ok((command_id, pid))) => Ok(Command {
                command_id,
                pid,
                events: Arc::new(Mutex::new(self.events)),
                control: self.control,
                hang_up: self.hang_up,
                stdin: self.stdin,
                lost: self.lost,
                kill_on_disconnect: self.kill_on_disconnect,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Protocol(
                "exec session ended before it started".into(),
            )),
        }
    }
}

/// A running command. Clones share the same event stream (each event is delivered once).
#[derive(Clone, Debug)]
pub struct Command {
    pub command_id: String,
    pub pid: Option<u32>,
    events: Arc<Mutex<mpsc::Receiver<ExecEvent>>>,
    control: mpsc::UnboundedSender<Control>,
    hang_up: Arc<Notify>,
    pub(super) stdin: mpsc::Sender<StdinItem>,
    lost: LostBytes,
    /// Started with [`ExecOptions::kill_on_disconnect`]: hanging up kills it.
    pub(super) kill_on_disconnect: bool,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl std::fmt::Debug for StdinItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StdinItem")
    }
}

impl Command {
    /// The next event; `None` after the terminal event was taken.
    pub async fn next_event(&self) -> Option<ExecEvent> {
        self.events.lock().await.recv().await
    }

    /// Collect the remaining output until the command ends.
    pub async fn wait(&self) -> Result<ExecOutput, ClientError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(event) = self.next_event().await {
            match event {
                ExecEvent::Stdout(bytes) => stdout.extend_from_slice(&bytes),
                ExecEvent::Stderr(bytes) => stderr.extend_from_slice(&bytes),
                ExecEvent::Exit(exit_code) => {
                    return Ok(ExecOutput {
                        stdout: text_of(&stdout),
                        stderr: text_of(&stderr),
                        exit_code,
                    });
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

    /// Set the PTY window size (ignored without a PTY).
    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = self.control.send(Control::Resize { cols, rows });
    }

    /// See [`Killer::hang_up`].
    pub fn hang_up(&self) {
        self.hang_up.notify_one();
    }

    pub fn killer(&self) -> Killer {
        Killer {
            control: self.control.clone(),
            hang_up: self.hang_up.clone(),
        }
    }

    /// `(stdout, stderr)` bytes never delivered: after a long disconnection the server may no
    /// longer hold them (its replay window is bounded); the rest of the output still follows.
    pub fn lost_bytes(&self) -> (u64, u64) {
        let [out, err] = &*self.lost;
        (out.load(Ordering::Relaxed), err.load(Ordering::Relaxed))
    }
}

/// Output as text: as it is when it is UTF-8 (always, unless raw output was asked for),
/// otherwise with U+FFFD for what is not.
pub fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `http://` → `ws://`, anything else → `wss://`; `/execute/ws` appended.
pub fn exec_ws_url(dataplane: &str) -> String {
    super::exec_socket::ws_url(dataplane, "/execute/ws")
}

impl Client {
    /// Spawn the session task for `command` (a shell string) and return without waiting.
    /// Must be called within the tokio runtime's context.
    pub fn start_exec(&self, dataplane: &str, command: &str, opts: &ExecOptions) -> Starting {
        self.start_session(dataplane, Some(command.to_string()), opts)
    }

    /// Like [`Self::start_exec`]; without a command the sandbox starts its shell itself
    /// (an interactive console).
    pub(super) fn start_session(
        &self,
        dataplane: &str,
        command: Option<String>,
        opts: &ExecOptions,
    ) -> Starting {
        super::install_crypto_provider();
        let execute = ExecuteMessage {
            command,
            timeout_seconds: opts.timeout_seconds,
            shell: opts.shell.clone(),
            idle_timeout_seconds: opts.idle_timeout_seconds,
            kill_on_disconnect: opts.kill_on_disconnect.then_some(true),
            env: opts.env.clone(),
            cwd: opts.cwd.clone(),
            // Only a session that may re-attach needs to name it; the server names the others.
            command_id: (!opts.kill_on_disconnect)
                .then(|| uuid::Uuid::now_v7().simple().to_string()),
            close_stdin: (opts.close_stdin && !opts.pty).then_some(true),
            pty: opts.pty.then_some(true),
            ssh_agent_forward: opts.ssh_agent.is_some().then_some(true),
            ..Default::default()
        };
        let (events_tx, events_rx) = mpsc::channel(EVENT_BUFFER);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_BUFFER);
        let (started_tx, started_rx) = oneshot::channel();
        let hang_up = Arc::new(Notify::new());
        let lost = LostBytes::default();
        let session = Session::new(
            exec_ws_url(dataplane),
            self.api_key().to_string(),
            execute,
            events_tx,
            started_tx,
            lost.clone(),
        )
        .with_ssh_agent(opts.ssh_agent.clone())
        .with_raw_output(opts.raw_output);
        tokio::spawn(session.run(control_rx, stdin_rx, hang_up.clone()));
        Starting {
            lost,
            started: started_rx,
            events: events_rx,
            control: control_tx,
            hang_up,
            stdin: stdin_tx,
            kill_on_disconnect: opts.kill_on_disconnect,
        }
    }

    /// Start `command` (a shell string) and return once the server acknowledged it.
    pub async fn exec(
        &self,
        dataplane: &str,
        command: &str,
        opts: &ExecOptions,
    ) -> Result<Command, ClientError> {
        self.start_exec(dataplane, command, opts).started().await
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
