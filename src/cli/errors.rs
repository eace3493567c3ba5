//! Error reporting of the CLI: one line `{"error": "<msg>"}` on stderr (Go `%q` quoting), exit 1;
//! clap's errors mapped to the GA (cobra/pflag) messages; cobra's positional-count checks.

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::text::go_quote;

/// Print the GA error line.
pub fn print_error(message: &str) {
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

/// The GA message for a clap parse error (help and version are not errors: handled earlier).
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

/// cobra `ExactArgs(1)`: the single positional, or `accepts 1 arg(s), received N`.
pub fn exact_name(positionals: &[String]) -> Result<String, String> {
    match positionals {
        [name] => Ok(name.clone()),
        other => Err(format!("accepts 1 arg(s), received {}", other.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Cli;
    use clap::Parser;

    fn parse_err(argv: &[&str]) -> String {
        let err = Cli::try_parse_from(argv).unwrap_err();
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
    fn int_flags_detect_bases_and_bools_take_values() {
        let cli = Cli::try_parse_from([
            "langsmith",
            "sandbox",
            "create",
            "a",
            "--vcpus",
            "0x10",
            "--wait=false",
        ])
        .unwrap();
        let Some(crate::cli::args::Command::Sandbox(sb)) = cli.command else {
            panic!()
        };
        let Some(crate::cli::args::SandboxSub::Create(c)) = sb.command else {
            panic!()
        };
        assert_eq!((c.vcpus, c.wait, c.memory.as_str()), (16, false, "512mb"));
        assert_eq!(crate::cli::args::go_int("010"), Ok(8));
        assert_eq!(crate::cli::args::go_int("-7"), Ok(-7));
    }

    #[test]
    fn positional_counts_speak_cobra() {
        assert_eq!(exact_name(&[]), Err("accepts 1 arg(s), received 0".into()));
        assert_eq!(
            exact_name(&["a".into(), "b".into()]),
            Err("accepts 1 arg(s), received 2".into())
        );
        assert_eq!(exact_name(&["a".into()]), Ok("a".into()));
    }

    #[test]
    fn error_lines_are_go_quoted() {
        assert_eq!(go_quote("bad \"x\"\n"), r#""bad \"x\"\n""#);
    }
}
