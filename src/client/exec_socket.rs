//! The one dial of a data-plane WebSocket (with `X-Api-Key`): `/execute/ws` for exec sessions,
//! `/tunnel` for port tunnels. Also sends exec client messages on it.
//! Refusals say whether trying again may help: an HTTP 429 or 5xx (the server restarting, a
//! proxy hiccup) and transport failures may; a bad URL, key or 4xx will not.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::ClientError;
use crate::api::exec::ClientMessage;

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket URL of `suffix` (`/execute/ws`, `/tunnel`) on a data plane: trailing `/`
/// stripped, `http://` → `ws://`, anything else → `wss://`, as the LangSmith CLI does.
pub fn ws_url(dataplane: &str, suffix: &str) -> String {
    let url = format!("{}{suffix}", dataplane.trim_end_matches('/'));
    match url.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => format!("wss://{}", url.strip_prefix("https://").unwrap_or(&url)),
    }
}

/// Connect to `url` with `X-Api-Key` and `extra_headers`; on failure the error and whether a
/// retry may succeed. `nodelay` turns Nagle's algorithm off (small writes that must not wait:
/// an exec's input and controls, a tunnel's request/response traffic).
///
/// The one place that dials a data-plane WebSocket with credentials: every exec session, the
/// interactive console among them, and every tunnel session attach through here, so
/// authentication and the reading of refusals stay in one spot.
pub(super) async fn connect_with(
    url: &str,
    api_key: &str,
    extra_headers: &[(&'static str, String)],
    nodelay: bool,
) -> Result<Socket, (ClientError, bool)> {
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
    for (name, value) in extra_headers {
        let value = value.parse().map_err(|_| {
            (
                ClientError::Config(format!("{name} is not a valid header value")),
                false,
            )
        })?;
        request.headers_mut().insert(*name, value);
    }
    // Short reads, as on the server's bridge: tungstenite zeroes the whole read size first.
    let config = WebSocketConfig::default().read_buffer_size(32 * 1024);
    match tokio_tungstenite::connect_async_with_config(request, Some(config), nodelay).await {
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

#[cfg(test)]
mod tests {
    #[test]
    fn ws_urls_follow_the_scheme_and_drop_a_trailing_slash() {
        let cases = [
            (
                "http://127.0.0.1:7433/dp/x/",
                "/tunnel",
                "ws://127.0.0.1:7433/dp/x/tunnel",
            ),
            (
                "https://dp.example/a",
                "/tunnel",
                "wss://dp.example/a/tunnel",
            ),
            (
                "https://dp.example",
                "/execute/ws",
                "wss://dp.example/execute/ws",
            ),
        ];
        for (dataplane, suffix, expected) in cases {
            assert_eq!(super::ws_url(dataplane, suffix), expected);
        }
    }
}
