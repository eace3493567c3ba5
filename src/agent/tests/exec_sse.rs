//! The SSE exec variant: start, idempotent restart, resume from offsets, `ack_required` when
//! the retained window is full, and errors shaped like the WebSocket's.

use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::{TestAgent, post_json};
use crate::api::exec::MAX_OUTPUT_CHUNK;

/// Events of one SSE response, read as they arrive.
pub struct Sse {
    body: hyper::body::Incoming,
    pending: Vec<u8>,
}

impl Sse {
    pub async fn post(agent: &TestAgent, uri: &str, body: Value) -> Sse {
        let response = agent.http_streaming(post_json(uri, body)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Sse {
            body: response.into_body(),
            pending: Vec::new(),
        }
    }

    /// The next `(event, data)`, or `None` once the response ended. Comments are skipped.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..end + 2).collect();
                let block = String::from_utf8(block).unwrap();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = Some(value.to_string());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                match name {
                    Some(name) => return Some((name, serde_json::from_str(&data).unwrap())),
                    None => continue, // a `: ping` comment
                }
            }
            let frame = self.body.frame().await?.unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.pending.extend_from_slice(&bytes);
            }
        }
    }
}

/// What a client reassembles from one or more responses.
#[derive(Debug, Default)]
pub struct Received {
    pub pid: u64,
    pub streams: [Vec<u8>; 2],
    pub ends: Vec<(String, u64)>,
    /// `exit`, `error` or `ack_required`, with its data.
    pub last: Option<(String, Value)>,
}

/// Reads one response to its end, checking that output continues exactly at `cursors`.
pub async fn read_response(sse: &mut Sse, cursors: &mut [u64; 2], received: &mut Received) {
    let (name, started) = sse.next().await.expect("an event");
    assert_eq!(name, "started", "{started}");
    received.pid = started["pid"].as_u64().unwrap();
    while let Some((name, data)) = sse.next().await {
        let index = match name.as_str() {
            "stdout" => 0,
            "stderr" => 1,
            "stream_end" => {
                received.ends.push((
                    data["stream"].as_str().unwrap().into(),
                    data["offset"].as_u64().unwrap(),
                ));
                continue;
            }
            _ => {
                received.last = Some((name, data));
                assert!(
                    sse.next().await.is_none(),
                    "the response ends after its last event"
                );
                return;
            }
        };
        assert_eq!(
            data["offset"].as_u64().unwrap(),
            cursors[index],
            "contiguous offsets"
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data["data"].as_str().unwrap())
            .unwrap();
        cursors[index] += bytes.len() as u64;
        received.streams[index].extend_from_slice(&bytes);
    }
    panic!("the response ended without a terminal event");
}

fn start_body(command: &str) -> Value {
    json!({"command": command, "command_id": uuid::Uuid::now_v7().simple().to_string(),
           "shell": "/bin/bash", "timeout_seconds": 60, "idle_timeout_seconds": 300,
           "ttl_seconds": 600})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_streams_raw_bytes_then_stream_ends_and_exit() {
    let agent = TestAgent::start().await;
    let mut sse = Sse::post(
        &agent,
        "/execute/stream/start",
        start_body("printf 'h\\xc3\\xa9\\n'; printf oops >&2; exit 3"),
    )
    .await;
    let (mut cursors, mut got) = ([0, 0], Received::default());
    read_response(&mut sse, &mut cursors, &mut got).await;
    assert_eq!(got.streams, [b"h\xc3\xa9\n".to_vec(), b"oops".to_vec()]);
    assert_eq!(got.ends, [("stdout".into(), 4), ("stderr".into(), 4)]);
    assert_eq!(got.last, Some(("exit".into(), json!({"exit_code": 3}))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_start_attaches_and_resume_continues_from_offsets() {
    let agent = TestAgent::start().await;
    let log = agent.path("runs.log");
    let body = start_body(&format!("echo run >> '{log}'; printf 'line1\\nline2\\n'"));
    let id = body["command_id"].as_str().unwrap().to_string();
    let (mut first, mut again) = (Received::default(), Received::default());
    read_response(
        &mut Sse::post(&agent, "/execute/stream/start", body.clone()).await,
        &mut [0, 0],
        &mut first,
    )
    .await;
    read_response(
        &mut Sse::post(&agent, "/execute/stream/start", body).await,
        &mut [0, 0],
        &mut again,
    )
    .await;
    assert_eq!((first.pid, &first.streams), (again.pid, &again.streams));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "run\n",
        "spawned once"
    );

    let resume = json!({"command_id": id, "stdout_offset": 6, "stderr_offset": 0});
    let mut rest = Received::default();
    read_response(
        &mut Sse::post(&agent, "/execute/stream/resume", resume).await,
        &mut [6, 0],
        &mut rest,
    )
    .await;
    assert_eq!(rest.streams[0], b"line2\n");
    assert_eq!(rest.last, Some(("exit".into(), json!({"exit_code": 0}))));

    let unknown = json!({"command_id": "deadbeef", "stdout_offset": 0, "stderr_offset": 0});
    let (status, answer) = agent.post_json("/execute/stream/resume", unknown).await;
    assert_eq!(
        (status, &answer["detail"]["error"]),
        (404, &json!("CommandNotFound"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_window_asks_for_an_ack_and_nothing_is_lost_or_repeated() {
    // The smallest window a stream keeps: one message's worth.
    let window = MAX_OUTPUT_CHUNK;
    let agent = TestAgent::start_with(window, std::future::pending());
    // Over five windows of distinct lines, so a lost or repeated stretch would show.
    let body = start_body("seq 1 120000");
    let id = body["command_id"].as_str().unwrap().to_string();
    let expected: String = (1..=120000).map(|n| format!("{n}\n")).collect();
    assert!(expected.len() > 4 * window);
    let (mut cursors, mut got) = ([0u64, 0], Received::default());
    let mut sse = Sse::post(&agent, "/execute/stream/start", body).await;
    let mut acks = 0;
    loop {
        read_response(&mut sse, &mut cursors, &mut got).await;
        let (name, data) = got.last.take().unwrap();
        if name != "ack_required" {
            assert_eq!((name.as_str(), data), ("exit", json!({"exit_code": 0})));
            break;
        }
        acks += 1;
        assert_eq!(
            data,
            json!({"stdout_offset": cursors[0], "stderr_offset": cursors[1]})
        );
        let resume =
            json!({"command_id": id, "stdout_offset": cursors[0], "stderr_offset": cursors[1]});
        sse = Sse::post(&agent, "/execute/stream/resume", resume).await;
    }
    assert!(acks >= 4, "the window filled {acks} times");
    assert_eq!(String::from_utf8(got.streams[0].clone()).unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_bad_requests_answer_like_the_websocket() {
    let agent = TestAgent::start().await;
    let mut body = start_body("echo before; sleep 300");
    body["timeout_seconds"] = json!(1);
    let mut got = Received::default();
    read_response(
        &mut Sse::post(&agent, "/execute/stream/start", body).await,
        &mut [0, 0],
        &mut got,
    )
    .await;
    assert_eq!(got.streams[0], b"before\n");
    let (name, data) = got.last.unwrap();
    assert_eq!(
        (name.as_str(), &data["error_type"]),
        ("error", &json!("CommandTimeout"))
    );

    let mut both = start_body("true");
    both["env"] = json!({"A": "1"});
    both["run_config"] = json!({"env_vars": {"B": "2"}});
    let mut refused = Received::default();
    let mut sse = Sse::post(&agent, "/execute/stream/start", both).await;
    let (name, data) = sse.next().await.unwrap();
    refused.last = Some((name, data));
    assert_eq!(refused.last.unwrap().1["error_type"], "InvalidRequest");

    let (status, answer) = agent
        .post_json("/execute/stream/start", json!({"shell": "/bin/sh"}))
        .await;
    assert_eq!(
        (status, &answer["detail"]["error"]),
        (400, &json!("InvalidRequest"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_reattaching_releases_an_abandoned_sse_hold() {
    let window = MAX_OUTPUT_CHUNK;
    let agent = TestAgent::start_with(window, std::future::pending());
    let body = start_body("seq 1 60000");
    let id = body["command_id"].as_str().unwrap().to_string();
    let (mut cursors, mut got) = ([0u64, 0], Received::default());
    read_response(
        &mut Sse::post(&agent, "/execute/stream/start", body).await,
        &mut cursors,
        &mut got,
    )
    .await;
    assert_eq!(got.last.unwrap().0, "ack_required"); // and the SSE client never resumes

    let mut ws = agent.ws().await;
    ws.send(json!({"type": "reconnect", "command_id": id,
                   "stdout_offset": cursors[0], "stderr_offset": 0}))
        .await;
    let t = ws.transcript().await;
    assert_eq!(t.first_offsets[0], Some(cursors[0]));
    let expected: String = (1..=60000).map(|n| format!("{n}\n")).collect();
    let sse_part = String::from_utf8(got.streams[0].clone()).unwrap();
    assert_eq!(sse_part + t.stdout.as_str(), expected);
    assert_eq!(t.terminal, super::exit(0));
}
