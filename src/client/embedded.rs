//! The embedded default: with no endpoint and no key configured, find the local
//! backend through its state directory and start it in the background when it is not running.
//!
//! Contract with `langsmith server`: when ready it writes `STATE/server.json` =
//! `{"url": "http://127.0.0.1:PORT", "pid": N}` and keeps its key in `STATE/api-key`. The server
//! is healthy when `GET {url}/healthz` with the key as `X-Api-Key` answers 2xx.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::ClientError;
use crate::paths;

/// Address a server started by the CLI listens on.
pub const LOCAL_LISTEN: &str = "127.0.0.1:7433";
/// How long to wait for a freshly started server to become healthy.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The running local backend.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    pub url: String,
    pub api_key: String,
    pub state_dir: PathBuf,
    /// Whether this process started it.
    pub started: bool,
}

#[derive(Debug, Deserialize)]
struct ServerInfo {
    url: String,
}

/// The state directory the local backend uses ([`paths::state_dir`]).
pub fn state_dir() -> Result<PathBuf, ClientError> {
    paths::state_dir().ok_or_else(|| {
        ClientError::Config(
            "no data directory for the local backend; set LANGSMITH_STATE_DIR or LANGSMITH_API_KEY"
                .into(),
        )
    })
}

/// Read `server.json` and `api-key`; `None` when either is missing or unreadable.
fn read_running(state: &Path) -> Option<(String, String)> {
    let info: ServerInfo =
        serde_json::from_slice(&std::fs::read(paths::server_info_file(state)).ok()?).ok()?;
    let key = std::fs::read_to_string(paths::api_key_file(state)).ok()?;
    Some((
        info.url.trim_end_matches('/').to_string(),
        key.trim().to_string(),
    ))
}

async fn healthy(http: &reqwest::Client, url: &str, key: &str) -> bool {
    let probe = http
        .get(format!("{url}/healthz"))
        .header("X-Api-Key", key)
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    matches!(probe, Ok(r) if r.status().is_success())
}

/// Find the local backend, starting it when needed, and (when `say_so`) say so in one line on
/// stderr. Silence is for `sandbox tunnel --stdio`: ssh shows a ProxyCommand's stderr.
pub async fn ensure_local_backend(
    http: &reqwest::Client,
    say_so: bool,
) -> Result<LocalBackend, ClientError> {
    let state = state_dir()?;
    if let Some(backend) = running_backend(http, &state, false).await {
        if say_so {
            announce(&backend);
        }
        return Ok(backend);
    }
    let mut child = start_server(&state)?;
    let deadline = Instant::now() + START_DEADLINE;
    let mut delay = Duration::from_millis(50);
    while Instant::now() < deadline {
        if let Some(backend) = running_backend(http, &state, true).await {
            if say_so {
                announce(&backend);
            }
            return Ok(backend);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ClientError::Config(format!(
                "the local sandbox backend exited ({status}) before it was ready; see {}",
                paths::server_log_file(&state).display()
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
    Err(ClientError::Config(format!(
        "the local sandbox backend did not become ready within {}s; see {} (or set LANGSMITH_ENDPOINT and LANGSMITH_API_KEY to use LangSmith)",
        START_DEADLINE.as_secs(),
        paths::server_log_file(&state).display()
    )))
}

/// The local backend if one is running already: never starts one and prints nothing, for
/// callers that must not change the machine or the screen (completion at a prompt).
pub async fn running_local_backend(
    http: &reqwest::Client,
) -> Result<Option<LocalBackend>, ClientError> {
    Ok(running_backend(http, &state_dir()?, false).await)
}

/// The backend recorded in `state`, if it answers its health check.
async fn running_backend(
    http: &reqwest::Client,
    state: &Path,
    started: bool,
) -> Option<LocalBackend> {
    let (url, api_key) = read_running(state)?;
    if !healthy(http, &url, &api_key).await {
        return None;
    }
    let backend = LocalBackend {
        url,
        api_key,
        state_dir: state.to_path_buf(),
        started,
    };
    Some(backend)
}

fn announce(backend: &LocalBackend) {
    let started = if backend.started { "started it; " } else { "" };
    eprintln!(
        "Using the local sandbox backend at {} ({started}state in {})",
        backend.url,
        backend.state_dir.display()
    );
}

/// Start `<this exe> server` detached: its own session, stdin null, output appended to
/// `STATE/server.log`. The server keeps running after this process exits.
fn start_server(state: &Path) -> Result<std::process::Child, ClientError> {
    let fail = |what: &str, e: std::io::Error| {
        ClientError::Config(format!("starting the local sandbox backend: {what}: {e}"))
    };
    std::fs::create_dir_all(state)
        .map_err(|e| fail(&format!("creating {}", state.display()), e))?;
    // A stale server.json would be read as "ready" before the new server rewrites it.
    let _ = std::fs::remove_file(paths::server_info_file(state));
    let log_path = paths::server_log_file(state);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| fail(&format!("opening {}", log_path.display()), e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| fail("duplicating log handle", e))?;
    let exe = std::env::current_exe().map_err(|e| fail("locating this executable", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("server")
        .arg("--state-dir")
        .arg(state)
        .arg("--listen")
        .arg(LOCAL_LISTEN)
        // The server must use the key it keeps in STATE/api-key, which is the one we read.
        .env_remove("LANGSMITH_SERVER_API_KEY")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    cmd.spawn().map_err(|e| fail("spawning the server", e))
}
