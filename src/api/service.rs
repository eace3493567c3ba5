//! Service URLs (HTTP to a port inside a sandbox, through the server) and download links
//! (one file, fetched without credentials): the mint requests and their answers.
//!
//! Token mode answers carry a signed token that any holder may use until `expires_at`;
//! login mode (`access: "restricted" | "workspace"`) records a durable grant instead and
//! answers no token. A download link pins sandbox, path and response headers in its token.

use serde::{Deserialize, Serialize};

/// Default lifetime of a service-URL token, seconds.
pub const SERVICE_TOKEN_DEFAULT_SECS: i64 = 600;
/// Longest lifetime a service-URL token may ask for, seconds (24 h).
pub const SERVICE_TOKEN_MAX_SECS: i64 = 86_400;
/// Most `embed_origins` one grant may list.
pub const MAX_EMBED_ORIGINS: usize = 5;
/// The request header that carries a service token.
pub const SERVICE_TOKEN_HEADER: &str = "X-Langsmith-Sandbox-Service-Token";

/// The agent route that hands the server a raw TCP connection to a port inside the sandbox
/// (`GET /_connect?port=P` with `Upgrade:` [`CONNECT_UPGRADE`]); service URLs ride on it.
pub const CONNECT_PATH: &str = "/_connect";
/// The `Upgrade` protocol name of that raw pipe.
pub const CONNECT_UPGRADE: &str = "langsmith-tcp";

/// `access` values of a service grant.
pub mod access {
    /// A signed, expiring token (the default).
    pub const TOKEN: &str = "token";
    /// Login grant for the creator (on the local backend: whoever holds the server's API key).
    pub const RESTRICTED: &str = "restricted";
    /// Login grant for the workspace (on the local backend: whoever holds the server's API key).
    pub const WORKSPACE: &str = "workspace";
    /// Request only: remove the login grant and mint a token.
    pub const OFF: &str = "off";
}

/// `POST …/boxes/{name}/service-url`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceUrlRequest {
    pub port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_origins: Option<Vec<String>>,
}

/// The answer to a service-URL mint. Token mode fills `token`, `expires_at` and `embed_url`;
/// login mode fills `access` instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceUrl {
    #[serde(default)]
    pub browser_url: String,
    #[serde(default)]
    pub service_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// RFC 3339 UTC with a `Z` suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_origins: Option<Vec<String>>,
}

/// One entry of `GET …/boxes/{name}/service-urls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceGrant {
    pub port: i64,
    pub access: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_origins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `GET …/boxes/{name}/service-urls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceGrantList {
    #[serde(default)]
    pub items: Vec<ServiceGrant>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `POST …/boxes/{name}/download-url`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownloadUrlRequest {
    pub path: String,
    /// Omitted: the link never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `attachment` (default) or `inline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `false` drops the CSP `sandbox` directive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csp_sandbox: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csp_sandbox_flags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csp_source_bundles: Option<Vec<String>>,
}

/// The answer to a download-link mint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownloadUrl {
    #[serde(default)]
    pub download_url: String,
    #[serde(default)]
    pub token: String,
    /// `null`: never expires.
    #[serde(default)]
    pub expires_at: Option<String>,
}
