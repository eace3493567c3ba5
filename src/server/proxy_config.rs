//! A sandbox's `proxy_config` as the server stores and shows it.
//!
//! On create and update ([`prepare`]): `access_control` and the rules are validated (422
//! naming the field); every workspace secret a `workspace_secret` header refers to must exist
//! (they are resolved when the configuration is applied, so rotating a secret reaches a
//! sandbox at its next update or start); every `opaque` value given is sealed with the
//! secrets key and only the sealed form is stored, and one left out keeps the value of the
//! header of the same rule and name in the current configuration (422 when there is none).
//!
//! On every answer ([`redact`]): an `opaque` header shows `is_set: true` and nothing of its
//! value, sealed or not. `workspace_secret` templates and `plaintext` values show as stored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::state::AppState;
use super::validate;
use crate::proxy::rules::Rules;

/// The stored field holding an opaque header's sealed value (nonce, then ciphertext).
const SEALED: &str = "sealed";

/// The configuration to store for `new`, given the `current` one.
pub async fn prepare(
    state: &AppState,
    new: &Value,
    current: Option<&Value>,
) -> Result<Value, ApiError> {
    validate::proxy_config(Some(new))?;
    let rules = Rules::from_proxy_config(Some(new))
        .map_err(|e| ApiError::validation(&e.field, e.message))?;
    for name in rules.secret_names() {
        if state.store.secret(&name).await?.is_none() {
            return Err(ApiError::validation(
                "proxy_config.rules",
                format!(
                    "workspace secret {name} does not exist: create it first \
                     (langsmith secrets set {name})"
                ),
            ));
        }
    }
    let mut stored = new.clone();
    for_each_opaque(&mut stored, |field, rule, header| {
        let value = header.get("value").and_then(Value::as_str).unwrap_or("");
        let sealed = if value.is_empty() {
            kept(current, rule, header).ok_or_else(|| {
                ApiError::validation(
                    &format!("{field}.value"),
                    "an opaque value is required: there is no stored value to keep",
                )
            })?
        } else {
            let sealed = state
                .secrets
                .seal(&associated(rule, header), value)
                .map_err(|e| ApiError::Internal(format!("sealing an opaque value: {e}")))?;
            let mut bytes = sealed.nonce;
            bytes.extend(sealed.ciphertext);
            STANDARD.encode(bytes)
        };
        header.remove("value");
        header.remove("is_set");
        header.insert(SEALED.into(), Value::String(sealed));
        Ok(())
    })?;
    Ok(stored)
}

/// The configuration as an answer shows it.
pub fn redact(stored: &Value) -> Value {
    let mut shown = stored.clone();
    let _ = for_each_opaque(&mut shown, |_, _, header| {
        header.remove(SEALED);
        header.remove("value");
        header.insert("is_set".into(), Value::Bool(true));
        Ok(())
    });
    shown
}

/// What an opaque value is sealed to: its rule and header, so it opens only there.
fn associated(rule: &str, header: &Map<String, Value>) -> String {
    let name = header.get("name").and_then(Value::as_str).unwrap_or("");
    format!("proxy_config opaque {rule}/{}", name.to_ascii_lowercase())
}

/// The stored sealed value of the header named like `header` in the rule named `rule` of
/// `current`.
fn kept(current: Option<&Value>, rule: &str, header: &Map<String, Value>) -> Option<String> {
    let name = header.get("name")?.as_str()?;
    current?
        .get("rules")?
        .as_array()?
        .iter()
        .filter(|r| r.get("name").and_then(Value::as_str) == Some(rule))
        .flat_map(|r| {
            r.get("headers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|h| {
            h.get("type").and_then(Value::as_str) == Some("opaque")
                && h.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })?
        .get(SEALED)?
        .as_str()
        .map(str::to_string)
}

/// Call `f(field, rule name, header)` on every opaque header of `config`'s rules.
fn for_each_opaque(
    config: &mut Value,
    mut f: impl FnMut(&str, &str, &mut Map<String, Value>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let Some(rules) = config.get_mut("rules").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, rule) in rules.iter_mut().enumerate() {
        let name = rule
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        let Some(headers) = rule.get_mut("headers").and_then(Value::as_array_mut) else {
            continue;
        };
        for (j, header) in headers.iter_mut().enumerate() {
            let Some(header) = header.as_object_mut() else {
                continue;
            };
            if header.get("type").and_then(Value::as_str) == Some("opaque") {
                f(
                    &format!("proxy_config.rules[{i}].headers[{j}]"),
                    &name,
                    header,
                )?;
            }
        }
    }
    Ok(())
}
