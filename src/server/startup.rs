//! Bringing a server up: state directory, single-instance lock, API key, database, runtime;
//! and announcing it (`server.json`, the ready line) once it can serve.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

use super::ServerConfig;
use super::auth::ApiKey;
use super::key_file;
use super::state::{AppState, Features, HostLimits, StateDirs};
use super::store::Store;
use super::ttl::TtlClock;
use crate::runtime::{Runtime, RuntimeConfig};

pub struct Started {
    pub state: AppState,
    pub key: ApiKey,
    /// Held for the server's life: a second server on the same state directory is refused.
    _lock: Flock<File>,
}

pub async fn start(
    listener: &tokio::net::TcpListener,
    config: &ServerConfig,
) -> anyhow::Result<Started> {
    let dirs = StateDirs {
        root: config.state_dir.clone(),
    };
    fs::create_dir_all(dirs.root())
        .with_context(|| format!("creating the state directory {}", dirs.root().display()))?;
    fs::set_permissions(dirs.root(), fs::Permissions::from_mode(0o700))?;
    let lock_file = File::create(dirs.lock_file())?;
    let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        anyhow::anyhow!(
            "another langsmith server is already using {}; stop it or pass a different --state-dir",
            dirs.root().display()
        )
    })?;
    for dir in [dirs.blobs(), dirs.scratch(), dirs.runtime()] {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Scratch space of builds interrupted by a previous crash.
    for entry in fs::read_dir(dirs.scratch())?.flatten() {
        let _ = fs::remove_dir_all(entry.path());
    }
    let key = match &config.api_key {
        Some(k) => k.clone(),
        None => key_file::load_or_create(&dirs.api_key())?,
    };
    let ttl = TtlClock::new(config.ttl_unit_seconds);
    let store = Store::open(&dirs.database(), ttl).context("opening the state database")?;
    let runtime = Runtime::new(RuntimeConfig {
        root: dirs.runtime(),
        runc: config.runtime.clone(),
    })
    .context("preparing the sandbox runtime")?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let public_url = format!("http://{host}:{}", addr.port());
    let features = Features {
        default_source: config.default_source.clone(),
        ttl,
    };
    let state = AppState::new(
        store,
        runtime,
        dirs,
        public_url,
        HostLimits::detect(),
        features,
    );
    Ok(Started {
        state,
        key: ApiKey(Arc::new(key)),
        _lock: lock,
    })
}

/// Tell the world the server is up: `server.json` for local clients, then the ready line.
pub fn announce(started: &Started) -> anyhow::Result<()> {
    let url = &started.state.public_url;
    let info = serde_json::json!({"url": url, "pid": std::process::id()});
    let path = started.state.dirs.server_info();
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec(&info)?)?;
    fs::rename(&tmp, &path)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::json!({"event": "ready", "url": url}))?;
    out.flush()?;
    Ok(())
}

pub fn retire(started: &Started) {
    let _ = fs::remove_file(started.state.dirs.server_info());
}
