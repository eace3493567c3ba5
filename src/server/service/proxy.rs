//! Serving a service origin: authenticate, then pass the request to the sandbox's port.
//!
//! Credentials, in order: the `X-Langsmith-Sandbox-Service-Token` header, the cookie
//! `/_svc/auth` set, and — only for a port with a login grant — the server's API key as
//! `X-Api-Key`. The local backend has no LangSmith login, so whoever holds the API key stands
//! in for "a signed-in member" of both `restricted` and `workspace` grants. None of these
//! reach the sandbox: they are stripped with any client-sent `X-Langsmith-User-*` header
//! (which a service behind a login grant might otherwise trust).
//!
//! The bytes travel over the agent's `/_connect` pipe: the agent dials the port inside the
//! sandbox's own network namespace, so a service URL reaches that sandbox's loopback and
//! nothing else. HTTP is spoken over the pipe with hyper; a WebSocket (any `Upgrade`) is
//! answered by the service and then spliced raw.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use super::auth_page::COOKIE;
use super::tokens::{Claims, Grant, InvalidToken};
use super::{Refusal, grants, now_secs};
use crate::api::service::{CONNECT_PATH, CONNECT_UPGRADE, SERVICE_TOKEN_HEADER};
use crate::server::activity::ActiveGuard;
use crate::server::dataplane::ready_sandbox;
use crate::server::state::AppState;

/// Request headers that describe one hop, never passed on (an upgrade keeps its own two).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The claims of a service token if it is this origin's (sandbox and port), signed by this
/// server and not expired.
pub fn verify_service_token(
    state: &AppState,
    sandbox_id: &str,
    port: u16,
    token: &str,
) -> Result<Claims, Refusal> {
    let claims = state
        .services
        .key
        .open(token)
        .map_err(|_: InvalidToken| Refusal::invalid("service link"))?;
    match &claims.grant {
        Grant::Svc { sid, port: p, .. } if sid == sandbox_id && p == &port => {}
        _ => return Err(Refusal::invalid("service link")),
    }
    if claims.expired(now_secs()) {
        return Err(Refusal::expired());
    }
    Ok(claims)
}

/// Any request on a service origin except `/_svc/…`.
pub async fn serve(state: AppState, sandbox_id: String, port: u16, mut req: Request) -> Response {
    let embed_origins = match authenticate(&state, &sandbox_id, port, req.headers()).await {
        Ok(origins) => origins,
        Err(refusal) => return refusal.into_response(),
    };
    strip_credentials(req.headers_mut());
    let mut resp = match forward(&state, &sandbox_id, port, req).await {
        Ok(resp) => resp,
        Err(resp) => return resp,
    };
    if !embed_origins.is_empty()
        && let Ok(policy) = HeaderValue::from_str(&format!(
            "frame-ancestors 'self' {}",
            embed_origins.join(" ")
        ))
    {
        // A second policy header narrows the service's own; it never loosens it.
        resp.headers_mut()
            .append(header::CONTENT_SECURITY_POLICY, policy);
    }
    resp
}

/// Who may pass: the origins allowed to frame the response, or why not.
async fn authenticate(
    state: &AppState,
    sandbox_id: &str,
    port: u16,
    headers: &HeaderMap,
) -> Result<Vec<String>, Refusal> {
    let presented = headers
        .get(SERVICE_TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .or_else(|| cookie_token(headers));
    if let Some(token) = presented {
        let claims = verify_service_token(state, sandbox_id, port, &token)?;
        return Ok(match claims.grant {
            Grant::Svc { eo, .. } => eo,
            Grant::Dl { .. } => Vec::new(),
        });
    }
    if let Some(key) = headers.get("x-api-key") {
        let grant = grants::login_grant(state, sandbox_id, port)
            .await
            .map_err(|_| Refusal::authentication_required())?;
        if let Some(grant) = grant
            && state.services.api_key.matches(key.as_bytes())
        {
            return Ok(grant.embed_origins.unwrap_or_default());
        }
    }
    Err(Refusal::authentication_required())
}

/// The token in this origin's cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Remove what authenticated the request, and identity headers a client may not set.
fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(SERVICE_TOKEN_HEADER);
    headers.remove("x-api-key");
    let identity: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-langsmith-user-"))
        .cloned()
        .collect();
    for name in identity {
        headers.remove(name);
    }
    let others: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').is_none_or(|(n, _)| n != COOKIE))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if let Ok(value) = HeaderValue::from_str(&others.join("; "))
        && !others.is_empty()
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Send the request to the sandbox's port and return its response; `Err` is the answer to
/// give instead (sandbox gone or not ready, nothing listening).
async fn forward(
    state: &AppState,
    sandbox_id: &str,
    port: u16,
    mut req: Request,
) -> Result<Response, Response> {
    let sb = ready_sandbox(state, sandbox_id)
        .await
        .map_err(IntoResponse::into_response)?;
    let agent = state
        .runtime
        .connect_agent(&sb.id)
        .await
        .map_err(|_| Refusal::unreachable().into_response())?;
    let pipe = open_pipe(agent, port).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(pipe)
        .await
        .map_err(|_| Refusal::unreachable().into_response())?;
    tokio::spawn(conn.with_upgrades());
    let upgrade = req.headers().get(header::UPGRADE).cloned();
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut builder = http::Request::builder().method(parts.method).uri(
        parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string(),
    );
    let mut headers = parts.headers;
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    let forwarded = builder
        .body(body)
        .map_err(|_| Refusal::unreachable().into_response())?;
    // Active until the response is done (or the WebSocket closes): using a service is using
    // the sandbox, so the idle reaper leaves it running.
    let active = state.activity.hold(&sb.id);
    let mut resp = sender
        .send_request(forwarded)
        .await
        .map_err(|_| Refusal::unreachable().into_response())?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = client_upgrade
    {
        let service = hyper::upgrade::on(&mut resp);
        tokio::spawn(splice(client, service, active));
        return Ok(resp.map(|_| Body::empty()));
    }
    for name in ["connection", "keep-alive", "proxy-connection"] {
        resp.headers_mut().remove(name);
    }
    Ok(resp.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _still_active = &active;
            frame
        }))
    }))
}

/// A raw byte pipe to `port` inside the sandbox, from its agent (`GET /_connect`).
async fn open_pipe(agent: tokio::net::UnixStream, port: u16) -> Result<Upgraded, Response> {
    let unreachable = |_| Refusal::unreachable().into_response();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(agent))
        .await
        .map_err(unreachable)?;
    tokio::spawn(conn.with_upgrades());
    let request = http::Request::get(format!("{CONNECT_PATH}?port={port}"))
        .header(header::HOST, "agent")
        .header(header::UPGRADE, CONNECT_UPGRADE)
        .header(header::CONNECTION, "upgrade")
        .body(Body::empty())
        .map_err(|_| Refusal::unreachable().into_response())?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|_| Refusal::unreachable().into_response())?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(Refusal::unreachable().into_response());
    }
    hyper::upgrade::on(resp)
        .await
        .map_err(|_| Refusal::unreachable().into_response())
}

/// Both sides of an upgraded connection, copied until either ends.
async fn splice(client: OnUpgrade, service: OnUpgrade, active: ActiveGuard) {
    if let (Ok(client), Ok(service)) = tokio::join!(client, service) {
        let _ =
            tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(service))
                .await;
    }
    drop(active);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_identity_headers_are_stripped_and_other_cookies_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(SERVICE_TOKEN_HEADER, HeaderValue::from_static("t"));
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert("x-langsmith-user-id", HeaderValue::from_static("spoofed"));
        headers.insert("x-langsmith-user-email", HeaderValue::from_static("a@b"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE}=secret; lang=en")).unwrap(),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert_eq!(cookie_token(&headers).as_deref(), Some("secret"));
        strip_credentials(&mut headers);
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert_eq!(headers[header::COOKIE], "theme=dark; lang=en");
        assert_eq!(headers[header::ACCEPT], "text/html");

        let mut only_ours = HeaderMap::new();
        only_ours.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}=secret")).unwrap(),
        );
        strip_credentials(&mut only_ours);
        assert!(only_ours.is_empty());
    }
}
