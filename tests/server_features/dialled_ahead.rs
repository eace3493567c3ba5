//! The next exec's agent connection, dialled ahead: an exec WebSocket takes the connection
//! the server opened after the last one, when it asks for the same output framing and the
//! agent behind it still runs; otherwise it dials its own, and gets what it asked for.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::server::API_KEY;
use crate::common::{TestServer, image};

const LOG: &str = "warn,langsmith::phases=debug,langsmith::server::agent_websocket=debug";

/// Lines of the log at `log` that contain `needle`.
fn lines_with(log: &Path, needle: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Waits for the `count`th line of the log with `needle`, and returns it.
fn nth_line_with(log: &Path, needle: &str, count: usize) -> String {
    wait_for(needle, Duration::from_secs(30), || {
        lines_with(log, needle).get(count - 1).cloned()
    })
}

/// Runs `echo {word}` over the sandbox's exec WebSocket, asking for binary output frames or
/// not, and answers whether stdout came as binary frames.
fn exec(sandbox: &Value, word: &str, binary: bool) -> bool {
    let url = sandbox["dataplane_url"]
        .as_str()
        .unwrap()
        .replacen("http", "ws", 1)
        + "/execute/ws";
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", API_KEY.parse().unwrap());
    if binary {
        request
            .headers_mut()
            .insert("x-langsmith-output-frames", "binary".parse().unwrap());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let execute = json!({"type": "execute", "command": format!("echo {word}")});
        ws.send(Message::text(execute.to_string())).await.unwrap();
        let (mut stdout, mut as_binary) = (Vec::new(), false);
        while let Some(message) = ws.next().await {
            match message.unwrap() {
                Message::Binary(frame) => {
                    as_binary = true;
                    stdout.extend_from_slice(&frame[9..]);
                }
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    match message["type"].as_str() {
                        Some("stdout") => stdout.extend(message["data"].as_str().unwrap().bytes()),
                        Some("exit") => {
                            assert_eq!(message["exit_code"], 0);
                            break;
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let _ = ws.close(None).await;
        assert_eq!(String::from_utf8(stdout).unwrap(), format!("{word}\n"));
        as_binary
    })
}

#[test]
fn an_exec_takes_the_connection_dialled_ahead_only_when_it_fits_and_is_alive() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = TestServer::start_logging(LOG, &log);
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("ahead", image::tiny(), 64 << 20);
    let sandbox = api.ready_sandbox("ahead", &snapshot, json!({}));
    let execs = "/execute/ws:";
    let dialled = "agent connection dialled ahead";

    // The first exec dials; the one after takes what was dialled ahead.
    assert!(!exec(&sandbox, "one", false));
    assert!(nth_line_with(&log, execs, 1).contains("agent connect"));
    nth_line_with(&log, dialled, 1);
    assert!(!exec(&sandbox, "two", false));
    assert!(nth_line_with(&log, execs, 2).contains("agent dialled ahead"));

    // Another framing: the connection kept is not the one asked for.
    nth_line_with(&log, dialled, 2);
    assert!(exec(&sandbox, "three", true), "binary frames, as asked");
    assert!(nth_line_with(&log, execs, 3).contains("agent connect"));

    // A restarted sandbox's agent closed the connection kept for it: a fresh one is dialled.
    nth_line_with(&log, dialled, 3);
    for (action, status) in [("stop", "stopped"), ("start", "ready")] {
        let r = api.call(
            "POST",
            &format!("/api/v2/sandboxes/boxes/ahead/{action}"),
            None,
        );
        assert!((200..300).contains(&r.status), "{action}: {:?}", r.body);
        wait_for(status, Duration::from_secs(60), || {
            let r = api.call("GET", "/api/v2/sandboxes/boxes/ahead", None);
            (r.body["status"] == status).then_some(())
        });
    }
    assert!(exec(&sandbox, "four", true));
    assert!(nth_line_with(&log, execs, 4).contains("agent connect"));
}
