//! A JSON body extractor whose rejections are API errors (JSON body, 4xx), never plain text.
//!
//! Serde's derived structs also accept a JSON array (their fields in order), so `[]` would
//! pass as a body whose fields are all optional. A body whose type is a struct or a map must
//! therefore be a JSON object; the type's shape is asked of the type itself ([`shape_of`]),
//! so bodies that are lists (the secrets bulk upsert) stay lists.

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
        if shape_of::<T>() == Shape::Object && first_byte(text) != Some(b'{') {
            return Err(ApiError::validation(
                "body",
                "the request body must be a JSON object",
            ));
        }
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

/// The first byte of `text` that is not whitespace.
fn first_byte(text: &[u8]) -> Option<u8> {
    text.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// What a type deserializes from at its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A struct or a map: a JSON object.
    Object,
    /// Anything else (a list, a value of any kind).
    Other,
}

/// The top-level shape `T` asks a deserializer for, found by offering it a deserializer
/// that only notes the first request and stops there.
fn shape_of<T: DeserializeOwned>() -> Shape {
    match T::deserialize(ShapeProbe) {
        Err(ProbeAnswer(shape)) => shape,
        Ok(_) => Shape::Other,
    }
}

struct ShapeProbe;

#[derive(Debug)]
struct ProbeAnswer(Shape);

impl std::fmt::Display for ProbeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for ProbeAnswer {}

impl serde::de::Error for ProbeAnswer {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        ProbeAnswer(Shape::Other)
    }
}

impl<'de> serde::Deserializer<'de> for ShapeProbe {
    type Error = ProbeAnswer;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeAnswer> {
        Err(ProbeAnswer(Shape::Other))
    }

    fn deserialize_map<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeAnswer> {
        Err(ProbeAnswer(Shape::Object))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeAnswer> {
        Err(ProbeAnswer(Shape::Object))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
    }

    #[test]
    fn structs_and_maps_want_objects_and_lists_stay_lists() {
        assert_eq!(shape_of::<Body>(), Shape::Object);
        assert_eq!(
            shape_of::<std::collections::HashMap<String, String>>(),
            Shape::Object
        );
        assert_eq!(shape_of::<Vec<Body>>(), Shape::Other);
        assert_eq!(shape_of::<serde_json::Value>(), Shape::Other);
        assert_eq!(first_byte(b" \n {}"), Some(b'{'));
    }
}
