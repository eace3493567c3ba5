//! Log lines in the format of Go's `log/slog` text handler, which the LangSmith CLI's
//! `sandbox tunnel` writes to stderr:
//! `time=2006-01-02T15:04:05.000-07:00 level=INFO msg="tunnel ready" local=127.0.0.1:8000`.
//!
//! A value is written bare unless it is empty or holds a space, `=`, `"`, a control or
//! other unprintable character; then it is quoted like Go's `strconv.Quote` (our
//! [`super::go_quote`]).

use chrono::{DateTime, SecondsFormat, TimeZone};

/// Severity, ordered: a handler at `Info` drops `Debug` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// `debug`, `warn`, `error` (any case); anything else is `Info`, as the LangSmith CLI's
    /// `--log-level` reads it.
    pub fn parse(text: &str) -> Level {
        match text.to_ascii_lowercase().as_str() {
            "debug" => Level::Debug,
            "warn" => Level::Warn,
            "error" => Level::Error,
            _ => Level::Info,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One line (without the newline) at `time`.
pub fn line<Tz: TimeZone>(
    time: &DateTime<Tz>,
    level: Level,
    msg: &str,
    attrs: &[(&str, String)],
) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut out = format!(
        "time={} level={} msg={}",
        time.to_rfc3339_opts(SecondsFormat::Millis, true),
        level.name(),
        value(msg)
    );
    for (key, val) in attrs {
        out.push(' ');
        out.push_str(&value(key));
        out.push('=');
        out.push_str(&value(val));
    }
    out
}

/// A key or value, quoted only where slog would.
fn value(text: &str) -> String {
    if needs_quoting(text) {
        super::go_quote(text)
    } else {
        text.to_string()
    }
}

fn needs_quoting(text: &str) -> bool {
    text.is_empty()
        || text.chars().any(|c| {
            c == ' '
                || c == '='
                || c == '"'
                || c.is_whitespace()
                || c.is_control()
                || c == '\u{fffd}'
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn lines_match_the_slog_text_handler() {
        let offset = FixedOffset::east_opt(-7 * 3600).unwrap();
        let time = offset.with_ymd_and_hms(2006, 1, 2, 15, 4, 5).unwrap()
            + chrono::Duration::milliseconds(7);
        let attrs = [
            ("local", "127.0.0.1:18000".to_string()),
            ("remote_port", "8000".to_string()),
        ];
        assert_eq!(
            line(&time, Level::Info, "tunnel ready", &attrs),
            "time=2006-01-02T15:04:05.007-07:00 level=INFO msg=\"tunnel ready\" \
             local=127.0.0.1:18000 remote_port=8000"
        );
        let utc = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            line(&utc, Level::Error, "x", &[("reason", "dial failed".into())]),
            "time=2026-01-02T03:04:05.000Z level=ERROR msg=x reason=\"dial failed\""
        );
    }

    #[test]
    fn values_are_quoted_when_empty_spaced_or_unprintable() {
        assert_eq!(value(""), "\"\"");
        assert_eq!(value("a=b"), "\"a=b\"");
        assert_eq!(value("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(value("tab\there"), "\"tab\\there\"");
        assert_eq!(value("ws://h/dp/x/tunnel"), "ws://h/dp/x/tunnel");
        assert_eq!(value("naïve"), "naïve");
    }

    #[test]
    fn levels_parse_case_insensitively_defaulting_to_info() {
        assert_eq!(Level::parse("DEBUG"), Level::Debug);
        assert_eq!(Level::parse("Warn"), Level::Warn);
        assert_eq!(Level::parse("error"), Level::Error);
        assert_eq!(Level::parse("verbose"), Level::Info);
        assert!(Level::Debug < Level::Info);
    }
}
