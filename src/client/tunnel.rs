//! Port tunnels: a local TCP port on `127.0.0.1` forwarded to a port inside a sandbox, or one
//! connection bridged to this process's stdin/stdout (an SSH `ProxyCommand`).
//!
//! Each accepted local connection gets its own yamux stream of the tunnel's session
//! (`tunnel_session`); a session that died is re-dialled when the next connection
//! arrives, as the official SDK does. What happens is reported as [`TunnelEvent`]s through a
//! callback: the CLI turns them into log lines, scripts ignore them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::tunnel_session::{Dialer, OpenError, Session, TunnelStream};
use super::{Client, ClientError};
use crate::api::tunnel::{STATUS_DIAL_FAILED, STATUS_PORT_NOT_ALLOWED, STATUS_UNSUPPORTED_VERSION};

/// How long a failed stream waits to learn whether its session is ending.
const SESSION_END_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// Copy buffer per direction of a bridged connection.
const BRIDGE_BUFFER: usize = 256 * 1024;

/// What a tunnel reports while it runs.
#[derive(Debug)]
pub enum TunnelEvent {
    /// About to dial the tunnel's WebSocket.
    Dialing {
        url: String,
    },
    /// The first session is up.
    SessionEstablished {
        url: String,
    },
    /// The listener is bound.
    Ready {
        local: SocketAddr,
    },
    /// A local connection is bridged to the remote port.
    StreamConnected {
        local_addr: SocketAddr,
    },
    /// A local connection got no stream (dial, reconnect or yamux refused).
    OpenFailed {
        error: ClientError,
    },
    WriteHeaderFailed {
        error: std::io::Error,
    },
    ReadStatusFailed {
        error: std::io::Error,
    },
    /// The sandbox refused the port with this status byte.
    Rejected {
        status: u8,
    },
}

/// Where a tunnel's events go (called on the runtime's workers; keep it quick).
pub type TunnelEvents = Arc<dyn Fn(TunnelEvent) + Send + Sync>;

/// A running listener tunnel. Dropping it closes it too, without waiting.
pub struct Tunnel {
    local_port: u16,
    remote_port: u16,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Tunnel {
    /// The port on `127.0.0.1` it listens on.
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    /// The port inside the sandbox it connects to.
    pub fn remote_port(&self) -> u16 {
        self.remote_port
    }

    /// Stop listening, drop every bridged connection and close the session; waits until the
    /// session's goodbye is sent. Closing twice does nothing.
    pub async fn close(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Resolves when the tunnel has ended (closed, or its listener failed).
    pub async fn closed(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Client {
    /// Dial the tunnel session of `dataplane`, then listen on `127.0.0.1:local_port` (0 picks
    /// a free port) and forward each connection to `remote_port` inside the sandbox.
    pub async fn tunnel(
        &self,
        dataplane: &str,
        remote_port: u16,
        local_port: u16,
        events: TunnelEvents,
    ) -> Result<Tunnel, ClientError> {
        super::install_crypto_provider();
        let url = super::exec_socket::ws_url(dataplane, "/tunnel");
        events(TunnelEvent::Dialing { url: url.clone() });
        let dialer = Arc::new(Dialer::connect(dataplane, self.api_key()).await?);
        events(TunnelEvent::SessionEstablished { url });
        let listener = match TcpListener::bind(("127.0.0.1", local_port)).await {
            Ok(listener) => listener,
            Err(e) => {
                dialer.close().await;
                return Err(ClientError::Transport(format!("listen: {e}")));
            }
        };
        let local = listener
            .local_addr()
            .map_err(|e| ClientError::Transport(format!("listen: {e}")))?;
        events(TunnelEvent::Ready { local });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            dialer,
            remote_port,
            events,
            stop.clone(),
        ));
        Ok(Tunnel {
            local_port: local.port(),
            remote_port,
            stop,
            task: Some(task),
        })
    }

    /// Bridge `input`/`output` to one stream to `remote_port` until the remote side closes
    /// (input's end half-closes the stream). A refused port is `sandbox tunnel rejected port
    /// P: <reason>`, as the official SDK words it.
    pub async fn tunnel_stdio<R, W>(
        &self,
        dataplane: &str,
        remote_port: u16,
        mut input: R,
        mut output: W,
    ) -> Result<(), ClientError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        super::install_crypto_provider();
        let session = Session::dial(dataplane, self.api_key()).await?;
        let stream = session.open(remote_port).await.map_err(|e| match e {
            OpenError::Rejected(status) => ClientError::Failed(format!(
                "sandbox tunnel rejected port {remote_port}: {}",
                short_reason(status)
            )),
            OpenError::Open(error) => error,
            OpenError::WriteHeader(e) | OpenError::ReadStatus(e) => {
                ClientError::Transport(format!("connect: {e}"))
            }
        })?;
        let (mut from_remote, mut to_remote) = tokio::io::split(stream);
        let upstream = async {
            let _ = tokio::io::copy(&mut input, &mut to_remote).await;
            let _ = to_remote.shutdown().await;
        };
        let downstream = async {
            let _ = tokio::io::copy(&mut from_remote, &mut output).await;
            let _ = output.flush().await;
        };
        // The remote side closing ends the bridge, whether or not input has ended.
        let (mut upstream, mut downstream) = (std::pin::pin!(upstream), std::pin::pin!(downstream));
        tokio::select! {
            () = &mut downstream => {}
            () = &mut upstream => downstream.await,
        }
        session.close().await;
        Ok(())
    }
}

/// The official SDK's short words for a refusal.
fn short_reason(status: u8) -> String {
    match status {
        STATUS_PORT_NOT_ALLOWED => "port not allowed".into(),
        STATUS_DIAL_FAILED => "dial failed".into(),
        STATUS_UNSUPPORTED_VERSION => "unsupported protocol version".into(),
        other => format!("unknown status {other}"),
    }
}

/// Pause after a failed accept.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

async fn accept_loop(
    listener: TcpListener,
    dialer: Arc<Dialer>,
    remote_port: u16,
    events: TunnelEvents,
    stop: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (local, local_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // E.g. too many open files: the error repeats until a descriptor is freed,
                // so wait a moment (or for the stop) instead of spinning on it.
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                }
            }
        };
        connections.spawn(bridge(
            local,
            local_addr,
            dialer.clone(),
            remote_port,
            events.clone(),
        ));
    }
    drop(listener);
    connections.shutdown().await;
    dialer.close().await;
}

/// A stream to `remote_port` on a live session. When the stream fails because the session
/// just died under it (the server dropped it a moment ago), it is tried once more on a new
/// session, so the first connection after a drop reconnects as the later ones do.
async fn open(dialer: &Dialer, remote_port: u16) -> Result<TunnelStream, OpenError> {
    let mut retried = false;
    loop {
        let session = dialer.session().await.map_err(OpenError::Open)?;
        match session.open(remote_port).await {
            Err(OpenError::Rejected(status)) => return Err(OpenError::Rejected(status)),
            Err(_) if !retried && session.ends_within(SESSION_END_GRACE).await => retried = true,
            opened => return opened,
        }
    }
}

/// One local connection: a stream, its handshake, then bytes both ways with half-closes.
async fn bridge(
    mut local: TcpStream,
    local_addr: SocketAddr,
    dialer: Arc<Dialer>,
    remote_port: u16,
    events: TunnelEvents,
) {
    let mut stream = match open(&dialer, remote_port).await {
        Ok(stream) => stream,
        Err(OpenError::Open(error)) => return events(TunnelEvent::OpenFailed { error }),
        Err(OpenError::WriteHeader(error)) => {
            return events(TunnelEvent::WriteHeaderFailed { error });
        }
        Err(OpenError::ReadStatus(error)) => {
            return events(TunnelEvent::ReadStatusFailed { error });
        }
        Err(OpenError::Rejected(status)) => return events(TunnelEvent::Rejected { status }),
    };
    events(TunnelEvent::StreamConnected { local_addr });
    let _ = local.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional_with_sizes(
        &mut local,
        &mut stream,
        BRIDGE_BUFFER,
        BRIDGE_BUFFER,
    )
    .await;
}
