//! `{dataplane_url}/tunnel`: a port tunnel's WebSocket, spliced to the agent as raw bytes.
//!
//! Unlike exec sockets, which are bridged message by message, a tunnel is forwarded below
//! the WebSocket framing: the upgrade request goes to the agent (with only the headers a
//! WebSocket handshake needs — never the API key, cookies or extension offers, so nothing
//! is compressed), the agent's `101` comes back to the client, and from then on the two
//! upgraded connections are copied into each other. Frames are parsed once, by the agent,
//! which keeps bulk transfers fast. The sandbox counts as active while a tunnel is open.
//! When this server stops, a tunnel's TCP connection simply ends; clients reconnect lazily.

use axum::body::Body;
use axum::response::Response;
use http::header;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::server::error::ApiError;
use crate::server::state::AppState;

/// Headers of the handshake the agent needs: the rest stays out of the sandbox.
const HANDSHAKE: [header::HeaderName; 4] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
];
/// Copy buffers per direction.
const COPY_BUFFER: usize = 256 * 1024;

/// Open the tunnel on the agent behind `agent` and splice the client to it.
pub(super) async fn splice(
    state: &AppState,
    sandbox_id: &str,
    agent: UnixStream,
    mut parts: http::request::Parts,
) -> Result<Response, ApiError> {
    let client_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| ApiError::validation("upgrade", "this connection cannot be upgraded"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(agent))
        .await
        .map_err(|e| ApiError::Internal(format!("connecting to the sandbox agent: {e}")))?;
    tokio::spawn(conn.with_upgrades());
    let mut request = http::Request::builder()
        .method(http::Method::GET)
        .uri("/tunnel")
        .header(header::HOST, "agent");
    for name in HANDSHAKE {
        if let Some(value) = parts.headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let request = request
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(format!("building the agent request: {e}")))?;
    let mut answer = sender
        .send_request(request)
        .await
        .map_err(|e| ApiError::Internal(format!("sandbox agent request failed: {e}")))?;
    if answer.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        // The agent's own refusal (a malformed handshake), passed on as it answered.
        return Ok(answer.map(Body::new));
    }
    let agent_upgrade = hyper::upgrade::on(&mut answer);
    let active = state.activity.hold(sandbox_id);
    tokio::spawn(async move {
        let (Ok(client), Ok(agent)) = tokio::join!(client_upgrade, agent_upgrade) else {
            return;
        };
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut TokioIo::new(client),
            &mut TokioIo::new(agent),
            COPY_BUFFER,
            COPY_BUFFER,
        )
        .await;
        drop(active);
    });
    let mut response = Response::builder().status(http::StatusCode::SWITCHING_PROTOCOLS);
    for name in [
        header::UPGRADE,
        header::CONNECTION,
        header::SEC_WEBSOCKET_ACCEPT,
    ] {
        if let Some(value) = answer.headers().get(&name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(format!("building the upgrade answer: {e}")))
}
