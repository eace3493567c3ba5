//! Where the client talks to and with which key: `--api-url` > `LANGSMITH_ENDPOINT`,
//! `--api-key` > `LANGSMITH_API_KEY` (empty strings count as unset), base-URL normalisation
//! and the decision to fall back to the embedded local backend.

use super::error::ClientError;

/// The LangSmith endpoint used when a key is configured but no endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.smith.langchain.com";

/// What the user gave on the command line (flags win over the environment).
#[derive(Debug, Clone, Default)]
pub struct ConfigInputs {
    pub api_key: Option<String>,
    pub api_url: Option<String>,
}

/// A resolved remote endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Normalised base (no trailing `/`, no `/api/v1`); requests go to `{base}/v2/sandboxes/…`.
    pub base: String,
    pub api_key: String,
    /// `LANGSMITH_WORKSPACE_ID`, sent as `x-tenant-id` on control-plane calls.
    pub workspace_id: Option<String>,
}

/// Outcome of configuration resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// An explicit endpoint and key.
    Remote(Endpoint),
    /// Nothing configured: use (and if needed start) the local backend.
    Local { workspace_id: Option<String> },
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn env(name: &str) -> Option<String> {
    non_empty(std::env::var(name).ok())
}

/// Strip a trailing `/`, then a trailing `/api/v1` (`https://host/api/v1/` → `https://host`).
pub fn normalize_base(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    trimmed
        .strip_suffix("/api/v1")
        .unwrap_or(trimmed)
        .to_string()
}

impl ConfigInputs {
    /// Resolve flags and environment. With neither endpoint nor key the local backend is chosen
    /// (Linux only); an endpoint without a key is the LangSmith CLI's error `LANGSMITH_API_KEY not set`.
    pub fn resolve(&self) -> Result<Resolved, ClientError> {
        let url = non_empty(self.api_url.clone()).or_else(|| env("LANGSMITH_ENDPOINT"));
        let key = non_empty(self.api_key.clone()).or_else(|| env("LANGSMITH_API_KEY"));
        let workspace_id = env("LANGSMITH_WORKSPACE_ID");
        Self::decide(url, key, workspace_id)
    }

    fn decide(
        url: Option<String>,
        key: Option<String>,
        workspace_id: Option<String>,
    ) -> Result<Resolved, ClientError> {
        match (url, key) {
            (None, None) if cfg!(target_os = "linux") => Ok(Resolved::Local { workspace_id }),
            (_, None) => Err(ClientError::Config("LANGSMITH_API_KEY not set".into())),
            (url, Some(api_key)) => Ok(Resolved::Remote(Endpoint {
                base: normalize_base(url.as_deref().unwrap_or(DEFAULT_ENDPOINT)),
                api_key,
                workspace_id,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_normalisation() {
        assert_eq!(normalize_base("https://host/api/v1/"), "https://host");
        assert_eq!(normalize_base("https://host/api/v1"), "https://host");
        assert_eq!(
            normalize_base("http://127.0.0.1:7433/"),
            "http://127.0.0.1:7433"
        );
        assert_eq!(normalize_base("https://host/api"), "https://host/api");
    }

    #[test]
    fn key_without_endpoint_uses_langsmith() {
        let r = ConfigInputs::decide(None, Some("k".into()), None).unwrap();
        assert_eq!(
            r,
            Resolved::Remote(Endpoint {
                base: DEFAULT_ENDPOINT.into(),
                api_key: "k".into(),
                workspace_id: None
            })
        );
    }

    #[test]
    fn endpoint_without_key_is_the_ga_error() {
        let e = ConfigInputs::decide(Some("http://x".into()), None, None).unwrap_err();
        assert_eq!(e.to_string(), "LANGSMITH_API_KEY not set");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn nothing_configured_means_local() {
        let r = ConfigInputs::decide(None, None, Some("w".into())).unwrap();
        assert_eq!(
            r,
            Resolved::Local {
                workspace_id: Some("w".into())
            }
        );
    }
}
