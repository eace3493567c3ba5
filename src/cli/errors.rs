//! Errors of the CLI: one type, [`CliError`], that keeps what went wrong until the edge
//! (`cli::main`), where it becomes one line `{"error": "<msg>"}` on stderr (Go `%q` quoting)
//! and an exit status; clap's errors mapped to the LangSmith CLI's (cobra/pflag) messages; cobra's
//! positional-count checks.

use std::fmt;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::header::HeaderError;
use crate::text::go_quote;

/// Why a `langsmith` command failed.
#[derive(Debug)]
pub enum CliError {
    /// The command line does not parse; `argv` is kept for pflag's wording of shorthands.
    Parse {
        error: clap::Error,
        argv: Vec<String>,
    },
    /// The wrong number of positional arguments.
    Arity(Arity),
    /// A required `--` part is missing: `usage: langsmith <command> <arg> -- <trailing>`.
    Usage {
        command: String,
        arg: String,
        trailing: String,
    },
    /// A user script's interface header is malformed.
    Header(HeaderError),
    /// A script file could not be read.
    ReadScript { name: String, error: std::io::Error },
    /// The async runtime did not start.
    Runtime(std::io::Error),
    /// The server or the agent stopped with an error.
    Service(anyhow::Error),
    /// A script failed; its error text as the script layer words it.
    Script(String),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        1
    }

    /// Print the LangSmith CLI's error line.
    pub fn report(&self) {
        print_error(&self.to_string());
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Parse { error, argv } => f.write_str(&clap_message(error, argv)),
            CliError::Arity(arity) => arity.fmt(f),
            CliError::Usage {
                command,
                arg,
                trailing,
            } => write!(f, "usage: langsmith {command} <{arg}> -- <{trailing}>"),
            CliError::Header(e) => e.fmt(f),
            CliError::ReadScript { name, error } => write!(f, "reading script {name}: {error}"),
            CliError::Runtime(e) => write!(f, "starting the async runtime: {e}"),
            CliError::Service(e) => write!(f, "{e:#}"),
            CliError::Script(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

impl From<HeaderError> for CliError {
    fn from(e: HeaderError) -> Self {
        CliError::Header(e)
    }
}

/// A positional count that cobra's argument checks refuse, worded as cobra words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// `ExactArgs(n)`.
    Exact { wanted: usize, received: usize },
    /// `MinimumNArgs(n)`.
    AtLeast { wanted: usize, received: usize },
    /// `MaximumNArgs(n)`.
    AtMost { wanted: usize, received: usize },
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Arity::Exact { wanted, received } => {
                write!(f, "accepts {wanted} arg(s), received {received}")
            }
            Arity::AtLeast { wanted, received } => {
                write!(
                    f,
                    "requires at least {wanted} arg(s), only received {received}"
                )
            }
            Arity::AtMost { wanted, received } => {
                write!(f, "accepts at most {wanted} arg(s), received {received}")
            }
        }
    }
}

/// Print the LangSmith CLI's error line.
fn print_error(message: &str) {
    eprintln!("{{\"error\": {}}}", go_quote(message));
}

fn context(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        other => Some(other.to_string()),
    }
}

/// `--vcpus <VCPUS>` → `--vcpus`.
fn flag_name(arg: &str) -> &str {
    arg.split([' ', '=']).next().unwrap_or(arg)
}

/// The LangSmith CLI's message for a clap parse error (help and version are not errors: handled earlier).
/// `argv` is the command line: pflag names the whole shorthand bundle (`-5mb`), clap only its
/// first letter.
pub fn clap_message(err: &clap::Error, argv: &[String]) -> String {
    match err.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(err, ContextKind::InvalidArg).unwrap_or_default();
            let arg = flag_name(&arg).to_string();
            match arg.strip_prefix('-') {
                Some(short) if !short.starts_with('-') => {
                    let c = short.chars().next().unwrap_or('?');
                    let bundle = argv
                        .iter()
                        .find(|a| a.starts_with(&format!("-{c}")))
                        .map(|a| flag_name(a).to_string())
                        .unwrap_or(arg);
                    format!("unknown shorthand flag: '{c}' in {bundle}")
                }
                _ => format!("unknown flag: {arg}"),
            }
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = context(err, ContextKind::InvalidArg).unwrap_or_default();
            let value = context(err, ContextKind::InvalidValue).unwrap_or_default();
            let cause = std::error::Error::source(err)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("invalid value {}", go_quote(&value)));
            format!(
                "invalid argument {} for {} flag: {cause}",
                go_quote(&value),
                go_quote(flag_name(&arg))
            )
        }
        ErrorKind::NoEquals | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            let arg = context(err, ContextKind::InvalidArg).unwrap_or_default();
            format!("flag needs an argument: {}", flag_name(&arg))
        }
        ErrorKind::InvalidSubcommand => {
            let sub = context(err, ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("unknown command {} for \"langsmith\"", go_quote(&sub))
        }
        ErrorKind::MissingRequiredArgument => {
            let arg = context(err, ContextKind::InvalidArg).unwrap_or_default();
            format!("required argument {arg} not set")
        }
        _ => {
            // clap's own first line without its `error: ` prefix.
            let text = err.render().to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            line.trim_start_matches("error: ").to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(argv: &[&str]) -> String {
        let err = crate::cli::tests::full_tree()
            .try_get_matches_from(argv)
            .unwrap_err();
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        clap_message(&err, &argv)
    }

    #[test]
    fn unknown_flags_speak_pflag() {
        assert_eq!(
            parse_err(&["langsmith", "sandbox", "list", "--foo"]),
            "unknown flag: --foo"
        );
        assert_eq!(
            parse_err(&["langsmith", "sandbox", "get", "x", "-z"]),
            "unknown shorthand flag: 'z' in -z"
        );
        assert_eq!(
            parse_err(&["langsmith", "sandbox", "update", "x", "--memory", "-5mb"]),
            "unknown shorthand flag: '5' in -5mb"
        );
    }

    #[test]
    fn bad_int_values_speak_strconv() {
        assert_eq!(
            parse_err(&["langsmith", "sandbox", "create", "a", "--vcpus", "x"]),
            r#"invalid argument "x" for "--vcpus" flag: strconv.ParseInt: parsing "x": invalid syntax"#
        );
    }

    #[test]
    fn positional_counts_speak_cobra() {
        let exact = Arity::Exact {
            wanted: 1,
            received: 2,
        };
        assert_eq!(exact.to_string(), "accepts 1 arg(s), received 2");
        let at_least = Arity::AtLeast {
            wanted: 1,
            received: 0,
        };
        assert_eq!(
            at_least.to_string(),
            "requires at least 1 arg(s), only received 0"
        );
    }

    #[test]
    fn error_lines_are_go_quoted() {
        assert_eq!(go_quote("bad \"x\"\n"), r#""bad \"x\"\n""#);
    }
}
