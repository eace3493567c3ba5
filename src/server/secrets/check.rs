//! What a secret may be called, what may be stored in it, and the hosts it may go to.
//!
//! Choices where the spec is silent:
//! * A key is an environment-variable-like name: a letter or `_`, then letters, digits and
//!   `_`, at most 128 bytes. Keys are referred to as `{NAME}` in header templates, so they
//!   must not need escaping there.
//! * A value is 1 byte to 64 KiB of UTF-8 without NUL. Line breaks are allowed (a service
//!   account's key file has them); a value a header rule puts in a header must be one line,
//!   which is checked when the rule is applied.
//! * A config host is an exact host name or `*.domain` (`api::host`); its header name an
//!   HTTP token; its template must contain `{value}`.

use crate::api::secrets::{SecretConfig, SecretConfigInput};
use crate::server::error::ApiError;

const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 64 * 1024;
const MAX_CONFIGS: usize = 50;

/// `key` as a secret's name; errors name `field`.
pub fn key(field: &str, key: &str) -> Result<(), ApiError> {
    let mut bytes = key.bytes();
    let starts_well = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !starts_well || key.len() > MAX_KEY || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(ApiError::validation(
            field,
            format!(
                "invalid secret key {key:?}: use a letter or _, then letters, digits and _ \
                 (at most {MAX_KEY} characters), e.g. OPENAI_API_KEY"
            ),
        ));
    }
    Ok(())
}

/// `value` as a secret's value; errors name `field` (never the value).
pub fn value(field: &str, value: &str) -> Result<(), ApiError> {
    let why = if value.is_empty() {
        "must not be empty"
    } else if value.len() > MAX_VALUE {
        "is longer than 64 KiB"
    } else if value.contains('\0') {
        "must not contain NUL"
    } else {
        return Ok(());
    };
    Err(ApiError::validation(field, format!("the value {why}")))
}

/// The configs to store: `given` validated, or the defaults of `key` when none are given.
pub fn configs(
    key: &str,
    given: Option<Vec<SecretConfigInput>>,
) -> Result<Vec<SecretConfig>, ApiError> {
    let given = given.unwrap_or_default();
    if given.is_empty() {
        return Ok(defaults(key));
    }
    if given.len() > MAX_CONFIGS {
        return Err(ApiError::validation(
            "configs",
            format!("at most {MAX_CONFIGS} hosts per secret"),
        ));
    }
    given
        .into_iter()
        .enumerate()
        .map(|(i, c)| config(i, c))
        .collect()
}

fn config(i: usize, c: SecretConfigInput) -> Result<SecretConfig, ApiError> {
    let field = |name: &str| format!("configs[{i}].{name}");
    let pattern = c
        .host_pattern
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host = pattern.strip_prefix("*.").unwrap_or(&pattern);
    if !crate::api::host::is_valid_name(host) {
        return Err(ApiError::validation(
            &field("host_pattern"),
            format!(
                "invalid host pattern {:?}: an exact host name or *.domain",
                c.host_pattern
            ),
        ));
    }
    if let Some(name) = &c.header_name
        && (name.is_empty() || !name.bytes().all(is_token_byte))
    {
        return Err(ApiError::validation(
            &field("header_name"),
            format!("invalid header name {name:?}"),
        ));
    }
    if let Some(template) = &c.header_value_template
        && (!template.contains("{value}") || template.contains(['\0', '\r', '\n']))
    {
        return Err(ApiError::validation(
            &field("header_value_template"),
            format!("the template {template:?} must contain {{value}} and no line breaks"),
        ));
    }
    Ok(SecretConfig {
        host_pattern: pattern,
        header_name: c.header_name,
        header_value_template: c.header_value_template,
        source: "CUSTOM".into(),
    })
}

/// Built-in hosts of well-known provider keys (`source: DEFAULT`).
fn defaults(key: &str) -> Vec<SecretConfig> {
    let known: &[(&str, &str, &str, &str)] = &[
        (
            "OPENAI_API_KEY",
            "api.openai.com",
            "Authorization",
            "Bearer {value}",
        ),
        (
            "ANTHROPIC_API_KEY",
            "api.anthropic.com",
            "x-api-key",
            "{value}",
        ),
    ];
    known
        .iter()
        .filter(|(name, ..)| *name == key)
        .map(|(_, host, header, template)| SecretConfig {
            host_pattern: host.to_string(),
            header_name: Some(header.to_string()),
            header_value_template: Some(template.to_string()),
            source: "DEFAULT".into(),
        })
        .collect()
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_environment_variable_names() {
        for good in ["OPENAI_API_KEY", "_x", "a1"] {
            assert!(key("key", good).is_ok(), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "{A}", "é", &"A".repeat(129)] {
            assert!(key("key", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_non_empty_bounded_and_without_nul() {
        for good in ["sk-123", "{\n  \"type\": \"service_account\"\n}\r\n"] {
            assert!(value("value", good).is_ok(), "{good:?}");
        }
        for bad in ["", "a\0b"] {
            assert!(value("value", bad).is_err(), "{bad:?}");
        }
        assert!(value("value", &"x".repeat(MAX_VALUE + 1)).is_err());
    }

    #[test]
    fn configs_are_checked_and_defaults_fill_in() {
        let input = |host: &str, header: Option<&str>, template: Option<&str>| SecretConfigInput {
            host_pattern: host.into(),
            header_name: header.map(Into::into),
            header_value_template: template.map(Into::into),
        };
        let ok = configs(
            "X",
            Some(vec![input(
                "*.Example.com.",
                Some("Authorization"),
                Some("Bearer {value}"),
            )]),
        )
        .unwrap();
        assert_eq!(ok[0].host_pattern, "*.example.com");
        assert_eq!(ok[0].source, "CUSTOM");
        for bad in [
            input("", None, None),
            input("a b.com", None, None),
            input("*.", None, None),
            input("x.com", Some("Bad Header"), None),
            input("x.com", None, Some("Bearer")),
            input("x.com", None, Some("{value}\r\nX: y")),
        ] {
            let err = configs("X", Some(vec![input("ok.com", None, None), bad.clone()]));
            let text = format!("{:?}", err.unwrap_err());
            assert!(text.contains("configs[1]"), "{bad:?}: {text}");
        }
        let openai = configs("OPENAI_API_KEY", None).unwrap();
        assert_eq!(openai[0].host_pattern, "api.openai.com");
        assert_eq!(openai[0].source, "DEFAULT");
        assert!(configs("MY_KEY", Some(vec![])).unwrap().is_empty());
    }
}
