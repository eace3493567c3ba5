//! A bridged WebSocket's other end: a connection to the sandbox's agent, upgraded
//! ([`upgrade`]), on demand or dialled ahead for the next exec ([`DialledAhead`]).
//!
//! Each exec WebSocket (`/execute/ws`) connects to its sandbox's agent and upgrades that
//! connection before the client's upgrade is answered: about a third of a millisecond of the
//! exec's round trip. Once an exec has had its agent connection, the next one is opened and
//! upgraded in the background, with the same framing, and kept for [`KEEP`]; the sandbox's
//! next exec takes it instead of dialling.
//!
//! A connection kept here is an agent session waiting for its first message, which the agent
//! waits for without a limit. It is used only if it is still open and nothing arrived on it
//! (an agent that restarted or stopped has closed it), so a client sees what it would have
//! seen from a fresh dial. One per sandbox; a sandbox that sees no exec for [`KEEP`] keeps
//! none.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::HeaderValue;
use tokio::net::UnixStream;
use tokio::task::AbortHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::api::exec_frames;
use crate::runtime::Runtime;

/// The largest message either side may send through a bridge.
const MAX_MESSAGE: usize = 64 << 20;
/// Bytes each socket read asks for. tungstenite zeroes that much before every read, and a
/// relay's reads mostly come back short (the other side drains as fast as it fills): its
/// default of 128 KiB spent a third of the bridge's time in `memset` moving binary output.
const READ_BUFFER: usize = 32 * 1024;

/// The settings of both sockets of a bridge.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .read_buffer_size(READ_BUFFER)
}

/// Upgrades `stream`, a connection to an agent, to a WebSocket at `path_and_query`. A
/// client that asked for binary output frames gets them from the agent: messages pass
/// through the bridge unchanged, so the request must ask too.
pub async fn upgrade(
    stream: UnixStream,
    path_and_query: &str,
    framing: Framing,
) -> Result<AgentSocket, tungstenite::Error> {
    let mut request = format!("ws://agent{path_and_query}").into_client_request()?;
    if let Some(framing) = framing {
        request
            .headers_mut()
            .insert(exec_frames::OUTPUT_FRAMES_HEADER, framing);
    }
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config())).await?;
    Ok(socket)
}

/// How long a connection dialled ahead is kept for the next exec.
pub const KEEP: Duration = Duration::from_secs(10);
/// How long a dial ahead may take: an agent that does not answer in time gets none.
const DIAL_LIMIT: Duration = Duration::from_secs(5);

/// The only path whose connections are dialled ahead: the exec WebSocket's, without a query
/// (a reconnect carries one).
pub const PATH: &str = "/execute/ws";

pub type AgentSocket = WebSocketStream<UnixStream>;

/// What a kept connection was upgraded with: the client's output framing (see
/// [`crate::api::exec_frames`]). Only a request asking for the same may take it.
pub type Framing = Option<HeaderValue>;

/// Connections dialled ahead, one per sandbox. Cheap to clone; clones share them.
#[derive(Clone)]
pub struct DialledAhead {
    runtime: Runtime,
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

struct Slot {
    /// Tells this slot from a later one of the same sandbox, for the expiry.
    generation: u64,
    framing: Framing,
    /// `None` while the dial is under way.
    socket: Option<AgentSocket>,
    /// The task that dials and then keeps the connection for [`KEEP`]: stopped when the
    /// connection is taken or dropped, so no task sleeps on for a connection gone.
    keeper: Option<AbortHandle>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
    }
}

impl DialledAhead {
    pub fn new(runtime: Runtime) -> DialledAhead {
        DialledAhead {
            runtime,
            slots: Arc::default(),
        }
    }

    /// The connection kept for `sandbox_id`'s next exec with `framing`, if there is one that
    /// is still open and untouched. Any other kept connection of the sandbox is dropped.
    pub fn take(&self, sandbox_id: &str, framing: &Framing) -> Option<AgentSocket> {
        let mut slots = self.lock();
        // Still dialling: left to the exec after this one.
        slots.get(sandbox_id)?.socket.as_ref()?;
        let mut slot = slots.remove(sandbox_id)?;
        let socket = slot.socket.take()?;
        (slot.framing == *framing && untouched(socket.get_ref())).then_some(socket)
    }

    /// Opens and upgrades a connection to `sandbox_id`'s agent in the background, for its
    /// next exec with `framing`, unless one is kept or being dialled already.
    pub fn dial(&self, sandbox_id: &str, framing: Framing) {
        static GENERATIONS: AtomicU64 = AtomicU64::new(0);
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = self.lock();
            if slots.contains_key(sandbox_id) {
                return;
            }
            slots.insert(
                sandbox_id.to_string(),
                Slot {
                    generation,
                    framing: framing.clone(),
                    socket: None,
                    keeper: None,
                },
            );
        }
        let this = self.clone();
        let id = sandbox_id.to_string();
        let keeper = tokio::spawn(async move {
            let dial = async {
                let stream = this.runtime.connect_agent(&id).await.ok()?;
                upgrade(stream, PATH, framing).await.ok()
            };
            let dialled = tokio::time::timeout(DIAL_LIMIT, dial).await.ok().flatten();
            {
                let mut slots = this.lock();
                let ours = slots.get_mut(&id).filter(|s| s.generation == generation);
                match (ours, dialled) {
                    (Some(slot), Some(socket)) => {
                        slot.socket = Some(socket);
                        tracing::debug!(sandbox = %id, "agent connection dialled ahead");
                    }
                    (Some(_), None) => {
                        slots.remove(&id);
                        return;
                    }
                    (None, _) => return,
                }
            }
            tokio::time::sleep(KEEP).await;
            let mut slots = this.lock();
            if let Some(slot) = slots.get_mut(&id).filter(|s| s.generation == generation) {
                slot.keeper = None; // this task, ending now
                slots.remove(&id); // closes it: the agent's session ends unused
            }
        });
        if let Some(slot) = self
            .lock()
            .get_mut(sandbox_id)
            .filter(|s| s.generation == generation)
        {
            slot.keeper = Some(keeper.abort_handle());
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // Every change is one insert or remove: consistent across a panic.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether the agent's side is still open and has sent nothing: a peek would block. (A
/// system call, not tokio's view of the socket, which may not have seen a close yet.)
fn untouched(stream: &UnixStream) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    matches!(
        recv(stream.as_raw_fd(), &mut byte, flags),
        Err(nix::errno::Errno::EAGAIN)
    )
}
