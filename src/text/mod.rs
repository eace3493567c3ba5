//! Text helpers with the LangSmith CLI's exact semantics: Go `%q` quoting, size strings,
//! bytes and time columns of the pretty tables, Go `slog` log lines ([`slog`]); [`ssh_config`]
//! renders and upserts the OpenSSH client entries of `sandbox ssh-setup`.

pub mod slog;
pub mod ssh_config;

const KIB: f64 = 1024.0;
const MIB: i64 = 1 << 20;
const GIB: i64 = 1 << 30;
const PIB: i64 = 1 << 50;

/// Quote like Go's `%q`: `"` and `\` escaped, control characters as `\n`, `\t`, `\x..` or
/// `\u....`, printable non-ASCII left as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                if (c as u32) > 0xffff {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                } else {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parse a size such as `512mb`, `4 GB`, `1.5gib` into bytes (binary units, unit required,
/// 1 MiB ≤ size ≤ 1 PiB). Errors are the LangSmith CLI's texts; callers prefix `invalid --flag: `.
pub fn parse_size(input: &str) -> Result<i64, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty size".into());
    }
    let q = go_quote(s);
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, rest) = s.split_at(split);
    if number.is_empty() {
        return Err(format!("invalid size {q}: no number"));
    }
    if rest.is_empty() {
        return Err(format!("invalid size {q}: unit required (e.g. 512mb, 2gb)"));
    }
    let value: f64 = number.parse().map_err(|_| {
        format!(
            "invalid size {q}: strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(number)
        )
    })?;
    let unit = rest.trim().to_lowercase();
    let multiplier = match unit.as_str() {
        "b" => 1.0,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => KIB * KIB,
        "g" | "gb" | "gib" => KIB * KIB * KIB,
        "t" | "tb" | "tib" => KIB * KIB * KIB * KIB,
        _ => {
            return Err(format!(
                "invalid size {q}: unknown unit {}",
                go_quote(&unit)
            ));
        }
    };
    let product = value * multiplier;
    // Go converts float → int64 by truncation; huge values saturate here and fail the 1 PiB check.
    let bytes = product as i64;
    if bytes < MIB {
        return Err(format!("invalid size {q}: must be at least 1mb"));
    }
    if product > PIB as f64 {
        return Err(format!("invalid size {q}: must be less than 1pb"));
    }
    Ok(bytes)
}

/// `≥ 1 GiB` → `<x.y> GB`, else `<n> MB` (binary units, as the LangSmith CLI prints them).
pub fn bytes_text(bytes: i64) -> String {
    if bytes >= GIB {
        format!("{:.1} GB", bytes as f64 / GIB as f64)
    } else {
        format!("{:.0} MB", bytes as f64 / MIB as f64)
    }
}

/// An RFC 3339 time in the local zone as `YYYY-MM-DD HH:MM`; anything else as given.
pub fn time_text(raw: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs kept for the size-string fuzz target parse or fail, never panic.
    #[test]
    fn the_kept_fuzz_corpus_of_sizes_never_panics() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/size_string");
        let mut inputs = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let _ = parse_size(&String::from_utf8_lossy(
                &std::fs::read(file.unwrap().path()).unwrap(),
            ));
            inputs += 1;
        }
        assert!(inputs > 0);
    }

    #[test]
    fn sizes_accept_every_documented_form() {
        let cases = [
            ("4gb", 4 * GIB),
            ("4 GB", 4 * GIB),
            ("4GiB", 4 * GIB),
            ("4g", 4 * GIB),
            ("512mb", 512 * MIB),
            ("1.5gb", 1610612736),
            ("1024kb", MIB),
            ("1048576b", MIB),
            ("  2t ", 2 << 40),
            ("1024tb", PIB),
            ("1m", MIB),
        ];
        for (input, bytes) in cases {
            assert_eq!(parse_size(input), Ok(bytes), "{input}");
        }
    }

    #[test]
    fn sizes_reject_with_ga_messages() {
        let cases = [
            ("", "empty size"),
            ("   ", "empty size"),
            ("gb", r#"invalid size "gb": no number"#),
            ("-1gb", r#"invalid size "-1gb": no number"#),
            (
                "512",
                r#"invalid size "512": unit required (e.g. 512mb, 2gb)"#,
            ),
            (
                "1.2.3gb",
                r#"invalid size "1.2.3gb": strconv.ParseFloat: parsing "1.2.3": invalid syntax"#,
            ),
            ("1pb", r#"invalid size "1pb": unknown unit "pb""#),
            ("2p", r#"invalid size "2p": unknown unit "p""#),
            ("4 XB", r#"invalid size "4 XB": unknown unit "xb""#),
            ("1023kb", r#"invalid size "1023kb": must be at least 1mb"#),
            ("0.5mb", r#"invalid size "0.5mb": must be at least 1mb"#),
            ("1025tb", r#"invalid size "1025tb": must be less than 1pb"#),
        ];
        for (input, message) in cases {
            assert_eq!(parse_size(input), Err(message.to_string()), "{input:?}");
        }
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(go_quote("x\ny\t\u{1}"), r#""x\ny\t\x01""#);
        assert_eq!(go_quote("héllo ✓"), "\"héllo ✓\"");
        assert_eq!(go_quote("\u{7f}"), r#""\x7f""#);
    }

    #[test]
    fn bytes_columns() {
        assert_eq!(bytes_text(512 * MIB), "512 MB");
        assert_eq!(bytes_text(GIB), "1.0 GB");
        assert_eq!(bytes_text(8 * GIB), "8.0 GB");
        assert_eq!(bytes_text(0), "0 MB");
        assert_eq!(bytes_text(1610612736), "1.5 GB");
    }

    #[test]
    fn times_fall_back_to_raw_text() {
        assert_eq!(time_text("yesterday"), "yesterday");
        let shown = time_text("2026-03-29T00:09:28.123456Z");
        assert_eq!(shown.len(), "2026-03-29 00:09".len());
    }
}
