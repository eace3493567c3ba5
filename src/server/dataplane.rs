//! The data-plane router: `{dataplane_url}/…` = `/dp/{sandbox_id}/…` on this server,
//! forwarded to the sandbox agent's unix socket — plain HTTP requests stream through
//! unchanged, WebSocket upgrades are bridged message by message ([`bridge`]), except a port
//! tunnel's, which is spliced as raw bytes ([`tunnel`]). When this server stops,
//! bridged sockets get 1001 and SSE exec streams a `ServerShuttingDown` event ([`sse`]), so
//! clients resume on the next server.

mod bridge;
mod sse;
mod tunnel;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::error::ApiError;
use super::lifecycle;
use super::state::AppState;
use crate::api::error::kind;
use crate::api::{Sandbox, status};
use crate::phases::Phases;

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
    // Paths starting with `_` are the agent's own, for this server only (never the client's).
    if rest.starts_with('_') {
        return Err(ApiError::NotFound(format!("no data-plane route /{rest}")));
    }
    let mut phases = Phases::start("data plane", format_args!("{id}/{rest}"));
    let sb = ready_sandbox(&state, &id).await?;
    phases.mark("lookup");
    let path_and_query = match req.uri().query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    let (parts, body) = req.into_parts();
    let is_upgrade = parts
        .headers
        .get(http::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_upgrade && rest != "tunnel" {
        return bridge::upgrade(&state, &sb, &path_and_query, parts, phases).await;
    }
    let stream = connect_agent(&state, &sb).await?;
    phases.mark("agent connect");
    let agent = Agent {
        state: &state,
        sandbox_id: &sb.id,
        stream,
        path_and_query,
    };
    if is_upgrade {
        phases.finish();
        tunnel::splice(&state, &sb.id, agent.stream, parts).await
    } else {
        let response = agent.forward(parts, body).await;
        phases.mark("agent answered");
        phases.finish();
        response
    }
}

/// A connection to `sb`'s agent; a sandbox whose agent does not answer is not ready.
async fn connect_agent(state: &AppState, sb: &Sandbox) -> Result<UnixStream, ApiError> {
    state
        .runtime
        .connect_agent(&sb.id)
        .await
        .map_err(|e| ApiError::BadRequest {
            error: kind::NOT_READY,
            message: format!("sandbox '{}' is not answering: {e}", sb.name),
        })
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
