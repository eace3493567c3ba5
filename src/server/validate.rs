//! Input validation shared by the handlers. Every failure is a 422 naming the field.

use super::error::ApiError;

const MIB: i64 = 1 << 20;
const PIB: i64 = 1 << 50;

/// Sandbox names: 1–63 lowercase letters, digits and hyphens, starting with a letter or a
/// digit and not ending with a hyphen (DNS-label style, usable as a hostname).
pub fn sandbox_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        // A UUID-shaped name could be mistaken for another sandbox's id.
        && uuid::Uuid::parse_str(name).is_err();
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "name",
            format!(
                "invalid sandbox name {name:?}: use 1-63 lowercase letters, digits and hyphens, \
                 starting and ending with a letter or digit"
            ),
        ))
    }
}

/// Snapshot names: registry-style, lowercase components separated by `/`, ≤ 255 chars.
/// The `system/` namespace is reserved for snapshots the server provides.
pub fn snapshot_name(name: &str) -> Result<(), ApiError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
    };
    if name.is_empty() || name.len() > 255 || !name.split('/').all(component_ok) {
        return Err(ApiError::validation(
            "name",
            format!(
                "invalid snapshot name {name:?}: use lowercase letters, digits, '.', '_' and '-', \
                 components separated by '/', at most 255 characters"
            ),
        ));
    }
    if name.starts_with("system/") {
        return Err(ApiError::validation(
            "name",
            "the system/ namespace is reserved; choose another name",
        ));
    }
    Ok(())
}

/// Tags follow Docker's grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn tag(tag: &str) -> Result<(), ApiError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation("tag", format!("invalid tag {tag:?}")))
    }
}

/// Filesystem capacities: at least 1 MiB and below 1 PiB, like the CLI's size strings.
pub fn capacity(field: &str, bytes: i64) -> Result<(), ApiError> {
    if bytes < MIB {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at least 1 MiB (1048576 bytes), got {bytes}"),
        ));
    }
    if bytes > PIB {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at most 1 PiB, got {bytes}"),
        ));
    }
    Ok(())
}

/// `proxy_config.access_control`: every entry must parse, and at most one list may be
/// populated (422 naming the entry). The rest of `proxy_config` is stored as sent.
pub fn proxy_config(value: Option<&serde_json::Value>) -> Result<(), ApiError> {
    crate::proxy::access::AccessControl::from_proxy_config(value)
        .map(|_| ())
        .map_err(|e| ApiError::validation(&e.field, e.message))
}

/// TTL-style fields: `0` disables, otherwise a positive multiple of 60 seconds.
pub fn ttl(field: &str, seconds: i64) -> Result<(), ApiError> {
    if seconds < 0 || seconds % 60 != 0 {
        return Err(ApiError::validation(
            field,
            format!(
                "{field} must be 0 (never) or a positive multiple of 60 seconds, got {seconds}"
            ),
        ));
    }
    Ok(())
}

/// Filters and paging shared by the list endpoints of sandboxes and snapshots.
#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    pub name_contains: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Limit/offset paging. Without a limit everything is returned: the official SDK's
/// `list_*` calls cannot page, so a local server is friendlier returning all.
pub fn page<T>(
    items: Vec<T>,
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<(Vec<T>, i64), ApiError> {
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::validation("offset", "offset must be >= 0"));
    }
    let total = items.len() as i64;
    let rest = items.into_iter().skip(offset as usize);
    match limit {
        None => Ok((rest.collect(), 0)),
        Some(l) if !(1..=500).contains(&l) => Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 500",
        )),
        Some(l) => {
            let page: Vec<T> = rest.take(l as usize).collect();
            let next = offset + page.len() as i64;
            Ok((page, if next < total { next } else { 0 }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(sandbox_name("my-vm").is_ok());
        assert!(sandbox_name("My-vm").is_err());
        assert!(sandbox_name("-a").is_err());
        assert!(sandbox_name(&"a".repeat(64)).is_err());
        assert!(sandbox_name("6f1f3a52-2f5c-4a53-9d0e-2b7f6f1d9a10").is_err());
        assert!(snapshot_name("team/env-gpu").is_ok());
        assert!(snapshot_name("python-slim").is_ok());
        assert!(snapshot_name("Bad").is_err());
        assert!(snapshot_name("a//b").is_err());
        assert!(snapshot_name("system/default").is_err());
    }

    #[test]
    fn paging_reports_next_offset() {
        let (p, next) = page(vec![1, 2, 3], Some(2), None).unwrap();
        assert_eq!((p, next), (vec![1, 2], 2));
        let (p, next) = page(vec![1, 2, 3], Some(2), Some(2)).unwrap();
        assert_eq!((p, next), (vec![3], 0));
        assert!(page(vec![1], Some(0), None).is_err());
    }
}
