//! A JSON body extractor whose rejections are API errors (JSON body, 4xx), never plain text.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Like `axum::Json`, but a missing, malformed or mistyped body answers 422 with the
/// standard error body, naming the offending field when serde can tell.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::validation("body", format!("could not read the body: {e}")))?;
        // An empty body is an empty object: the official clients send `{}` or nothing on
        // start/stop, and every field of those bodies is optional.
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(de)
            .map(ApiJson)
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." {
                    "body".to_string()
                } else {
                    field
                };
                ApiError::validation(&field, format!("invalid request body: {}", e.inner()))
            })
    }
}
