//! `GET /tunnel`: a WebSocket carrying a yamux session, one stream per TCP connection the
//! client forwards. The agent is the yamux server: it never opens streams, it accepts them
//! and hands each to [`tunnel_stream`](super::tunnel_stream), which dials the port inside the
//! sandbox.
//!
//! The upgrade is answered here ([`crate::ws_upgrade`]) rather than by axum's WebSocket
//! extractor so the socket is a tungstenite stream, the type [`crate::ws_pipe`] turns into
//! bytes for yamux (the same pipe the client uses). There is no `Origin` check: the server in
//! front of the agent has already checked the API key.
//!
//! One task owns the yamux connection and drives it (frames, pings, window updates) by
//! polling for inbound streams; each stream gets a task of its own that owns its TCP
//! connection, so when either side vanishes everything it held is dropped with it. When the
//! agent stops, the session says GoAway and closes the WebSocket.

use std::future::poll_fn;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::app::{ApiError, AppState};
use super::shutdown::Shutdown;
use super::tunnel_stream;
use crate::ws_pipe::WsPipe;
use crate::ws_upgrade;

/// The largest yamux data frame sent: fewer headers and WebSocket messages per byte; the
/// peer's window still bounds what is in flight.
const SPLIT_SEND_SIZE: usize = 256 * 1024;

/// Answer the upgrade, then serve the session on the upgraded connection.
pub async fn tunnel(State(state): State<AppState>, mut req: Request) -> Response {
    let bad = |message: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message).into_response()
    };
    let key = match ws_upgrade::websocket_key(req.headers()) {
        Ok(key) => key,
        Err(why) => return bad(why),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return bad("this connection cannot be upgraded");
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
    ws_upgrade::switching_protocols(&key)
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
