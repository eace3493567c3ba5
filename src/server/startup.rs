//! Bringing a server up: state directory, single-instance lock, API key, database, runtime;
//! and announcing it (`server.json`, the ready line) once it can serve.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

use super::ServerConfig;
use super::auth::ApiKey;
use super::key_file;
use super::service::{Scheme, Services};
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

/// How long a start waits for the state directory's lock and its port. A server that was
/// just killed lets go of them only once the last process sharing its descriptor table is
/// gone: the holder of a user namespace it was making (see `runtime::idmapped`), which its
/// death signal ends a moment after the server.
const PREDECESSOR_WAIT: Duration = Duration::from_secs(2);

/// A listener on `address`, once a just-killed server on it is gone (see
/// [`PREDECESSOR_WAIT`]).
pub async fn bind(address: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + PREDECESSOR_WAIT;
    loop {
        match tokio::net::TcpListener::bind(address).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            bound => return bound,
        }
    }
}

/// The state directory's lock: a second server on the same directory is refused.
async fn lock_state_dir(mut file: File, dirs: &StateDirs) -> anyhow::Result<Flock<File>> {
    let deadline = tokio::time::Instant::now() + PREDECESSOR_WAIT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((again, nix::errno::Errno::EWOULDBLOCK))
                if tokio::time::Instant::now() < deadline =>
            {
                file = again;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => anyhow::bail!(
                "another langsmith server is already using {}; stop it or pass a different --state-dir",
                dirs.root().display()
            ),
        }
    }
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
    super::host_facts::hide_state_dir(dirs.root());
    let lock = lock_state_dir(File::create(dirs.lock_file())?, &dirs).await?;
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
    let public_url = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{host}:{}", addr.port()),
    };
    let scheme = match &config.service_domain {
        Some(domain) => domain_scheme(domain, &public_url)?,
        None => Scheme::Loopback {
            preferred_port: addr.port(),
        },
    };
    let key = ApiKey(Arc::new(key));
    let services = Services::new(&dirs.service_key(), scheme, key.clone())
        .context("loading the service link key")?;
    let features = Features {
        default_source: config.default_source.clone(),
        ttl,
        warm_pool: config.warm_pool,
    };
    let egress_log = crate::proxy::egress_log::EgressLog::open(&dirs.egress_logs())
        .context("opening the egress log directory")?;
    let ca = Arc::new(
        crate::proxy::ca::Ca::load_or_create(dirs.root()).context("loading the egress CA")?,
    );
    let tls = crate::proxy::tls::TlsConfigs::new(ca.clone(), &config.upstream_cas)?;
    let egress = crate::proxy::Egress::start(config.upstream.clone(), egress_log, tls);
    let secrets = super::secrets::open_sealer(&store, &dirs.secrets_key()).await?;
    let state = AppState::new(
        store,
        runtime,
        dirs,
        public_url,
        HostLimits::detect(),
        features,
        services,
        egress,
        secrets,
        ca,
    );
    Ok(Started {
        state,
        key,
        _lock: lock,
    })
}

/// Host routing under `domain`, with the scheme and port of `public_url` (the address
/// clients reach this server by), e.g. `https://sandboxes.example.com` → `https`, no port.
fn domain_scheme(domain: &str, public_url: &str) -> anyhow::Result<Scheme> {
    let domain = domain.trim().trim_matches('.').to_ascii_lowercase();
    if domain.is_empty()
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
    {
        anyhow::bail!(
            "--service-domain must be a DNS name such as svc.example.com (got {domain:?})"
        );
    }
    let (scheme, rest) = public_url
        .split_once("://")
        .context("--public-url must start with http:// or https://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let port_suffix = match authority.rsplit_once(':') {
        Some((_, port)) if port.bytes().all(|b| b.is_ascii_digit()) => format!(":{port}"),
        _ => String::new(),
    };
    Ok(Scheme::Domain {
        domain,
        scheme: scheme.to_string(),
        port_suffix,
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
