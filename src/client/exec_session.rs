//! The background task behind a [`super::Command`]: it owns the `/execute/ws` socket, forwards
//! control messages and local stdin, re-attaches after a dropped socket and shows each byte once
//! ([`Position`]). Output waits for the reader (bounded channel) while controls keep flowing,
//! so `kill` is never stuck behind unread output. With forwarding asked for it also serves the
//! SSH-agent channels of each attachment ([`AgentChannels`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::ClientError;
use super::exec::{Control, ExecEvent, StdinItem};
use super::exec_loss::Loss;
use super::exec_position::Position;
use super::exec_socket::{Socket, connect_with, send};
use super::exec_ssh_agent::AgentChannels;
use crate::api::exec::{ClientMessage, ExecuteMessage, ServerMessage};
use crate::api::exec_frames;
use crate::api::ssh_agent::SshAgentMessage;

/// Re-attachments tried after a socket drops (the count restarts after each `started`).
const MAX_RECONNECTS: u32 = 5;

/// What [`super::Starting::started`] waits for: the session id and pid, or why it failed.
pub(super) type Started = Result<(String, Option<u32>), ClientError>;

/// Shared with the [`super::Command`]: stdout and stderr bytes lost to a replay window.
pub(super) type LostBytes = Arc<[AtomicU64; 2]>;

pub(super) struct Session {
    url: String,
    api_key: String,
    execute: ExecuteMessage,
    /// How far stdout/stderr were delivered.
    positions: [Position; 2],
    /// Bytes of stdout/stderr skipped because the server no longer held them at a reconnect.
    lost: LostBytes,
    events: mpsc::Sender<ExecEvent>,
    /// Present until `started` (or a failure) was reported to the starter.
    started: Option<oneshot::Sender<Started>>,
    /// After an abort nobody waits for output: events are dropped when the reader lags.
    aborted: bool,
    /// The local agent whose channels are served (`ssh_agent_forward`).
    ssh_agent: Option<PathBuf>,
    /// Ask for output in binary frames ([`super::ExecOptions::raw_output`]).
    raw_output: bool,
}

/// Why one attachment ended.
enum Ended {
    /// A terminal message was delivered.
    Done,
    /// The socket failed; `retryable` says whether another attachment may help.
    Lost { loss: Loss, retryable: bool },
}

fn lost(loss: Loss) -> Ended {
    Ended::Lost {
        loss,
        retryable: true,
    }
}

/// The receiving ends the task serves besides the socket.
pub(super) struct Inputs {
    control: mpsc::UnboundedReceiver<Control>,
    controls_open: bool,
    stdin: mpsc::Receiver<StdinItem>,
    stdin_open: bool,
    /// See [`super::Killer::hang_up`].
    hang_up: Arc<Notify>,
}

impl Session {
    pub fn new(
        url: String,
        api_key: String,
        execute: ExecuteMessage,
        events: mpsc::Sender<ExecEvent>,
        started: oneshot::Sender<Started>,
        lost: LostBytes,
    ) -> Self {
        Session {
            url,
            api_key,
            execute,
            positions: Default::default(),
            lost,
            events,
            started: Some(started),
            aborted: false,
            ssh_agent: None,
            raw_output: false,
        }
    }

    /// Ask every attachment for output as raw bytes in binary frames.
    pub fn with_raw_output(mut self, raw_output: bool) -> Self {
        self.raw_output = raw_output;
        self
    }

    /// Serve the SSH-agent channels of every attachment from the agent on `socket`.
    pub fn with_ssh_agent(mut self, socket: Option<PathBuf>) -> Self {
        self.ssh_agent = socket;
        self
    }

    /// A command that dies with its socket has nothing to re-attach to.
    fn reattaches(&self) -> bool {
        self.execute.kill_on_disconnect != Some(true)
    }

    pub async fn run(
        mut self,
        control: mpsc::UnboundedReceiver<Control>,
        stdin: mpsc::Receiver<StdinItem>,
        hang_up: Arc<Notify>,
    ) {
        let mut inputs = Inputs {
            control,
            controls_open: true,
            stdin,
            stdin_open: true,
            hang_up: hang_up.clone(),
        };
        let mut failures = 0;
        loop {
            let attached = tokio::select! {
                attached = self.attach() => attached,
                () = hang_up.notified() => return, // dropping the dial closes its socket
            };
            let ended = match attached {
                Ok(socket) => self.pump(socket, &mut inputs, &mut failures).await,
                Err(lost) => lost,
            };
            match ended {
                Ended::Done => return,
                Ended::Lost { loss, retryable } => {
                    failures += 1;
                    if !retryable || !self.reattaches() || failures > MAX_RECONNECTS {
                        let error = match self.reattaches() {
                            true => loss.retried(),
                            false => loss.single(self.started.is_none()),
                        };
                        return self.fail(error).await;
                    }
                    let backoff = Duration::from_millis(500) * 2u32.pow(failures - 1);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = hang_up.notified() => return,
                    }
                }
            }
        }
    }

    /// Report a terminal failure to whoever is waiting.
    async fn fail(&mut self, error: ClientError) {
        match self.started.take() {
            Some(tx) => drop(tx.send(Err(error))),
            None if self.aborted => drop(self.events.try_send(ExecEvent::Error(error))),
            None => drop(self.events.send(ExecEvent::Error(error)).await),
        }
    }

    /// Open a socket and send `execute` (before the first `started`, re-sending the same
    /// `command_id` is idempotent) or `reconnect` from our offsets.
    async fn attach(&mut self) -> Result<Socket, Ended> {
        let frames = [(
            exec_frames::OUTPUT_FRAMES_HEADER,
            exec_frames::BINARY.to_string(),
        )];
        let headers: &[_] = if self.raw_output { &frames } else { &[] };
        // No Nagle: input and control messages are small writes that must not wait.
        let mut socket = connect_with(&self.url, &self.api_key, headers, true)
            .await
            .map_err(|(error, retryable)| Ended::Lost {
                loss: Loss::Connect(error),
                retryable,
            })?;
        let first = match (&self.started, self.execute.command_id.clone()) {
            (None, Some(command_id)) => ClientMessage::Reconnect {
                command_id,
                stdout_offset: self.positions[0].resume(),
                stderr_offset: self.positions[1].resume(),
            },
            _ => ClientMessage::Execute(self.execute.clone()),
        };
        send(&mut socket, &first)
            .await
            .map_err(|e| lost(Loss::Write(e)))?;
        Ok(socket)
    }

    /// Relay one attachment until a terminal message, a hang-up or a failure.
    async fn pump(&mut self, mut socket: Socket, inputs: &mut Inputs, failures: &mut u32) -> Ended {
        // Channels live as long as the attachment that carried them, as on the sandbox's side.
        let mut agent = self.ssh_agent.clone().map(AgentChannels::new);
        loop {
            tokio::select! {
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t.as_str().to_string(),
                        Some(Ok(Message::Binary(b))) => match exec_frames::decode(&b) {
                            Some(frame) => {
                                if let Some(event) = self.fresh_raw(&b, frame)
                                    && let Err(ended) = self.emit(event, &mut socket, inputs).await
                                {
                                    return ended;
                                }
                                continue;
                            }
                            // The protocol allows JSON in binary frames too.
                            None => String::from_utf8_lossy(&b).into_owned(),
                        },
                        Some(Ok(Message::Close(frame))) => return lost(Loss::Closed(frame)),
                        None => return lost(Loss::Closed(None)),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return lost(Loss::Read(e)),
                    };
                    let Ok(msg) = serde_json::from_str::<ServerMessage>(&text) else {
                        if let Some(agent) = &mut agent
                            && let Ok(frame) = serde_json::from_str::<SshAgentMessage>(&text)
                        {
                            agent.handle(frame).await;
                        }
                        continue; // unknown types are ignored
                    };
                    let (event, done) = self.handle(msg, failures);
                    if let Some(event) = event
                        && let Err(ended) = self.emit(event, &mut socket, inputs).await
                    {
                        return ended;
                    }
                    if done {
                        let _ = socket.close(None).await;
                        return Ended::Done;
                    }
                }
                ctl = inputs.control.recv(), if inputs.controls_open => {
                    if let Err(ended) = self.forward(ctl, &mut socket, inputs).await {
                        return ended;
                    }
                }
                item = inputs.stdin.recv(), if inputs.stdin_open => {
                    let msg = match item {
                        Some(StdinItem::Data(data)) => ClientMessage::Input { data },
                        Some(StdinItem::Close) => ClientMessage::CloseStdin,
                        None => { inputs.stdin_open = false; continue }
                    };
                    if let Err(e) = send(&mut socket, &msg).await {
                        return lost(Loss::Write(e));
                    }
                }
                message = next_agent_frame(&mut agent) => {
                    if let Err(e) = send(&mut socket, &message).await {
                        return lost(Loss::Write(e));
                    }
                }
                () = inputs.hang_up.notified() => return hang_up(&mut socket).await,
            }
        }
    }

    /// Send one control request on the socket.
    async fn forward(
        &mut self,
        ctl: Option<Control>,
        socket: &mut Socket,
        inputs: &mut Inputs,
    ) -> Result<(), Ended> {
        let msg = match ctl {
            Some(Control::Input(data)) => ClientMessage::Input { data },
            Some(Control::CloseStdin) => ClientMessage::CloseStdin,
            Some(Control::Kill) => ClientMessage::Kill,
            Some(Control::Abort) => {
                self.aborted = true;
                ClientMessage::Kill
            }
            Some(Control::Resize { cols, rows }) => ClientMessage::Resize { cols, rows },
            None => {
                inputs.controls_open = false;
                return Ok(());
            }
        };
        send(socket, &msg).await.map_err(|e| lost(Loss::Write(e)))
    }

    /// Hand an event to the reader, waiting for room while still forwarding controls. A reader
    /// that went away (or an abort) means the event is dropped.
    async fn emit(
        &mut self,
        event: ExecEvent,
        socket: &mut Socket,
        inputs: &mut Inputs,
    ) -> Result<(), Ended> {
        let events = self.events.clone();
        loop {
            if self.aborted {
                let _ = events.try_send(event);
                return Ok(());
            }
            tokio::select! {
                permit = events.reserve() => {
                    if let Ok(permit) = permit {
                        permit.send(event);
                    }
                    return Ok(());
                }
                ctl = inputs.control.recv(), if inputs.controls_open => {
                    self.forward(ctl, socket, inputs).await?;
                }
                () = inputs.hang_up.notified() => return Err(hang_up(socket).await),
            }
        }
    }
}

/// Close the socket on a hang-up; the session ends without a terminal event.
async fn hang_up(socket: &mut Socket) -> Ended {
    let _ = socket.close(None).await;
    Ended::Done
}

async fn next_agent_frame(agent: &mut Option<AgentChannels>) -> ClientMessage {
    match agent {
        Some(agent) => agent.next_outbound().await,
        None => std::future::pending().await,
    }
}

mod messages;

#[cfg(test)]
mod tests;
