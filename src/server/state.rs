//! Shared server state handed to every handler.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::activity::Activity;
use super::agent_websocket::DialledAhead;
use super::default_snapshot::{DefaultBuilds, DefaultSource};
use super::locks::SandboxLocks;
use super::service::Services;
use super::store::Store;
use super::ttl::TtlClock;
use super::warm_pool::WarmPool;
use crate::paths;
use crate::runtime::Runtime;

/// Where the server keeps its files, all under one state directory.
#[derive(Debug, Clone)]
pub struct StateDirs {
    pub root: PathBuf,
}

impl StateDirs {
    pub fn database(&self) -> PathBuf {
        self.root.join("state.db")
    }
    /// The egress proxy's per-sandbox decision logs.
    pub fn egress_logs(&self) -> PathBuf {
        self.root.join("egress")
    }
    /// The key secret values are sealed with, apart from the database.
    pub fn secrets_key(&self) -> PathBuf {
        self.root.join("secrets-key")
    }
    /// The key service and download links are signed with.
    pub fn service_key(&self) -> PathBuf {
        self.root.join("service-key")
    }
    pub fn api_key(&self) -> PathBuf {
        paths::api_key_file(&self.root)
    }
    pub fn server_info(&self) -> PathBuf {
        paths::server_info_file(&self.root)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("server.lock")
    }
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub fn scratch(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn runtime(&self) -> PathBuf {
        self.root.join("runtime")
    }
    pub fn snapshot_image(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id).join("rootfs.ext4")
    }
    pub fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id)
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// What this machine can give sandboxes; requests are validated against it.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    pub mem_bytes: i64,
}

impl HostLimits {
    pub fn detect() -> HostLimits {
        // SAFETY: sysconf has no preconditions.
        let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        HostLimits {
            mem_bytes: (pages.max(0) as i64) * (page.max(0) as i64),
        }
    }
}

/// Server settings the features below the HTTP layer need.
#[derive(Debug, Clone)]
pub struct Features {
    /// What `system/default` is built from when a create names no snapshot.
    pub default_source: DefaultSource,
    /// How the idle reaper counts TTLs (60 s per minute in production; tests shrink the
    /// unit so a 60 s TTL passes in a second).
    pub ttl: TtlClock,
    /// How many warm sandboxes to keep for the latest kind of create (0: none).
    pub warm_pool: usize,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub runtime: Runtime,
    pub dirs: StateDirs,
    /// Base of every `dataplane_url`: `http://HOST:PORT` of this server.
    pub public_url: String,
    pub host: HostLimits,
    /// Data-plane activity, for idle stops.
    pub activity: Activity,
    pub features: Features,
    /// The default snapshot's build in flight, if any.
    pub default_builds: DefaultBuilds,
    /// One lock per sandbox so runtime operations on it never interleave.
    pub locks: SandboxLocks,
    /// Set once the server begins to stop: bridged WebSockets close with 1001 Going Away.
    /// Each open bridge holds a receiver, so the server can wait for them to have said so.
    pub going_away: tokio::sync::watch::Sender<bool>,
    /// Service URLs and download links: signing key, origins and their listeners.
    pub services: Services,
    /// The egress proxy every sandbox's outgoing connections go through.
    pub egress: crate::proxy::Egress,
    /// Seals and opens the values of workspace secrets.
    pub secrets: Arc<super::secrets::Sealer>,
    /// The egress CA sandboxes trust (its key never leaves the state directory).
    pub ca: Arc<crate::proxy::ca::Ca>,
    /// Sandboxes started ahead of time, for creates to adopt.
    pub warm: WarmPool,
    /// Agent connections opened ahead of time, for the next exec of a sandbox.
    pub dialled_ahead: DialledAhead,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    // Each argument is one independent part made by `startup`; a builder would only
    // restate them.
    #[expect(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        runtime: Runtime,
        dirs: StateDirs,
        public_url: String,
        host: HostLimits,
        features: Features,
        services: Services,
        egress: crate::proxy::Egress,
        secrets: super::secrets::Sealer,
        ca: Arc<crate::proxy::ca::Ca>,
    ) -> Self {
        AppState(Arc::new(Inner {
            store,
            warm: WarmPool::new(features.warm_pool, runtime.clone()),
            dialled_ahead: DialledAhead::new(runtime.clone()),
            runtime,
            dirs,
            public_url,
            host,
            activity: Activity::default(),
            features,
            default_builds: DefaultBuilds::default(),
            locks: SandboxLocks::default(),
            going_away: tokio::sync::watch::Sender::new(false),
            services,
            egress,
            secrets: Arc::new(secrets),
            ca,
        }))
    }

    pub fn dataplane_url(&self, sandbox_id: &str) -> String {
        format!("{}/dp/{}", self.public_url, sandbox_id)
    }
}

/// RFC 3339 UTC timestamp with microseconds, as the API uses.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
