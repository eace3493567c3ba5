//! HTTP validators and single byte ranges for `/download`: `If-None-Match`,
//! `If-Range` and `Range: bytes=a-b | a- | -n`. Anything we do not understand (several ranges,
//! other units, garbage) is ignored and the whole file is served, as RFC 9110 allows.

use axum::http::{HeaderMap, header};

/// How to answer a download given its `Range`/`If-Range` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    Full,
    /// Inclusive byte positions.
    Partial {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

/// `If-None-Match` names the current entity tag (or `*`).
pub fn if_none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

pub fn parse_range(headers: &HeaderMap, etag: &str, size: u64) -> RangeAnswer {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    // A stale `If-Range` means the client's partial copy is of another version: send it all.
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && if_range.to_str().map(str::trim).ok() != Some(etag)
    {
        return RangeAnswer::Full;
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (start, end) = (start.trim(), end.trim());
    match (start.parse::<u64>().ok(), end.parse::<u64>().ok()) {
        // `-n`: the last n bytes; more than the file is the whole file.
        (None, Some(suffix)) if start.is_empty() => {
            if suffix == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    first: size.saturating_sub(suffix),
                    last: size - 1,
                }
            }
        }
        (Some(first), None) if end.is_empty() => partial(first, u64::MAX, size),
        (Some(first), Some(last)) if last >= first => partial(first, last, size),
        _ => RangeAnswer::Full,
    }
}

fn partial(first: u64, last: u64, size: u64) -> RangeAnswer {
    if first >= size {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Partial {
            first,
            last: last.min(size - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(range: &str, if_range: Option<&str>, size: u64) -> RangeAnswer {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, range.parse().unwrap());
        if let Some(tag) = if_range {
            headers.insert(header::IF_RANGE, tag.parse().unwrap());
        }
        parse_range(&headers, "\"v1\"", size)
    }

    #[test]
    fn the_three_range_forms_clamp_and_refuse_like_the_spec_says() {
        use RangeAnswer::*;
        assert_eq!(answer("bytes=2-5", None, 10), Partial { first: 2, last: 5 });
        assert_eq!(
            answer("bytes=2-50", None, 10),
            Partial { first: 2, last: 9 }
        );
        assert_eq!(answer("bytes=7-", None, 10), Partial { first: 7, last: 9 });
        assert_eq!(answer("bytes=-3", None, 10), Partial { first: 7, last: 9 });
        assert_eq!(answer("bytes=-30", None, 10), Partial { first: 0, last: 9 });
        assert_eq!(answer("bytes=10-", None, 10), Unsatisfiable);
        assert_eq!(answer("bytes=-0", None, 10), Unsatisfiable);
        assert_eq!(answer("bytes=0-1,3-4", None, 10), Full);
        assert_eq!(answer("items=0-1", None, 10), Full);
        assert_eq!(answer("bytes=5-2", None, 10), Full);
        assert_eq!(
            answer("bytes=2-5", Some("\"v1\""), 10),
            Partial { first: 2, last: 5 }
        );
        assert_eq!(answer("bytes=2-5", Some("\"v0\""), 10), Full);
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, "\"x\", W/\"v1\"".parse().unwrap());
        assert!(if_none_match_hits(&headers, "\"v1\""));
        headers.insert(header::IF_NONE_MATCH, "*".parse().unwrap());
        assert!(if_none_match_hits(&headers, "\"v1\""));
        headers.insert(header::IF_NONE_MATCH, "\"v0\"".parse().unwrap());
        assert!(!if_none_match_hits(&headers, "\"v1\""));
    }
}
