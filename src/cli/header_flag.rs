//! The `@flag` declaration of an interface header ([`super::header`]):
//! `[-s, ]--long[ <VALUE>|[=<VALUE>]]: TYPE[ = DEFAULT][ hidden][  help]`, checked strictly.

use super::header::{Flag, Kind};

/// Defaults a header may name instead of a number, each defined once and shared with the
/// script API (`Sandbox.wait()`, `Snapshot.wait()`).
pub const NAMED_DEFAULTS: &[(&str, i64)] = &[
    (
        "SANDBOX_WAIT_SECS",
        crate::script::sandbox::DEFAULT_WAIT_SECS,
    ),
    (
        "SNAPSHOT_WAIT_SECS",
        crate::script::snapshot::DEFAULT_WAIT_SECS,
    ),
];

/// Flag names the top-level command line already uses.
const RESERVED: &[&str] = &["help", "api-key", "api-url", "format"];

/// `[-s, ]--long[ <VALUE>|[=<VALUE>]]: TYPE[ = DEFAULT][ hidden][  help]`.
pub fn flag(rest: &str) -> Result<Flag, String> {
    let (spec, typed) = rest
        .split_once(": ")
        .ok_or_else(|| format!("expected `--name: type` in {rest:?}"))?;
    let (short, spec) = match spec.strip_prefix('-').filter(|s| !s.starts_with('-')) {
        Some(after) => {
            let (letter, spec) = after
                .split_once(", ")
                .ok_or_else(|| format!("expected `-s, --long` in {rest:?}"))?;
            let mut chars = letter.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphanumeric() && c != 'h' => (Some(c), spec),
                _ => return Err(format!("-{letter} is not a usable short flag")),
            }
        }
        None => (None, spec),
    };
    let spec = spec
        .strip_prefix("--")
        .ok_or_else(|| format!("a flag starts with --, not {spec:?}"))?;
    let (long, value) = match spec.find([' ', '[']) {
        Some(i) => (&spec[..i], spec[i..].trim_start()),
        None => (spec, ""),
    };
    if long.is_empty()
        || !long
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || long.starts_with('-')
    {
        return Err(format!(
            "--{long}: flag names are lowercase letters, digits and '-'"
        ));
    }
    if RESERVED.contains(&long) {
        return Err(format!("--{long} is a flag of every command already"));
    }
    let (typed, help) = match typed.split_once("  ") {
        Some((typed, help)) => (typed.trim(), help.trim().to_string()),
        None => (typed.trim(), String::new()),
    };
    // `hidden`: accepted but left out of `--help` (a backward-compatible alias).
    let (typed, hidden) = match typed.strip_suffix(" hidden") {
        Some(typed) => (typed.trim_end(), true),
        None => (typed, false),
    };
    let (kind, default) = match typed.split_once(" = ") {
        Some((kind, default)) => (kind.trim(), Some(default.trim())),
        None => (typed, None),
    };
    let kind = match kind {
        "int" => Kind::Int,
        "string" => Kind::String,
        "bool" => Kind::Bool,
        "list" => Kind::List,
        other => {
            return Err(format!(
                "unknown type {other:?} (expected int, string, bool or list; help text \
                 follows two spaces)"
            ));
        }
    };
    let key = long.replace('-', "_");
    super::header::check_not_reserved(&key)?;
    let (value_name, equals_only) = match (kind, value) {
        (_, "") => (key.to_ascii_uppercase(), false),
        (Kind::Bool, v) => match v.strip_prefix("[=<").and_then(|v| v.strip_suffix(">]")) {
            Some(name) if spec.as_bytes()[long.len()] == b'[' => (name.to_string(), true),
            _ => {
                return Err(format!(
                    "a bool flag is written --{long} or --{long}[=<VALUE>], not {v:?}"
                ));
            }
        },
        (_, v) => match v.strip_prefix('<').and_then(|v| v.strip_suffix('>')) {
            Some(name) if !name.is_empty() && !name.contains(['<', '>', ' ']) => {
                (name.to_string(), false)
            }
            _ => return Err(format!("expected --{long} <VALUE>, not {v:?}")),
        },
    };
    let default = match default {
        None => None,
        Some(text) => Some(default_value(kind, text)?),
    };
    Ok(Flag {
        key,
        long: long.to_string(),
        short,
        value_name,
        kind,
        default,
        equals_only,
        hidden,
        help,
    })
}

/// A default checked against its type; named defaults become their number.
fn default_value(kind: Kind, text: &str) -> Result<String, String> {
    match kind {
        Kind::Int => {
            if let Some((_, value)) = NAMED_DEFAULTS.iter().find(|(name, _)| *name == text) {
                return Ok(value.to_string());
            }
            super::args::go_int(text)
                .map(|_| text.to_string())
                .map_err(|_| format!("default {text:?} is not an int or a named default"))
        }
        Kind::Bool if text == "true" || text == "false" => Ok(text.to_string()),
        Kind::Bool => Err(format!("a bool defaults to true or false, not {text:?}")),
        Kind::String if text == "\"\"" => Ok(String::new()),
        Kind::String if text.contains([' ', '"']) => Err(format!(
            "a string default is one word or \"\", not {text:?}"
        )),
        Kind::String => Ok(text.to_string()),
        Kind::List => Err("a list has no default (it is empty)".into()),
    }
}
