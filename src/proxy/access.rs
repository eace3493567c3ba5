//! `access_control`: which destinations a sandbox's connections may reach.
//!
//! `{"allow_list": [...]}` denies everything not listed, `{"deny_list": [...]}` allows
//! everything not listed, and no lists (or both empty) allow every public destination. A
//! request populating both lists is refused; the LangSmith CLI itself sends
//! `"deny_list": []` beside a populated allow list, so only two *non-empty* lists count.
//!
//! Entries (matched against the destination as the sandbox addressed it, never against DNS
//! results):
//!
//! | entry | matches |
//! |---|---|
//! | `host` / `host:PORT` | that name, on every port / on that port |
//! | `*` / `*:PORT` | any name (never a literal IP) |
//! | `*.example.com[:PORT]` | names under example.com, never the apex |
//! | `~regex` | names the regex finds a match in (unanchored, every port) |
//! | `1.2.3.4[:PORT]`, `::1`, `[::1]:PORT` | that literal IP |
//! | `10.0.0.0/8` | literal IPs in the range (no port) |
//!
//! Names compare without case and without a trailing dot. The verdict names the entry that
//! decided, or `not in allow_list` / `not in deny_list` / `no access_control`.

use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;
use serde_json::Value;

use super::rules::HostPattern;

/// A destination as the sandbox addressed it.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    Host(&'a str),
    Ip(IpAddr),
}

/// Whether a connection may go, and the entry (or default) that decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub rule: String,
}

/// An invalid `access_control`: the field (e.g. `proxy_config.access_control.allow_list[2]`)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Open,
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
enum Pattern {
    /// A name, exact.
    Name(String),
    /// `*`: any name.
    AnyName,
    /// `*.suffix`: names ending in `.suffix`.
    Subdomains(String),
    Regex(Regex),
    Ip(IpAddr),
    Cidr(IpNet),
}

#[derive(Debug, Clone)]
struct Entry {
    text: String,
    pattern: Pattern,
    port: Option<u16>,
}

/// A sandbox's parsed `access_control`.
#[derive(Debug, Clone, Default)]
pub struct AccessControl {
    mode: Mode,
    entries: Vec<Entry>,
}

const FIELD: &str = "proxy_config.access_control";

impl AccessControl {
    /// From a whole `proxy_config` (none, no `access_control` or `null`: allow all).
    pub fn from_proxy_config(proxy_config: Option<&Value>) -> Result<AccessControl, AccessError> {
        let Some(config) = proxy_config.filter(|v| !v.is_null()) else {
            return Ok(AccessControl::default());
        };
        let Some(access) = config.get("access_control").filter(|v| !v.is_null()) else {
            return Ok(AccessControl::default());
        };
        let Some(access) = access.as_object() else {
            return Err(error(FIELD, "access_control must be an object".into()));
        };
        let allow = list(access.get("allow_list"), "allow_list")?;
        let deny = list(access.get("deny_list"), "deny_list")?;
        let (mode, texts, name) = match (allow.is_empty(), deny.is_empty()) {
            (false, false) => {
                return Err(error(
                    FIELD,
                    "give either allow_list or deny_list, not both".into(),
                ));
            }
            (false, true) => (Mode::Allow, allow, "allow_list"),
            (true, false) => (Mode::Deny, deny, "deny_list"),
            (true, true) => return Ok(AccessControl::default()),
        };
        let entries = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                parse_entry(text).map_err(|why| {
                    error(
                        &format!("{FIELD}.{name}[{i}]"),
                        format!("invalid entry {text:?}: {why}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AccessControl { mode, entries })
    }

    /// True when nothing is restricted.
    pub fn is_open(&self) -> bool {
        self.mode == Mode::Open
    }

    /// The verdict on a connection to `dest` on `port`.
    pub fn decide(&self, dest: Destination<'_>, port: u16) -> Verdict {
        let matched = self.entries.iter().find(|e| e.matches(dest, port));
        match (self.mode, matched) {
            (Mode::Open, _) => verdict(true, "no access_control"),
            (Mode::Allow, Some(e)) => verdict(true, &format!("allow_list: {}", e.text)),
            (Mode::Allow, None) => verdict(false, "not in allow_list"),
            (Mode::Deny, Some(e)) => verdict(false, &format!("deny_list: {}", e.text)),
            (Mode::Deny, None) => verdict(true, "not in deny_list"),
        }
    }
}

impl AccessControl {
    /// Whether connections to the hosts of a header rule's `pattern` may be made at all (on
    /// 443, where rules apply): `Err` says why not. A `*.domain` pattern needs an entry that
    /// admits every name below the domain; a `~regex` entry is judged by one name below it.
    pub fn admits(&self, pattern: &HostPattern) -> Result<(), String> {
        let (sample, shown) = match pattern {
            HostPattern::Exact(host) => (host.clone(), host.clone()),
            HostPattern::Below(domain) => (format!("a.{domain}"), format!("*.{domain}")),
        };
        let on_443 = |e: &&Entry| e.port.is_none_or(|p| p == 443);
        let whole = |e: &&Entry| match (pattern, &e.pattern) {
            (HostPattern::Exact(_), _) => e.matches(Destination::Host(&sample), 443),
            (HostPattern::Below(_), Pattern::AnyName) => true,
            (HostPattern::Below(domain), Pattern::Subdomains(suffix)) => {
                domain == suffix || domain.ends_with(&format!(".{suffix}"))
            }
            (HostPattern::Below(_), Pattern::Regex(re)) => re.is_match(&sample),
            _ => false,
        };
        let covering = self.entries.iter().filter(on_443).find(whole);
        match (self.mode, covering) {
            (Mode::Open, _) | (Mode::Allow, Some(_)) | (Mode::Deny, None) => Ok(()),
            (Mode::Allow, None) => Err(format!(
                "{shown} is not in access_control.allow_list on port 443; add it there"
            )),
            (Mode::Deny, Some(e)) => Err(format!(
                "{shown} is refused by access_control.deny_list entry {:?}",
                e.text
            )),
        }
    }
}

impl Entry {
    /// Whether the entry covers `dest` on `port`.
    fn matches(&self, dest: Destination<'_>, port: u16) -> bool {
        if self.port.is_some_and(|want| want != port) {
            return false;
        }
        match (&self.pattern, dest) {
            (Pattern::Name(name), Destination::Host(host)) => normalise(host) == *name,
            (Pattern::AnyName, Destination::Host(_)) => true,
            (Pattern::Subdomains(suffix), Destination::Host(host)) => normalise(host)
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (Pattern::Regex(re), Destination::Host(host)) => re.is_match(&normalise(host)),
            (Pattern::Ip(ip), Destination::Ip(dest)) => canonical(*ip) == canonical(dest),
            (Pattern::Cidr(net), Destination::Ip(dest)) => net.contains(&canonical(dest)),
            _ => false,
        }
    }
}

fn verdict(allowed: bool, rule: &str) -> Verdict {
    Verdict {
        allowed,
        rule: rule.to_string(),
    }
}

fn error(field: &str, message: String) -> AccessError {
    AccessError {
        field: field.to_string(),
        message,
    }
}

/// A list field: absent or null is empty; anything but an array of strings is an error.
fn list(value: Option<&Value>, name: &str) -> Result<Vec<String>, AccessError> {
    let field = format!("{FIELD}.{name}");
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    error(
                        &format!("{field}[{i}]"),
                        format!("{name} entries must be strings"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(error(&field, format!("{name} must be a list of strings"))),
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_entry(text: &str) -> Result<Entry, String> {
    let entry = |pattern, port| Entry {
        text: text.to_string(),
        pattern,
        port,
    };
    if text.trim() != text || text.is_empty() {
        return Err("entries may not be empty or carry spaces".into());
    }
    if let Some(re) = text.strip_prefix('~') {
        let re = Regex::new(re).map_err(|e| format!("not a valid regular expression: {e}"))?;
        return Ok(entry(Pattern::Regex(re), None));
    }
    if text.contains('/') {
        let net = text
            .parse::<IpNet>()
            .map_err(|_| "a range must be an address/prefix such as 10.0.0.0/8, without a port")?;
        return Ok(entry(Pattern::Cidr(net.trunc()), None));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(entry(Pattern::Ip(ip), None));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, port) = rest
            .split_once(']')
            .ok_or("an IPv6 address in brackets needs its closing ']'")?;
        let ip = ip
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| "not an IPv6 address in brackets")?;
        let port = match port {
            "" => None,
            p => Some(parse_port(
                p.strip_prefix(':').ok_or("expected ':PORT' after ']'")?,
            )?),
        };
        return Ok(entry(Pattern::Ip(IpAddr::V6(ip)), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(parse_port(port)?)),
        None => (text, None),
    };
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Ok(entry(Pattern::Ip(IpAddr::V4(ip)), port));
    }
    // `*.` would normalise to `*` (any name): refuse it before the trailing dot is dropped.
    if host == "*." {
        return Err("not a host name (a wildcard needs a domain after '*.')".into());
    }
    let host = normalise(host);
    let pattern = if host == "*" {
        Pattern::AnyName
    } else if let Some(suffix) = host.strip_prefix("*.") {
        check_name(suffix)?;
        Pattern::Subdomains(suffix.to_string())
    } else {
        check_name(&host)?;
        Pattern::Name(host)
    };
    Ok(entry(pattern, port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "port must be a number between 1 and 65535 (got {text:?})"
        )),
    }
}

/// A host name: dot-separated labels of letters, digits, `-` and `_`, none empty or over 63.
fn check_name(name: &str) -> Result<(), String> {
    if crate::api::host::is_valid_name(name) {
        Ok(())
    } else {
        Err("not a host name (a wildcard is allowed only as '*' or a leading '*.')".into())
    }
}

#[cfg(test)]
mod tests;
