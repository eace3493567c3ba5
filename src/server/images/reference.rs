//! Image references: decide whether a reference names a registry image or a local OCI
//! layout, normalise Docker Hub short names, and decide which hosts are spoken to over
//! plain HTTP (loopback only, as Docker does) and which get the user's credentials.

use std::net::IpAddr;
use std::path::PathBuf;

use oci_client::Reference;

use super::ImageError;

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A registry image, normalised (`python:3.12` → `docker.io/library/python:3.12`).
    Registry(Reference),
    /// A local OCI image layout directory, optionally with a tag (`oci:/dir:tag`).
    Layout { dir: PathBuf, tag: Option<String> },
}

/// Parse a user-supplied reference.
pub fn parse(reference: &str) -> Result<ImageSource, ImageError> {
    let invalid = |reason: &str| ImageError::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = reference.trim();
    if trimmed.is_empty() {
        return Err(invalid(
            "it is empty; pass an image such as python:3.12-slim",
        ));
    }
    if let Some(rest) = trimmed.strip_prefix("oci:") {
        return parse_layout(rest).ok_or_else(|| invalid("expected oci:/path/to/layout[:tag]"));
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(invalid("image references contain no spaces"));
    }
    let parsed: Reference = trimmed.parse().map_err(|e: oci_client::ParseError| {
        invalid(&format!(
            "{e}; expected NAME[:TAG] or NAME@sha256:DIGEST, e.g. python:3.12-slim"
        ))
    })?;
    Ok(ImageSource::Registry(parsed))
}

/// `PATH[:TAG]`: the tag is whatever follows the last `:` after the last `/`, so paths
/// containing colons in directory names still work.
fn parse_layout(rest: &str) -> Option<ImageSource> {
    if rest.is_empty() {
        return None;
    }
    let last_component_start = rest.rfind('/').map_or(0, |i| i + 1);
    let (dir, tag) = match rest[last_component_start..].rfind(':') {
        Some(i) => {
            let split = last_component_start + i;
            (&rest[..split], Some(rest[split + 1..].to_string()))
        }
        None => (rest, None),
    };
    if dir.is_empty() || tag.as_deref() == Some("") {
        return None;
    }
    Some(ImageSource::Layout {
        dir: PathBuf::from(dir),
        tag,
    })
}

/// The host part (with port) of a registry host or `scheme://host[:port]/…` URL, and
/// whether the URL explicitly asked for plain HTTP.
pub fn registry_url_host(url: &str) -> (String, bool) {
    let trimmed = url.trim();
    let (rest, explicit_http) = if let Some(rest) = trimmed.strip_prefix("http://") {
        (rest, true)
    } else {
        (trimmed.strip_prefix("https://").unwrap_or(trimmed), false)
    };
    let host = rest.split('/').next().unwrap_or("").to_ascii_lowercase();
    (normalise_registry_host(&host), explicit_http)
}

/// Docker Hub has several spellings; fold them into the one `Reference` uses.
pub fn normalise_registry_host(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        other => other.to_string(),
    }
}

/// Is `registry` (`host[:port]`) on the loopback interface? Those are reached over HTTP.
pub fn is_loopback_registry(registry: &str) -> bool {
    let host = if let Some(bracketed) = registry.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(reference: &str) -> Reference {
        match parse(reference).unwrap() {
            ImageSource::Registry(r) => r,
            other => panic!("expected a registry reference, got {other:?}"),
        }
    }

    #[test]
    fn docker_hub_short_names_normalise() {
        let r = registry("python:3.12-slim");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/python");
        assert_eq!(r.tag(), Some("3.12-slim"));
        assert_eq!(registry("ubuntu").tag(), Some("latest"));
        assert_eq!(registry("bitnami/redis:7").repository(), "bitnami/redis");
    }

    #[test]
    fn private_and_loopback_registries_keep_their_host() {
        let r = registry("registry.example.com/internal/python:3.12");
        assert_eq!(r.registry(), "registry.example.com");
        assert_eq!(r.repository(), "internal/python");
        let r = registry("127.0.0.1:5000/tiny:latest");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "tiny");
    }

    #[test]
    fn digest_references_keep_the_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = registry(&format!("host.example/repo@{digest}"));
        assert_eq!(r.digest(), Some(digest.as_str()));
    }

    #[test]
    fn bad_references_are_rejected_with_a_hint() {
        for bad in ["", "  ", "UPPER/Case:1", "a b", "repo@sha256:short", "oci:"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid image reference"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn oci_layouts_split_the_tag_from_the_last_component() {
        let layout = |dir: &str, tag: Option<&str>| ImageSource::Layout {
            dir: PathBuf::from(dir),
            tag: tag.map(str::to_string),
        };
        assert_eq!(parse("oci:/tmp/img").unwrap(), layout("/tmp/img", None));
        assert_eq!(
            parse("oci:/tmp/img:v1").unwrap(),
            layout("/tmp/img", Some("v1"))
        );
        assert_eq!(
            parse("oci:/a:b/img:v1").unwrap(),
            layout("/a:b/img", Some("v1"))
        );
        assert_eq!(parse("oci:rel").unwrap(), layout("rel", None));
        assert!(parse("oci:/tmp/img:").is_err());
    }

    #[test]
    fn loopback_detection() {
        for host in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "LOCALHOST",
            "[::1]:5000",
        ] {
            assert!(is_loopback_registry(host), "{host}");
        }
        for host in [
            "docker.io",
            "10.0.0.1:5000",
            "registry.example.com",
            "[::2]:80",
        ] {
            assert!(!is_loopback_registry(host), "{host}");
        }
    }

    #[test]
    fn registry_urls_reduce_to_hosts() {
        assert_eq!(
            registry_url_host("https://Registry.Example.com/v2/"),
            ("registry.example.com".to_string(), false)
        );
        assert_eq!(
            registry_url_host("http://10.0.0.5:5000"),
            ("10.0.0.5:5000".to_string(), true)
        );
        assert_eq!(
            registry_url_host("https://index.docker.io/v1/").0,
            "docker.io"
        );
    }
}
