//! `tunnel_run(#{name, url, remote_port, local_port, stdio, log_level})`: the whole of
//! `langsmith sandbox tunnel`, in the LangSmith CLI's order of checks and words.
//!
//! Listener mode logs Go `slog` text lines on stderr and runs until SIGINT or SIGTERM, which
//! end it cleanly (exit 0): Ctrl-C is taken from the bridge's interrupt, so it never becomes
//! the script's "interrupted" error. `--stdio` bridges stdin/stdout to one stream and logs
//! nothing (it runs as an SSH `ProxyCommand`, whose stderr the user sees).

use std::io::Write;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};
use tokio::signal::unix::{SignalKind, signal};

use super::bridge::{Bridge, ScriptResult, client_error, user_error};
use super::tunnel::port;
use crate::api::tunnel::status_reason;
use crate::client::{Client, TunnelEvent, TunnelEvents};
use crate::text::go_quote;
use crate::text::slog::{Level, line};

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    let b = bridge.clone();
    engine.register_fn("tunnel_run", move |opts: Map| run(&b, &opts));
}

fn text(opts: &Map, key: &str) -> String {
    opts.get(key)
        .filter(|v| !v.is_unit())
        .map(Dynamic::to_string)
        .unwrap_or_default()
}

fn int(opts: &Map, key: &str) -> ScriptResult<Option<i64>> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v
            .as_int()
            .map(Some)
            .map_err(|_| user_error(format!("tunnel_run: {key} must be an integer"))),
    }
}

fn run(bridge: &Arc<Bridge>, opts: &Map) -> ScriptResult<()> {
    let Some(remote_port) = int(opts, "remote_port")? else {
        return Err(user_error(r#"required flag(s) "remote-port" not set"#));
    };
    let (name, url) = (text(opts, "name"), text(opts, "url"));
    if name.is_empty() && url.is_empty() {
        return Err(user_error("provide a sandbox name or --url"));
    }
    let stdio = opts
        .get("stdio")
        .is_some_and(|v| v.as_bool().unwrap_or(false));
    let client = match stdio {
        true => bridge.client_silently()?,
        false => bridge.client()?,
    };
    let dataplane = match url.is_empty() {
        false => url,
        true => lenient_resolve(bridge, &name)?,
    };
    let remote_port = port("--remote-port", remote_port, false)?;
    if stdio {
        return run_stdio(bridge, &client, &dataplane, remote_port);
    }
    let local_port = match int(opts, "local_port")?.unwrap_or(0) {
        0 => remote_port,
        n => port("--local-port", n, false)?,
    };
    let level = Level::parse(&text(opts, "log_level"));
    let events = logger(level, remote_port, dataplane.clone());
    let ended = bridge.block_on_uninterrupted(async {
        // Before the tunnel says it is ready: a SIGTERM from then on ends it cleanly.
        let mut sigterm = signal(SignalKind::terminate()).ok();
        let mut tunnel = client
            .tunnel(&dataplane, remote_port, local_port, events)
            .await?;
        tokio::select! {
            () = bridge.next_interrupt() => {}
            Some(()) = async { sigterm.as_mut()?.recv().await } => {}
            () = tunnel.closed() => {}
        }
        tunnel.close().await;
        Ok(())
    });
    bridge.clear_interrupt();
    ended.map_err(|e| client_error(e, None))
}

/// The sandbox's dataplane URL by name, whatever its status.
fn lenient_resolve(bridge: &Arc<Bridge>, name: &str) -> ScriptResult<String> {
    let owned = name.to_string();
    let sandbox = bridge.call(
        "getting sandbox",
        |c| async move { c.get_sandbox(&owned).await },
    )?;
    match sandbox.dataplane_url {
        Some(url) if !url.is_empty() => Ok(url),
        _ => Err(user_error(format!(
            "sandbox {} has no dataplane URL",
            go_quote(name)
        ))),
    }
}

fn run_stdio(
    bridge: &Arc<Bridge>,
    client: &Client,
    dataplane: &str,
    remote_port: u16,
) -> ScriptResult<()> {
    let ended = bridge.block_on_uninterrupted(async {
        let mut sigterm = signal(SignalKind::terminate()).ok();
        let bridged =
            client.tunnel_stdio(dataplane, remote_port, stdin_reader(), tokio::io::stdout());
        tokio::select! {
            ended = bridged => ended,
            () = bridge.next_interrupt() => Ok(()),
            Some(()) = async { sigterm.as_mut()?.recv().await } => Ok(()),
        }
    });
    bridge.clear_interrupt();
    ended.map_err(|e| client_error(e, None))
}

/// Stdin read on a plain thread (a blocked read must never hold up the runtime's shutdown).
fn stdin_reader() -> impl tokio::io::AsyncRead + Unpin {
    let (chunks, received) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = bytes::Bytes::copy_from_slice(&buf[..n]);
                    if chunks.blocking_send(chunk).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    let stream = futures_util::stream::unfold(received, |mut received| async move {
        let chunk = received.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), received))
    });
    tokio_util::io::StreamReader::new(Box::pin(stream))
}

/// The LangSmith CLI's log lines for what the tunnel reports, at `level` and above.
fn logger(level: Level, remote_port: u16, sandbox_url: String) -> TunnelEvents {
    Arc::new(move |event| {
        let port = remote_port.to_string();
        let (lvl, msg, attrs): (Level, &str, Vec<(&str, String)>) = match event {
            TunnelEvent::Dialing { url } => (Level::Debug, "dialing tunnel", vec![("url", url)]),
            TunnelEvent::SessionEstablished { url } => (
                Level::Info,
                "tunnel session established",
                vec![("url", url)],
            ),
            TunnelEvent::Ready { local } => (
                Level::Info,
                "tunnel ready",
                vec![
                    ("local", local.to_string()),
                    ("remote_port", port),
                    ("sandbox_url", sandbox_url.clone()),
                ],
            ),
            TunnelEvent::StreamConnected { local_addr } => (
                Level::Debug,
                "stream connected",
                vec![
                    ("remote_port", port),
                    ("local_addr", local_addr.to_string()),
                ],
            ),
            TunnelEvent::OpenFailed { error } => (
                Level::Error,
                "failed to open stream",
                vec![("error", error.to_string())],
            ),
            TunnelEvent::WriteHeaderFailed { error } => (
                Level::Error,
                "failed to write connect header",
                vec![("error", error.to_string())],
            ),
            TunnelEvent::ReadStatusFailed { error } => (
                Level::Error,
                "failed to read status",
                vec![("error", error.to_string())],
            ),
            TunnelEvent::Rejected { status } => (
                Level::Error,
                "tunnel rejected",
                vec![
                    ("status", status.to_string()),
                    ("reason", status_reason(status).to_string()),
                    ("port", port),
                ],
            ),
        };
        if lvl >= level {
            let text = line(&chrono::Local::now(), lvl, msg, &attrs);
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    })
}
