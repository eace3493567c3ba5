//! An exec WebSocket (`/execute/ws`), bridged message by message between the client and the
//! sandbox agent. Close frames (and their codes) pass through, so a client sees the agent's
//! 1000 after `exit` exactly as the agent sent it. When this server stops, the client gets
//! 1001 Going Away: the command keeps running in the sandbox and the client reattaches to the
//! next server.
//!
//! The upgrade is answered here ([`crate::ws_upgrade`]) rather than by axum's extractor so
//! the client's connection can be wrapped in [`ReadsOutliveWrites`] before tungstenite gets it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Message, protocol::frame::coding::CloseCode};

use crate::api::Sandbox;
use crate::api::exec_frames;
use crate::phases::Phases;
use crate::server::agent_websocket::{self, AgentSocket};
use crate::server::error::ApiError;
use crate::server::state::AppState;
use crate::ws_upgrade;

/// How long a closing bridge waits for the client's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);

/// Opens the agent's side of the socket at `path_and_query` (or takes the one dialled ahead
/// for it), answers the client's upgrade, and bridges the two once the client's connection
/// is upgraded.
pub(super) async fn upgrade(
    state: &AppState,
    sb: &Sandbox,
    path_and_query: &str,
    mut parts: http::request::Parts,
    mut phases: Phases,
) -> Result<Response, ApiError> {
    let key = ws_upgrade::websocket_key(&parts.headers)
        .map_err(|why| ApiError::validation("upgrade", why))?;
    let client_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| ApiError::validation("upgrade", "this connection cannot be upgraded"))?;
    let framing = parts
        .headers
        .get(exec_frames::OUTPUT_FRAMES_HEADER)
        .cloned();
    let exec = path_and_query == agent_websocket::PATH;
    let ready = exec.then(|| state.dialled_ahead.take(&sb.id, &framing));
    let agent = match ready.flatten() {
        Some(agent) => {
            phases.mark("agent dialled ahead");
            agent
        }
        None => {
            let stream = super::connect_agent(state, sb).await?;
            phases.mark("agent connect");
            let agent = agent_websocket::upgrade(stream, path_and_query, framing.clone())
                .await
                .map_err(|e| match e {
                    // The client's path or header made a request that cannot be sent.
                    tungstenite::Error::Url(_) | tungstenite::Error::HttpFormat(_) => {
                        ApiError::validation("path", e.to_string())
                    }
                    e => ApiError::Internal(format!("connecting to the sandbox agent: {e}")),
                })?;
            phases.mark("agent handshake");
            agent
        }
    };
    if exec {
        state.dialled_ahead.dial(&sb.id, framing);
    }
    let active = state.activity.hold(&sb.id);
    let going_away = state.going_away.subscribe();
    tokio::spawn(async move {
        if let Ok(upgraded) = client_upgrade.await {
            let connection = ReadsOutliveWrites::new(TokioIo::new(upgraded));
            let client = WebSocketStream::from_raw_socket(
                connection,
                Role::Server,
                Some(agent_websocket::config()),
            )
            .await;
            phases.mark("client upgraded");
            bridge(client, agent, going_away, &mut phases).await;
            phases.finish();
        }
        drop(active);
    });
    Ok(ws_upgrade::switching_protocols(&key))
}

type ClientSocket = WebSocketStream<ReadsOutliveWrites<TokioIo<hyper::upgrade::Upgraded>>>;

/// Relays messages both ways until either side closes, or until this server stops.
async fn bridge(
    client: ClientSocket,
    agent: AgentSocket,
    mut going_away: watch::Receiver<bool>,
    phases: &mut Phases,
) {
    let (mut client_tx, mut client_rx) = client.split();
    let (mut agent_tx, mut agent_rx) = agent.split();
    let ended = {
        // Ends when the client stops sending; says whether it did so with a close frame.
        let upstream = async {
            let mut closed = false;
            while let Some(Ok(message)) = client_rx.next().await {
                match message {
                    Message::Text(_) | Message::Binary(_) => {
                        if agent_tx.send(message).await.is_err() {
                            break;
                        }
                    }
                    Message::Close(frame) => {
                        let _ = agent_tx.send(Message::Close(frame)).await;
                        closed = true;
                        break;
                    }
                    // Each side answers its own pings.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            let _ = agent_tx.close().await;
            closed
        };
        let downstream = async {
            // The agent vanished without a close frame: its sandbox was stopped (or its
            // server restarted). That is a going-away, not an internal error: clients
            // reattach.
            let mut close = Some(CloseFrame {
                code: CloseCode::Away,
                reason: "the sandbox agent went away (sandbox stopped or restarting)".into(),
            });
            let mut first = true;
            while let Some(Ok(message)) = agent_rx.next().await {
                match message {
                    Message::Text(_) | Message::Binary(_) => {
                        if first {
                            // For an exec, the agent's `started`: the command is spawned.
                            phases.mark("first agent message");
                            first = false;
                        }
                        if client_tx.send(message).await.is_err() {
                            return;
                        }
                    }
                    Message::Close(frame) => {
                        phases.mark("agent closed");
                        close = frame;
                        break;
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            let _ = client_tx.send(Message::Close(close)).await;
        };
        tokio::pin!(upstream, downstream);
        let stopping = async { going_away.wait_for(|stopping| *stopping).await.is_ok() };
        let ended = tokio::select! {
            closed = &mut upstream => Ended::Client { closed },
            () = &mut downstream => Ended::Agent,
            true = stopping => Ended::ServerStopping,
        };
        if let Ended::Client { .. } = ended {
            // The client is done (a client that has read `exit` closes first, before the
            // agent's own close has come through). The agent answers the forwarded close
            // with its own: let that handshake finish, briefly, rather than cut it.
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, &mut downstream).await;
        }
        ended
    };
    phases.mark("relayed");
    if let Ended::ServerStopping = ended {
        let going = CloseFrame {
            code: CloseCode::Away,
            reason: "the server is restarting; reattach to resume".into(),
        };
        let _ = client_tx.send(Message::Close(Some(going))).await;
    }
    // Finish the closing handshake before dropping the connection: read until the client's
    // own close (a ping or an `input` may still be on its way). Closing a socket with unread
    // bytes makes the kernel send a reset instead of an orderly end, and a client that gets
    // the reset together with our last messages can lose them — the Python SDK then missed
    // `exit` and reattached, or missed an `error` such as `CommandNotFound`. A close the
    // client sent first was read already: waiting for another one held every such client
    // for the whole second of [`CLOSE_HANDSHAKE`] before it saw the connection end.
    if let Ended::Client { closed: true } = ended {
        // tungstenite queued its answer to the client's close when it read it; it is
        // written on the next write or flush, which relaying may not have made (a message
        // from the agent after the client's close is refused before anything is written).
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, client_tx.flush()).await;
    } else {
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
            while let Some(Ok(message)) = client_rx.next().await {
                if let Message::Close(_) = message {
                    break;
                }
            }
        })
        .await;
    }
    phases.mark("close handshake");
}

/// Which side ended a bridge's relaying.
enum Ended {
    /// The client stopped sending: with a close frame (`closed`), or by leaving.
    Client { closed: bool },
    /// The agent closed (or vanished).
    Agent,
    /// This server is stopping.
    ServerStopping,
}

/// The client's connection, whose writes stop failing once the client has gone.
///
/// tungstenite flushes a queued automatic reply (the pong to a ping) before every read, and
/// a failed flush fails the read — even when frames the client sent before leaving are
/// already received and waiting. The official SDK's `kill()` sends `kill`, then its close,
/// then drops the connection at once (a reset, when answers are still unread on its side);
/// if one of its heartbeat pings was answered just then, the pong's write failed, the `kill`
/// was never read, and the command ran on. Once a write fails, the client can receive
/// nothing more, so later writes are dropped as if sent: reading goes on up to the last
/// frame the client sent, and ends with the connection's own end (EOF or the reset).
struct ReadsOutliveWrites<T> {
    inner: T,
    peer_gone: bool,
}

impl<T> ReadsOutliveWrites<T> {
    fn new(inner: T) -> Self {
        ReadsOutliveWrites {
            inner,
            peer_gone: false,
        }
    }

    /// `result` of a write-side call, with an error turned into "the client has gone".
    fn absorb<R>(&mut self, result: io::Result<R>, as_if_done: R) -> io::Result<R> {
        match result {
            Ok(done) => Ok(done),
            Err(_) => {
                self.peer_gone = true;
                Ok(as_if_done)
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadsOutliveWrites<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadsOutliveWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.peer_gone {
            return Poll::Ready(Ok(buf.len()));
        }
        let result = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        Poll::Ready(self.absorb(result, buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.peer_gone {
            return Poll::Ready(Ok(()));
        }
        let result = ready!(Pin::new(&mut self.inner).poll_flush(cx));
        Poll::Ready(self.absorb(result, ()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.peer_gone {
            return Poll::Ready(Ok(()));
        }
        let result = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
        Poll::Ready(self.absorb(result, ()))
    }
}
