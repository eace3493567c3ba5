//! The official SDK's own floor for a warm exec: a WebSocket endpoint that answers every
//! `execute` at once with `started` and `exit 0`, as an agent would for a command that takes
//! no time, with no server, sandbox or process behind it. What the SDK takes against it is
//! what its Python costs by itself (connect, handshake, its own threads, JSON, close).
//!
//! A command `stub-output N` is answered with N bytes of `a` first, in `stdout` messages as
//! large as the agent's ([`MAX_OUTPUT_CHUNK`]), built before (see [`output`]): the SDK's own
//! floor for reading output.

use std::sync::Mutex;

use futures_util::{SinkExt, StreamExt};
use langsmith::api::exec::MAX_OUTPUT_CHUNK;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Starts the stub on loopback, on a thread of its own that lives as long as the process.
/// Returns the data-plane URL a sandbox record would carry (`{url}/execute/ws` is served).
pub fn start() -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the stub agent");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port for the stub agent");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || runtime.block_on(serve(listener)));
    url
}

async fn serve(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Said, so the SDK's failure to connect that follows has its cause beside it.
                eprintln!("the stub agent stopped accepting: {e}");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            // The execute request: only a `stub-output` command matters.
            let Some(Ok(Message::Text(execute))) = socket.next().await else {
                return;
            };
            // Each message sent and flushed on its own, as the agent sends them.
            let started = Message::text(r#"{"type":"started","command_id":"stub","pid":1}"#);
            if socket.send(started).await.is_err() {
                return;
            }
            for chunk in output(output_asked(&execute)) {
                if socket.send(chunk).await.is_err() {
                    return;
                }
            }
            // Then a normal close, as the agent sends after `exit`, so the SDK closes the way
            // it does with a sandbox.
            let normal = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            for reply in [
                Message::text(r#"{"type":"exit","exit_code":0}"#),
                Message::Close(Some(normal)),
            ] {
                if socket.send(reply).await.is_err() {
                    return;
                }
            }
            // Until the client's answering close; then the connection is dropped at once, as
            // the server's bridge does (waiting on would wait for the client's own end).
            while let Some(Ok(message)) = socket.next().await {
                if message.is_close() {
                    break;
                }
            }
        });
    }
}

/// The byte count of a `stub-output N` command; 0 for any other.
fn output_asked(execute: &str) -> usize {
    let request: serde_json::Value = serde_json::from_str(execute).unwrap_or_default();
    request["command"]
        .as_str()
        .and_then(|command| command.strip_prefix("stub-output "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

/// `bytes` bytes of `a` as the agent's `stdout` messages. Built at the first request for
/// that size and kept (a message's clone shares its text), so only an untimed first run
/// pays for building them and the stub's own work is not what a timed run waits for.
fn output(bytes: usize) -> Vec<Message> {
    // Any other command (the exec figure's `true`) must not replace what was kept.
    if bytes == 0 {
        return Vec::new();
    }
    static BUILT: Mutex<Option<(usize, Vec<Message>)>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((size, messages)) = built.as_ref()
        && *size == bytes
    {
        return messages.clone();
    }
    let chunk = "a".repeat(MAX_OUTPUT_CHUNK);
    let messages: Vec<Message> = (0..bytes)
        .step_by(MAX_OUTPUT_CHUNK)
        .map(|offset| {
            let data = &chunk[..MAX_OUTPUT_CHUNK.min(bytes - offset)];
            Message::text(format!(
                r#"{{"type":"stdout","data":"{data}","offset":{offset}}}"#
            ))
        })
        .collect();
    *built = Some((bytes, messages.clone()));
    messages
}
