//! Wire checks the SDK cannot make, against the real server and sandboxes: exec sessions
//! outliving a server crash, a `kill` honoured from a client that vanished right after
//! sending it, 1001 when a sandbox stops under an attached socket, and the agent's own
//! goodbye on SIGTERM. The SSE ones are in [`super::sse_wire`].

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::common::api::Api;
use crate::common::cli::Cli;
use crate::common::process::{die_with_parent, wait_for};
use crate::common::server::{API_KEY, reap_leftovers};
use crate::common::{TestServer, image};

const MIB: i64 = 1 << 20;

/// A sandbox of the tiny image on `api`'s server.
pub(super) fn sandbox(api: &Api, name: &str) -> Value {
    let snapshot = api.ready_snapshot(name, image::tiny(), 64 * MIB);
    api.ready_sandbox(name, &snapshot, json!({}))
}

/// A WebSocket on a sandbox's `/execute/ws`, driven from synchronous test code (the blocking
/// HTTP client must not run inside an async runtime, so each call enters it briefly).
struct Ws {
    runtime: tokio::runtime::Runtime,
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    fn connect(sandbox: &Value) -> Ws {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dp = sandbox["dataplane_url"]
            .as_str()
            .unwrap()
            .replacen("http://", "ws://", 1);
        let mut request = format!("{dp}/execute/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("x-api-key", API_KEY.parse().unwrap());
        let (socket, _) = runtime
            .block_on(tokio_tungstenite::connect_async(request))
            .unwrap();
        Ws { runtime, socket }
    }

    fn send(&mut self, message: Value) {
        let text = message.to_string();
        self.runtime
            .block_on(self.socket.send(Message::Text(text.into())))
            .unwrap();
    }

    /// The next JSON message; `Err(close code)` once the socket closed.
    fn recv(&mut self) -> Result<Value, Option<u16>> {
        loop {
            match self.runtime.block_on(self.socket.next()) {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }
}

/// Removes whatever a failed test left running under its state directory.
pub(super) struct Reap(pub(super) PathBuf);

impl Drop for Reap {
    fn drop(&mut self) {
        reap_leftovers(&self.0);
    }
}

#[test]
fn exec_sessions_outlive_a_server_crash_and_resume_from_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let _reap = Reap(state.clone());
    let mut server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let sb = sandbox(&api, "durable");
    let mut ws = Ws::connect(&sb);
    let command =
        "echo line1; while [ ! -e /tmp/go ]; do sleep 0.1; done; seq 2 20000 | sed 's/^/line/'";
    ws.send(
        json!({"type": "execute", "command": command, "command_id": "durable-1",
                   "timeout_seconds": 300, "close_stdin": true}),
    );
    let started = ws.recv().unwrap();
    assert_eq!(
        (&started["type"], &started["command_id"]),
        (&json!("started"), &json!("durable-1"))
    );
    assert_eq!(
        ws.recv().unwrap(),
        json!({"type": "stdout", "data": "line1\n", "offset": 0})
    );

    server.kill(); // SIGKILL: no goodbye, the socket just breaks
    assert!(ws.recv().is_err());
    let server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let sb = api
        .call("GET", "/api/v2/sandboxes/boxes/durable", None)
        .body;
    assert_eq!(sb["status"], "ready", "{sb}");
    assert_eq!(api.exec(&sb, "touch /tmp/go").exit_code, 0);

    let mut ws = Ws::connect(&sb);
    ws.send(json!({"type": "reconnect", "command_id": "durable-1", "stdout_offset": 6, "stderr_offset": 0}));
    let again = ws.recv().unwrap();
    assert_eq!(
        (&again["type"], &again["pid"]),
        (&json!("started"), &started["pid"]),
        "the same process"
    );
    let (mut cursor, mut text) = (6u64, String::new());
    let terminal = loop {
        let message = ws.recv().unwrap();
        if message["type"] != "stdout" {
            break message;
        }
        assert_eq!(message["offset"], cursor, "no gap and no repeat");
        let data = message["data"].as_str().unwrap();
        cursor += data.len() as u64;
        text.push_str(data);
    };
    assert_eq!(terminal, json!({"type": "exit", "exit_code": 0}));
    let expected: String = (2..=20000).map(|n| format!("line{n}\n")).collect();
    assert!(
        text == expected,
        "{} bytes arrived, {} expected",
        text.len(),
        expected.len()
    );
    assert_eq!(ws.recv(), Err(Some(1000)));
    api.delete_sandbox("durable");
}

/// What the official SDK's `kill()` does, made certain: a ping, `kill` and a close frame
/// in one write, then a reset. The server reads the ping first and owes a pong it can no
/// longer write; the `kill` behind it must still reach the command.
#[test]
fn a_kill_sent_just_before_the_client_vanishes_is_honoured() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let sb = sandbox(&api, "vanishing");
    let mut ws = Ws::connect(&sb);
    // Were the kill lost, the command's own timeout would end it instead, 20 s later.
    ws.send(
        json!({"type": "execute", "command": "sleep 300", "command_id": "vanish-1",
                   "timeout_seconds": 20, "close_stdin": true}),
    );
    assert_eq!(ws.recv().unwrap()["type"], "started");
    let Ws {
        runtime,
        mut socket,
    } = ws;
    runtime.block_on(async {
        socket.feed(Message::Ping(vec![1].into())).await.unwrap();
        let kill = json!({"type": "kill"}).to_string();
        socket.feed(Message::Text(kill.into())).await.unwrap();
        socket.feed(Message::Close(None)).await.unwrap();
        socket.flush().await.unwrap();
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = socket.get_ref() else {
            panic!("a plain TCP connection");
        };
        tcp.set_zero_linger().unwrap(); // closing now sends a reset, not a FIN
    });
    drop(socket);

    let mut ws = Ws::connect(&sb);
    ws.send(json!({"type": "reconnect", "command_id": "vanish-1"}));
    assert_eq!(ws.recv().unwrap()["type"], "started");
    assert_eq!(
        ws.recv().unwrap(),
        json!({"type": "exit", "exit_code": 137}),
        "the kill reached the command"
    );
    api.delete_sandbox("vanishing");
}

/// A client that closes first (as the CLI does once it has read `exit`) gets the agent's
/// own close through the bridge, and the server's trace of each operation
/// (`LANGSMITH_LOG=langsmith::phases=debug`) names its phases. The bridge once stopped
/// relaying at the client's close and then waited a whole second for a second close: its
/// trace line then lacked "agent closed".
#[test]
fn a_client_closing_first_gets_the_agents_close_and_every_operation_is_traced() {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("server.log");
    let server = TestServer::start_logging("langsmith::phases=debug", &log);
    let _reap = Reap(server.state_dir.clone());
    let api = Api::new(&server);
    let sb = sandbox(&api, "traced");
    let id = sb["id"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(&sb);
    ws.send(json!({"type": "execute", "command": "sleep 300", "close_stdin": true}));
    assert_eq!(ws.recv().unwrap()["type"], "started");
    let normal = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    ws.runtime.block_on(ws.socket.close(Some(normal))).unwrap();
    let ended = loop {
        if let Err(code) = ws.recv() {
            break code;
        }
    };
    assert_eq!(ended, Some(1000), "the server answered no close frame");
    api.delete_sandbox("traced");

    let text = std::fs::read_to_string(&log).unwrap();
    let line = |prefix: &str| -> &str {
        text.lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no trace line with {prefix:?} in:\n{text}"))
    };
    let has_phases = |line: &str, phases: &[&str]| {
        for phase in phases {
            assert!(line.contains(phase), "{phase} missing: {line}");
        }
    };
    let start = line(&format!("start {id}:"));
    let start_phases = [
        "image mount",
        "upper image",
        "runc run",
        "agent ready",
        "total",
    ];
    has_phases(start, &start_phases);
    let exec = line(&format!("data plane {id}/execute/ws:"));
    let exec_phases = [
        "agent handshake",
        "first agent message",
        "agent closed",
        "close handshake",
    ];
    has_phases(exec, &exec_phases);
    assert!(!exec.contains("unfinished"), "{exec}");
    let destroy = line(&format!("destroy {id}:"));
    assert!(
        destroy.contains("teardown") && !destroy.contains("unfinished"),
        "{destroy}"
    );
}

#[test]
fn stopping_a_sandbox_closes_attached_sockets_with_going_away() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let sb = sandbox(&api, "stopping");
    let mut ws = Ws::connect(&sb);
    ws.send(json!({"type": "execute", "command": "sleep 300", "close_stdin": true}));
    assert_eq!(ws.recv().unwrap()["type"], "started");
    let stopped = api.call("POST", "/api/v2/sandboxes/boxes/stopping/stop", None);
    assert_eq!(stopped.status, 204, "{}", stopped.body);
    assert_eq!(ws.recv(), Err(Some(1001)));
    api.delete_sandbox("stopping");
}

#[test]
fn the_agent_says_going_away_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let mut command = Cli::bare()
        .args(&["agent", "--socket"])
        .arg(&socket)
        .command();
    die_with_parent(&mut command);
    let mut agent = command.spawn().unwrap();
    // Bound and listening once a connection succeeds.
    let first = wait_for("the agent to listen", Duration::from_secs(30), || {
        std::os::unix::net::UnixStream::connect(&socket).ok()
    });
    first.set_nonblocking(true).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (pid, close) = runtime.block_on(async {
        let stream = tokio::net::UnixStream::from_std(first).unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async("ws://agent/execute/ws", stream)
            .await
            .unwrap();
        let execute = json!({"type": "execute", "command": "sleep 300", "close_stdin": true});
        ws.send(Message::Text(execute.to_string().into()))
            .await
            .unwrap();
        let Some(Ok(Message::Text(started))) = ws.next().await else {
            panic!("no started message");
        };
        let started: Value = serde_json::from_str(&started).unwrap();
        // SAFETY: kill(2) with a pid we spawned and a valid signal.
        unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
        let mut close = None;
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                close = frame.map(|f| u16::from(f.code));
            }
        }
        (started["pid"].as_i64().unwrap() as i32, close)
    });
    // Not PID 1 here, so the command outlives the agent: end its process group.
    // SAFETY: kill(2) on the group the agent created for the command.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    assert_eq!(close, Some(1001));
    assert!(
        agent.wait().unwrap().success(),
        "the agent exits cleanly on SIGTERM"
    );
}
