//! Where the client talks to and with which key: `--api-url` > `LANGSMITH_ENDPOINT`,
//! `--api-key` > `LANGSMITH_API_KEY` (empty strings count as unset) > the key kept for that
//! endpoint in the CLI's credentials file (only when an endpoint is named: with none, the local
//! backend is used as before), base-URL normalisation and the decision to fall back to the
//! embedded local backend.

#[cfg(unix)]
pub use super::credentials::Credential;
use super::error::ClientError;

/// Without unix file modes there is no private credentials file to read.
#[cfg(not(unix))]
#[derive(Debug, Clone)]
pub struct Credential {
    pub api_key: String,
    pub workspace_id: Option<String>,
}

/// The credentials file's entry for `base`.
fn kept_credential(base: &str) -> Result<Option<Credential>, String> {
    #[cfg(unix)]
    if let Some(path) = crate::paths::credentials_file() {
        return super::credentials::lookup(&path, base);
    }
    let _ = base;
    Ok(None)
}

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
        let (key, workspace_id) = Self::with_kept_key(&url, key, workspace_id, kept_credential)?;
        Self::decide(url, key, workspace_id)
    }

    /// The key kept for `url` when none was given (its workspace too, unless one was given).
    fn with_kept_key(
        url: &Option<String>,
        key: Option<String>,
        workspace_id: Option<String>,
        lookup: impl FnOnce(&str) -> Result<Option<Credential>, String>,
    ) -> Result<(Option<String>, Option<String>), ClientError> {
        let (Some(url), None) = (url, &key) else {
            return Ok((key, workspace_id));
        };
        match lookup(&normalize_base(url)).map_err(ClientError::Config)? {
            Some(kept) => Ok((Some(kept.api_key), workspace_id.or(kept.workspace_id))),
            None => Ok((None, workspace_id)),
        }
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

    fn kept(key: &str, ws: Option<&str>) -> Result<Option<Credential>, String> {
        Ok(Some(Credential {
            api_key: key.into(),
            workspace_id: ws.map(String::from),
        }))
    }

    #[test]
    fn a_named_endpoint_without_a_key_takes_the_kept_one() {
        let url = Some("https://host/api/v1/".to_string());
        let got = ConfigInputs::with_kept_key(&url, None, None, |base| {
            assert_eq!(base, "https://host");
            kept("kept", Some("w"))
        });
        assert_eq!(got.unwrap(), (Some("kept".into()), Some("w".into())));
        // A given workspace wins over the kept one.
        let got = ConfigInputs::with_kept_key(&url, None, Some("env".into()), |_| {
            kept("kept", Some("w"))
        });
        assert_eq!(got.unwrap(), (Some("kept".into()), Some("env".into())));
        // Nothing kept: the GA error follows from `decide`.
        let got = ConfigInputs::with_kept_key(&url, None, None, |_| Ok(None)).unwrap();
        assert_eq!(got, (None, None));
        // A file that cannot be trusted is an error, not a silent fallback.
        let err = ConfigInputs::with_kept_key(&url, None, None, |_| Err("refused".into()));
        assert_eq!(err.unwrap_err().to_string(), "refused");
    }

    #[test]
    fn a_given_key_or_no_endpoint_never_reads_the_file() {
        let never = |_: &str| -> Result<Option<Credential>, String> { panic!("read") };
        let url = Some("https://host".to_string());
        let got = ConfigInputs::with_kept_key(&url, Some("flag".into()), None, never).unwrap();
        assert_eq!(got, (Some("flag".into()), None));
        let got = ConfigInputs::with_kept_key(&None, None, None, never).unwrap();
        assert_eq!(got, (None, None));
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
