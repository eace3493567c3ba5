//! The in-sandbox agent: PID 1 of every sandbox. It reaps zombies and serves the data plane
//! (exec sessions, files) over a unix socket that the server proxies `{dataplane_url}/…` to.
//!
//! Module map: `init` PID 1 duties · `log` its messages, which never fail · `trust` the
//! egress CA into the trust store · `boot_hooks` the image's `boot.d` executables ·
//! `app` router and error envelope · `exec_ws` /
//! `control` the WebSocket exec protocol · `exec_sse` its one-way SSE variant ·
//! `exec_http` legacy one-shot exec · `connect` a raw TCP pipe to a port inside
//! the sandbox (service URLs) · `registry` sessions by id · `session` /
//! `attachment` one command's state and its readers · `ssh_agent` / `ssh_agent_session`
//! SSH-agent forwarding · `lifecycle` pumps, timeouts, expiry · `leader` signalling a
//! command's process group only while its leader is unreaped ·
//! `output` bounded UTF-8-aware output buffers · `spawn` / `pty` / `user` starting
//! processes, `child_process` without copying the agent · `wide_pipe` a command's stdout
//! pipe widened within the pipe budget ·
//! `files` / `range` uploads and downloads · `search` / `glob` / `grep`
//! file search · `regular_file` opening what a request reads without blocking on a FIFO or
//! following a swapped-in link · `shutdown` the goodbye to open streams · `tunnel` /
//! `tunnel_stream` port tunnels (a yamux session per WebSocket, a dial per stream) ·
//! `port_dial` connecting to a port on the sandbox's loopback.
//!
//! Replay is bounded: each session retains at most 16 MiB per output stream
//! (`output::DEFAULT_RETAINED_BYTES`). An attached reader (or an SSE client's acknowledged
//! offsets) holds back the command rather than lose bytes it has not been sent; with nobody
//! attached the oldest bytes are overwritten. A reconnect asking for bytes no longer held starts
//! at the oldest retained byte — a gap, never a repeat: the official
//! clients append every chunk they get and do not detect gaps, so re-sending older bytes would
//! duplicate output, while skipping ahead only loses what the buffer could not keep. Each
//! chunk's `offset` tells a careful client where the gap was.
//!
//! On SIGTERM (forwarded by PID 1) attached WebSockets are closed with 1001 and SSE responses
//! end with `ServerShuttingDown`, so clients reattach instead of failing.

mod app;
mod attachment;
mod boot_hooks;
mod child_process;
mod connect;
mod control;
mod exec_http;
mod exec_sse;
mod exec_ws;
mod files;
mod glob;
mod grep;
mod init;
mod leader;
mod lifecycle;
mod log;
mod output;
mod port_dial;
mod pty;
mod range;
mod registry;
mod regular_file;
mod search;
mod session;
mod shutdown;
mod spawn;
mod ssh_agent;
mod ssh_agent_session;
mod trust;
mod tunnel;
mod tunnel_stream;
mod user;
mod wide_pipe;

#[cfg(test)]
mod tests;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// `langsmith agent` (hidden): the arguments the runtime starts the agent with.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct AgentArgs {
    /// Unix socket to bind and serve the data plane on.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Serve the data plane on this inherited, already listening unix socket (how the
    /// runtime starts it: the socket's path stays on the host).
    #[arg(long)]
    pub listen_fd: Option<RawFd>,
}

/// Run the agent until it is killed. Forks a reaper when running as PID 1.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let inherited = args.listen_fd.map(inherited_listener).transpose()?;
    if let Some(code) = init::become_init_if_pid1()? {
        std::process::exit(code);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the agent's async runtime")?;
    runtime.block_on(async {
        let listener = match (inherited, &args.socket) {
            (Some(listener), _) => tokio::net::UnixListener::from_std(listener)
                .context("cannot serve on the inherited socket")?,
            (None, Some(path)) => bind(path)?,
            (None, None) => anyhow::bail!("pass --socket or --listen-fd"),
        };
        serve(listener, termination()).await
    })
}

/// The listening socket inherited as descriptor `fd`, closed on exec (so no command the
/// agent starts holds it) and non-blocking (for the async runtime). PID 1 keeps it, so a
/// restarted server serves on the same socket.
fn inherited_listener(fd: RawFd) -> anyhow::Result<std::os::unix::net::UnixListener> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: the runtime passes the descriptor for this process to own; nothing else in it
    // uses that number.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .with_context(|| format!("descriptor {fd} is not open"))?;
    let listener = std::os::unix::net::UnixListener::from(owned);
    listener
        .set_nonblocking(true)
        .with_context(|| format!("descriptor {fd} is not a socket"))?;
    Ok(listener)
}

/// Serve the data plane on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_retaining(listener, shutdown, output::DEFAULT_RETAINED_BYTES).await
}

/// [`serve`] with `retained_bytes` of replay buffer per output stream of each session.
pub(crate) async fn serve_retaining(
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    retained_bytes: usize,
) -> anyhow::Result<()> {
    let state = app::AppState {
        registry: registry::Registry::new(retained_bytes),
        shutdown: shutdown::Shutdown::default(),
    };
    let goodbye = state.shutdown.clone();
    let router = app::router(state);
    // Not a graceful shutdown: open exec sockets would hold it forever, and the sandbox's
    // processes die with it anyway. Open streams are told (1001 / `ServerShuttingDown`),
    // which takes a moment at most.
    tokio::select! {
        served = axum::serve(listener, router) => return served.context("the agent's server failed"),
        () = shutdown => {}
    }
    goodbye.begin_and_drain().await;
    Ok(())
}

/// Binds `path` (replacing a stale socket left by a previous run) readable by its owner only.
fn bind(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create socket directory {}", parent.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?,
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; remove it or pass another --socket",
            path.display()
        ),
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(listener)
}

/// Resolves on SIGTERM or SIGINT (forwarded by PID 1, or sent directly).
async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
