//! End-to-end tests of the agent: the real server on a temporary unix socket, real processes,
//! and real WebSocket / HTTP clients talking to it over that socket.

mod connect;
mod exec_http;
mod exec_sessions;
mod exec_sse;
mod exec_streams;
mod files;
mod grep;
mod process_groups;
mod replay;
mod search;
mod ssh_agent;
mod tunnel;

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use tokio::net::{UnixListener, UnixStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::api::exec::{MAX_OUTPUT_CHUNK, ServerMessage};

/// A running agent on a socket in its own temporary directory.
pub struct TestAgent {
    pub dir: tempfile::TempDir,
    socket: PathBuf,
}

impl TestAgent {
    pub async fn start() -> TestAgent {
        TestAgent::start_with(
            super::output::DEFAULT_RETAINED_BYTES,
            std::future::pending(),
        )
    }

    /// An agent retaining `retained_bytes` per stream, stopping (as on SIGTERM) when
    /// `shutdown` resolves.
    pub fn start_with(
        retained_bytes: usize,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        tokio::spawn(super::serve_retaining(listener, shutdown, retained_bytes));
        TestAgent { dir, socket }
    }

    /// Sends `request` and answers the response with its body still streaming.
    pub async fn http_streaming(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Response<hyper::body::Incoming> {
        let stream = UnixStream::connect(&self.socket).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    }

    /// `POST uri` with a JSON body; answers status and the parsed JSON answer.
    pub async fn post_json(&self, uri: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (response, bytes) = self.http(post_json(uri, body)).await;
        let answer = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri} answered non-JSON ({e}): {bytes:?}"));
        (response.status().as_u16(), answer)
    }

    /// A raw WebSocket to `path` (e.g. `/tunnel`).
    pub async fn ws_at(&self, path: &str) -> WebSocketStream<UnixStream> {
        let stream = UnixStream::connect(&self.socket).await.unwrap();
        let url = format!("ws://agent{path}");
        let (socket, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        assert_eq!(response.status(), 101);
        socket
    }

    /// A raw WebSocket on `/execute/ws` that asks for binary output frames.
    pub async fn ws_binary_output(&self) -> WebSocketStream<UnixStream> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let stream = UnixStream::connect(&self.socket).await.unwrap();
        let mut request = "ws://agent/execute/ws".into_client_request().unwrap();
        request.headers_mut().insert(
            crate::api::exec_frames::OUTPUT_FRAMES_HEADER,
            crate::api::exec_frames::BINARY.parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        socket
    }

    pub async fn ws(&self) -> Ws {
        let stream = UnixStream::connect(&self.socket).await.unwrap();
        let (socket, response) = tokio_tungstenite::client_async("ws://agent/execute/ws", stream)
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        Ws { socket }
    }

    /// One HTTP/1.1 request over a fresh connection; answers status, headers and whole body.
    pub async fn http(&self, request: Request<Full<Bytes>>) -> (Response<()>, Bytes) {
        let stream = UnixStream::connect(&self.socket).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(connection);
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (Response::from_parts(parts, ()), body)
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// A new FIFO in the agent's directory, and its path.
    pub fn fifo(&self, name: &str) -> String {
        let path = self.path(name);
        nix::unistd::mkfifo(
            path.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        path
    }
}

pub fn post_json(uri: &str, body: serde_json::Value) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("host", "agent")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

pub fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("host", "agent")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// A client WebSocket on `/execute/ws`.
pub struct Ws {
    socket: WebSocketStream<UnixStream>,
}

/// Everything one attachment received, checked for the protocol's ordering rules.
#[derive(Debug, Default)]
pub struct Transcript {
    pub command_id: String,
    pub pid: u32,
    pub stdout: String,
    pub stderr: String,
    /// Offsets of the first chunk of each stream (None when the stream sent nothing).
    pub first_offsets: [Option<u64>; 2],
    pub terminal: Option<ServerMessage>,
}

impl Ws {
    pub async fn send(&mut self, message: serde_json::Value) {
        let text = message.to_string();
        self.socket.send(Message::Text(text.into())).await.unwrap();
    }

    /// Closes from the client side and waits for the server's closing answer.
    pub async fn close(mut self) {
        self.socket.close(None).await.unwrap();
        while let Some(Ok(_)) = self.socket.next().await {}
    }

    /// Reads until the server's close frame; answers its code (`None`: no close frame).
    pub async fn close_code(&mut self) -> Option<u16> {
        while let Some(Ok(message)) = self.socket.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    }

    /// The next application message, or `None` once the server closed the socket.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
                Ok(Message::Close(frame)) => {
                    let code = frame.map(|f| u16::from(f.code));
                    assert_eq!(code, Some(1000), "the server closes with 1000");
                    return None;
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Expects `started`, then reads to the terminal message checking contiguous offsets,
    /// chunk sizes and that the socket is closed right after.
    pub async fn transcript(&mut self) -> Transcript {
        let mut transcript = Transcript::default();
        match self.recv().await {
            Some(ServerMessage::Started { command_id, pid }) => {
                transcript.command_id = command_id;
                transcript.pid = pid.expect("started carries the pid");
            }
            other => panic!("expected started, got {other:?}"),
        }
        self.read_to_end(&mut transcript).await;
        transcript
    }

    pub async fn read_to_end(&mut self, transcript: &mut Transcript) {
        let mut cursors: [Option<u64>; 2] = [None, None];
        loop {
            let message = self.recv().await.expect("a terminal message before close");
            let (index, data, offset) = match message {
                ServerMessage::Stdout { data, offset } => (0, data, offset),
                ServerMessage::Stderr { data, offset } => (1, data, offset),
                terminal => {
                    transcript.terminal = Some(terminal);
                    assert!(
                        self.recv().await.is_none(),
                        "close follows the terminal message"
                    );
                    return;
                }
            };
            assert!(
                data.len() <= MAX_OUTPUT_CHUNK,
                "chunk of {} bytes",
                data.len()
            );
            let cursor = cursors[index].get_or_insert(offset);
            assert_eq!(offset, *cursor, "offsets are contiguous");
            *cursor += data.len() as u64;
            transcript.first_offsets[index].get_or_insert(offset);
            let text = if index == 0 {
                &mut transcript.stdout
            } else {
                &mut transcript.stderr
            };
            text.push_str(&data);
        }
    }
}

/// An `execute` message with the SDK's defaults and stdin closed.
/// What starts `/bin/sh -c <command>` with no stdin and no terminal.
pub fn sh(command: &str) -> crate::agent::spawn::SpawnRequest {
    use crate::agent::spawn::{Program, SpawnRequest};
    SpawnRequest {
        program: Program::Shell {
            shell: Some("/bin/sh".into()),
            command: Some(command.into()),
        },
        env: Default::default(),
        cwd: None,
        user: None,
        stdin_pipe: false,
        pty: false,
    }
}

pub fn execute(command: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "execute",
        "command": command,
        "timeout_seconds": 60,
        "shell": "/bin/bash",
        "idle_timeout_seconds": 300,
        "kill_on_disconnect": false,
        "ttl_seconds": 600,
        "command_id": uuid::Uuid::now_v7().simple().to_string(),
        "close_stdin": true,
    })
}

pub fn exit(code: i32) -> Option<ServerMessage> {
    Some(ServerMessage::Exit { exit_code: code })
}

pub fn error_type(message: &Option<ServerMessage>) -> &str {
    match message {
        Some(ServerMessage::Error { error_type, .. }) => error_type,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Lets a reader stuck opening (or reading) the FIFO at `path` go: opens it for writing without
/// waiting and closes it again, so the reader sees end-of-file. The escape hatch of tests that
/// guard against such a hang, so that they fail instead of hanging themselves.
pub fn release_fifo(path: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
}
