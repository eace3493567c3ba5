//! Opening one `/execute/ws` socket (with `X-Api-Key`) and sending client messages on it.
//! Refusals say whether trying again may help: an HTTP 429 or 5xx (the server restarting, a
//! proxy hiccup) and transport failures may; a bad URL, key or 4xx will not.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::ClientError;
use crate::api::exec::ClientMessage;

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connect to `url`; on failure the error and whether a retry may succeed.
///
/// The one place that dials the data plane's `/execute/ws` with credentials: every exec
/// session, the interactive console among them, attaches through here, and so should any
/// later protocol carried over the same socket (a port tunnel), so authentication and the
/// reading of refusals stay in one spot.
pub(super) async fn connect(url: &str, api_key: &str) -> Result<Socket, (ClientError, bool)> {
    let mut request = url.into_client_request().map_err(|e| {
        (
            ClientError::Config(format!("bad dataplane URL: {e}")),
            false,
        )
    })?;
    let key = api_key.parse().map_err(|_| {
        (
            ClientError::Config("API key is not a valid header value".into()),
            false,
        )
    })?;
    request.headers_mut().insert("X-Api-Key", key);
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(resp)) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let retryable = status == 429 || status >= 500;
            Err((ClientError::from_response(status, &body), retryable))
        }
        Err(e) => Err((ClientError::Transport(e.to_string()), true)),
    }
}

pub(super) async fn send(
    socket: &mut Socket,
    msg: &ClientMessage,
) -> Result<(), tungstenite::Error> {
    let text = serde_json::to_string(msg).expect("client messages serialise");
    socket.send(Message::text(text)).await
}
