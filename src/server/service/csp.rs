//! The headers a download link pins: its Content-Security-Policy (built at mint time from
//! the request's `csp_*` fields, then carried in the token) and the Content-Type guessed
//! from the file's extension when the link names none.
//!
//! The policy keeps a downloaded HTML or SVG file from acting as a page of the sandbox's
//! download origin: `sandbox` (loosened by the allowed flags, dropped by
//! `csp_sandbox: false`) gives it an opaque origin, and `default-src` limits what it may
//! load to its own host plus the named third-party bundles.

/// `csp_sandbox_flags` a link may ask for.
pub const SANDBOX_FLAGS: &[&str] = &[
    "allow-downloads",
    "allow-forms",
    "allow-modals",
    "allow-orientation-lock",
    "allow-pointer-lock",
    "allow-popups",
    "allow-presentation",
    "allow-scripts",
    "allow-top-navigation-by-user-activation",
    "allow-same-origin",
];

/// `csp_source_bundles` and the sources each adds to `default-src`. `none` (own host only)
/// and `any` (no `default-src` at all) stand alone.
const BUNDLES: &[(&str, &str)] = &[
    ("cdnjs", "https://cdnjs.cloudflare.com"),
    (
        "google-fonts",
        "https://fonts.googleapis.com https://fonts.gstatic.com",
    ),
    ("jsdelivr", "https://cdn.jsdelivr.net"),
    ("unpkg", "https://unpkg.com"),
];

/// The bundles of a link that names none.
const DEFAULT_BUNDLES: &[&str] = &["cdnjs", "google-fonts", "jsdelivr", "unpkg"];

/// The policy for these request fields; `Err((field, message))` names what is wrong.
/// `None`: no policy at all (`csp_sandbox: false` with the `any` bundle).
pub fn policy(
    sandbox: Option<bool>,
    flags: Option<&[String]>,
    bundles: Option<&[String]>,
) -> Result<Option<String>, (&'static str, String)> {
    let mut directives = Vec::new();
    let flags = flags.unwrap_or_default();
    if let Some(bad) = flags.iter().find(|f| !SANDBOX_FLAGS.contains(&f.as_str())) {
        return Err((
            "csp_sandbox_flags",
            format!(
                "unknown sandbox flag {bad:?}; allowed: {}",
                SANDBOX_FLAGS.join(", ")
            ),
        ));
    }
    if sandbox.unwrap_or(true) {
        let mut directive = String::from("sandbox");
        for flag in flags {
            directive.push(' ');
            directive.push_str(flag);
        }
        directives.push(directive);
    }
    let named: Vec<&str> = match bundles {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_BUNDLES.to_vec(),
    };
    let alone = named.iter().find(|b| **b == "none" || **b == "any");
    if let Some(alone) = alone.filter(|_| named.len() > 1) {
        return Err((
            "csp_source_bundles",
            format!("{alone:?} cannot be combined with other bundles"),
        ));
    }
    if alone != Some(&"any") {
        let mut sources = String::from("default-src 'self'");
        for name in named.iter().filter(|b| **b != "none") {
            let Some((_, hosts)) = BUNDLES.iter().find(|(known, _)| known == name) else {
                return Err((
                    "csp_source_bundles",
                    format!(
                        "unknown bundle {name:?}; allowed: cdnjs, google-fonts, jsdelivr, unpkg, none, any"
                    ),
                ));
            };
            sources.push(' ');
            sources.push_str(hosts);
        }
        directives.push(sources);
    }
    Ok((!directives.is_empty()).then(|| directives.join("; ")))
}

/// Content-Type by the file's extension (case-insensitive); unknown: bytes.
pub fn content_type_for(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return "application/octet-stream",
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "log" | "md" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_policy_sandboxes_and_allows_the_four_bundles() {
        assert_eq!(
            policy(None, None, None).unwrap().unwrap(),
            "sandbox; default-src 'self' https://cdnjs.cloudflare.com \
             https://fonts.googleapis.com https://fonts.gstatic.com https://cdn.jsdelivr.net \
             https://unpkg.com"
        );
    }

    #[test]
    fn flags_none_any_and_no_sandbox_shape_the_policy() {
        let flags = strings(&["allow-scripts", "allow-forms"]);
        let none = strings(&["none"]);
        assert_eq!(
            policy(Some(true), Some(&flags), Some(&none))
                .unwrap()
                .unwrap(),
            "sandbox allow-scripts allow-forms; default-src 'self'"
        );
        let any = strings(&["any"]);
        assert_eq!(policy(None, None, Some(&any)).unwrap().unwrap(), "sandbox");
        assert_eq!(policy(Some(false), None, Some(&any)).unwrap(), None);
        let unpkg = strings(&["unpkg"]);
        assert_eq!(
            policy(Some(false), None, Some(&unpkg)).unwrap().unwrap(),
            "default-src 'self' https://unpkg.com"
        );
    }

    #[test]
    fn unknown_flags_and_bundles_and_mixed_none_are_refused() {
        let bad_flag = strings(&["allow-everything"]);
        assert_eq!(
            policy(None, Some(&bad_flag), None).unwrap_err().0,
            "csp_sandbox_flags"
        );
        for bundles in [&["cdn"][..], &["none", "unpkg"], &["any", "none"]] {
            let bundles = strings(bundles);
            assert_eq!(
                policy(None, None, Some(&bundles)).unwrap_err().0,
                "csp_source_bundles"
            );
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type_for("/a/b/index.HTML"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type_for("/tmp/data.json"), "application/json");
        assert_eq!(content_type_for("/tmp/.bashrc"), "application/octet-stream");
        assert_eq!(content_type_for("/tmp/noext"), "application/octet-stream");
        assert_eq!(
            content_type_for("/tmp/x.unknown"),
            "application/octet-stream"
        );
    }
}
