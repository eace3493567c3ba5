//! The local backend: the LangSmith Sandbox API on one Linux machine.
//!
//! `run` is the `langsmith server` command; `serve` is the embeddable entry point that tests
//! drive with a listener on `127.0.0.1:0`.
//!
//! Module map:
//!
//! * Coming up: `startup` (state directory, single-instance lock, API key, database,
//!   runtime), `open_files` (the open file limit raised to the hard one, since each
//!   sandbox holds a few descriptors), `key_file` (the generated API key's file),
//!   `recovery` (records made true again after a crash), `state` (what every handler
//!   shares).
//! * The HTTP surface: `routes` (the table of routes), `auth` (the API key on every
//!   route), `json` (body extraction whose rejections are API errors), `validate` and
//!   `resources` (422s naming the field; resource defaults and limits), `error` (the one
//!   place errors become statuses and bodies), `host_facts` (no host path or process id in
//!   what a client reads), `tcp_tuning` (Nagle off and keepalive on every
//!   accepted connection).
//! * Control plane: `boxes` (sandbox endpoints), `snapshots` + `builder` (snapshot
//!   endpoints and background builds), `capture` (a running sandbox → a snapshot),
//!   `registries` + `registry_store` (private registry credentials), `default_snapshot`
//!   (`system/default`, built on first use), `secrets` (workspace secrets, sealed at rest
//!   under a key file of their own).
//! * Lifecycle: `lifecycle` (boot, stop and destroy as tasks that outlive a request),
//!   `warm_pool` (sandboxes started ahead of time for the latest kind of create, adopted
//!   by the next create of that kind),
//!   `disk_space` (new work refused while the state disk is nearly full),
//!   `container_exit` (a container that ended on its own recorded `failed`), `locks` (one
//!   lifecycle lock per sandbox), `reaper` + `activity` + `ttl` (idle stop,
//!   delete after stop, and the deadlines they keep), `memory` (freed memory handed back to
//!   the system).
//! * Durable state: `store` (snapshots, sandboxes, registries and secrets in SQLite, on
//!   threads of their own); `key_file` (the API key and the 32-byte keys beside it).
//! * Egress: `egress_log` (the proxy's decisions per sandbox); the proxy itself is
//!   [`crate::proxy`], attached to each sandbox by `lifecycle` once it runs.
//! * Data plane: `dataplane` (`/dp/{id}/…` proxied to the sandbox's agent; WebSockets
//!   bridged), `agent_websocket` (a bridge's agent side, and the next exec's dialled ahead).
//! * Service URLs and download links: `service` (signed links, an origin per service,
//!   HTTP and WebSockets to a port inside the sandbox, single files with pinned headers).
//! * `fuzz`: the entry points of the fuzz targets, one per parser of untrusted input.
//! * [`images`]: image references → pulled layers → ext4 snapshot images.

mod activity;
mod agent_websocket;
mod auth;
mod boxes;
mod builder;
mod capture;
mod container_exit;
mod dataplane;
mod default_snapshot;
mod disk_space;
mod egress_log;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod host_facts;
pub mod images;
mod json;
mod key_file;
mod lifecycle;
mod locks;
mod memory;
mod open_files;
mod proxy_config;
mod reaper;
mod recovery;
mod registries;
mod registry_store;
mod resources;
mod routes;
mod secrets;
mod service;
mod snapshots;
mod startup;
mod state;
mod store;
mod tcp_tuning;
mod ttl;
mod validate;
mod warm_pool;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;

use crate::paths;

pub use default_snapshot::DefaultSource;
pub use state::StateDirs;

/// `langsmith server [--listen ADDR] [--state-dir DIR] [--api-key KEY]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on; `127.0.0.1:0` picks a free port.
    #[arg(long, default_value = "127.0.0.1:7433")]
    pub listen: SocketAddr,
    /// State directory (database, images, sandboxes) [default: the user's data directory]
    #[arg(long, env = paths::STATE_DIR_VAR)]
    pub state_dir: Option<PathBuf>,
    /// API key clients must send as `X-Api-Key`. Without it a key is generated once and kept
    /// in `STATE_DIR/api-key` (mode 0600).
    #[arg(long, env = "LANGSMITH_SERVER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// OCI runtime binary (runc or a compatible one).
    #[arg(long, default_value = "runc")]
    pub runtime: PathBuf,
    /// Image the default snapshot (`system/default`) is built from on first use, e.g.
    /// `python:3.12-slim`. Without it the server builds a Debian root filesystem with
    /// Python and common tools from Debian packages (mmdebstrap).
    #[arg(long, env = "LANGSMITH_DEFAULT_IMAGE")]
    pub default_image: Option<String>,
    /// Seconds per minute of idle_ttl_seconds / delete_after_stop_seconds. Hidden: only
    /// tests change it (`1` makes a 60 s TTL pass in one second).
    #[arg(
        long,
        env = "LANGSMITH_SERVER_TTL_UNIT_SECONDS",
        default_value_t = 60,
        hide = true
    )]
    pub ttl_unit_seconds: u64,
    /// How many sandboxes to keep started ahead of time for the latest kind of create (same
    /// snapshot, capacity and environment), so the next such create adopts one in a few
    /// milliseconds. 0 turns it off.
    #[arg(
        long,
        env = "LANGSMITH_WARM_POOL",
        default_value_t = 2,
        value_name = "N"
    )]
    pub warm_pool: usize,
    /// Serve service URLs and download links as `{sandbox-id}--{port}.DOMAIN` and
    /// `{sandbox-id}--dl.DOMAIN` on this listener (needs wildcard DNS for `*.DOMAIN`).
    /// Without it each service gets its own loopback address in 127.77.0.0/16.
    #[arg(long)]
    pub service_domain: Option<String>,
    /// The URL clients reach this server by (scheme, host, port), when it differs from the
    /// listen address (behind a proxy); data-plane and service URLs are built from it.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Let sandboxes reach addresses in CIDR although they are private, loopback or
    /// link-local (refused by default; e.g. a registry or model server on this network).
    /// Repeatable.
    #[arg(long = "allow-private-cidr", value_name = "CIDR")]
    pub allow_private_cidr: Vec<ipnet::IpNet>,
    /// Pin a name for the egress proxy, like curl's --resolve: NAME=IP (every port) or
    /// NAME:PORT=IP:PORT (that port, sent to another). Pinned addresses are still checked
    /// against --allow-private-cidr. Repeatable.
    #[arg(long = "resolve", value_name = "NAME=IP")]
    pub resolve: Vec<crate::proxy::upstream::Pin>,
    /// Send every sandbox connection through this HTTP forward proxy with CONNECT
    /// (HOST:PORT); there is no direct fallback.
    #[arg(long = "upstream-proxy", value_name = "HOST:PORT")]
    pub upstream_proxy: Option<String>,
    /// Also trust the CA certificates in this PEM file when the egress proxy verifies a host
    /// whose TLS it opened for header rules (the host's own trust store always counts).
    /// Repeatable.
    #[arg(long = "upstream-ca", value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,
}

/// The egress proxy's settings from the server's flags.
fn upstream_config(
    allowed_private: Vec<ipnet::IpNet>,
    pins: Vec<crate::proxy::upstream::Pin>,
    forward_proxy: Option<String>,
) -> anyhow::Result<crate::proxy::upstream::UpstreamConfig> {
    let forward_proxy = forward_proxy
        .map(|p| {
            p.trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|p| !p.is_empty());
    if let Some(proxy) = &forward_proxy
        && proxy
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_none()
    {
        anyhow::bail!("--upstream-proxy must be HOST:PORT or http://HOST:PORT (got {proxy:?})");
    }
    let mut config = crate::proxy::upstream::UpstreamConfig {
        allowed_private,
        forward_proxy,
        ..Default::default()
    };
    for pin in pins {
        config.add_pin(pin);
    }
    Ok(config)
}

/// Settings of one server instance.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub state_dir: PathBuf,
    pub api_key: Option<String>,
    pub runtime: PathBuf,
    pub default_source: default_snapshot::DefaultSource,
    pub ttl_unit_seconds: u64,
    pub warm_pool: usize,
    pub service_domain: Option<String>,
    pub public_url: Option<String>,
    /// How the egress proxy reaches the outside.
    pub upstream: crate::proxy::upstream::UpstreamConfig,
    /// PEM files of CAs trusted beside the host's store for hosts opened for header rules.
    pub upstream_cas: Vec<PathBuf>,
}

/// `langsmith server`: serve until SIGTERM/SIGINT. Sandboxes keep running across restarts.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LANGSMITH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    open_files::raise_and_log();
    // The CLI's rule (`paths::state_dir`), so the CLI finds a server started without the flag.
    let state_dir = args.state_dir.or_else(paths::state_dir).context(
        "no data directory for the server's state; pass --state-dir or set LANGSMITH_STATE_DIR",
    )?;
    let config = ServerConfig {
        state_dir,
        api_key: args.api_key.filter(|k| !k.is_empty()),
        runtime: args.runtime,
        default_source: match args.default_image.filter(|i| !i.trim().is_empty()) {
            Some(image) => default_snapshot::DefaultSource::Image(image.trim().to_string()),
            None => default_snapshot::DefaultSource::Debian,
        },
        ttl_unit_seconds: args.ttl_unit_seconds.max(1),
        warm_pool: args.warm_pool,
        service_domain: args.service_domain.filter(|d| !d.trim().is_empty()),
        public_url: args.public_url.filter(|u| !u.trim().is_empty()),
        upstream: upstream_config(args.allow_private_cidr, args.resolve, args.upstream_proxy)?,
        upstream_cas: args.upstream_ca,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = startup::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        serve(listener, config, shutdown_signal()).await
    })?;
    // Bridged WebSockets may still be open; they end with the process.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Serve the API on `listener` until `shutdown` resolves. Prints one JSON line
/// `{"event":"ready","url":…}` on stdout once requests can be served.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let started = startup::start(&listener, &config).await?;
    let app = routes::router(started.state.clone(), started.key.clone());
    recovery::recover(&started.state).await;
    started.state.services.restore(&started.state).await;
    // Ends with the server (aborted below); sandboxes it did not get to wait for the next run.
    let reaper = reaper::spawn(started.state.clone());
    let trimmer = memory::spawn_trimmer();
    startup::announce(&started)?;
    tracing::info!("serving the sandbox API at {}", started.state.public_url);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let going_away = started.state.going_away.clone();
    let listener = listener.tap_io(tcp_tuning::tune);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        going_away.send_replace(true);
        let _ = stop_tx.send(());
    });
    // Open WebSockets (exec sessions) do not hold a shutdown up for more than a moment.
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        _ = async { let _ = stop_rx.await; tokio::time::sleep(Duration::from_secs(3)).await } => {}
    }
    // Bridged WebSockets were told to go away; let them send their 1001 before the runtime
    // drops their tasks (the sessions behind them live on in the sandboxes).
    let _ = tokio::time::timeout(Duration::from_secs(1), started.state.going_away.closed()).await;
    reaper.abort();
    trimmer.abort();
    // Warm sandboxes have no record: unlike the others, they do not outlive the server.
    let _ = tokio::time::timeout(Duration::from_secs(10), started.state.warm.close()).await;
    startup::retire(&started);
    tracing::info!("server stopped; sandboxes keep running");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
