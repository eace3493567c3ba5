//! The bounded replay buffer and the agent's goodbye: what a reconnect gets once the bytes it
//! asks for are gone, and how attached clients learn that the agent is stopping.

use serde_json::json;

use super::exec_sse::Sse;
use super::{TestAgent, Transcript, execute, exit};
use crate::api::exec::{MAX_OUTPUT_CHUNK, ServerMessage};

fn reconnect(command_id: &str, stdout_offset: u64, stderr_offset: u64) -> serde_json::Value {
    json!({"type": "reconnect", "command_id": command_id,
           "stdout_offset": stdout_offset, "stderr_offset": stderr_offset})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_below_the_retained_window_resumes_at_its_oldest_byte() {
    // The smallest window a stream keeps: one message's worth.
    let window = MAX_OUTPUT_CHUNK;
    let agent = TestAgent::start_with(window, std::future::pending());
    let total = 5 * window + 123;
    let message = execute(&format!("head -c {total} /dev/zero | tr '\\0' x"));
    let id = message["command_id"].as_str().unwrap().to_string();
    let mut ws = agent.ws().await;
    ws.send(message).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    drop(ws); // nobody attached: the command runs on and overwrites the window

    let mut tail = agent.ws().await; // attached at the live end, to learn when it finishes
    tail.send(reconnect(&id, u64::MAX, u64::MAX)).await;
    assert_eq!(tail.transcript().await.terminal, exit(0));

    let mut replay = agent.ws().await;
    replay.send(reconnect(&id, 0, 0)).await;
    let t: Transcript = replay.transcript().await;
    let oldest = (total - window) as u64;
    assert_eq!(
        t.first_offsets[0],
        Some(oldest),
        "a gap, never bytes below the request"
    );
    assert_eq!(t.stdout, "x".repeat(window));
    assert_eq!(t.terminal, exit(0));

    // The SSE variant resumes the same way: its first chunk names the oldest retained byte,
    // which the SDK adopts as its cursor.
    let resume = json!({"command_id": id, "stdout_offset": 0, "stderr_offset": 0});
    let mut sse = Sse::post(&agent, "/execute/stream/resume", resume).await;
    assert_eq!(sse.next().await.unwrap().0, "started");
    let (name, first) = sse.next().await.unwrap();
    assert_eq!(
        (name.as_str(), &first["offset"]),
        ("stdout", &json!(oldest))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_agent_closes_sockets_with_1001_and_ends_sse_with_shutting_down() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = TestAgent::start_with(MAX_OUTPUT_CHUNK, async {
        let _ = stopped.await;
    });
    let mut ws = agent.ws().await;
    ws.send(execute("echo up; sleep 300")).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Stdout { .. })
    ));
    let body = json!({"command": "sleep 300", "command_id": "sse-goodbye"});
    let mut sse = Sse::post(&agent, "/execute/stream/start", body).await;
    assert_eq!(sse.next().await.unwrap().0, "started");

    stop.send(()).unwrap();
    assert_eq!(ws.close_code().await, Some(1001));
    let (name, data) = sse.next().await.unwrap();
    assert_eq!(
        (name.as_str(), &data["error_type"]),
        ("error", &json!("ServerShuttingDown"))
    );
}
