//! The answering side of a WebSocket upgrade (RFC 6455 §4.2) for endpoints that take the
//! upgraded connection themselves rather than through axum's extractor: the agent's port
//! tunnel (a tungstenite stream for yamux) and the server's exec bridge (a connection whose
//! writes may fail while what the client sent is still to be read). It is a leaf: both the
//! agent and the server use it.
//!
//! No extension and no subprotocol is ever accepted (the official SDK may offer
//! permessage-deflate; leaving it out of the answer declines it).

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The client's `Sec-WebSocket-Key`, once `headers` are a version-13 WebSocket upgrade;
/// otherwise what is wrong with them, for a 400.
pub fn websocket_key(headers: &HeaderMap) -> Result<String, &'static str> {
    let is_websocket = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !is_websocket {
        return Err("this is a WebSocket endpoint: send Upgrade: websocket");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Err("unsupported WebSocket version (expected 13)");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("missing Sec-WebSocket-Key")
}

/// The `101 Switching Protocols` answering the upgrade that sent `key`.
pub fn switching_protocols(key: &str) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(Body::empty())
        .expect("static response parts")
}
