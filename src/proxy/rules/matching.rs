//! Which rule a request matches and what it does to the request's headers (spec §1.3):
//! enabled rules in list order, first match wins; host, then path (without the query), then
//! every `match_headers` entry must match. A matched rule *sets* its headers: every header of
//! that name already on the request is removed first.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Header, HostPattern, PathPattern, Rule, Rules};

impl Rules {
    /// The first enabled rule that matches a request to `host` for `path_and_query` with
    /// `headers`.
    pub fn matching(&self, host: &str, path_and_query: &str, headers: &HeaderMap) -> Option<&Rule> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let path = path_and_query.split('?').next().unwrap_or("");
        self.rules.iter().find(|rule| {
            rule.enabled
                && rule.match_hosts.iter().any(|h| h.matches(&host))
                && (rule.match_paths.is_empty() || rule.match_paths.iter().any(|p| p.matches(path)))
                && rule.match_headers.iter().all(|(name, value)| {
                    headers
                        .get_all(name.as_str())
                        .iter()
                        .any(|v| v.as_bytes() == value.as_bytes())
                })
        })
    }

    /// Whether any enabled rule could match a request to `host` (so its TLS must be opened):
    /// by its hosts, or, for an aws rule, by being an AWS endpoint.
    pub fn may_match_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.rules.iter().any(|r| {
            r.enabled
                && (r.match_hosts.iter().any(|h| h.matches(&host))
                    || (r.aws.is_some() && is_aws_endpoint(&host))
                    || (r.gcp.is_some() && is_google_api(&host)))
        })
    }

    /// The enabled aws rule, when `host` is an AWS endpoint.
    pub fn aws_for(&self, host: &str) -> Option<&Rule> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !is_aws_endpoint(&host) {
            return None;
        }
        self.rules.iter().find(|r| r.enabled && r.aws.is_some())
    }
}

impl Rules {
    /// The enabled gcp rule, when `host` is a Google API.
    pub fn gcp_for(&self, host: &str) -> Option<&Rule> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !is_google_api(&host) {
            return None;
        }
        self.rules.iter().find(|r| r.enabled && r.gcp.is_some())
    }
}

/// A Google API: every name below `googleapis.com` (not `google.com` hosts, and not the
/// bare domain, which serves no API), such as `storage.googleapis.com`.
pub fn is_google_api(host: &str) -> bool {
    HostPattern::Below(super::GOOGLE_API_DOMAIN.into()).matches(host)
}

/// An AWS endpoint: a name under `amazonaws.com` (or `amazonaws.com.cn`), such as
/// `bedrock-runtime.us-east-1.amazonaws.com`, `s3.amazonaws.com` or a bucket's
/// `my-bucket.s3.eu-west-1.amazonaws.com`. `host` lowercase, without a trailing dot.
pub fn is_aws_endpoint(host: &str) -> bool {
    super::AWS_DOMAINS
        .iter()
        .any(|domain| HostPattern::Below((*domain).into()).matches(host))
}

impl HostPattern {
    /// `host` lowercase, without a trailing dot.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Below(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

impl HostPattern {
    /// Whether every host of this pattern falls under `allowed`, a secret's host pattern
    /// (an exact name, or `*.domain` for the names below it).
    pub fn is_within(&self, allowed: &str) -> bool {
        let allowed = allowed.trim_end_matches('.').to_ascii_lowercase();
        let below = |name: &str, domain: &str| {
            name.strip_suffix(domain)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        };
        match (self, allowed.strip_prefix("*.")) {
            (HostPattern::Exact(host), None) => *host == allowed,
            (HostPattern::Exact(host), Some(domain)) => below(host, domain),
            (HostPattern::Below(_), None) => false,
            (HostPattern::Below(mine), Some(domain)) => mine == domain || below(mine, domain),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(host) => f.write_str(host),
            HostPattern::Below(domain) => write!(f, "*.{domain}"),
        }
    }
}

impl PathPattern {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Any => true,
            PathPattern::Exact(p) => path == p,
            PathPattern::Prefix(p) => path.starts_with(p.as_str()),
            PathPattern::Suffix(s) => path.ends_with(s.as_str()),
        }
    }
}

/// Why a rule's headers could not be set.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("header {0}: no value for it (a secret that is gone, or an opaque value not kept)")]
    Missing(String),
    #[error("header {0}: not a valid HTTP header name")]
    Invalid(String),
}

impl Rule {
    /// Set the rule's headers on `headers`, their values from `value_of` (the resolved
    /// template, the opened opaque value, or the plaintext). All or nothing: when one value
    /// is missing, `headers` is left as it was.
    pub fn set_headers(
        &self,
        headers: &mut HeaderMap,
        value_of: impl Fn(&Header) -> Option<HeaderValue>,
    ) -> Result<(), SetError> {
        let mut set = Vec::with_capacity(self.headers.len());
        for header in &self.headers {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| SetError::Invalid(header.name.clone()))?;
            let value = value_of(header).ok_or_else(|| SetError::Missing(header.name.clone()))?;
            set.push((name, value));
        }
        for (name, value) in set {
            headers.remove(&name);
            headers.insert(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::proxy::rules::HeaderValue as RuleValue;

    fn rules(rules: serde_json::Value) -> Rules {
        Rules::from_proxy_config(Some(&json!({ "rules": rules }))).unwrap()
    }

    fn rule(name: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut rule = json!({"name": name, "match_hosts": ["api.example.com"],
            "headers": [{"name": "Authorization", "type": "plaintext", "value": name}]});
        rule.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        rule
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                )
            })
            .collect()
    }

    fn first(rules: &Rules, host: &str, path: &str, with: &[(&str, &str)]) -> Option<String> {
        rules
            .matching(host, path, &headers(with))
            .map(|r| r.name.clone())
    }

    #[test]
    fn the_first_enabled_rule_matching_host_path_and_headers_wins() {
        let set = rules(json!([
            rule("off", json!({"enabled": false})),
            rule(
                "account-b",
                json!({"match_headers": ["authorization: Bearer account-b"]})
            ),
            rule("v1", json!({"match_paths": ["/v1/*"]})),
            rule("runs", json!({"match_paths": ["*/runs", "/exact"]})),
            rule("subdomains", json!({"match_hosts": ["*.example.com"]})),
        ]));
        let b = [("authorization", "Bearer account-b")];
        assert_eq!(
            first(&set, "API.example.com.", "/x", &b).as_deref(),
            Some("account-b")
        );
        assert_eq!(
            first(&set, "api.example.com", "/v1/chat?x=/exact", &[]).as_deref(),
            Some("v1")
        );
        // As the spec has it, `/v1/*` is the pure text prefix `/v1`: `/v10` matches too.
        assert_eq!(
            first(&set, "api.example.com", "/v10", &[]).as_deref(),
            Some("v1")
        );
        let fell_through = first(&set, "api.example.com", "/v2", &[]);
        assert_eq!(fell_through.as_deref(), Some("subdomains"));
        assert_eq!(
            first(&set, "api.example.com", "/a/b/runs?q", &[]).as_deref(),
            Some("runs")
        );
        assert_eq!(
            first(&set, "api.example.com", "/exact", &[]).as_deref(),
            Some("runs")
        );
        assert_eq!(
            first(&set, "a.b.example.com", "/", &[]).as_deref(),
            Some("subdomains")
        );
        assert_eq!(first(&set, "example.com", "/", &[]), None, "never the apex");
        assert_eq!(first(&set, "evilexample.com", "/", &[]), None);
        assert!(set.may_match_host("x.example.com") && !set.may_match_host("example.org"));
    }

    #[test]
    fn headers_are_set_not_added() {
        let set = rules(json!([rule(
            "r",
            json!({"headers": [
                {"name": "Authorization", "type": "plaintext", "value": "Bearer real"},
                {"name": "X-Key", "type": "opaque", "value": "k"},
            ]})
        )]));
        let mut request = headers(&[
            ("authorization", "Bearer placeholder"),
            ("Authorization", "Bearer second"),
            ("accept", "*/*"),
        ]);
        let rule = set.matching("api.example.com", "/", &request).unwrap();
        rule.set_headers(&mut request, |h| match &h.value {
            RuleValue::Plaintext(v) | RuleValue::Opaque(Some(v)) => v.parse().ok(),
            _ => None,
        })
        .unwrap();
        let auth: Vec<_> = request.get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer real"]);
        assert_eq!(request["x-key"], "k");
        assert_eq!(request["accept"], "*/*");
        let missing = rule.set_headers(&mut request, |_| None);
        assert_eq!(missing, Err(SetError::Missing("Authorization".into())));
    }
}
