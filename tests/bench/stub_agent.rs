//! The official SDK's own floor for a warm exec: a WebSocket endpoint that answers every
//! `execute` at once with `started` and `exit 0`, as an agent would for a command that takes
//! no time, with no server, sandbox or process behind it. What the SDK takes against it is
//! what its Python costs by itself (connect, handshake, its own threads, JSON, close).

use futures_util::{SinkExt, StreamExt};
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
            // The execute request; its contents do not matter here.
            if !matches!(socket.next().await, Some(Ok(Message::Text(_)))) {
                return;
            }
            // Then a normal close, as the agent sends after `exit`, so the SDK closes the way
            // it does with a sandbox.
            let normal = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            for reply in [
                Message::text(r#"{"type":"started","command_id":"stub","pid":1}"#),
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
