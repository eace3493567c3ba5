//! SSE exec on the wire through the real server's proxy: streamed as it happens,
//! and ended with `ServerShuttingDown` (then resumed on the next server) when the server stops.

use std::io::{BufRead, BufReader};

use base64::Engine;
use serde_json::{Value, json};

use super::wire::{Reap, sandbox};
use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::server::API_KEY;

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
