//! The client's end of SSH-agent forwarding on an exec socket ([`super::ExecOptions::ssh_agent`]):
//! every channel the sandbox opens becomes one connection to the local agent (`SSH_AUTH_SOCK`).
//! The first `ssh_agent_data` of a channel connects it (when that fails the message is dropped
//! as in the LangSmith CLI, but the channel is closed back so the in-sandbox client does not wait forever);
//! the local agent's answers go back in chunks of at most 16 KiB; when the local agent closes,
//! `ssh_agent_close` is sent back (as the LangSmith CLI does). The session keeps one [`AgentChannels`] per
//! attachment, like the sandbox's side; dropping it closes every local connection.
//!
//! Closes decided while applying a frame wait in their own queue, which [`next_outbound`]
//! empties first: that queue holds each channel id at most once, so it needs no bound, and a
//! full data queue can never make a close get lost (the sandbox's client would hang on it).
//!
//! [`next_outbound`]: AgentChannels::next_outbound

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::api::exec::ClientMessage;
use crate::api::ssh_agent::{MAX_SSH_AGENT_CHUNK, SshAgentMessage, decode_data};

/// Frames of the sandbox queued for one local connection; a local agent that stops reading
/// for this long loses the channel.
const QUEUED_CHUNKS: usize = 256;

/// Local agent connections by channel id.
pub struct AgentChannels {
    socket: PathBuf,
    channels: HashMap<String, Local>,
    /// Channels to report closed, oldest first; no id twice.
    closes: VecDeque<String>,
    outbound_tx: mpsc::Sender<ClientMessage>,
    outbound_rx: mpsc::Receiver<ClientMessage>,
}

struct Local {
    to_agent: mpsc::Sender<Vec<u8>>,
    tasks: [AbortHandle; 2],
}

impl Drop for Local {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

impl AgentChannels {
    /// Channels to the agent listening on `socket` (the local `SSH_AUTH_SOCK`).
    pub fn new(socket: PathBuf) -> AgentChannels {
        let (outbound_tx, outbound_rx) = mpsc::channel(64);
        AgentChannels {
            socket,
            channels: HashMap::new(),
            closes: VecDeque::new(),
            outbound_tx,
            outbound_rx,
        }
    }

    /// Applies one frame of the sandbox.
    pub async fn handle(&mut self, message: SshAgentMessage) {
        match message {
            SshAgentMessage::SshAgentData { channel_id, data } => {
                let Some(bytes) = decode_data(&data) else {
                    self.close(&channel_id);
                    return;
                };
                if !self.channels.contains_key(&channel_id) {
                    let Ok(stream) = UnixStream::connect(&self.socket).await else {
                        // No local agent: the in-sandbox client gets EOF instead of waiting.
                        self.report_closed(channel_id);
                        return;
                    };
                    let local = self.open(channel_id.clone(), stream);
                    self.channels.insert(channel_id.clone(), local);
                }
                let delivered = self.channels[&channel_id].to_agent.try_send(bytes).is_ok();
                if !delivered {
                    self.close(&channel_id);
                }
            }
            SshAgentMessage::SshAgentClose { channel_id } => {
                self.channels.remove(&channel_id);
            }
        }
    }

    /// The next frame for the sandbox, pending closes first. A close is taken as the channel's
    /// end here, so the caller only has to send it.
    pub async fn next_outbound(&mut self) -> ClientMessage {
        if let Some(channel_id) = self.closes.pop_front() {
            return ClientMessage::SshAgentClose { channel_id };
        }
        let message = self
            .outbound_rx
            .recv()
            .await
            .expect("this struct holds a sender");
        if let ClientMessage::SshAgentClose { channel_id } = &message {
            self.channels.remove(channel_id);
        }
        message
    }

    /// Forgets a channel and tells the sandbox.
    fn close(&mut self, channel_id: &str) {
        if self.channels.remove(channel_id).is_some() {
            self.report_closed(channel_id.to_string());
        }
    }

    /// Queues `ssh_agent_close` for a channel this side ended, once per channel.
    fn report_closed(&mut self, channel_id: String) {
        if !self.closes.contains(&channel_id) {
            self.closes.push_back(channel_id);
        }
    }

    fn open(&self, channel_id: String, stream: UnixStream) -> Local {
        let (read, write) = stream.into_split();
        let (to_agent, chunks) = mpsc::channel(QUEUED_CHUNKS);
        let reader = tokio::spawn(read_agent(read, channel_id, self.outbound_tx.clone()));
        let writer = tokio::spawn(write_agent(write, chunks));
        Local {
            to_agent,
            tasks: [reader.abort_handle(), writer.abort_handle()],
        }
    }
}

impl Drop for AgentChannels {
    fn drop(&mut self) {
        self.channels.clear();
    }
}

/// Local agent → sandbox; the agent closing ends the channel on both sides.
async fn read_agent(mut read: OwnedReadHalf, channel_id: String, out: mpsc::Sender<ClientMessage>) {
    let mut buf = vec![0u8; MAX_SSH_AGENT_CHUNK];
    while let Ok(n @ 1..) = read.read(&mut buf).await {
        let frame = SshAgentMessage::data(channel_id.clone(), &buf[..n]).into();
        if out.send(frame).await.is_err() {
            return;
        }
    }
    let _ = out.send(ClientMessage::SshAgentClose { channel_id }).await;
}

/// Sandbox → local agent.
async fn write_agent(mut write: OwnedWriteHalf, mut chunks: mpsc::Receiver<Vec<u8>>) {
    while let Some(chunk) = chunks.recv().await {
        if write.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// More channels than the data queue holds fail at once (no local agent): every one of
    /// them is reported closed, each once.
    #[tokio::test]
    async fn every_close_reaches_the_sandbox_however_many_are_due() {
        let dir = tempfile::tempdir().unwrap();
        let mut agent = AgentChannels::new(dir.path().join("no-agent.sock"));
        let ids: Vec<String> = (0..200).map(|n| format!("ch-{n}")).collect();
        for id in ids.iter().chain(&ids[..10]) {
            let data = SshAgentMessage::data(id.clone(), b"request");
            agent.handle(data).await;
        }
        for id in &ids {
            let next = agent.next_outbound().now_or_never();
            let Some(ClientMessage::SshAgentClose { channel_id }) = next else {
                panic!("no close queued for {id}: {next:?}");
            };
            assert_eq!(&channel_id, id);
        }
        assert!(
            agent.next_outbound().now_or_never().is_none(),
            "each close once"
        );
    }
}
