//! The data-plane router: `{dataplane_url}/…` = `/dp/{sandbox_id}/…` on this server,
//! forwarded to the sandbox agent's unix socket — plain HTTP requests stream through
//! unchanged, WebSocket upgrades are bridged message by message. When this server stops,
//! bridged sockets get 1001 and SSE exec streams a `ServerShuttingDown` event ([`sse`]), so
//! clients resume on the next server.

mod sse;

use axum::body::Body;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio_tungstenite::tungstenite::{
    self as tung, protocol::CloseFrame, protocol::frame::coding::CloseCode,
};

use super::error::ApiError;
use super::lifecycle;
use super::state::AppState;
use crate::api::error::kind;
use crate::api::{Sandbox, status};

/// The only request headers passed to the agent: what file transfers need. Everything else
/// (the API key, `Authorization`, cookies, service keys) stays out of the sandbox, whose
/// processes could listen on the agent's socket.
const FORWARDED: &[&str] = &[
    "content-type",
    "content-length",
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "accept",
];

/// `ANY /dp/{id}[/{rest}]`. The remainder is forwarded exactly as the client encoded it
/// (never decoded and re-encoded), so any path the agent can parse arrives intact.
pub async fn proxy(State(state): State<AppState>, req: Request) -> Response {
    let raw = req.uri().path().strip_prefix("/dp/").unwrap_or_default();
    let (id, rest) = raw.split_once('/').unwrap_or((raw, ""));
    let (id, rest) = (id.to_string(), rest.to_string());
    match route(state, id, rest, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn route(
    state: AppState,
    id: String,
    rest: String,
    req: Request,
) -> Result<Response, ApiError> {
    let sb = ready_sandbox(&state, &id).await?;
    let path_and_query = match req.uri().query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    let (parts, body) = req.into_parts();
    let is_upgrade = parts
        .headers
        .get(http::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let stream = state
        .runtime
        .connect_agent(&sb.id)
        .await
        .map_err(|e| ApiError::BadRequest {
            error: kind::NOT_READY,
            message: format!("sandbox '{}' is not answering: {e}", sb.name),
        })?;
    let agent = Agent {
        state: &state,
        sandbox_id: &sb.id,
        stream,
        path_and_query,
    };
    if is_upgrade {
        agent.bridge_upgrade(parts).await
    } else {
        agent.forward(parts, body).await
    }
}

/// The sandbox `id`, ready to serve: a stopped one is woken first (service URLs too).
pub(super) async fn ready_sandbox(state: &AppState, id: &str) -> Result<Sandbox, ApiError> {
    let mut sb = state
        .store
        .sandbox_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("sandbox '{id}' not found")))?;
    // Only a stopped sandbox is woken: one still provisioning may wait for its snapshot's
    // build, which its own boot task follows (booting it here could fail it early).
    if sb.status == status::STOPPED {
        sb = lifecycle::wake(state, &sb.id).await?;
    }
    if sb.status != status::READY {
        return Err(ApiError::not_ready(format!(
            "sandbox '{}' is {}, not ready{}",
            sb.name,
            sb.status,
            match &sb.status_message {
                Some(why) if !why.is_empty() => format!(": {why}"),
                _ => String::new(),
            }
        )));
    }
    Ok(sb)
}

/// A connection to a sandbox's agent, and where the request goes on it.
struct Agent<'a> {
    state: &'a AppState,
    sandbox_id: &'a str,
    stream: UnixStream,
    path_and_query: String,
}

impl Agent<'_> {
    /// A WebSocket upgrade: open the agent's side, then bridge the two message by message.
    async fn bridge_upgrade(self, mut parts: http::request::Parts) -> Result<Response, ApiError> {
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, self.state)
            .await
            .map_err(|e| ApiError::validation("upgrade", e.body_text()))?;
        let url = format!("ws://agent{}", self.path_and_query);
        let (agent, _) = tokio_tungstenite::client_async(url, self.stream)
            .await
            .map_err(|e| ApiError::Internal(format!("connecting to the sandbox agent: {e}")))?;
        let active = self.state.activity.hold(self.sandbox_id);
        let going_away = self.state.going_away.subscribe();
        Ok(upgrade
            .max_message_size(64 << 20)
            .on_upgrade(move |client| async move {
                bridge(client, agent, going_away).await;
                drop(active);
            }))
    }

    /// A plain HTTP request: forwarded with the allowed headers, its response streamed back.
    async fn forward(self, parts: http::request::Parts, body: Body) -> Result<Response, ApiError> {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(self.stream))
            .await
            .map_err(|e| ApiError::Internal(format!("connecting to the sandbox agent: {e}")))?;
        tokio::spawn(conn);
        let mut builder = http::Request::builder()
            .method(parts.method)
            .uri(self.path_and_query)
            .header(http::header::HOST, "agent");
        for (name, value) in parts.headers.iter() {
            if FORWARDED.contains(&name.as_str()) {
                builder = builder.header(name, value);
            }
        }
        let forwarded = builder
            .body(body)
            .map_err(|e| ApiError::Internal(format!("building the agent request: {e}")))?;
        // Active until the response body is done: a long command or download is not idleness.
        let active = self.state.activity.hold(self.sandbox_id);
        let resp = sender
            .send_request(forwarded)
            .await
            .map_err(|e| ApiError::Internal(format!("sandbox agent request failed: {e}")))?;
        if sse::is_event_stream(resp.headers()) {
            let going_away = self.state.going_away.subscribe();
            return Ok(resp.map(|body| sse::with_goodbye(body, going_away, active)));
        }
        Ok(resp.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _still_active = &active;
                frame
            }))
        }))
    }
}

type AgentSocket = tokio_tungstenite::WebSocketStream<UnixStream>;

/// Relay messages both ways until either side closes; a close frame (and its code) is
/// passed on, so clients see the agent's 1000 after `exit` exactly as it sent it. When the
/// server stops, the client gets 1001 Going Away: the command keeps running in
/// the sandbox and the client reattaches to the next server.
async fn bridge(
    client: WebSocket,
    agent: AgentSocket,
    mut going_away: tokio::sync::watch::Receiver<bool>,
) {
    let (mut client_tx, mut client_rx) = client.split();
    let (mut agent_tx, mut agent_rx) = agent.split();
    let upstream = async {
        while let Some(Ok(msg)) = client_rx.next().await {
            let out = match msg {
                ws::Message::Text(t) => tung::Message::text(t.as_str()),
                ws::Message::Binary(b) => tung::Message::binary(b),
                ws::Message::Close(frame) => {
                    let frame = frame.map(|f| CloseFrame {
                        code: CloseCode::from(f.code),
                        reason: f.reason.as_str().into(),
                    });
                    let _ = agent_tx.send(tung::Message::Close(frame)).await;
                    break;
                }
                // Each side answers its own pings.
                ws::Message::Ping(_) | ws::Message::Pong(_) => continue,
            };
            if agent_tx.send(out).await.is_err() {
                break;
            }
        }
        let _ = agent_tx.close().await;
    };
    let downstream = async {
        // The agent vanished without a close frame: its sandbox was stopped (or its server
        // restarted). That is a going-away, not an internal error: clients reattach.
        let mut close = Some(ws::CloseFrame {
            code: 1001,
            reason: "the sandbox agent went away (sandbox stopped or restarting)".into(),
        });
        while let Some(Ok(msg)) = agent_rx.next().await {
            let out = match msg {
                tung::Message::Text(t) => ws::Message::Text(t.as_str().into()),
                tung::Message::Binary(b) => ws::Message::Binary(b),
                tung::Message::Close(frame) => {
                    close = frame.map(|f| ws::CloseFrame {
                        code: f.code.into(),
                        reason: f.reason.as_str().into(),
                    });
                    break;
                }
                _ => continue,
            };
            if client_tx.send(out).await.is_err() {
                return;
            }
        }
        let _ = client_tx.send(ws::Message::Close(close)).await;
    };
    let stopping = tokio::select! {
        _ = upstream => false,
        _ = downstream => false,
        Ok(_) = going_away.wait_for(|stopping| *stopping) => true,
    };
    if stopping {
        let going = ws::CloseFrame {
            code: 1001,
            reason: "the server is restarting; reattach to resume".into(),
        };
        let _ = client_tx.send(ws::Message::Close(Some(going))).await;
    }
    // Finish the closing handshake before dropping the connection: read until the client's
    // own close (a ping or an `input` may still be on its way). Closing a socket with unread
    // bytes makes the kernel send a reset instead of an orderly end, and a client that gets
    // the reset together with our last messages can lose them — the Python SDK then missed
    // `exit` and reattached, or missed an `error` such as `CommandNotFound`.
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
        while let Some(Ok(msg)) = client_rx.next().await {
            if let ws::Message::Close(_) = msg {
                break;
            }
        }
    })
    .await;
}

/// How long a closing bridge waits for the client's close frame.
const CLOSE_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(1);
