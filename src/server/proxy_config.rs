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
//!
//! When a configuration is applied (create, update, start: [`policy`]): every value is
//! resolved for the egress proxy, secrets and opaque values opened. Nothing of it is
//! written anywhere.
//!
//! Choices where the spec leaves room: a rule's hosts must be reachable under the sandbox's
//! `access_control` (a rule for a host the allow list leaves out, or the deny list names,
//! could never apply and is refused with 422); and a secret whose `configs` name hosts may
//! only be used by rules whose every host falls under one of them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::secrets::sealer::Sealed;
use super::state::AppState;
use super::validate;
use crate::proxy::Policy;
use crate::proxy::access::AccessControl;
use crate::proxy::injection::Injection;
use crate::proxy::rules::{HeaderValue, Rules};

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
    let access = AccessControl::from_proxy_config(Some(new))
        .map_err(|e| ApiError::validation(&e.field, e.message))?;
    for (i, rule) in rules.rules.iter().enumerate() {
        for (j, host) in rule.match_hosts.iter().enumerate() {
            if let Err(why) = access.admits(host) {
                return Err(ApiError::validation(
                    &format!("proxy_config.rules[{i}].match_hosts[{j}]"),
                    format!("rule {:?} could never apply: {why}", rule.name),
                ));
            }
        }
    }
    for (i, rule) in rules.rules.iter().enumerate() {
        for header in rule.secret_values() {
            let HeaderValue::WorkspaceSecret(template) = &header.value else {
                continue;
            };
            for name in template.secret_names() {
                let Some(secret) = state.store.secret(&name).await? else {
                    return Err(ApiError::validation(
                        "proxy_config.rules",
                        format!(
                            "workspace secret {name} does not exist: create it first \
                             (langsmith secrets set {name})"
                        ),
                    ));
                };
                let allowed: Vec<&str> = secret
                    .configs
                    .iter()
                    .map(|c| c.host_pattern.as_str())
                    .collect();
                if let Some(outside) = rule
                    .match_hosts
                    .iter()
                    .find(|h| !allowed.is_empty() && !allowed.iter().any(|a| h.is_within(a)))
                {
                    return Err(ApiError::validation(
                        &format!("proxy_config.rules[{i}].match_hosts"),
                        format!(
                            "workspace secret {name} may only be sent to {}; {outside} is not \
                             among them (change the secret's hosts or the rule)",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    let mut stored = new.clone();
    for_each_opaque(&mut stored, |field, rule, name, header| {
        let value = header.get("value").and_then(Value::as_str).unwrap_or("");
        let sealed = if value.is_empty() {
            kept(current, rule, name).ok_or_else(|| {
                ApiError::validation(
                    &format!("{field}.value"),
                    "an opaque value is required: there is no stored value to keep",
                )
            })?
        } else {
            let sealed = state
                .secrets
                .seal(&associated(rule, name), value)
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
    let _ = for_each_opaque(&mut shown, |_, _, _, header| {
        header.remove(SEALED);
        header.remove("value");
        header.insert("is_set".into(), Value::Bool(true));
        Ok(())
    });
    shown
}

/// The egress proxy's policy for the stored configuration `stored`: its `access_control`,
/// and its header rules with every value resolved now (secrets and opaque values opened).
/// A secret deleted since the configuration was stored is a 422 naming it.
pub async fn policy(state: &AppState, stored: Option<&Value>) -> Result<Policy, ApiError> {
    let invalid = |e: crate::proxy::access::AccessError| ApiError::validation(&e.field, e.message);
    let access = AccessControl::from_proxy_config(stored).map_err(invalid)?;
    let rules = Rules::from_proxy_config(stored).map_err(invalid)?;
    let mut secrets = std::collections::HashMap::new();
    for name in rules.secret_names() {
        let row = state.store.secret(&name).await?.ok_or_else(|| {
            ApiError::validation(
                "proxy_config.rules",
                format!(
                    "workspace secret {name} no longer exists: set it again \
                     (langsmith secrets set {name}) or change the rules"
                ),
            )
        })?;
        let value = state
            .secrets
            .open(&row.key, &row.sealed)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        secrets.insert(name, value);
    }
    let injection = Injection::resolve(rules, |rule, header| match &header.value {
        HeaderValue::Plaintext(text) => Ok(text.clone()),
        HeaderValue::WorkspaceSecret(template) => template
            .render(|name| secrets.get(name).cloned())
            .ok_or_else(|| "a secret it names is missing".to_string()),
        HeaderValue::Opaque(_) => {
            let sealed = kept(stored, &rule.name, &header.name)
                .ok_or_else(|| "no stored opaque value".to_string())?;
            open_opaque(state, &rule.name, &header.name, &sealed)
        }
    })
    .map_err(|e| ApiError::validation("proxy_config.rules", e.to_string()))?;
    Ok(Policy { access, injection })
}

/// An opaque value stored by [`prepare`], opened.
fn open_opaque(state: &AppState, rule: &str, header: &str, sealed: &str) -> Result<String, String> {
    let bytes = STANDARD
        .decode(sealed)
        .map_err(|_| "the stored opaque value is corrupt".to_string())?;
    if bytes.len() < ring::aead::NONCE_LEN {
        return Err("the stored opaque value is corrupt".into());
    }
    let (nonce, ciphertext) = bytes.split_at(ring::aead::NONCE_LEN);
    let sealed = Sealed {
        nonce: nonce.to_vec(),
        ciphertext: ciphertext.to_vec(),
    };
    state
        .secrets
        .open(&associated(rule, header), &sealed)
        .map_err(|e| e.to_string())
}

/// What an opaque value is sealed to: its rule and header, so it opens only there.
fn associated(rule: &str, header: &str) -> String {
    format!("proxy_config opaque {rule}/{}", header.to_ascii_lowercase())
}

/// The stored sealed value of the opaque value `name` (a header's name, or an AWS key's) in
/// the rule named `rule` of `current`.
fn kept(current: Option<&Value>, rule: &str, name: &str) -> Option<String> {
    let rule = current?
        .get("rules")?
        .as_array()?
        .iter()
        .find(|r| r.get("name").and_then(Value::as_str).map(str::trim) == Some(rule))?;
    let header = rule
        .get("headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|h| {
            h.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
    let value = header
        .or_else(|| rule.get("aws")?.get(name))
        .or_else(|| rule.get("gcp")?.get(name))?;
    if value.get("type").and_then(Value::as_str) != Some("opaque") {
        return None;
    }
    value.get(SEALED)?.as_str().map(str::to_string)
}

/// Call `f(field, rule name, value name, value)` on every opaque value of `config`'s rules:
/// each header's (named by the header), each AWS key's (`access_key_id`,
/// `secret_access_key`) and a gcp rule's key file (`service_account_json`).
fn for_each_opaque(
    config: &mut Value,
    mut f: impl FnMut(&str, &str, &str, &mut Map<String, Value>) -> Result<(), ApiError>,
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
        let is_opaque =
            |v: &Map<String, Value>| v.get("type").and_then(Value::as_str) == Some("opaque");
        if let Some(headers) = rule.get_mut("headers").and_then(Value::as_array_mut) {
            for (j, header) in headers.iter_mut().enumerate() {
                let Some(header) = header.as_object_mut().filter(|h| is_opaque(h)) else {
                    continue;
                };
                let header_name = header
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                f(
                    &format!("proxy_config.rules[{i}].headers[{j}]"),
                    &name,
                    &header_name,
                    header,
                )?;
            }
        }
        for (provider, key) in [
            ("aws", "access_key_id"),
            ("aws", "secret_access_key"),
            ("gcp", "service_account_json"),
        ] {
            let Some(object) = rule.get_mut(provider).and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(value) = object
                .get_mut(key)
                .and_then(Value::as_object_mut)
                .filter(|v| is_opaque(v))
            {
                f(
                    &format!("proxy_config.rules[{i}].{provider}.{key}"),
                    &name,
                    key,
                    value,
                )?;
            }
        }
    }
    Ok(())
}
