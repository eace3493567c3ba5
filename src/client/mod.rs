//! The native async client of the LangSmith Sandbox API: one cheap-to-clone [`Client`] with an
//! `impl` block per resource (`sandbox.rs`, `snapshot.rs`, `exec.rs`, `files.rs`, `service.rs`).
//!
//! Control-plane requests go to `{base}/v2/sandboxes/…` with `x-api-key` (and `x-tenant-id`
//! when a workspace is configured); data-plane requests go to the sandbox's `dataplane_url`
//! with `X-Api-Key`. Nothing here assumes the local backend (except `embedded`, which finds or
//! starts one when nothing else is configured).
//!
//! Module map:
//!
//! * Where and with which key: `config` (endpoint and key resolution), `credentials` (keys
//!   kept per endpoint for ssh ProxyCommands), `embedded` (the local
//!   backend as the default), `error` (one typed error for every call).
//! * Control plane: `sandbox`, `snapshot` (one `impl Client` block each).
//! * Exec: `exec` (the [`Command`] handle and its options) over one background task per command,
//!   `exec_session` (with its `messages`), which owns the socket opened by `exec_socket`
//!   (the one dial of `/execute/ws`), reattaches from `exec_position`'s offsets, words a lost
//!   socket through `exec_loss`, relays SSH-agent frames (`exec_ssh_agent`) and feeds stdin
//!   (`exec_stdio`, `utf8_input`). `console` is an exec session with a PTY and no reattach.
//! * Files: `files` (upload, download).
//! * Plain HTTP: `fetch` (one `GET` of any URL, without the API key, for scripts).
//! * Secrets: `secrets` (workspace secrets: list, set, delete; values only ever sent).
//! * Egress: `egress` (the decisions of the local backend's egress proxy for a sandbox).
//! * Sharing: `service` (service URLs for a port, download links for a file, and the grants).
//! * Tunnels: `tunnel` (listener and stdio modes, events) over `tunnel_session` (a yamux
//!   client session on the `/tunnel` socket dialled by `exec_socket`, read and written as
//!   bytes through the shared `ws_pipe`, re-dialled lazily).

pub mod config;
#[cfg(unix)]
pub mod console;
#[cfg(unix)]
pub mod credentials;
pub mod egress;
#[cfg(target_os = "linux")]
pub mod embedded;
pub mod error;
pub mod exec;
mod exec_loss;
mod exec_position;
mod exec_session;
mod exec_socket;
mod exec_ssh_agent;
mod exec_stdio;
pub mod fetch;
pub mod files;
pub mod sandbox;
pub mod secrets;
pub mod service;
pub mod snapshot;
pub mod tunnel;
mod tunnel_session;
mod utf8_input;

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use config::{ConfigInputs, Endpoint, Resolved};
pub use error::ClientError;
pub use exec::{Command, ExecEvent, ExecOptions, ExecOutput, Killer, Starting, text_of};
pub use exec_ssh_agent::AgentChannels;
pub use tunnel::{Tunnel, TunnelEvent, TunnelEvents};

/// Default per-request timeout of control-plane calls (the LangSmith CLI's).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Characters left as-is in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode one URL path segment (a sandbox name, a snapshot id).
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Install the process-wide rustls crypto provider once (reqwest and tungstenite both use it).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A handle on one API endpoint. Clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// For `http://` URLs (the local backend): made without trust roots.
    plain: reqwest::Client,
    /// For `https://` URLs, made on first use: it loads the system's trust roots.
    tls: OnceLock<reqwest::Client>,
    endpoint: Endpoint,
}

impl Inner {
    fn new(plain: reqwest::Client, endpoint: Endpoint) -> Inner {
        Inner {
            plain,
            tls: OnceLock::new(),
            endpoint,
        }
    }
}

/// Whether a client loads the system's trust roots.
#[derive(Clone, Copy)]
enum Roots {
    /// None: for plain HTTP. Loading them reads and parses every certificate under
    /// `/etc/ssl/certs`, which was most of a short CLI command's time against a local server.
    Skip,
    System,
}

fn http_client(roots: Roots) -> Result<reqwest::Client, ClientError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("langsmith/", env!("CARGO_PKG_VERSION")))
        // Never follow redirects: reqwest would carry `x-api-key` to whatever host a
        // redirect names, and the API never redirects (a 3xx is reported as an error).
        .redirect(reqwest::redirect::Policy::none());
    if let Roots::Skip = roots {
        builder = builder.tls_certs_only([]);
    }
    builder.build().map_err(ClientError::from)
}

impl Client {
    /// A client for an explicit endpoint.
    pub fn new(endpoint: Endpoint) -> Result<Self, ClientError> {
        Ok(Client {
            inner: Arc::new(Inner::new(http_client(Roots::Skip)?, endpoint)),
        })
    }

    /// Resolve flags and environment; with nothing configured, use (and start if needed) the
    /// local backend, saying so on stderr.
    pub async fn connect(inputs: &ConfigInputs) -> Result<Self, ClientError> {
        Self::connect_saying(inputs, true).await
    }

    /// [`Self::connect`] without the line about the local backend (for output that must stay
    /// clean, like an ssh `ProxyCommand`'s).
    pub async fn connect_silently(inputs: &ConfigInputs) -> Result<Self, ClientError> {
        Self::connect_saying(inputs, false).await
    }

    async fn connect_saying(inputs: &ConfigInputs, say_so: bool) -> Result<Self, ClientError> {
        match inputs.resolve()? {
            Resolved::Remote(endpoint) => Self::new(endpoint),
            #[cfg(target_os = "linux")]
            Resolved::Local { workspace_id } => {
                let http = http_client(Roots::Skip)?;
                let local = embedded::ensure_local_backend(&http, say_so).await?;
                Ok(Self::local(http, local, workspace_id))
            }
            #[cfg(not(target_os = "linux"))]
            Resolved::Local { .. } => {
                let _ = say_so;
                Err(ClientError::Config("LANGSMITH_API_KEY not set".into()))
            }
        }
    }

    /// Like [`Self::connect`], but never starts the local backend and prints nothing: `None`
    /// when nothing is configured and no local backend is running.
    pub async fn connect_if_running(inputs: &ConfigInputs) -> Result<Option<Self>, ClientError> {
        match inputs.resolve()? {
            Resolved::Remote(endpoint) => Self::new(endpoint).map(Some),
            #[cfg(target_os = "linux")]
            Resolved::Local { workspace_id } => {
                let http = http_client(Roots::Skip)?;
                let running = embedded::running_local_backend(&http).await?;
                Ok(running.map(|local| Self::local(http, local, workspace_id)))
            }
            #[cfg(not(target_os = "linux"))]
            Resolved::Local { .. } => Ok(None),
        }
    }

    #[cfg(target_os = "linux")]
    fn local(
        http: reqwest::Client,
        local: embedded::LocalBackend,
        workspace_id: Option<String>,
    ) -> Self {
        let endpoint = Endpoint {
            base: config::normalize_base(&local.url),
            api_key: local.api_key,
            workspace_id,
        };
        Client {
            inner: Arc::new(Inner::new(http, endpoint)),
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The HTTP client for `url`: trust roots are loaded only once an `https://` URL needs
    /// them.
    pub(crate) fn http_for(&self, url: &str) -> Result<&reqwest::Client, ClientError> {
        if url.starts_with("http://") {
            return Ok(&self.inner.plain);
        }
        if let Some(tls) = self.inner.tls.get() {
            return Ok(tls);
        }
        let made = http_client(Roots::System)?;
        Ok(self.inner.tls.get_or_init(|| made))
    }

    pub(crate) fn api_key(&self) -> &str {
        &self.inner.endpoint.api_key
    }

    /// A request for `path` in `area` of the API (`/v2/sandboxes`, `/workspaces/current`).
    fn request(
        &self,
        method: Method,
        area: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let url = format!("{}{area}{path}", self.inner.endpoint.base);
        let mut req = self
            .http_for(&url)?
            .request(method, url)
            .header("x-api-key", &self.inner.endpoint.api_key)
            .header("Content-Type", "application/json")
            .timeout(timeout);
        if let Some(ws) = &self.inner.endpoint.workspace_id {
            req = req.header("x-tenant-id", ws);
        }
        Ok(req)
    }

    /// Send a control-plane request (`path` relative to `/v2/sandboxes`) and return the body
    /// of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<bytes::Bytes, ClientError> {
        self.send_in(SANDBOXES, method, path, body, timeout).await
    }

    /// Send a request for `path` in `area` and return the body of a 2xx answer.
    async fn send_in(
        &self,
        area: &str,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<bytes::Bytes, ClientError> {
        let mut req = self.request(method, area, path, timeout)?;
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.as_u16() >= 400 {
            return Err(ClientError::from_response(
                status.as_u16(),
                &String::from_utf8_lossy(&bytes),
            ));
        }
        Ok(bytes)
    }

    /// Send a control-plane request and decode its JSON answer.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        self.json_in(SANDBOXES, method, path, body, timeout).await
    }

    /// Send a request for `path` in `area` and decode its JSON answer.
    async fn json_in<T: DeserializeOwned>(
        &self,
        area: &str,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let bytes = self.send_in(area, method, path, body, timeout).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("decoding response of {path}: {e}")))
    }
}

/// The sandbox API's area: every control-plane path is below it.
const SANDBOXES: &str = "/v2/sandboxes";

/// No request body.
pub(crate) const NO_BODY: Option<&()> = None;

/// A whole-second duration in Go's `time.Duration` text: `0s`, `30s`, `2m0s`, `1h2m5s`.
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(super::segment("my-vm_1.x~"), "my-vm_1.x~");
        assert_eq!(super::segment("a b/c?"), "a%20b%2Fc%3F");
    }

    #[test]
    fn go_durations() {
        let cases = [
            (0, "0s"),
            (30, "30s"),
            (120, "2m0s"),
            (300, "5m0s"),
            (3600, "1h0m0s"),
            (3725, "1h2m5s"),
        ];
        for (secs, text) in cases {
            assert_eq!(super::go_duration(secs), text);
        }
    }
}
