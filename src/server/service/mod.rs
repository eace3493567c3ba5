//! Service URLs and download links: HTTP into a sandbox's ports, and single files out of it,
//! for holders of a signed link rather than of the API key.
//!
//! # Origins
//!
//! Every service (a sandbox and a port) and every sandbox's downloads get a web origin of
//! their own, so a page served from one sandbox can never read another's cookies or
//! responses, nor the API's. Two schemes, chosen at server start:
//!
//! * **Loopback addresses** (the default; no DNS needed). Each origin gets its own address in
//!   `127.77.0.0/16` — Linux routes all of `127.0.0.0/8` to `lo` — and a listener on it, on
//!   the main listener's port where that is free. Browsers key origins *and* cookie jars by
//!   host, so distinct addresses isolate where distinct ports alone would share cookies; and
//!   browsers treat `127.0.0.0/8` as a secure context. The addresses are recorded in the
//!   store, bound again when the server starts, and released when their sandbox is deleted.
//! * **A service domain** (`--service-domain D`, with wildcard DNS for `*.D` pointing at the
//!   server): the main listener routes by `Host`, `{sandbox-id}--{port}.D` to a service and
//!   `{sandbox-id}--dl.D` to downloads; `--public-url` gives the scheme and port clients use.
//!
//! # Map
//!
//! `tokens` signed claims · `origins` the two schemes, allocation and listeners · `grants`
//! the login grants and the 409 rule · `mint` the control-plane endpoints · `auth_page`
//! `/_svc/auth` and `/_svc/embed` · `proxy` HTTP and WebSockets to the sandbox's port over
//! the agent's raw pipe · `download` a link's file with rebuilt headers · `csp` the policy and
//! content types a link pins.

mod auth_page;
mod csp;
mod download;
mod grants;
mod mint;
mod origins;
mod proxy;
mod tokens;

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use mint::{download_url, service_url, service_urls, unshare};
pub use origins::{Scheme, Services, by_host};

use super::state::AppState;
use crate::api::ErrorBody;
use crate::api::error::kind;

/// What one origin serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Port(u16),
    Download,
}

impl Target {
    /// The form kept in the store and used in host names: the port, or `dl`.
    fn label(&self) -> String {
        match self {
            Target::Port(port) => port.to_string(),
            Target::Download => "dl".into(),
        }
    }

    fn parse(label: &str) -> Option<Target> {
        match label {
            "dl" => Some(Target::Download),
            port => port.parse().ok().filter(|p| *p != 0).map(Target::Port),
        }
    }
}

/// One origin: a sandbox's port, or its downloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub sandbox_id: String,
    pub target: Target,
}

/// Answer a request that arrived on `origin`.
async fn serve_origin(state: AppState, origin: Origin, req: Request) -> Response {
    match origin.target {
        Target::Download => download::serve(state, origin.sandbox_id, req).await,
        Target::Port(port) => match req.uri().path() {
            auth_page::AUTH_PATH => auth_page::auth(&state, &origin.sandbox_id, port, req),
            auth_page::EMBED_PATH => auth_page::embed(),
            _ => proxy::serve(state, origin.sandbox_id, port, req).await,
        },
    }
}

/// A refusal on a service or download origin, as the standard error envelope.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            kind,
            message: message.into(),
        }
    }

    fn authentication_required() -> Refusal {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            kind::UNAUTHORIZED,
            "Authentication required",
        )
    }

    fn expired() -> Refusal {
        Refusal::new(
            StatusCode::FORBIDDEN,
            kind::FORBIDDEN,
            "Service link has expired",
        )
    }

    fn invalid(what: &str) -> Refusal {
        Refusal::new(
            StatusCode::FORBIDDEN,
            kind::FORBIDDEN,
            format!("This {what} is not valid here: it was altered or belongs to another origin"),
        )
    }

    fn unreachable() -> Refusal {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            kind::SERVICE_UNREACHABLE,
            "Service is not reachable",
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody::new(self.kind, self.message))).into_response()
    }
}

/// Seconds since the epoch, the clock tokens expire by.
fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}
