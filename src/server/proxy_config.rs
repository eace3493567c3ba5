//! A sandbox's `proxy_config` as the server stores and shows it.
//!
//! On create and update ([`prepare`]): `access_control` and the rules are validated (422
//! naming the field); every `opaque` value given is sealed with the secrets key and only the
//! sealed form is stored, and one left out keeps the value in the same place of the same
//! rule in the current configuration (422 when there is none).
//!
//! On every answer ([`redact`]): an `opaque` value shows `is_set: true` and nothing of its
//! value, sealed or not. `workspace_secret` templates and `plaintext` values show as stored.
//!
//! When a configuration is applied (create, update, start: [`policy`], which create and
//! update also run before storing anything): every workspace secret a rule names must exist
//! and allow every host the rule sends it to, and every value is resolved for the egress
//! proxy, secrets and opaque values opened. Nothing of it is written anywhere.
//!
//! Choices where the spec leaves room: a rule's hosts must be reachable under the sandbox's
//! `access_control` (a rule for a host the allow list leaves out, or the deny list names,
//! could never apply and is refused with 422); a secret whose `configs` name hosts may only
//! be used by rules whose every host falls under one of them, and a provider rule's hosts
//! are every endpoint of its provider; secret hosts are checked on every apply, not only
//! when the configuration is stored, since they may change in between.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::secrets::SecretRow;
use super::secrets::sealer::{Sealed, Sealer};
use super::state::AppState;
use super::validate;
use crate::proxy::Policy;
use crate::proxy::access::AccessControl;
use crate::proxy::injection::Injection;
use crate::proxy::rules::{HeaderValue, Rule, Rules};

/// The stored field holding an opaque header's sealed value (nonce, then ciphertext).
const SEALED: &str = "sealed";

/// The configuration to store for `new`, given the `current` one. Only its shape is
/// checked here: the secrets it names are checked by [`policy`], which every caller runs on
/// the result before storing it.
pub fn prepare(state: &AppState, new: &Value, current: Option<&Value>) -> Result<Value, ApiError> {
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
    let mut stored = new.clone();
    for_each_opaque(&mut stored, |field, rule, slot, value| {
        let given = value.get("value").and_then(Value::as_str).unwrap_or("");
        let sealed = if given.is_empty() {
            kept(current, rule, slot).ok_or_else(|| {
                ApiError::validation(
                    &format!("{field}.value"),
                    "an opaque value is required: there is no stored value to keep",
                )
            })?
        } else {
            let sealed = state
                .secrets
                .seal(&slot.associated(rule), given)
                .map_err(|e| ApiError::Internal(format!("sealing an opaque value: {e}")))?;
            let mut bytes = sealed.nonce;
            bytes.extend(sealed.ciphertext);
            STANDARD.encode(bytes)
        };
        value.remove("value");
        value.remove("is_set");
        value.insert(SEALED.into(), Value::String(sealed));
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
/// and its rules with every value resolved now (secrets and opaque values opened). Each
/// secret a rule names must exist, and may go to every host the rule sends it to; both are
/// checked on every apply, since a secret's hosts may have changed since it was stored.
pub async fn policy(state: &AppState, stored: Option<&Value>) -> Result<Policy, ApiError> {
    let invalid = |e: crate::proxy::access::AccessError| ApiError::validation(&e.field, e.message);
    let access = AccessControl::from_proxy_config(stored).map_err(invalid)?;
    let rules = Rules::from_proxy_config(stored).map_err(invalid)?;
    let mut secrets = HashMap::new();
    for (i, rule) in rules.rules.iter().enumerate() {
        for header in rule.secret_values() {
            let HeaderValue::WorkspaceSecret(template) = &header.value else {
                continue;
            };
            for name in template.secret_names() {
                if !secrets.contains_key(&name) {
                    let row = state.store.secret(&name).await?.ok_or_else(|| {
                        ApiError::validation(
                            "proxy_config.rules",
                            format!(
                                "workspace secret {name} does not exist: create it \
                                 (langsmith secrets set {name}) or change the rules"
                            ),
                        )
                    })?;
                    secrets.insert(name.clone(), row);
                }
                check_secret_hosts(&secrets[&name], rule, i)?;
            }
        }
    }
    let mut values = HashMap::new();
    for (name, row) in &secrets {
        let value = state
            .secrets
            .open(&row.key, &row.sealed)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        values.insert(name.clone(), value);
    }
    let injection = Injection::resolve(rules, |rule, header| match &header.value {
        HeaderValue::Plaintext(text) => Ok(text.clone()),
        HeaderValue::WorkspaceSecret(template) => template
            .render(|name| values.get(name).cloned())
            .ok_or_else(|| "a secret it names is missing".to_string()),
        HeaderValue::Opaque(_) => {
            let slot = Slot::of(rule, &header.name);
            let sealed = kept(stored, &rule.name, slot)
                .ok_or_else(|| "no stored opaque value".to_string())?;
            open_opaque(&state.secrets, &rule.name, slot, &sealed)
        }
    })
    .map_err(|e| ApiError::validation("proxy_config.rules", e.to_string()))?;
    Ok(Policy { access, injection })
}

/// A 422 unless the secret `row` may be sent to every host rule `i`, `rule`, sends it to.
fn check_secret_hosts(row: &SecretRow, rule: &Rule, i: usize) -> Result<(), ApiError> {
    let allowed: Vec<&str> = row
        .configs
        .iter()
        .map(|c| c.host_pattern.as_str())
        .collect();
    if allowed.is_empty() {
        return Ok(());
    }
    let Some(outside) = rule
        .destinations()
        .into_iter()
        .find(|host| !allowed.iter().any(|a| host.is_within(a)))
    else {
        return Ok(());
    };
    let field = match (&rule.aws, &rule.gcp) {
        (Some(_), _) => format!("proxy_config.rules[{i}].aws"),
        (_, Some(_)) => format!("proxy_config.rules[{i}].gcp"),
        _ => format!("proxy_config.rules[{i}].match_hosts"),
    };
    Err(ApiError::validation(
        &field,
        format!(
            "workspace secret {} may only be sent to {}; {outside} is not among them (change \
             the secret's hosts or the rule{})",
            row.key,
            allowed.join(", "),
            if rule.aws.is_some() || rule.gcp.is_some() {
                "; a provider rule sends its keys to every endpoint of its provider"
            } else {
                ""
            }
        ),
    ))
}

/// Where in a rule an opaque value sits: a header (by name, any case), or a provider
/// rule's key (`aws` with `access_key_id`/`secret_access_key`, `gcp` with
/// `service_account_json`). A value is kept and opened only in the same slot, so an
/// update cannot move an AWS key into a header sent to another host.
#[derive(Clone, Copy)]
enum Slot<'a> {
    Header(&'a str),
    Provider(&'static str, &'a str),
}

impl<'a> Slot<'a> {
    /// The slot of the value named `name` (a header's name or a key's) in `rule`.
    fn of(rule: &Rule, name: &'a str) -> Slot<'a> {
        match (&rule.aws, &rule.gcp) {
            (Some(_), _) => Slot::Provider("aws", name),
            (_, Some(_)) => Slot::Provider("gcp", name),
            _ => Slot::Header(name),
        }
    }

    /// What a value in this slot of `rule` is sealed to, so it opens only there. A header
    /// name never holds a space, so a header's data never equals a key's.
    fn associated(self, rule: &str) -> String {
        match self {
            Slot::Header(name) => {
                format!("proxy_config opaque {rule}/{}", name.to_ascii_lowercase())
            }
            Slot::Provider(provider, key) => format!("proxy_config opaque {rule}/{provider} {key}"),
        }
    }

    /// What provider keys were sealed to before the slot was part of it (the header form
    /// with the key's name): still opened, so keys stored then keep working. Only values
    /// kept in their own slot reach here, so this lets no header's value in.
    fn legacy_associated(self, rule: &str) -> Option<String> {
        match self {
            Slot::Header(_) => None,
            Slot::Provider(_, key) => Some(format!("proxy_config opaque {rule}/{key}")),
        }
    }
}

/// An opaque value stored by [`prepare`], opened.
fn open_opaque(sealer: &Sealer, rule: &str, slot: Slot, sealed: &str) -> Result<String, String> {
    let corrupt = || "the stored opaque value is corrupt".to_string();
    let bytes = STANDARD.decode(sealed).map_err(|_| corrupt())?;
    if bytes.len() < ring::aead::NONCE_LEN {
        return Err(corrupt());
    }
    let (nonce, ciphertext) = bytes.split_at(ring::aead::NONCE_LEN);
    let sealed = Sealed {
        nonce: nonce.to_vec(),
        ciphertext: ciphertext.to_vec(),
    };
    sealer
        .open(&slot.associated(rule), &sealed)
        .or_else(|e| match slot.legacy_associated(rule) {
            Some(legacy) => sealer.open(&legacy, &sealed),
            None => Err(e),
        })
        .map_err(|e| e.to_string())
}

/// The stored sealed value in slot `slot` of the rule named `rule` of `current`.
fn kept(current: Option<&Value>, rule: &str, slot: Slot) -> Option<String> {
    let rule = current?
        .get("rules")?
        .as_array()?
        .iter()
        .find(|r| r.get("name").and_then(Value::as_str).map(str::trim) == Some(rule))?;
    let value = match slot {
        Slot::Header(name) => rule.get("headers")?.as_array()?.iter().find(|h| {
            h.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })?,
        Slot::Provider(provider, key) => rule.get(provider)?.get(key)?,
    };
    if value.get("type").and_then(Value::as_str) != Some("opaque") {
        return None;
    }
    value.get(SEALED)?.as_str().map(str::to_string)
}

/// Call `f(field, rule name, slot, value)` on every opaque value of `config`'s rules: each
/// header's, each AWS key's (`access_key_id`, `secret_access_key`) and a gcp rule's key
/// file (`service_account_json`).
fn for_each_opaque(
    config: &mut Value,
    mut f: impl FnMut(&str, &str, Slot, &mut Map<String, Value>) -> Result<(), ApiError>,
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
                    Slot::Header(&header_name),
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
                    Slot::Provider(provider, key),
                    value,
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn opaque_values_open_and_are_kept_only_in_their_own_slot() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::load_or_create(&dir.path().join("secrets-key")).unwrap();
        let seal = |associated: &str| {
            let sealed = sealer.seal(associated, "value").unwrap();
            STANDARD.encode([sealed.nonce, sealed.ciphertext].concat())
        };
        let key = Slot::Provider("aws", "secret_access_key");
        let header = Slot::Header("secret_access_key");
        let open = |slot, sealed: &str| open_opaque(&sealer, "r", slot, sealed);
        assert_eq!(open(key, &seal(&key.associated("r"))).unwrap(), "value");
        // Keys sealed before the slot was part of the associated data still open.
        let legacy = seal("proxy_config opaque r/secret_access_key");
        assert_eq!(open(key, &legacy).unwrap(), "value");
        // A key does not open as a header's value, nor in another rule.
        assert!(open(header, &seal(&key.associated("r"))).is_err());
        assert!(open_opaque(&sealer, "other", key, &seal(&key.associated("r"))).is_err());

        let stored = json!({"rules": [{"name": "r", "type": "aws", "aws": {
            "secret_access_key": {"type": "opaque", "sealed": "S"}}}]});
        assert_eq!(kept(Some(&stored), "r", key).as_deref(), Some("S"));
        assert_eq!(kept(Some(&stored), "r", header), None);
    }
}
