//! The legacy one-shot `POST /execute`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};

use super::{TestAgent, get};

async fn post_execute(agent: &TestAgent, body: Value) -> (u16, Value) {
    let request = Request::post("/execute")
        .header("host", "agent")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let (response, body) = agent.http(request).await;
    (
        response.status().as_u16(),
        serde_json::from_slice(&body).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argv_runs_without_a_shell_and_strings_run_with_one() {
    let agent = TestAgent::start().await;
    let (status, body) = post_execute(
        &agent,
        json!({"command": ["printf", "%s|", "a b", "$HOME"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"stdout": "a b|$HOME|", "stderr": "", "exit_code": 0})
    );

    let (status, body) = post_execute(
        &agent,
        json!({"command": "echo $GREETING; echo oops >&2; exit 3", "env": {"GREETING": "hi"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"stdout": "hi\n", "stderr": "oops\n", "exit_code": 3})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_answers_127_like_a_shell() {
    let agent = TestAgent::start().await;
    let (status, body) = post_execute(&agent, json!({"command": ["no-such-program-xyz"]})).await;
    assert_eq!(status, 200);
    assert_eq!(body["exit_code"], 127);
    assert!(
        body["stderr"]
            .as_str()
            .unwrap()
            .contains("no-such-program-xyz: command not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_answers_408_command_timeout() {
    let agent = TestAgent::start().await;
    let (status, body) = post_execute(&agent, json!({"command": "sleep 300", "timeout": 1})).await;
    assert_eq!(status, 408);
    assert_eq!(body["detail"]["error"], "CommandTimeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_envelope_and_healthz_is_ok() {
    let agent = TestAgent::start().await;
    let (status, body) = post_execute(&agent, json!({"command": "true", "cwd": "/no/such"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"]["error"], "CommandError");
    let (status, body) = post_execute(&agent, json!({"nope": 1})).await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"]["error"], "InvalidRequest");

    let (response, body) = agent.http(get("/healthz")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
}
