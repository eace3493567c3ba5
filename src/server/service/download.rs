//! Serving a download link: `GET|HEAD /<token>` on a sandbox's download origin.
//!
//! The token pins the sandbox, the path and the response headers; the request may add only
//! `Range`, `If-Range` and `If-None-Match` (forwarded to the agent's `/download`, which
//! answers ranges, validators and 304s). The answer's headers are rebuilt from scratch: the
//! agent's content and validator headers from an allowlist, then the pinned Content-Type and
//! Content-Disposition, `X-Content-Type-Options: nosniff` and the pinned policy — nothing the
//! sandbox chose beyond the bytes themselves.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::tokens::{Grant, InvalidToken};
use super::{Refusal, csp, now_secs};
use crate::api::error::kind;
use crate::server::dataplane::ready_sandbox;
use crate::server::state::AppState;

/// Request headers passed to the agent.
const FORWARDED: &[header::HeaderName] = &[header::RANGE, header::IF_RANGE, header::IF_NONE_MATCH];
/// Response headers kept from the agent.
const KEPT: &[header::HeaderName] = &[
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
];

/// The pinned parts of an answer.
struct Pinned {
    content_type: String,
    disposition: String,
    policy: String,
}

pub async fn serve(state: AppState, sandbox_id: String, req: Request) -> Response {
    match fetch(&state, &sandbox_id, req).await {
        Ok(resp) | Err(resp) => resp,
    }
}

async fn fetch(state: &AppState, sandbox_id: &str, req: Request) -> Result<Response, Response> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            kind::METHOD_NOT_ALLOWED,
            "download links answer GET and HEAD only",
        )
        .into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Err(resp);
    }
    if req.uri().query().is_some() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            kind::INVALID_REQUEST,
            "download links take no query string",
        )
        .into_response());
    }
    let token = req.uri().path().trim_start_matches('/');
    let invalid = || Refusal::invalid("download link").into_response();
    let claims = state
        .services
        .key
        .open(token)
        .map_err(|_: InvalidToken| invalid())?;
    let Grant::Dl {
        sid,
        path,
        ct,
        cd,
        csp: policy,
    } = &claims.grant
    else {
        return Err(invalid());
    };
    if sid != sandbox_id {
        return Err(invalid());
    }
    if claims.expired(now_secs()) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            kind::FORBIDDEN,
            "Download link has expired",
        )
        .into_response());
    }
    let pinned = Pinned {
        content_type: ct
            .clone()
            .unwrap_or_else(|| csp::content_type_for(path).to_string()),
        disposition: cd.clone(),
        policy: policy.clone(),
    };
    let sb = ready_sandbox(state, sandbox_id)
        .await
        .map_err(IntoResponse::into_response)?;
    let agent_failed = |e: String| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            kind::INTERNAL_ERROR,
            format!("the sandbox did not answer: {e}"),
        )
        .into_response()
    };
    let agent = state
        .runtime
        .connect_agent(&sb.id)
        .await
        .map_err(|e| agent_failed(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(agent))
        .await
        .map_err(|e| agent_failed(e.to_string()))?;
    tokio::spawn(conn);
    let mut builder = http::Request::builder()
        .method(req.method().clone())
        .uri(format!(
            "/download?path={}",
            utf8_percent_encode(path, NON_ALPHANUMERIC)
        ))
        .header(header::HOST, "agent");
    for name in FORWARDED {
        if let Some(value) = req.headers().get(name) {
            builder = builder.header(name, value);
        }
    }
    let request = builder
        .body(Body::empty())
        .map_err(|e| agent_failed(e.to_string()))?;
    let active = state.activity.hold(&sb.id);
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| agent_failed(e.to_string()))?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            kind::FILE_NOT_FOUND,
            "the file of this download link is gone",
        )
        .into_response());
    }
    if !(status.is_success()
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::RANGE_NOT_SATISFIABLE)
    {
        return Err(Refusal::new(
            status,
            kind::READ_ERROR,
            "the file of this download link cannot be read",
        )
        .into_response());
    }
    let headers = rebuild(resp.headers(), &pinned);
    let mut answer = resp.map(|body| {
        Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
            let _still_active = &active;
            frame
        }))
    });
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// The answer's headers: the allowlisted ones of the agent, then the pinned ones.
fn rebuild(agent: &HeaderMap, pinned: &Pinned) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in KEPT {
        if let Some(value) = agent.get(name) {
            headers.insert(name, value.clone());
        }
    }
    let mut pin = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    pin(header::CONTENT_TYPE, &pinned.content_type);
    pin(header::CONTENT_DISPOSITION, &pinned.disposition);
    pin(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if !pinned.policy.is_empty() {
        pin(header::CONTENT_SECURITY_POLICY, &pinned.policy);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_headers_survive_and_pinned_ones_win() {
        let mut agent = HeaderMap::new();
        agent.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        agent.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
        agent.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        agent.insert(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        agent.insert("x-evil", HeaderValue::from_static("1"));
        let headers = rebuild(
            &agent,
            &Pinned {
                content_type: "text/plain".into(),
                disposition: "attachment; filename=\"a.txt\"".into(),
                policy: "sandbox; default-src 'self'".into(),
            },
        );
        assert_eq!(headers.len(), 6, "{headers:?}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::ETAG], "\"abc\"");
        assert!(headers.get(header::SET_COOKIE).is_none());
    }
}
