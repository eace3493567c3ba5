//! The official SDK's own floor for a warm exec: a WebSocket endpoint that answers every
//! `execute` at once with `started` and `exit 0`, as an agent would for a command that takes
//! no time, with no server, sandbox or process behind it. What the SDK takes against it is
//! what its Python costs by itself (connect, handshake, its own threads, JSON, close).

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

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
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            // The execute request; its contents do not matter here.
            if !matches!(socket.next().await, Some(Ok(Message::Text(_)))) {
                return;
            }
            for reply in [
                r#"{"type":"started","command_id":"stub","pid":1}"#,
                r#"{"type":"exit","exit_code":0}"#,
            ] {
                if socket.send(Message::text(reply)).await.is_err() {
                    return;
                }
            }
            // Until the client's close, which tungstenite answers.
            while let Some(Ok(_)) = socket.next().await {}
        });
    }
}
