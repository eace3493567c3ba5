//! The control-plane endpoints: `POST …/boxes/{name}/service-url`, `GET` and `DELETE
//! …/boxes/{name}/service-urls`, and `POST …/boxes/{name}/download-url`. Input is checked
//! here (422 naming the field) before anything is signed or stored.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::tokens::{Claims, Grant};
use super::{Origin, Target, csp, grants};
use crate::api::service::{
    DownloadUrl, DownloadUrlRequest, MAX_EMBED_ORIGINS, SERVICE_TOKEN_DEFAULT_SECS,
    SERVICE_TOKEN_MAX_SECS, ServiceGrantList, ServiceUrl, ServiceUrlRequest, access,
};
use crate::server::boxes::find;
use crate::server::error::ApiError;
use crate::server::json::ApiJson;
use crate::server::state::AppState;

/// `POST …/boxes/{name}/service-url`.
pub async fn service_url(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ServiceUrlRequest>,
) -> Result<Json<ServiceUrl>, ApiError> {
    let sb = find(&state, &name).await?;
    let port = valid_port(req.port)?;
    let embed_origins = valid_embed_origins(req.embed_origins.unwrap_or_default())?;
    let base = origin_url(&state, &sb.id, Target::Port(port)).await?;
    match req.access.as_deref() {
        Some(login @ (access::RESTRICTED | access::WORKSPACE)) => {
            if req.expires_in_seconds.is_some() {
                return Err(ApiError::validation(
                    "expires_in_seconds",
                    "a login grant does not expire; omit expires_in_seconds with access",
                ));
            }
            grants::grant_login(&state, &sb.id, port, login.into(), embed_origins.clone()).await?;
            Ok(Json(ServiceUrl {
                browser_url: base.clone(),
                service_url: base,
                access: Some(login.into()),
                embed_origins: Some(embed_origins),
                ..ServiceUrl::default()
            }))
        }
        None | Some(access::OFF) => {
            let ttl = req.expires_in_seconds.unwrap_or(SERVICE_TOKEN_DEFAULT_SECS);
            if !(1..=SERVICE_TOKEN_MAX_SECS).contains(&ttl) {
                return Err(ApiError::validation(
                    "expires_in_seconds",
                    format!(
                        "expires_in_seconds must be between 1 and {SERVICE_TOKEN_MAX_SECS} (got {ttl})"
                    ),
                ));
            }
            let expires = chrono::Utc::now() + chrono::Duration::seconds(ttl);
            let expires_at = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            grants::record_token(
                &state,
                &sb.id,
                port,
                expires_at.clone(),
                embed_origins.clone(),
                req.access.is_some(),
            )
            .await?;
            let token = state.services.key.sign(&Claims {
                grant: Grant::Svc {
                    sid: sb.id.clone(),
                    port,
                    eo: embed_origins.clone(),
                },
                exp: Some(expires.timestamp()),
            });
            Ok(Json(ServiceUrl {
                browser_url: format!("{base}_svc/auth?token={token}"),
                embed_url: Some(format!("{base}_svc/embed#token={token}")),
                service_url: base,
                token: Some(token),
                expires_at: Some(expires_at),
                embed_origins: (!embed_origins.is_empty()).then_some(embed_origins),
                access: None,
            }))
        }
        Some(other) => Err(ApiError::validation(
            "access",
            format!("access must be \"restricted\", \"workspace\" or \"off\" (got {other:?})"),
        )),
    }
}

/// `GET …/boxes/{name}/service-urls`: one page holds every grant.
pub async fn service_urls(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceGrantList>, ApiError> {
    let sb = find(&state, &name).await?;
    Ok(Json(ServiceGrantList {
        items: grants::listed(&state, &sb.id).await?,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
pub struct UnshareQuery {
    port: Option<i64>,
}

/// `DELETE …/boxes/{name}/service-urls[?port=N]`: login access ends at once; tokens already
/// handed out stay valid until they expire.
pub async fn unshare(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<UnshareQuery>,
) -> Result<StatusCode, ApiError> {
    let sb = find(&state, &name).await?;
    let port = q.port.map(valid_port).transpose()?;
    state.store.delete_grants(&sb.id, port).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/boxes/{name}/download-url`.
pub async fn download_url(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DownloadUrlRequest>,
) -> Result<Json<DownloadUrl>, ApiError> {
    let sb = find(&state, &name).await?;
    if req.path.is_empty() {
        return Err(ApiError::validation("path", "path is required"));
    }
    let exp = match req.expires_in_seconds {
        None => None,
        Some(secs) if (1..=MAX_DOWNLOAD_SECS).contains(&secs) => {
            Some(chrono::Utc::now() + chrono::Duration::seconds(secs))
        }
        Some(secs) => {
            return Err(ApiError::validation(
                "expires_in_seconds",
                format!(
                    "expires_in_seconds must be at least 1 (got {secs}); omit it for a link that never expires"
                ),
            ));
        }
    };
    if let Some(ct) = &req.content_type
        && (ct.is_empty() || http::HeaderValue::from_str(ct).is_err() || ct.contains(['\r', '\n']))
    {
        return Err(ApiError::validation(
            "content_type",
            "content_type must be a non-empty header value",
        ));
    }
    let disposition = match req.content_disposition.as_deref().unwrap_or("attachment") {
        kind @ ("attachment" | "inline") => disposition(kind, &req.path),
        other => {
            return Err(ApiError::validation(
                "content_disposition",
                format!("content_disposition must be \"attachment\" or \"inline\" (got {other:?})"),
            ));
        }
    };
    let policy = csp::policy(
        req.csp_sandbox,
        req.csp_sandbox_flags.as_deref(),
        req.csp_source_bundles.as_deref(),
    )
    .map_err(|(field, message)| ApiError::validation(field, message))?;
    let base = origin_url(&state, &sb.id, Target::Download).await?;
    let token = state.services.key.sign(&Claims {
        grant: Grant::Dl {
            sid: sb.id,
            path: req.path,
            ct: req.content_type,
            cd: disposition,
            csp: policy.unwrap_or_default(),
        },
        exp: exp.map(|t| t.timestamp()),
    });
    Ok(Json(DownloadUrl {
        download_url: format!("{base}{token}"),
        token,
        expires_at: exp.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }))
}

/// The base URL of a sandbox's port or downloads, ending in `/`.
async fn origin_url(
    state: &AppState,
    sandbox_id: &str,
    target: Target,
) -> Result<String, ApiError> {
    let origin = Origin {
        sandbox_id: sandbox_id.to_string(),
        target,
    };
    state.services.base_url(state, &origin).await
}

/// Longest download link lifetime asked for in seconds (about a century; beyond that, omit
/// the field for a link that never expires).
const MAX_DOWNLOAD_SECS: i64 = 100 * 365 * 86_400;

fn valid_port(port: i64) -> Result<u16, ApiError> {
    u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(|| {
        ApiError::validation(
            "port",
            format!("port must be between 1 and 65535 (got {port})"),
        )
    })
}

/// At most [`MAX_EMBED_ORIGINS`] origins, each `https://host[:port]` (`http` only for
/// localhost and loopback addresses), normalised to lower case without a trailing slash.
fn valid_embed_origins(origins: Vec<String>) -> Result<Vec<String>, ApiError> {
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
fn disposition(kind: &str, path: &str) -> String {
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
