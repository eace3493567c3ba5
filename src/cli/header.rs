//! The interface header of a subcommand script: `//!` lines at its top declare what the command
//! line of `langsmith sandbox …` takes, and the clap tree is built from them
//! ([`super::command_tree`]). The grammar, one declaration per line:
//!
//! ```text
//! //! @about Create a sandbox from a snapshot      (required: the one-line description)
//! //! @order 1                                     (position in help; unordered ones follow)
//! //! @arg name                                    (exactly one positional → args.name)
//! //! @arg [name]                                  (at most one; absent → ())
//! //! @arg name...                                 (any number → array)
//! //! @arg snapshot_id <NAME>: The snapshot        (value name shown in help, and help text)
//! //! @flag --vcpus: int = 2  Number of vCPUs      (int, string, bool or list)
//! //! @flag --memory <SIZE>: string = 512mb  Memory
//! //! @flag --cwd: string = ""  Working directory  (an empty default is not shown)
//! //! @flag --vcpus: int  Number of vCPUs          (no default: absent → ())
//! //! @flag --timeout: int = SANDBOX_WAIT_SECS     (a named default, see NAMED_DEFAULTS)
//! //! @flag --wait: bool  Wait until ready          (`--wait`, `--wait=false`, `--wait false`)
//! //! @flag -t, --tty[=<TTY>]: bool  Use a pty      (value only after `=`: `-t=false`)
//! //! @flag --env <KEY=VALUE>: list  Repeatable     (array of every occurrence)
//! //! @flag --name: string = "" hidden             (accepted, left out of help)
//! //! @trailing command <COMMAND>: After `--`       (required words after `--` → array)
//! ```
//!
//! Help text follows the flag's type or default after two spaces. Anything else is an error
//! naming the script and line: the format is ours and small, so it stays strict.

use std::fmt;

pub use super::header_flag::NAMED_DEFAULTS;
use super::header_flag::flag;

/// What a script's command line takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub about: String,
    pub order: Option<u32>,
    pub positional: Option<Positional>,
    pub flags: Vec<Flag>,
    pub trailing: Option<Trailing>,
}

/// How many positionals an `@arg` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    One,
    Optional,
    Many,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positional {
    pub key: String,
    pub value_name: String,
    pub help: String,
    pub count: Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    String,
    Bool,
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The `args` key: the long name in snake_case.
    pub key: String,
    pub long: String,
    pub short: Option<char>,
    pub value_name: String,
    pub kind: Kind,
    /// `None`: absent → `()` (ints, strings), `false` (bools), `[]` (lists).
    pub default: Option<String>,
    /// A bool whose value may only follow `=` (`-t=false`), so `-t word` leaves `word` alone.
    pub equals_only: bool,
    /// Accepted on the command line, never shown in help.
    pub hidden: bool,
    pub help: String,
}

/// Words after `--`, required (an empty list is a usage error) unless written `[key]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailing {
    pub key: String,
    pub value_name: String,
    pub help: String,
    pub required: bool,
}

/// A malformed header: the script, the 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    pub script: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.script, self.line, self.message)
    }
}

impl std::error::Error for HeaderError {}

/// The header of `source` (`script` names it in errors); `None` when it has no `//!` lines.
pub fn parse(script: &str, source: &str) -> Result<Option<Interface>, HeaderError> {
    let mut interface = Interface::default();
    let mut seen_about = false;
    let mut seen_any = false;
    let mut last_line = 0;
    for (index, line) in source.lines().enumerate() {
        if index == 0 && line.starts_with("#!") {
            continue;
        }
        let Some(text) = line.strip_prefix("//!") else {
            break;
        };
        seen_any = true;
        last_line = index + 1;
        let fail = |message: String| HeaderError {
            script: script.to_string(),
            line: index + 1,
            message,
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let (keyword, rest) = text.split_once(' ').unwrap_or((text, ""));
        let rest = rest.trim();
        match keyword {
            "@about" if seen_about => return Err(fail("a second @about".into())),
            "@about" if rest.is_empty() => return Err(fail("@about needs a description".into())),
            "@about" => {
                seen_about = true;
                interface.about = rest.to_string();
            }
            "@order" if interface.order.is_some() => return Err(fail("a second @order".into())),
            "@order" => {
                let order = rest
                    .parse()
                    .map_err(|_| fail(format!("@order takes a number, not {rest:?}")))?;
                interface.order = Some(order);
            }
            "@arg" if interface.positional.is_some() => {
                return Err(fail("a second @arg (one positional at most)".into()));
            }
            "@arg" => interface.positional = Some(positional(rest).map_err(fail)?),
            "@flag" => {
                let flag = flag(rest).map_err(fail)?;
                if interface
                    .flags
                    .iter()
                    .any(|f| f.long == flag.long || (f.short.is_some() && f.short == flag.short))
                {
                    return Err(fail(format!("--{} is declared twice", flag.long)));
                }
                interface.flags.push(flag);
            }
            "@trailing" if interface.trailing.is_some() => {
                return Err(fail("a second @trailing".into()));
            }
            "@trailing" => interface.trailing = Some(trailing(rest).map_err(fail)?),
            other => {
                return Err(fail(format!(
                    "unknown declaration {other:?} (expected @about, @order, @arg, @flag or \
                     @trailing)"
                )));
            }
        }
    }
    if !seen_any {
        return Ok(None);
    }
    let fail = |message: &str| HeaderError {
        script: script.to_string(),
        line: last_line,
        message: message.to_string(),
    };
    if !seen_about {
        return Err(fail("the header has no @about line"));
    }
    if let (Some(p), Some(_)) = (&interface.positional, &interface.trailing)
        && p.count != Count::One
    {
        return Err(fail("with @trailing, @arg takes exactly one name"));
    }
    let mut keys: Vec<&str> = interface.flags.iter().map(|f| f.key.as_str()).collect();
    keys.extend(interface.positional.iter().map(|p| p.key.as_str()));
    keys.extend(interface.trailing.iter().map(|t| t.key.as_str()));
    keys.sort_unstable();
    if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(fail(&format!("args.{} is declared twice", pair[0])));
    }
    Ok(Some(interface))
}

/// `name`, `[name]`, `name...`, each optionally followed by `<VALUE>` and `: help`.
fn positional(rest: &str) -> Result<Positional, String> {
    let (word, value_name, help) = named(rest)?;
    let (word, optional) = bracketed(word);
    let (word, many) = match word.strip_suffix("...") {
        Some(key) => (key, true),
        None => (word, false),
    };
    let count = match (optional, many) {
        (true, false) => Count::Optional,
        (false, true) => Count::Many,
        (false, false) => Count::One,
        (true, true) => return Err(format!("{rest:?}: write [name] or name..., not both")),
    };
    let (key, value_name) = key_and_value_name(word, value_name)?;
    Ok(Positional {
        key,
        value_name,
        help,
        count,
    })
}

/// `command <COMMAND>: help` or `[command]` (optional).
fn trailing(rest: &str) -> Result<Trailing, String> {
    let (word, value_name, help) = named(rest)?;
    let (word, optional) = bracketed(word);
    let (key, value_name) = key_and_value_name(word, value_name)?;
    Ok(Trailing {
        key,
        value_name,
        help,
        required: !optional,
    })
}

/// `word [<VALUE>][: help]` → (word, VALUE, help).
fn named(rest: &str) -> Result<(&str, Option<String>, String), String> {
    let (spec, help) = split_help(rest);
    let (word, value_name) = value_name_of(spec)?;
    Ok((word, value_name, help))
}

/// `[word]` → (word, true); `word` → (word, false).
fn bracketed(word: &str) -> (&str, bool) {
    match word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
        Some(inner) => (inner, true),
        None => (word, false),
    }
}

/// A checked `args` key and its value name (the key in capitals unless given).
fn key_and_value_name(key: &str, value_name: Option<String>) -> Result<(String, String), String> {
    check_key(key)?;
    let value_name = value_name.unwrap_or_else(|| key.to_ascii_uppercase());
    Ok((key.to_string(), value_name))
}

/// `spec: help` → (spec, help); without `: `, no help.
fn split_help(rest: &str) -> (&str, String) {
    match rest.split_once(": ") {
        Some((spec, help)) => (spec.trim(), help.trim().to_string()),
        None => (rest.trim_end_matches(':').trim(), String::new()),
    }
}

/// `word <VALUE>` → (word, Some(VALUE)); `word` → (word, None).
fn value_name_of(spec: &str) -> Result<(&str, Option<String>), String> {
    match spec.split_once(' ') {
        None => Ok((spec, None)),
        Some((word, value)) => match value
            .trim()
            .strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
        {
            Some(name) if !name.is_empty() && !name.contains(['<', '>', ' ']) => {
                Ok((word, Some(name.to_string())))
            }
            _ => Err(format!("expected `{word} <VALUE>`, not {spec:?}")),
        },
    }
}

/// Ids clap already uses in every subcommand: its `help` and `version`, and the global flags
/// of [`super::args::Cli`] (a test keeps this list in step with them). A declaration with one
/// of these keys would make clap panic while building the tree.
pub const RESERVED_KEYS: &[&str] = &["help", "version", "format", "api_key", "api_url"];

/// A key that is not [reserved](RESERVED_KEYS).
pub(super) fn check_not_reserved(key: &str) -> Result<(), String> {
    if RESERVED_KEYS.contains(&key) {
        return Err(format!(
            "args.{key} is reserved (help, version and the global flags' names)"
        ));
    }
    Ok(())
}

/// An `args` key: lowercase letters, digits and `_`, starting with a letter, and not
/// [reserved](RESERVED_KEYS).
fn check_key(key: &str) -> Result<(), String> {
    check_not_reserved(key)?;
    let ok = key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?}: argument names are lowercase letters, digits and '_'"
        ))
    }
}
