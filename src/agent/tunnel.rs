//! `GET /tunnel`: a WebSocket carrying a yamux session, one stream per TCP connection the
//! client forwards. The agent is the yamux server: it never opens streams, it accepts them
//! and hands each to [`tunnel_stream`](super::tunnel_stream), which dials the port inside the
//! sandbox.
//!
//! The upgrade is answered here rather than by axum's WebSocket extractor so the socket is
//! a tungstenite stream, the type [`crate::ws_pipe`] turns into bytes for yamux (the same
//! pipe the client uses). No extension is negotiated (the official SDK may offer
//! permessage-deflate; leaving it out of the answer declines it), no subprotocol, and no
//! `Origin` check: the server in front of the agent has already checked the API key.
//!
//! One task owns the yamux connection and drives it (frames, pings, window updates) by
//! polling for inbound streams; each stream gets a task of its own that owns its TCP
//! connection, so when either side vanishes everything it held is dropped with it. When the
//! agent stops, the session says GoAway and closes the WebSocket.

use std::future::poll_fn;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::app::{ApiError, AppState};
use super::shutdown::Shutdown;
use super::tunnel_stream;
use crate::ws_pipe::WsPipe;

/// The largest yamux data frame sent: fewer headers and WebSocket messages per byte; the
/// peer's window still bounds what is in flight.
const SPLIT_SEND_SIZE: usize = 256 * 1024;

/// Answer the upgrade, then serve the session on the upgraded connection.
pub async fn tunnel(State(state): State<AppState>, mut req: Request) -> Response {
    let key = match websocket_key(req.headers()) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "this connection cannot be upgraded",
        )
        .into_response();
    };
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(WebSocketConfig::default()),
            )
            .await;
            serve_session(WsPipe::new(socket), shutdown).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(axum::body::Body::empty())
        .expect("static response parts")
}

/// The client's `Sec-WebSocket-Key`, once the request is a version-13 WebSocket upgrade.
fn websocket_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message);
    let is_websocket = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !is_websocket {
        return Err(bad(
            "/tunnel is a WebSocket endpoint: send Upgrade: websocket",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Err(bad("unsupported WebSocket version (expected 13)"));
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| bad("missing Sec-WebSocket-Key"))
}

/// Accept streams until the client ends the session (or the agent stops: then GoAway).
async fn serve_session<T>(pipe: T, shutdown: Shutdown)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut config = yamux::Config::default();
    config.set_split_send_size(SPLIT_SEND_SIZE);
    let mut connection = yamux::Connection::new(pipe.compat(), config, yamux::Mode::Server);
    loop {
        tokio::select! {
            inbound = poll_fn(|cx| connection.poll_next_inbound(cx)) => match inbound {
                Some(Ok(stream)) => {
                    tokio::spawn(tunnel_stream::serve(stream));
                }
                // The client closed the session or the socket failed: streams end with it.
                Some(Err(_)) | None => return,
            },
            () = shutdown.stopping() => break,
        }
    }
    // GoAway, then the WebSocket's close: the client reconnects to the next agent.
    let _ = poll_fn(|cx| connection.poll_close(cx)).await;
}
