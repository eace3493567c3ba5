//! `proxy_config.rules` and the rest of `proxy_config` beside `access_control` (spec:
//! proxy-and-features §1.1–1.3, §1.8): parsed and validated, every error naming its field
//! (`proxy_config.rules[0].match_hosts[1]`) so the server answers 422.
//!
//! Header rules, `aws` rules with static keys and `gcp` rules with a service account key are
//! what the local backend supports; IAM roles, workload identity, `azure`, relays, rewrites
//! and callbacks are refused with a clear "not supported by the local backend" rather than
//! stored to do nothing.
//!
//! Choices where the spec leaves room:
//! * Rule names must be unique (opaque values are carried over by rule and header name).
//! * `*.domain` in `match_hosts` needs `domain` at or below a registrable domain (the public
//!   suffix list): `*.github.com` and `*.api.github.com` pass, `*.com` and `*.co.uk` do not;
//!   `*.` matches any depth below the domain, never the domain itself.
//! * A `match_paths` wildcard is only `*`, a trailing `/*` or `/**`, or a leading `*/`.
//! * A `workspace_secret` value must reference at least one secret (`{NAME}`); braces are
//!   only for references.
//! * `env_vars` names are environment-variable names; names and values must not be blank.

mod matching;
mod template;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub use self::matching::SetError;
pub use self::template::{Part, Template};
use super::access::AccessError;

const FIELD: &str = "proxy_config";
const MAX_DESCRIPTION: usize = 1024;

/// The header rules of a `proxy_config`, in order (first match wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub enabled: bool,
    pub match_hosts: Vec<HostPattern>,
    pub match_paths: Vec<PathPattern>,
    /// `(lowercase name, exact value)`: every one must be on the request.
    pub match_headers: Vec<(String, String)>,
    pub headers: Vec<Header>,
    pub env_vars: BTreeMap<String, String>,
    /// A `type: "aws"` rule: requests to AWS endpoints are signed with these keys.
    pub aws: Option<AwsKeys>,
    /// A `type: "gcp"` rule: requests to Google APIs get a token of this service account.
    pub gcp: Option<GcpAccount>,
}

/// The scope a gcp rule without `scopes` asks for.
pub const DEFAULT_GCP_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A gcp rule's service account, as configured (resolved when applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpAccount {
    pub service_account_json: HeaderValue,
    pub scopes: Vec<String>,
}

/// The static keys of an aws rule, as configured (resolved when applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: HeaderValue,
    pub secret_access_key: HeaderValue,
}

impl Rule {
    /// Every value the rule resolves: its headers', and its AWS keys as headers.
    pub fn secret_values(&self) -> Vec<Header> {
        let mut values = self.headers.clone();
        values.extend(self.aws.iter().flat_map(AwsKeys::as_headers));
        values.extend(self.gcp.iter().map(|gcp| Header {
            name: "service_account_json".into(),
            value: gcp.service_account_json.clone(),
        }));
        values
    }

    /// Every host the rule's values may be sent to: its `match_hosts`, and for a provider
    /// rule every endpoint of its provider (all AWS endpoints, all Google APIs), since those
    /// rules apply by provider rather than by host. A workspace secret limited to some hosts
    /// must cover all of them.
    pub fn destinations(&self) -> Vec<HostPattern> {
        let mut hosts = self.match_hosts.clone();
        if self.aws.is_some() {
            hosts.extend(AWS_DOMAINS.map(|d| HostPattern::Below(d.into())));
        }
        if self.gcp.is_some() {
            hosts.push(HostPattern::Below(GOOGLE_API_DOMAIN.into()));
        }
        hosts
    }
}

/// The domains whose subdomains are AWS endpoints (an endpoint is any name below one).
pub const AWS_DOMAINS: [&str; 2] = ["amazonaws.com", "amazonaws.com.cn"];
/// The domain whose subdomains are Google APIs (an API is any name below it).
pub const GOOGLE_API_DOMAIN: &str = "googleapis.com";

impl AwsKeys {
    /// The keys as headers named `access_key_id` and `secret_access_key`: how values are
    /// resolved and opaque ones stored.
    pub fn as_headers(&self) -> [Header; 2] {
        [
            Header {
                name: "access_key_id".into(),
                value: self.access_key_id.clone(),
            },
            Header {
                name: "secret_access_key".into(),
                value: self.secret_access_key.clone(),
            },
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name.
    Exact(String),
    /// Any name below this domain, never the domain itself.
    Below(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: HeaderValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    WorkspaceSecret(Template),
    Plaintext(String),
    /// A write-only value: `Some` as given (or as stored, sealed), `None` to keep the current
    /// one (an update that cannot read it back).
    Opaque(Option<String>),
}

impl Rules {
    /// The rules of a whole `proxy_config` (none: no rules). Checks the top-level fields too.
    pub fn from_proxy_config(proxy_config: Option<&Value>) -> Result<Rules, AccessError> {
        let Some(config) = proxy_config.filter(|v| !v.is_null()) else {
            return Ok(Rules::default());
        };
        let Some(config) = config.as_object() else {
            return Err(error(FIELD, "proxy_config must be an object"));
        };
        if let Some(d) = config.get("description").filter(|d| !d.is_null()) {
            let text = d
                .as_str()
                .ok_or_else(|| error(&format!("{FIELD}.description"), "must be a string"))?;
            if text.chars().count() > MAX_DESCRIPTION {
                return Err(error(
                    &format!("{FIELD}.description"),
                    "is longer than 1024 characters",
                ));
            }
        }
        if let Some(callbacks) = config.get("callbacks").and_then(Value::as_array)
            && !callbacks.is_empty()
        {
            return Err(error(
                &format!("{FIELD}.callbacks"),
                "callbacks are not supported by the local backend",
            ));
        }
        let rules = match config.get("rules").filter(|v| !v.is_null()) {
            None => return Ok(Rules::default()),
            Some(Value::Array(rules)) => rules,
            Some(_) => return Err(error(&format!("{FIELD}.rules"), "must be an array")),
        };
        let mut names = BTreeSet::new();
        let mut aws_seen = false;
        let mut gcp_seen = false;
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let field = format!("{FIELD}.rules[{i}]");
                let rule = parse_rule(&field, rule)?;
                if rule.aws.is_some() && std::mem::replace(&mut aws_seen, true) {
                    return Err(error(
                        &format!("{field}.type"),
                        "at most one aws rule per sandbox (disabled ones count)",
                    ));
                }
                if rule.gcp.is_some() && std::mem::replace(&mut gcp_seen, true) {
                    return Err(error(
                        &format!("{field}.type"),
                        "at most one gcp rule per sandbox (disabled ones count)",
                    ));
                }
                if !names.insert(rule.name.clone()) {
                    return Err(error(
                        &format!("{field}.name"),
                        &format!(
                            "another rule is named {:?}: names must be unique",
                            rule.name
                        ),
                    ));
                }
                Ok(rule)
            })
            .collect::<Result<_, _>>()?;
        Ok(Rules { rules })
    }

    /// The workspace secrets the rules refer to.
    pub fn secret_names(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .flat_map(Rule::secret_values)
            .filter_map(|h| match h.value {
                HeaderValue::WorkspaceSecret(t) => Some(t.secret_names().collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

fn error(field: &str, message: &str) -> AccessError {
    AccessError {
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn parse_rule(field: &str, rule: &Value) -> Result<Rule, AccessError> {
    let Some(rule) = rule.as_object().filter(|r| !r.is_empty()) else {
        return Err(error(field, "a rule must be a non-empty object"));
    };
    let at = |name: &str| format!("{field}.{name}");
    let string = |name: &str| -> Result<Option<&str>, AccessError> {
        match rule.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(error(&at(name), "must be a string")),
        }
    };
    let name = string("name")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| error(&at("name"), "every rule needs a name"))?
        .to_string();
    let kind = string("type")?.unwrap_or("");
    match kind {
        "" | "header" | "aws" | "gcp" => {}
        "azure" | "relay" | "rewrite" => {
            return Err(error(
                &at("type"),
                &format!("{kind} rules are not supported by the local backend yet"),
            ));
        }
        other => return Err(error(&at("type"), &format!("unknown rule type {other:?}"))),
    }
    for unsupported in ["azure", "relay_id", "rewrite"] {
        if rule.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(error(
                &at(unsupported),
                "not supported by the local backend yet",
            ));
        }
    }
    for provider in ["aws", "gcp"] {
        if kind != provider && rule.get(provider).is_some_and(|v| !v.is_null()) {
            return Err(error(
                &at(provider),
                &format!("only a rule of type \"{provider}\" takes {provider}"),
            ));
        }
    }
    if let Some(text) = string("description")?
        && text.chars().count() > MAX_DESCRIPTION
    {
        return Err(error(&at("description"), "is longer than 1024 characters"));
    }
    let enabled = match rule.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(error(&at("enabled"), "must be true or false")),
    };
    if kind == "aws" || kind == "gcp" {
        for field in ["match_hosts", "match_paths", "match_headers", "headers"] {
            if rule
                .get(field)
                .is_some_and(|v| !v.is_null() && v != &Value::Array(Vec::new()))
            {
                return Err(error(
                    &at(field),
                    &format!(
                        "a {kind} rule applies to its provider's endpoints itself: it takes no \
                         hosts, paths or headers"
                    ),
                ));
            }
        }
        let (aws, gcp) = if kind == "aws" {
            (Some(aws_keys(&at("aws"), rule.get("aws"))?), None)
        } else {
            (None, Some(gcp_account(&at("gcp"), rule.get("gcp"))?))
        };
        return Ok(Rule {
            name,
            enabled,
            match_hosts: Vec::new(),
            match_paths: Vec::new(),
            match_headers: Vec::new(),
            headers: Vec::new(),
            env_vars: env_vars(&at("env_vars"), rule.get("env_vars"))?,
            aws,
            gcp,
        });
    }
    let list = |name: &str| -> Result<Vec<&str>, AccessError> {
        match rule.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .ok_or_else(|| error(&format!("{}[{i}]", at(name)), "must be a string"))
                })
                .collect(),
            Some(_) => Err(error(&at(name), "must be an array of strings")),
        }
    };
    let match_hosts = list("match_hosts")?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            host_pattern(h).map_err(|m| error(&format!("{}[{i}]", at("match_hosts")), &m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if match_hosts.is_empty() {
        return Err(error(
            &at("match_hosts"),
            "a header rule needs at least one host",
        ));
    }
    let match_paths = list("match_paths")?
        .iter()
        .enumerate()
        .map(|(i, p)| {
            path_pattern(p).map_err(|m| error(&format!("{}[{i}]", at("match_paths")), &m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let match_headers = list("match_headers")?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            header_match(h).map_err(|m| error(&format!("{}[{i}]", at("match_headers")), &m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let headers = match rule.get("headers") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, h)| header(&format!("{}[{i}]", at("headers")), h))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(error(
                &at("headers"),
                "a header rule needs at least one header",
            ));
        }
    };
    let env_vars = env_vars(&at("env_vars"), rule.get("env_vars"))?;
    Ok(Rule {
        name,
        enabled,
        match_hosts,
        match_paths,
        match_headers,
        headers,
        env_vars,
        aws: None,
        gcp: None,
    })
}

/// A gcp rule's service account key (a `workspace_secret` or `opaque` value, never
/// plaintext) and scopes (omitted: cloud-platform; an empty list is refused, as the SDK's
/// helpers refuse it). Workload identity needs LangSmith's own identity and is refused.
fn gcp_account(field: &str, gcp: Option<&Value>) -> Result<GcpAccount, AccessError> {
    let Some(gcp) = gcp.and_then(Value::as_object) else {
        return Err(error(
            field,
            "a gcp rule needs gcp: {service_account_json, scopes?}",
        ));
    };
    let at = |name: &str| format!("{field}.{name}");
    for identity in [
        "workload_identity_provider",
        "service_account_email",
        "subject_scope",
    ] {
        if gcp.get(identity).is_some_and(|v| !v.is_null()) {
            return Err(error(
                &at(identity),
                "workload identity is not supported by the local backend: give \
                 service_account_json (a workspace secret holding the key file) instead",
            ));
        }
    }
    let service_account_json = secret_value(
        gcp,
        field,
        "service_account_json",
        "a gcp rule needs the service account's key file",
        "a service account key must be a workspace_secret or opaque value, never plaintext",
    )?;
    let scopes = match gcp.get("scopes") {
        None | Some(Value::Null) => vec![DEFAULT_GCP_SCOPE.to_string()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str()
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
                    .map(str::to_string)
                    .ok_or_else(|| error(&format!("{}[{i}]", at("scopes")), "must be a scope URL"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(error(
                &at("scopes"),
                "must be a non-empty list of scopes (omit it for cloud-platform)",
            ));
        }
    };
    Ok(GcpAccount {
        service_account_json,
        scopes,
    })
}

/// The static keys of an aws rule: each a `workspace_secret` or `opaque` value (never
/// plaintext). IAM roles need LangSmith's own identity and are refused.
fn aws_keys(field: &str, aws: Option<&Value>) -> Result<AwsKeys, AccessError> {
    let Some(aws) = aws.and_then(Value::as_object) else {
        return Err(error(
            field,
            "an aws rule needs aws: {access_key_id, secret_access_key}",
        ));
    };
    let at = |name: &str| format!("{field}.{name}");
    for role_only in ["role_arn", "session_tags", "subject_scope"] {
        let given = match aws.get(role_only) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if given {
            return Err(error(
                &at(role_only),
                "IAM roles are not supported by the local backend: give access_key_id and \
                 secret_access_key (workspace secrets) instead",
            ));
        }
    }
    let key = |name: &str| {
        secret_value(
            aws,
            field,
            name,
            "static AWS keys need both access_key_id and secret_access_key",
            "AWS keys must be workspace_secret or opaque values, never plaintext",
        )
    };
    Ok(AwsKeys {
        access_key_id: key("access_key_id")?,
        secret_access_key: key("secret_access_key")?,
    })
}

/// The secret value object (`{type, value}`) `name` of a provider's settings `provider`
/// (at `field`), parsed like a header's value: `workspace_secret` or `opaque`; `missing`
/// and `plaintext` say what is wrong when it is absent or plaintext.
fn secret_value(
    provider: &serde_json::Map<String, Value>,
    field: &str,
    name: &str,
    missing: &str,
    plaintext: &str,
) -> Result<HeaderValue, AccessError> {
    let at = format!("{field}.{name}");
    let mut value = provider
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| error(&at, missing))?
        .clone();
    // With a name it parses like a header.
    if let Some(object) = value.as_object_mut() {
        object.insert("name".into(), Value::String(name.into()));
    }
    match header(&at, &value)?.value {
        HeaderValue::Plaintext(_) => Err(error(&format!("{at}.type"), plaintext)),
        value => Ok(value),
    }
}

fn host_pattern(text: &str) -> Result<HostPattern, String> {
    let host = text.trim().trim_end_matches('.').to_ascii_lowercase();
    match host.strip_prefix("*.") {
        Some(domain) => {
            if !crate::api::host::is_valid_name(domain) || domain.contains('*') {
                return Err(format!("invalid host pattern {text:?}"));
            }
            if psl::domain_str(domain).is_none() {
                return Err(format!(
                    "{text:?} is too wide: *. must be followed by a registrable domain such as \
                     *.github.com"
                ));
            }
            Ok(HostPattern::Below(domain.to_string()))
        }
        None if crate::api::host::is_valid_name(&host) => Ok(HostPattern::Exact(host)),
        None => Err(format!(
            "invalid host {text:?}: a host name or *.domain, without scheme, port or path"
        )),
    }
}

fn path_pattern(text: &str) -> Result<PathPattern, String> {
    if text == "*" {
        return Ok(PathPattern::Any);
    }
    let bad = || format!("invalid path pattern {text:?}: /exact, /prefix/*, */suffix or *");
    let prefix = text.strip_suffix("/**").or_else(|| text.strip_suffix("/*"));
    let pattern = if let Some(prefix) = prefix {
        if !prefix.is_empty() && !prefix.starts_with('/') {
            return Err(bad());
        }
        PathPattern::Prefix(prefix.to_string())
    } else if let Some(ending) = text.strip_prefix("*/") {
        PathPattern::Suffix(ending.to_string())
    } else if text.starts_with('/') {
        PathPattern::Exact(text.to_string())
    } else {
        return Err(bad());
    };
    let rest = match &pattern {
        PathPattern::Prefix(p) | PathPattern::Suffix(p) | PathPattern::Exact(p) => p,
        PathPattern::Any => "",
    };
    if rest.contains('*') || rest.contains('?') || rest.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok(pattern)
}

fn header_match(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not \"name: value\""))?;
    if name.is_empty() || !name.bytes().all(is_token_byte) || name != name.to_ascii_lowercase() {
        return Err(format!("{name:?} is not a lowercase header name"));
    }
    Ok((name.to_string(), value.trim_start().to_string()))
}

fn header(field: &str, header: &Value) -> Result<Header, AccessError> {
    let Some(header) = header.as_object() else {
        return Err(error(
            field,
            "a header must be an object {name, type, value}",
        ));
    };
    let at = |name: &str| format!("{field}.{name}");
    let name = header
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && n.bytes().all(is_token_byte))
        .ok_or_else(|| error(&at("name"), "needs a header name"))?
        .to_string();
    let value = match header.get("value") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(error(&at("value"), "must be a string")),
    };
    let no_breaks = |v: &str| -> Result<(), AccessError> {
        if v.contains(['\r', '\n', '\0']) {
            return Err(error(&at("value"), "must not contain line breaks or NUL"));
        }
        Ok(())
    };
    let value = match header.get("type").and_then(Value::as_str) {
        Some("workspace_secret") => {
            let text = value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| error(&at("value"), "needs a template such as {OPENAI_API_KEY}"))?;
            no_breaks(&text)?;
            HeaderValue::WorkspaceSecret(
                Template::parse(&text).map_err(|m| error(&at("value"), &m))?,
            )
        }
        Some("plaintext") => {
            let text = value.ok_or_else(|| error(&at("value"), "needs a value"))?;
            no_breaks(&text)?;
            HeaderValue::Plaintext(text)
        }
        Some("opaque") => {
            let value = value.filter(|v| !v.is_empty());
            if let Some(v) = &value {
                no_breaks(v)?;
            }
            HeaderValue::Opaque(value)
        }
        _ => {
            return Err(error(
                &at("type"),
                "must be workspace_secret, opaque or plaintext",
            ));
        }
    };
    Ok(Header { name, value })
}

fn env_vars(field: &str, value: Option<&Value>) -> Result<BTreeMap<String, String>, AccessError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let Some(map) = value.as_object() else {
        return Err(error(field, "must be an object of names to values"));
    };
    map.iter()
        .map(|(name, value)| {
            let at = format!("{field}.{name}");
            let valid_name = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err(error(&at, "is not an environment variable name"));
            }
            match value.as_str() {
                Some(v) if !v.trim().is_empty() => Ok((name.clone(), v.to_string())),
                _ => Err(error(&at, "needs a non-blank string value")),
            }
        })
        .collect()
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
