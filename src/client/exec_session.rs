//! The background task behind a [`super::Command`]: it owns the `/execute/ws` socket, forwards
//! control messages, de-duplicates output by byte offset and re-attaches after a dropped socket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::ClientError;
use super::exec::{Control, ExecEvent};
use crate::api::exec::{ClientMessage, ExecuteMessage, ServerMessage};

/// Re-attachments tried after a socket drops (the count restarts after each `started`).
const MAX_RECONNECTS: u32 = 5;

/// What [`super::Client::exec`] waits for: the session id and pid, or why it failed.
pub(super) type Started = Result<(String, Option<u32>), ClientError>;
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) struct Session {
    pub url: String,
    pub api_key: String,
    pub execute: ExecuteMessage,
    /// Bytes of stdout/stderr delivered so far.
    pub offsets: [u64; 2],
    pub events: mpsc::UnboundedSender<ExecEvent>,
    /// Present until `started` (or a failure) was reported to `exec`.
    pub started: Option<oneshot::Sender<Started>>,
}

/// Why one attachment ended.
enum Ended {
    /// A terminal message was delivered.
    Done,
    /// The socket failed; `retryable` says whether another attachment may help.
    Lost { error: ClientError, retryable: bool },
}

impl Session {
    pub async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut failures = 0;
        loop {
            let ended = match self.attach().await {
                Ok(socket) => self.pump(socket, &mut control, &mut failures).await,
                Err(lost) => lost,
            };
            match ended {
                Ended::Done => return,
                Ended::Lost { error, retryable } => {
                    failures += 1;
                    if !retryable || failures > MAX_RECONNECTS {
                        return self.fail(error.context("execute"));
                    }
                    let backoff = Duration::from_millis(500) * 2u32.pow(failures - 1);
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    /// Report a terminal failure to whoever is waiting.
    fn fail(&mut self, error: ClientError) {
        match self.started.take() {
            Some(tx) => drop(tx.send(Err(error))),
            None => drop(self.events.send(ExecEvent::Error(error))),
        }
    }

    /// Open a socket and send `execute` (before the first `started`, re-sending the same
    /// `command_id` is idempotent) or `reconnect` from our offsets.
    async fn attach(&self) -> Result<Socket, Ended> {
        let lost = |error: ClientError, retryable| Ended::Lost { error, retryable };
        let mut request = self.url.as_str().into_client_request().map_err(|e| {
            lost(
                ClientError::Config(format!("bad dataplane URL: {e}")),
                false,
            )
        })?;
        let key = self.api_key.parse().map_err(|_| {
            lost(
                ClientError::Config("API key is not a valid header value".into()),
                false,
            )
        })?;
        request.headers_mut().insert("X-Api-Key", key);
        let (mut socket, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(ok) => ok,
            Err(tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let retryable = status == 429 || status >= 500;
                return Err(lost(ClientError::from_response(status, &body), retryable));
            }
            Err(e) => return Err(lost(ClientError::Transport(e.to_string()), true)),
        };
        let first = match (&self.started, self.execute.command_id.clone()) {
            (None, Some(command_id)) => ClientMessage::Reconnect {
                command_id,
                stdout_offset: self.offsets[0],
                stderr_offset: self.offsets[1],
            },
            _ => ClientMessage::Execute(self.execute.clone()),
        };
        send(&mut socket, &first)
            .await
            .map_err(|e| lost(ClientError::Transport(e.to_string()), true))?;
        Ok(socket)
    }

    /// Relay one attachment until a terminal message or a failure.
    async fn pump(
        &mut self,
        mut socket: Socket,
        control: &mut mpsc::UnboundedReceiver<Control>,
        failures: &mut u32,
    ) -> Ended {
        let lost = |e: String| Ended::Lost {
            error: ClientError::Transport(e),
            retryable: true,
        };
        let mut controls_open = true;
        loop {
            tokio::select! {
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t.as_str().to_string(),
                        Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                        Some(Ok(Message::Close(_))) | None => {
                            return lost("connection closed before the command ended".into())
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return lost(e.to_string()),
                    };
                    let Ok(msg) = serde_json::from_str::<ServerMessage>(&text) else { continue };
                    if let Some(done) = self.handle(msg, failures) {
                        let _ = socket.close(None).await;
                        return done;
                    }
                }
                ctl = control.recv(), if controls_open => {
                    let msg = match ctl {
                        Some(Control::Input(data)) => ClientMessage::Input { data },
                        Some(Control::CloseStdin) => ClientMessage::CloseStdin,
                        Some(Control::Kill) => ClientMessage::Kill,
                        None => { controls_open = false; continue }
                    };
                    if let Err(e) = send(&mut socket, &msg).await {
                        return lost(e.to_string());
                    }
                }
            }
        }
    }

    /// Apply one server message; `Some` when the attachment is over.
    fn handle(&mut self, msg: ServerMessage, failures: &mut u32) -> Option<Ended> {
        match msg {
            ServerMessage::Started { command_id, pid } => {
                *failures = 0;
                self.execute.command_id = Some(command_id.clone());
                if let Some(tx) = self.started.take() {
                    let _ = tx.send(Ok((command_id, pid)));
                }
            }
            ServerMessage::Stdout { data, offset } => self.deliver(0, data, offset),
            ServerMessage::Stderr { data, offset } => self.deliver(1, data, offset),
            ServerMessage::Exit { exit_code } => {
                let _ = self.events.send(ExecEvent::Exit(exit_code));
                return Some(Ended::Done);
            }
            ServerMessage::Error { error_type, error } => {
                self.fail(ClientError::Exec {
                    error_type,
                    message: error,
                });
                return Some(Ended::Done);
            }
        }
        None
    }

    /// Forward the part of a chunk not delivered yet (a replay after reconnect may overlap).
    fn deliver(&mut self, stream: usize, data: String, offset: u64) {
        let end = offset + data.len() as u64;
        let seen = self.offsets[stream];
        if end <= seen {
            return;
        }
        let skip = seen.saturating_sub(offset) as usize;
        self.offsets[stream] = end;
        let Some(fresh) = data.get(skip..) else {
            return;
        };
        let event = if stream == 0 {
            ExecEvent::Stdout(fresh.to_string())
        } else {
            ExecEvent::Stderr(fresh.to_string())
        };
        let _ = self.events.send(event);
    }
}

async fn send(socket: &mut Socket, msg: &ClientMessage) -> Result<(), tungstenite::Error> {
    let text = serde_json::to_string(msg).expect("client messages serialise");
    socket.send(Message::text(text)).await
}
