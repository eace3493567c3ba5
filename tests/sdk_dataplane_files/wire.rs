//! Wire checks the SDK cannot make, against the real server and sandboxes: SSE streamed
//! through the server's proxy as it happens and ended with `ServerShuttingDown` when it stops, exec sessions outliving a server crash, 1001 when
//! a sandbox stops under an attached socket, and the agent's own goodbye on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::common::api::Api;
use crate::common::process::{die_with_parent, wait_for};
use crate::common::server::{API_KEY, reap_leftovers};
use crate::common::{TestServer, image};

const MIB: i64 = 1 << 20;

/// A sandbox of the tiny image on `api`'s server.
fn sandbox(api: &Api, name: &str) -> Value {
    let snapshot = api.ready_snapshot(name, image::tiny(), 64 * MIB);
    api.ready_sandbox(name, &snapshot, json!({}))
}

/// One SSE event `(name, data)` from `lines`, skipping comments; `None` at the end, also when
/// the response was cut.
fn next_event(lines: &mut impl BufRead) -> Option<(String, Value)> {
    let (mut name, mut data) = (None, String::new());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if let Some(name) = name.take() {
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
        } else if let Some(value) = line.strip_prefix("event: ") {
            name = Some(value.to_string());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data.push_str(value);
        }
    }
}

fn decoded(data: &Value) -> String {
    let raw = base64::engine::general_purpose::STANDARD.decode(data["data"].as_str().unwrap());
    String::from_utf8(raw.unwrap()).unwrap()
}

#[test]
fn sse_exec_streams_through_the_server_as_it_happens() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let sb = sandbox(&api, "sse-live");
    let dp = sb["dataplane_url"].as_str().unwrap();
    // The second line only comes once the test has seen the first: a proxy that buffered the
    // response would never deliver it, and the read below would time out.
    let command = "echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second";
    let response = api
        .raw()
        .post(format!("{dp}/execute/stream/start"))
        .header("X-Api-Key", API_KEY)
        .json(&json!({"command": command, "command_id": "live-1", "timeout_seconds": 60}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = BufReader::new(response);
    let (name, started) = next_event(&mut events).unwrap();
    assert_eq!(
        (name.as_str(), &started["command_id"]),
        ("started", &json!("live-1"))
    );
    let (name, first) = next_event(&mut events).unwrap();
    assert_eq!(
        (name.as_str(), decoded(&first).as_str()),
        ("stdout", "first\n")
    );

    assert_eq!(api.exec(&sb, "touch /tmp/go").exit_code, 0);
    let (name, second) = next_event(&mut events).unwrap();
    assert_eq!(
        (name.as_str(), decoded(&second).as_str(), &second["offset"]),
        ("stdout", "second\n", &json!(6))
    );
    let rest: Vec<(String, Value)> = std::iter::from_fn(|| next_event(&mut events)).collect();
    let names: Vec<&str> = rest.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["stream_end", "stream_end", "exit"]);
    assert_eq!(rest[2].1, json!({"exit_code": 0}));
    api.delete_sandbox("sse-live");
}

/// `POST {dp}/execute/stream/{which}` with `body`; the response's event stream.
fn sse_post(
    api: &Api,
    dp: &str,
    which: &str,
    body: Value,
) -> BufReader<reqwest::blocking::Response> {
    let response = api
        .raw()
        .post(format!("{dp}/execute/stream/{which}"))
        .header("X-Api-Key", API_KEY)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    BufReader::new(response)
}

#[test]
fn sse_through_a_stopping_server_ends_with_shutting_down_and_resumes_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let _reap = Reap(state.clone());
    let mut server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let sb = sandbox(&api, "sse-stop");
    let dp = sb["dataplane_url"].as_str().unwrap();
    let command = "echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second";
    let start = json!({"command": command, "command_id": "stop-1", "timeout_seconds": 300});
    let mut events = sse_post(&api, dp, "start", start);
    assert_eq!(next_event(&mut events).unwrap().0, "started");
    let (name, first) = next_event(&mut events).unwrap();
    assert_eq!(
        (name.as_str(), decoded(&first).as_str()),
        ("stdout", "first\n")
    );

    server.stop_and_restart(); // SIGTERM while the command waits, quiet
    let rest: Vec<(String, Value)> = std::iter::from_fn(|| next_event(&mut events)).collect();
    let types: Vec<(&str, &Value)> = rest
        .iter()
        .map(|(name, data)| (name.as_str(), &data["error_type"]))
        .collect();
    assert_eq!(
        types,
        [("error", &json!("ServerShuttingDown"))],
        "the stream ends with the goodbye that makes the SDK resume, not cut: {rest:?}"
    );

    let api = Api::new(&server);
    assert_eq!(api.exec(&sb, "touch /tmp/go").exit_code, 0);
    let resume = json!({"command_id": "stop-1", "stdout_offset": 6, "stderr_offset": 0});
    let mut events = sse_post(&api, dp, "resume", resume);
    let resumed: Vec<(String, Value)> = std::iter::from_fn(|| next_event(&mut events)).collect();
    let names: Vec<&str> = resumed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["started", "stdout", "stream_end", "stream_end", "exit"],
        "{resumed:?}"
    );
    assert_eq!(
        (decoded(&resumed[1].1).as_str(), &resumed[1].1["offset"]),
        ("second\n", &json!(6)),
        "the command lived on and resumes where the client was"
    );
    assert_eq!(resumed[4].1, json!({"exit_code": 0}));
    api.delete_sandbox("sse-stop");
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
struct Reap(PathBuf);

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
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_langsmith"));
    command.arg("agent").arg("--socket").arg(&socket);
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
