//! API-key authentication for every route, WebSocket upgrades included.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The key clients must present as `X-Api-Key` (header names are case-insensitive).
#[derive(Clone)]
pub struct ApiKey(pub Arc<String>);

impl ApiKey {
    /// Constant-time comparison, so response timing does not leak how much of a guess matched.
    pub(super) fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        presented.len() == expected.len() && bool::from(presented.ct_eq(expected))
    }
}

pub async fn require_api_key(State(key): State<ApiKey>, req: Request, next: Next) -> Response {
    match req.headers().get("x-api-key") {
        Some(v) if key.matches(v.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::Unauthorized("invalid API key (X-Api-Key header)".into()).into_response(),
        None => ApiError::Unauthorized(
            "missing API key: send it in the X-Api-Key header (the local server keeps it in STATE_DIR/api-key)"
                .into(),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comparison_requires_exact_match() {
        let k = ApiKey(Arc::new("secret".into()));
        assert!(k.matches(b"secret"));
        assert!(!k.matches(b"secreT"));
        assert!(!k.matches(b"secret2"));
        assert!(!k.matches(b""));
    }
}
