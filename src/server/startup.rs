//! Bringing a server up: state directory, single-instance lock, API key, database, runtime;
//! and announcing it (`server.json`, the ready line) once it can serve.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::Arc;

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};

use super::ServerConfig;
use super::auth::ApiKey;
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
        None => load_or_create_key(&dirs)?,
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

/// The generated key lives in `STATE/api-key`, readable by its owner only.
fn load_or_create_key(dirs: &StateDirs) -> anyhow::Result<String> {
    let path = dirs.api_key();
    if let Ok(existing) = fs::read_to_string(&path) {
        let key = existing.trim().to_string();
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let mut bytes = [0u8; 24];
    getrandom_fill(&mut bytes)?;
    let key = format!("lsv2_local_{}", hex::encode(bytes));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(key.as_bytes())?;
    f.sync_all()?;
    Ok(key)
}

fn getrandom_fill(buf: &mut [u8]) -> anyhow::Result<()> {
    let mut f = File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut f, buf).context("reading /dev/urandom")?;
    if buf.iter().all(|b| *b == 0) {
        bail!("/dev/urandom returned only zeros");
    }
    Ok(())
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
