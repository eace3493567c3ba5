//! The header rules of a running sandbox with their values resolved: what the proxy sets on
//! the requests it opens (spec §1.3, §1.7).
//!
//! The server resolves every value when it applies a configuration (create, update, start):
//! `workspace_secret` templates are filled from the workspace secrets, `opaque` values are
//! opened, `plaintext` is taken as is. So rotating a secret reaches a sandbox at its next
//! update or start, and a request never waits on the secret store. The values live here only,
//! in the server's memory, marked sensitive (HTTP/2 never puts them in its header table) and
//! never printed: `Debug` shows rule and header names alone.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};

use std::sync::Arc;

use super::gcp_token::TokenSource;
use super::rules::{Header, Rule, Rules};
use super::sigv4::AwsCredentials;

/// A sandbox's enabled header rules and the value of each of their headers, and the keys of
/// its aws rule.
#[derive(Default)]
pub struct Injection {
    rules: Rules,
    /// By `(rule name, lowercase header name)`.
    values: HashMap<(String, String), HeaderValue>,
    /// The enabled aws rule's name and keys.
    aws: Option<(String, AwsCredentials)>,
    /// The enabled gcp rule's name and its service account's tokens.
    gcp: Option<(String, Arc<TokenSource>)>,
}

/// Why a rule's header could not be given a value.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError<E> {
    #[error("rule {rule:?}, header {header}: {source}")]
    Value {
        rule: String,
        header: String,
        source: E,
    },
    #[error("rule {rule:?}, header {header}: the value is not a valid HTTP header value")]
    Invalid { rule: String, header: String },
    #[error("rule {rule:?}: {reason}")]
    Provider { rule: String, reason: String },
}

impl Injection {
    /// `rules` with each enabled rule's header values from `value_of` (which opens secrets).
    pub fn resolve<E>(
        rules: Rules,
        mut value_of: impl FnMut(&Rule, &Header) -> Result<String, E>,
    ) -> Result<Injection, ResolveError<E>> {
        let rules = Rules {
            rules: rules.rules.into_iter().filter(|r| r.enabled).collect(),
        };
        let mut values = HashMap::new();
        let mut aws = None;
        let mut gcp = None;
        for rule in &rules.rules {
            for header in rule.secret_values() {
                let text = value_of(rule, &header).map_err(|source| ResolveError::Value {
                    rule: rule.name.clone(),
                    header: header.name.clone(),
                    source,
                })?;
                if let Some(account) = &rule.gcp {
                    let source = TokenSource::new(&text, account.scopes.clone()).map_err(|e| {
                        ResolveError::Provider {
                            rule: rule.name.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    gcp = Some((rule.name.clone(), Arc::new(source)));
                    continue;
                }
                if rule.aws.is_some() {
                    // The key id goes into the Authorization header the signer builds (which
                    // must not fail on a request), and neither key is anything but one line
                    // of printable text: checked here, refused with the configuration.
                    if HeaderValue::from_str(&text).is_err() || text.trim().is_empty() {
                        return Err(ResolveError::Provider {
                            rule: rule.name.clone(),
                            reason: format!("{} must be one line of printable text", header.name),
                        });
                    }
                    let keys = aws.get_or_insert_with(|| {
                        (
                            rule.name.clone(),
                            AwsCredentials {
                                access_key_id: String::new(),
                                secret_access_key: String::new(),
                            },
                        )
                    });
                    match header.name.as_str() {
                        "access_key_id" => keys.1.access_key_id = text,
                        _ => keys.1.secret_access_key = text,
                    }
                    continue;
                }
                let mut value =
                    HeaderValue::from_str(&text).map_err(|_| ResolveError::Invalid {
                        rule: rule.name.clone(),
                        header: header.name.clone(),
                    })?;
                value.set_sensitive(true);
                values.insert(key(rule, &header), value);
            }
        }
        Ok(Injection {
            rules,
            values,
            aws,
            gcp,
        })
    }

    /// The gcp rule's name and token source, when `host` is a Google API and a gcp rule is on.
    pub fn gcp_for(&self, host: &str) -> Option<(&str, &Arc<TokenSource>)> {
        let rule = self.rules.gcp_for(host)?;
        let (name, source) = self.gcp.as_ref()?;
        (*name == rule.name).then_some((name.as_str(), source))
    }

    /// The aws rule's name and keys, when `host` is an AWS endpoint and an aws rule is on.
    pub fn aws_for(&self, host: &str) -> Option<(&str, &AwsCredentials)> {
        let rule = self.rules.aws_for(host)?;
        let (name, keys) = self.aws.as_ref()?;
        (*name == rule.name).then_some((name.as_str(), keys))
    }

    /// True when there are no rules: nothing is ever opened.
    pub fn is_empty(&self) -> bool {
        self.rules.rules.is_empty()
    }

    /// Whether a rule could match a request to `host`, so a connection to it must be opened.
    pub fn may_match_host(&self, host: &str) -> bool {
        self.rules.may_match_host(host)
    }

    /// Set the headers of the first rule matching a request to `host` for `path_and_query`;
    /// the rule's name, or `None` when no rule matched.
    pub fn apply(&self, host: &str, path_and_query: &str, headers: &mut HeaderMap) -> Option<&str> {
        let rule = self.rules.matching(host, path_and_query, headers)?;
        let set = rule.set_headers(headers, |header| {
            self.values.get(&key(rule, header)).cloned()
        });
        // Every value was resolved in `resolve`, so a miss would be a bug; the request then
        // goes without the rule's headers rather than with half of them.
        set.ok().map(|()| rule.name.as_str())
    }
}

fn key(rule: &Rule, header: &Header) -> (String, String) {
    (rule.name.clone(), header.name.to_ascii_lowercase())
}

/// Names only: never a value.
impl std::fmt::Debug for Injection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for (rule, header) in self.values.keys() {
            list.entry(&format_args!("{rule}/{header}"));
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> Rules {
        Rules::from_proxy_config(Some(&json!({"rules": [
            {"name": "off", "enabled": false, "match_hosts": ["api.test"],
             "headers": [{"name": "X-Off", "type": "plaintext", "value": "off"}]},
            {"name": "model", "match_hosts": ["api.test"], "match_paths": ["/v1/*"],
             "headers": [{"name": "Authorization", "type": "workspace_secret",
                          "value": "Bearer {KEY}"}]},
        ]})))
        .unwrap()
    }

    #[test]
    fn values_are_resolved_once_and_set_on_matching_requests_only() {
        let injection = Injection::resolve(rules(), |_, h| match h.name.as_str() {
            "Authorization" => Ok::<_, String>("Bearer secret-1".into()),
            other => Err(format!("unexpected {other}")),
        })
        .unwrap();
        assert!(injection.may_match_host("API.test.") && !injection.may_match_host("x.test"));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer placeholder".parse().unwrap());
        assert_eq!(
            injection.apply("api.test", "/v1/models?x", &mut headers),
            Some("model")
        );
        assert_eq!(headers["authorization"], "Bearer secret-1");
        assert!(headers["authorization"].is_sensitive());
        let mut other = HeaderMap::new();
        assert_eq!(injection.apply("api.test", "/v2", &mut other), None);
        assert!(other.is_empty());
        let shown = format!("{injection:?}");
        assert!(shown.contains("model/authorization") && !shown.contains("secret-1"));
    }

    #[test]
    fn a_value_that_cannot_be_resolved_names_its_rule_and_header() {
        let failed = Injection::resolve(rules(), |_, _| Err("secret KEY is gone")).unwrap_err();
        assert_eq!(
            failed.to_string(),
            "rule \"model\", header Authorization: secret KEY is gone"
        );
        let invalid = Injection::resolve(rules(), |_, _| Ok::<_, String>("a\nb".into()));
        assert!(matches!(invalid, Err(ResolveError::Invalid { .. })));
    }

    #[test]
    fn aws_keys_that_could_not_be_signed_with_are_refused() {
        let aws = Rules::from_proxy_config(Some(&json!({"rules": [
            {"name": "aws", "type": "aws", "aws": {
                "access_key_id": {"type": "workspace_secret", "value": "{ID}"},
                "secret_access_key": {"type": "workspace_secret", "value": "{KEY}"}}},
        ]})))
        .unwrap();
        for bad in ["AKID\nSECOND-LINE", "", "tab\tand\u{7f}"] {
            let refused = Injection::resolve(aws.clone(), |_, h| match h.name.as_str() {
                "access_key_id" => Ok::<_, String>(bad.into()),
                _ => Ok("secret".into()),
            })
            .unwrap_err()
            .to_string();
            assert_eq!(
                refused,
                "rule \"aws\": access_key_id must be one line of printable text"
            );
        }
        let signed = Injection::resolve(aws, |_, _| Ok::<_, String>("AKIDOK".into())).unwrap();
        assert!(signed.aws_for("s3.amazonaws.com").is_some());
    }
}
