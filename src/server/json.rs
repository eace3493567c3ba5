//! A JSON body extractor whose rejections are API errors (JSON body, 4xx), never plain text.
//!
//! Serde's derived structs also accept a JSON array (their fields in order), so `[]` would
//! pass as a body whose fields are all optional, and `"run_config": []` as a nested one. The
//! body is therefore read through [`Strict`], a deserializer over the parsed JSON that
//! hands a struct or a map only a JSON object, at every depth; lists stay lists (the
//! secrets bulk upsert is one).

use axum::extract::{FromRequest, Request};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::{Map, Value};

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
        read_body(&bytes).map(ApiJson)
    }
}

/// A request body as `T`, or the 422 that says what is wrong with it.
pub fn read_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // An empty body is an empty object: the official clients send `{}` or nothing on
    // start/stop, and every field of those bodies is optional.
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| ApiError::validation("body", format!("invalid request body: {e}")))?;
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let field = match e.path().to_string() {
            root if root == "." => "body".to_string(),
            field => field,
        };
        ApiError::validation(&field, format!("invalid request body: {}", e.inner()))
    })
}

/// A parsed JSON value as serde input, where structs and maps accept only objects (serde_json's
/// own `Value` would hand a struct an array's elements as its fields).
struct Strict(Value);

fn not_an_object(value: &Value) -> serde_json::Error {
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    de::Error::custom(format!("must be a JSON object, not {found}"))
}

/// Scalar requests go to serde_json's `Value` as they are.
macro_rules! scalars {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(visitor)
            }
        )*
    };
}
impl<'de> de::Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(StrictSeq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(StrictMap::new(map)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(StrictMap::new(map)),
            other => Err(not_an_object(&other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(StrictSeq(items.into_iter())),
            other => other.deserialize_seq(visitor),
        }
    }

    // Scalars, enums and the rest behave as serde_json's own `Value` (an enum's content is
    // read as serde_json reads it).
    serde::forward_to_deserialize_any! {
        tuple tuple_struct
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    scalars! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_identifier
        deserialize_ignored_any
    }
}

struct StrictSeq(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for StrictSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct StrictMap {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl StrictMap {
    fn new(map: Map<String, Value>) -> StrictMap {
        StrictMap {
            entries: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for StrictMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        size: Option<u64>,
    }

    fn read<T: DeserializeOwned>(json: serde_json::Value) -> Result<T, String> {
        serde_path_to_error::deserialize(Strict(json))
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn structs_and_maps_take_objects_at_every_depth_and_lists_stay_lists() {
        use serde_json::json;
        assert!(read::<Body>(json!({"name": "a", "inner": {"size": 1}})).is_ok());
        assert!(read::<Body>(json!({"list": [{"size": 1}, {}]})).is_ok());
        assert!(read::<HashMap<String, String>>(json!({"a": "b"})).is_ok());
        assert!(read::<Vec<Inner>>(json!([{"size": 2}])).is_ok());
        for (bad, says) in [
            (json!([]), ".: must be a JSON object, not an array"),
            (json!("x"), ".: must be a JSON object, not a string"),
            (
                json!({"inner": []}),
                "inner: must be a JSON object, not an array",
            ),
            (
                json!({"inner": [7]}),
                "inner: must be a JSON object, not an array",
            ),
            (
                json!({"list": [[1]]}),
                "list[0]: must be a JSON object, not an array",
            ),
        ] {
            assert_eq!(read::<Body>(bad).unwrap_err(), says);
        }
        assert!(read::<HashMap<String, String>>(json!(["a"])).is_err());
        let typed = read::<Body>(json!({"inner": {"size": "big"}})).unwrap_err();
        assert!(
            typed.starts_with("inner.size: invalid type: string"),
            "{typed}"
        );
    }
}
