//! Checks of the mint requests' fields that need more than a range: ports, embed origins,
//! and the Content-Disposition built from a path. Each failure names its field (422).

use crate::api::service::MAX_EMBED_ORIGINS;
use crate::server::error::ApiError;

/// A port of 1–65535.
pub fn valid_port(port: i64) -> Result<u16, ApiError> {
    u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(|| {
        ApiError::validation(
            "port",
            format!("port must be between 1 and 65535 (got {port})"),
        )
    })
}

/// At most [`MAX_EMBED_ORIGINS`] origins, each `https://host[:port]` (`http` only for
/// localhost and loopback addresses), normalised to lower case without a trailing slash.
pub fn valid_embed_origins(origins: Vec<String>) -> Result<Vec<String>, ApiError> {
    if origins.len() > MAX_EMBED_ORIGINS {
        return Err(ApiError::validation(
            "embed_origins",
            format!(
                "at most {MAX_EMBED_ORIGINS} embed_origins (got {})",
                origins.len()
            ),
        ));
    }
    origins
        .into_iter()
        .map(|o| {
            normalise_origin(&o).ok_or_else(|| {
                ApiError::validation(
                    "embed_origins",
                    format!(
                        "{o:?} is not an origin: use https://host[:port] (http only for localhost)"
                    ),
                )
            })
        })
        .collect()
}

fn normalise_origin(origin: &str) -> Option<String> {
    let lower = origin.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    // `[v6]` or a name, then an optional `:port`.
    let split = match authority.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .map(|(v6, tail)| (&authority[..v6.len() + 2], tail)),
        None => Some(authority.split_at(authority.find(':').unwrap_or(authority.len()))),
    };
    let (host, tail) = split?;
    let port = match tail {
        "" => None,
        tail => Some(tail.strip_prefix(':')?).filter(|p| p.parse::<u16>().is_ok_and(|p| p != 0)),
    };
    if !tail.is_empty() && port.is_none() {
        return None;
    }
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
        && (host.starts_with('[') || !host.contains(':'));
    let loopback =
        matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.ends_with(".localhost");
    let scheme_ok = scheme == "https" || (scheme == "http" && loopback);
    (host_ok && scheme_ok).then(|| match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// `attachment; filename="<basename>"` (or `inline; …`): quotes, backslashes and control
/// characters in the name become `_`; a name beyond ASCII also gets an RFC 5987
/// `filename*`.
pub fn disposition(kind: &str, path: &str) -> String {
    let base = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if base.is_empty() {
        return kind.to_string();
    }
    let plain: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut value = format!("{kind}; filename=\"{plain}\"");
    if !base.is_ascii() {
        let encoded =
            percent_encoding::utf8_percent_encode(base, percent_encoding::NON_ALPHANUMERIC);
        value.push_str(&format!("; filename*=UTF-8''{encoded}"));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_origins_are_https_or_loopback_http_and_at_most_five() {
        assert_eq!(
            normalise_origin("https://App.Example.com:8443/").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(
            normalise_origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        for bad in [
            "http://example.com",
            "https://",
            "example.com",
            "https://a.com/path",
            "https://a.com:0",
            "https://a.com:x",
            "ftp://a.com",
        ] {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
        let six = vec!["https://a.com".to_string(); 6];
        assert!(valid_embed_origins(six).is_err());
    }

    #[test]
    fn ports_and_dispositions_are_checked_and_built() {
        assert_eq!(valid_port(8080).unwrap(), 8080);
        for bad in [0, -1, 65536] {
            assert!(valid_port(bad).is_err(), "{bad}");
        }
        assert_eq!(
            disposition("attachment", "/tmp/report.csv"),
            "attachment; filename=\"report.csv\""
        );
        assert_eq!(
            disposition("inline", "/tmp/a\"b\\c.txt"),
            "inline; filename=\"a_b_c.txt\""
        );
        assert_eq!(
            disposition("attachment", "/tmp/é.txt"),
            "attachment; filename=\"_.txt\"; filename*=UTF-8''%C3%A9%2Etxt"
        );
    }
}
