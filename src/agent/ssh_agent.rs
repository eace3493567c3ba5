//! SSH-agent forwarding for a session started with `ssh_agent_forward: true`.
//!
//! The agent listens on a unix socket inside the sandbox, in a fresh private directory
//! (`mkdtemp`, mode 0700, owned by the command's user) whose path the command gets as
//! `SSH_AUTH_SOCK`. Every connection accepted there is one channel: its bytes go to the
//! session's current WebSocket attachment as `ssh_agent_data` frames and the client's answers
//! come back the same way. A channel lives only as long as the attachment that carried it (its
//! far end is that client's own local agent connection). The directory is removed when the
//! session ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::api::exec::ClientMessage;
use crate::api::ssh_agent::{MAX_SSH_AGENT_CHUNK, SshAgentMessage, decode_data};

/// Frames queued towards one attachment before a channel's reader waits (back-pressure).
const OUTBOUND_FRAMES: usize = 64;
/// Client chunks queued for one in-sandbox connection; a connection that leaves this many
/// unread loses its channel rather than stalling the socket's control loop.
const INBOUND_CHUNKS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SshAgentError {
    #[error("cannot create the forwarded SSH agent socket in {dir}: {source}; is it writable?")]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The forwarded agent socket of one session.
pub struct AgentForward {
    dir: PathBuf,
    socket: PathBuf,
    state: Arc<Mutex<State>>,
    accept: AbortHandle,
}

#[derive(Default)]
struct State {
    /// Where new channels' bytes go: the latest attachment.
    route: Option<(u64, mpsc::Sender<SshAgentMessage>)>,
    next_route: u64,
    next_channel: u64,
    channels: HashMap<String, Channel>,
}

struct Channel {
    route: u64,
    to_connection: mpsc::Sender<Vec<u8>>,
    tasks: [AbortHandle; 2],
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort); // closes the in-sandbox connection
    }
}

/// One attachment's feed of agent frames; dropping it closes the channels it carried.
pub struct Route {
    id: u64,
    frames: mpsc::Receiver<SshAgentMessage>,
    state: Weak<Mutex<State>>,
}

impl AgentForward {
    /// Creates the private directory and socket (owned by `owner` = `(uid, gid)` when the
    /// command runs as another user) and starts accepting connections.
    pub fn create(owner: Option<(u32, u32)>) -> Result<Arc<AgentForward>, SshAgentError> {
        let base = std::env::temp_dir();
        let failed = |source| SshAgentError::Create {
            dir: base.clone(),
            source,
        };
        let dir =
            nix::unistd::mkdtemp(&base.join("ssh-agent-XXXXXX")).map_err(|e| failed(e.into()))?;
        let socket = dir.join("agent.sock");
        let listener = UnixListener::bind(&socket).map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            failed(e)
        })?;
        if let Some((uid, gid)) = owner {
            for path in [&dir, &socket] {
                let ids = (Some(uid.into()), Some(gid.into()));
                if let Err(e) = nix::unistd::chown(path.as_path(), ids.0, ids.1) {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(failed(e.into()));
                }
            }
        }
        let state = Arc::new(Mutex::new(State::default()));
        let accept = tokio::spawn(accept_loop(listener, Arc::downgrade(&state))).abort_handle();
        Ok(Arc::new(AgentForward {
            dir,
            socket,
            state,
            accept,
        }))
    }

    /// The value of `SSH_AUTH_SOCK` for the command.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Makes the calling attachment the one new channels talk to (the previous one's channels
    /// are closed: their far ends belonged to the previous client).
    pub fn attach(&self) -> Route {
        let (tx, frames) = mpsc::channel(OUTBOUND_FRAMES);
        let mut state = lock(&self.state);
        state.next_route += 1;
        let id = state.next_route;
        state.route = Some((id, tx));
        state.channels.retain(|_, channel| channel.route == id);
        Route {
            id,
            frames,
            state: Arc::downgrade(&self.state),
        }
    }

    /// Applies a client frame: bytes for a channel, or its close. Never waits: a connection
    /// that does not read its answers loses its channel instead.
    pub fn apply_client_frame(&self, message: ClientMessage) {
        let mut state = lock(&self.state);
        match message {
            ClientMessage::SshAgentData { channel_id, data } => {
                let Some(channel) = state.channels.get(&channel_id) else {
                    return; // already closed on our side
                };
                let delivered = decode_data(&data)
                    .is_some_and(|bytes| channel.to_connection.try_send(bytes).is_ok());
                if !delivered {
                    state.channels.remove(&channel_id);
                }
            }
            ClientMessage::SshAgentClose { channel_id } => {
                state.channels.remove(&channel_id);
            }
            _ => {}
        }
    }

    /// Stops listening, closes every channel and removes the socket directory.
    pub fn shutdown(&self) {
        self.accept.abort();
        let mut state = lock(&self.state);
        state.channels.clear();
        state.route = None;
        drop(state);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for AgentForward {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Route {
    /// The next frame for the client; pending forever once the forward is gone.
    pub async fn next_frame(&mut self) -> String {
        match self.frames.recv().await {
            Some(frame) => serde_json::to_string(&frame).expect("agent frames serialise"),
            None => std::future::pending().await,
        }
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            let mut state = lock(&state);
            if state.route.as_ref().is_some_and(|(id, _)| *id == self.id) {
                state.route = None;
            }
            let id = self.id;
            state.channels.retain(|_, channel| channel.route != id);
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(listener: UnixListener, state: Weak<Mutex<State>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let Some(state) = state.upgrade() else { return };
        let mut guard = lock(&state);
        let Some((route, frames)) = guard.route.clone() else {
            continue; // nobody attached to answer: the connection is closed at once
        };
        guard.next_channel += 1;
        let channel_id = guard.next_channel.to_string();
        let (read, write) = stream.into_split();
        let (to_connection, chunks) = mpsc::channel(INBOUND_CHUNKS);
        let reader = tokio::spawn(read_connection(
            read,
            channel_id.clone(),
            frames,
            Arc::downgrade(&state),
        ));
        let writer = tokio::spawn(write_connection(write, chunks));
        let tasks = [reader.abort_handle(), writer.abort_handle()];
        let channel = Channel {
            route,
            to_connection,
            tasks,
        };
        guard.channels.insert(channel_id, channel);
    }
}

/// In-sandbox client → WebSocket, in chunks of at most 16 KiB; its end closes the channel.
async fn read_connection(
    mut read: OwnedReadHalf,
    channel_id: String,
    frames: mpsc::Sender<SshAgentMessage>,
    state: Weak<Mutex<State>>,
) {
    let mut buf = vec![0u8; MAX_SSH_AGENT_CHUNK];
    while let Ok(n @ 1..) = read.read(&mut buf).await {
        let frame = SshAgentMessage::data(channel_id.clone(), &buf[..n]);
        if frames.send(frame).await.is_err() {
            break;
        }
    }
    let _ = frames
        .send(SshAgentMessage::SshAgentClose {
            channel_id: channel_id.clone(),
        })
        .await;
    if let Some(state) = state.upgrade() {
        // Removing the channel aborts this very task: nothing may follow.
        let removed = lock(&state).channels.remove(&channel_id);
        drop(removed);
    }
}

/// WebSocket → in-sandbox client.
async fn write_connection(mut write: OwnedWriteHalf, mut chunks: mpsc::Receiver<Vec<u8>>) {
    while let Some(chunk) = chunks.recv().await {
        if write.write_all(&chunk).await.is_err() {
            break;
        }
    }
}
