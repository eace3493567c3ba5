//! Saying goodbye when the agent stops (SIGTERM to the sandbox's PID 1, forwarded here):
//! every attached exec WebSocket is closed with 1001 Going Away and every SSE response ends
//! with an `error` event of type `ServerShuttingDown`, so clients know to
//! reattach instead of seeing a broken connection. The agent waits a moment for those
//! goodbyes to be written before it exits.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedRwLockReadGuard, RwLock};
use tokio_util::sync::CancellationToken;

/// How long the agent waits for open streams to be told before it exits anyway.
pub const GOODBYE_LIMIT: Duration = Duration::from_secs(2);

/// Shared by every handler: whether the agent is stopping, and which streams are open.
#[derive(Clone, Default)]
pub struct Shutdown {
    stopping: CancellationToken,
    /// Each open exec stream holds a read guard; taking the write lock means all are done.
    open_streams: Arc<RwLock<()>>,
}

/// Held by an open exec stream for as long as it is open.
pub struct StreamGuard {
    _open: OwnedRwLockReadGuard<()>,
}

impl Shutdown {
    /// Registers an open stream.
    pub async fn stream_opened(&self) -> StreamGuard {
        StreamGuard {
            _open: Arc::clone(&self.open_streams).read_owned().await,
        }
    }

    /// Resolves once the agent is stopping.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// Tells every open stream to say goodbye and waits (bounded) until they have.
    pub async fn begin_and_drain(&self) {
        self.stopping.cancel();
        let _ = tokio::time::timeout(GOODBYE_LIMIT, self.open_streams.write()).await;
    }
}
