//! The two pages a service origin serves itself, under `/_svc/` (never passed to the
//! sandbox): `/_svc/auth?token=…[&redirect=/path]` swaps a token for a cookie of this origin
//! and redirects, so a browser can follow links and load assets without the token; and
//! `/_svc/embed`, a page for iframes that reads the token from the URL fragment (which no
//! server, log or `Referer` sees) and goes on to `/_svc/auth`.
//!
//! The cookie is `SameSite=Lax`: it rides top-level navigations (a `browser_url` opened in a
//! tab) but not cross-site iframes, whose browsers want `SameSite=None; Secure` — which
//! plain-HTTP loopback origins cannot promise everywhere. Embedding across sites is
//! therefore best effort on the local backend.

use std::collections::HashMap;

use axum::extract::{Query, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::proxy::verify_service_token;
use super::{Refusal, now_secs};
use crate::server::state::AppState;

pub const AUTH_PATH: &str = "/_svc/auth";
pub const EMBED_PATH: &str = "/_svc/embed";
/// The cookie holding the token on a service origin.
pub const COOKIE: &str = "langsmith_svc";

/// `GET /_svc/auth?token=…[&redirect=/path]`: 302 to the path (default `/`) with the cookie.
pub fn auth(state: &AppState, sandbox_id: &str, port: u16, req: Request) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let Some(token) = query.get("token").filter(|t| !t.is_empty()) else {
        return Refusal::authentication_required().into_response();
    };
    let claims = match verify_service_token(state, sandbox_id, port, token) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.into_response(),
    };
    let max_age = claims.exp.map_or(0, |exp| (exp - now_secs()).max(0));
    let cookie = format!("{COOKIE}={token}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax");
    let location = query
        .get("redirect")
        .map(String::as_str)
        .filter(|r| is_local_path(r))
        .unwrap_or("/");
    let mut resp = StatusCode::FOUND.into_response();
    let headers = resp.headers_mut();
    // Both were checked: the token is base64url and a dot, the path printable ASCII.
    if let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(location),
        HeaderValue::from_str(&cookie),
    ) {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A path on this origin: `/…`, never `//host` or `/\host` (which browsers read as another
/// host), printable ASCII only.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// `GET /_svc/embed#token=…[&redirect=/path]`.
pub fn embed() -> Response {
    let mut resp = Html(EMBED_PAGE).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const EMBED_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Opening the service</title></head>
<body>
<script>
(function () {
  var params = new URLSearchParams(location.hash.slice(1));
  var token = params.get("token");
  if (!token) { document.body.textContent = "Authentication required"; return; }
  var target = "/_svc/auth?token=" + encodeURIComponent(token);
  var redirect = params.get("redirect");
  if (redirect) { target += "&redirect=" + encodeURIComponent(redirect); }
  location.replace(target);
})();
</script>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_origin() {
        assert!(is_local_path("/"));
        assert!(is_local_path("/app/index.html?x=1"));
        for bad in [
            "",
            "app",
            "//evil.org",
            "/\\evil.org",
            "https://evil.org",
            "/a b",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }
}
