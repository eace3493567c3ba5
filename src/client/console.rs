//! An interactive shell over `WS {dp}/execute/ws` (`spec/cli.md` §7, `spec/dataplane.md` §7).
//!
//! [`Client::open_console`] dials the socket, sends `execute` with a PTY and no command (the
//! sandbox starts the shell itself) and waits for `started`. [`Console::run`] then relays: the
//! caller's [`ConsoleInput`] (keystrokes, window sizes, a stop request) goes to the shell,
//! `stdout`/`stderr` come back to one writer, SSH-agent channels are served when forwarding was
//! asked for. This module knows nothing about terminals; the CLI feeds it from one.
//!
//! The shell is started with `kill_on_disconnect`: a console never re-attaches, so a shell whose
//! socket dropped could never be reached again and would only hold the sandbox's resources.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

use super::console_agent::AgentChannels;
use super::exec::exec_ws_url;
use super::exec_socket::{Socket, connect, send};
use super::utf8_input::Utf8Input;
use super::{Client, ClientError};
use crate::api::exec::{ClientMessage, ExecuteMessage, ServerMessage, SshAgentMessage};
pub use crate::term::ConsoleInput;

/// Local variables a console carries into the sandbox when set and non-empty (GC behaviour).
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

/// A started shell, not yet relaying.
pub struct Console {
    socket: Socket,
    pub command_id: String,
    ssh_agent: Option<PathBuf>,
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
    /// Dial the sandbox's exec socket and start an interactive shell on a PTY.
    pub async fn open_console(
        &self,
        dataplane: &str,
        opts: &ConsoleOptions,
    ) -> Result<Console, ClientError> {
        super::install_crypto_provider();
        let mut socket = connect(&exec_ws_url(dataplane), self.api_key())
            .await
            .map_err(|(e, _retryable)| connect_error(e))?;
        let execute = ClientMessage::Execute(ExecuteMessage {
            pty: Some(true),
            shell: opts.shell.clone().filter(|s| !s.is_empty()),
            env: (!opts.env.is_empty()).then(|| opts.env.clone()),
            ssh_agent_forward: opts.ssh_agent.is_some().then_some(true),
            timeout_seconds: Some(0),
            idle_timeout_seconds: Some(-1),
            kill_on_disconnect: Some(true),
            ..Default::default()
        });
        send(&mut socket, &execute)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()).context("send execute"))?;
        let command_id = read_started(&mut socket).await?;
        Ok(Console {
            socket,
            command_id,
            ssh_agent: opts.ssh_agent.clone(),
            last_byte: None,
        })
    }
}

/// A failed dial in the spec's words: `websocket connect (<status>): …` for a refusal,
/// `websocket connect: …` when no answer came; a bad URL or key stays as it is.
fn connect_error(e: ClientError) -> ClientError {
    match (&e, e.status()) {
        (ClientError::Config(_), _) => e,
        (_, Some(status)) => e.context(format!("websocket connect ({status})")),
        (_, None) => e.context("websocket connect"),
    }
}

/// The first message: `started`, or why the shell did not start.
async fn read_started(socket: &mut Socket) -> Result<String, ClientError> {
    let read_start = |e: String| ClientError::Transport(e).context("read start");
    let text = loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => break text.as_str().to_string(),
            Some(Ok(Message::Binary(bytes))) => break String::from_utf8_lossy(&bytes).into_owned(),
            Some(Ok(Message::Close(_))) | None => {
                return Err(read_start("the server closed the connection".into()));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(read_start(e.to_string())),
        }
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| read_start(format!("not JSON: {e}")))?;
    match serde_json::from_value::<ServerMessage>(value.clone()) {
        Ok(ServerMessage::Started { command_id, .. }) => Ok(command_id),
        Ok(ServerMessage::Error { error, .. }) => {
            Err(ClientError::Failed(error).context("server error"))
        }
        _ => Err(ClientError::Protocol(format!(
            "unexpected message type: {}",
            value["type"].as_str().unwrap_or("")
        ))),
    }
}

impl Console {
    /// Relays until the shell exits (`Ok`), the caller sends [`ConsoleInput::Stop`] (`Ok`),
    /// the server reports an error, or the socket fails. All output goes to `out`.
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<ConsoleInput>,
        out: &mut (dyn Write + Send),
    ) -> Result<(), ClientError> {
        let mut keys = Utf8Input::default();
        let mut agent = self.ssh_agent.take().map(AgentChannels::new);
        let mut input_open = true;
        let ended = loop {
            tokio::select! {
                frame = self.socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(end) = self.on_frame(text.as_bytes(), out, &mut agent).await {
                            break end;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Some(end) = self.on_frame(&bytes, out, &mut agent).await {
                            break end;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => break Err(closed_early(frame)),
                    None => break Err(closed_early(None)),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Err(ClientError::Transport(format!("websocket read: {e}"))),
                },
                next = input.recv(), if input_open => {
                    let message = match next {
                        Some(ConsoleInput::Keys(bytes)) => ClientMessage::Input { data: keys.push(&bytes) },
                        Some(ConsoleInput::Resize { cols, rows }) => ClientMessage::Resize { cols, rows },
                        Some(ConsoleInput::Stop) => break Ok(()),
                        None => { input_open = false; continue }
                    };
                    if let Err(e) = send(&mut self.socket, &message).await {
                        break Err(ClientError::Transport(format!("websocket write: {e}")));
                    }
                }
                message = next_agent_frame(&mut agent) => {
                    if let Err(e) = send(&mut self.socket, &message).await {
                        break Err(ClientError::Transport(format!("websocket write: {e}")));
                    }
                }
            }
        };
        drop(agent); // closes every local agent connection
        let _ = self.socket.close(None).await;
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

    /// Applies one server frame; `Some` when the console is over.
    async fn on_frame(
        &mut self,
        frame: &[u8],
        out: &mut (dyn Write + Send),
        agent: &mut Option<AgentChannels>,
    ) -> Option<Result<(), ClientError>> {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(frame) else {
            self.show(out, frame); // not JSON: shown as it came (GA behaviour)
            return None;
        };
        if let Ok(message) = serde_json::from_value::<ServerMessage>(value.clone()) {
            return match message {
                ServerMessage::Stdout { data, .. } | ServerMessage::Stderr { data, .. } => {
                    self.show(out, data.as_bytes());
                    None
                }
                ServerMessage::Exit { .. } => Some(Ok(())),
                ServerMessage::Error { error, .. } => {
                    Some(Err(ClientError::Failed(error).context("server")))
                }
                ServerMessage::Started { .. } => None,
            };
        }
        if let (Ok(message), Some(agent)) =
            (serde_json::from_value::<SshAgentMessage>(value), agent)
        {
            agent.handle(message).await;
        }
        None // unknown types are ignored
    }
}

/// The socket ended without `exit`: the sandbox went away (stopped, deleted) or the
/// connection broke. The close code and reason say which, when the server gave them.
fn closed_early(frame: Option<tungstenite::protocol::CloseFrame>) -> ClientError {
    let detail = match frame {
        Some(frame) if !frame.reason.is_empty() => format!(" ({}: {})", frame.code, frame.reason),
        Some(frame) => format!(" ({})", frame.code),
        None => String::new(),
    };
    ClientError::Transport(format!(
        "websocket closed before the shell exited{detail}; check the sandbox with: \
         langsmith sandbox get NAME"
    ))
}

async fn next_agent_frame(agent: &mut Option<AgentChannels>) -> ClientMessage {
    match agent {
        Some(agent) => agent.next_outbound().await,
        None => std::future::pending().await,
    }
}

fn write_out(out: &mut (dyn Write + Send), bytes: &[u8]) {
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_dial_reads_as_the_spec_words_it() {
        let refused = connect_error(ClientError::from_response(403, "forbidden"));
        assert_eq!(
            refused.to_string(),
            "websocket connect (403): HTTP 403: forbidden"
        );
        let unreachable = connect_error(ClientError::Transport("connection refused".into()));
        assert_eq!(
            unreachable.to_string(),
            "websocket connect: connection refused"
        );
        let bad_key = connect_error(ClientError::Config("API key is not valid".into()));
        assert_eq!(bad_key.to_string(), "API key is not valid");
    }
}
