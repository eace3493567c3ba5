//! `/upload` and `/download` over a real HTTP connection, including special files at the path.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};

use super::{TestAgent, get, release_fifo};

/// `path` encoded the way httpx does it: form-style, `+` for spaces, `/` escaped.
fn form_encode(path: &str) -> String {
    percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%20", "+")
}

async fn upload(agent: &TestAgent, path: &str, content: &[u8]) -> (u16, Value) {
    let boundary = "agent-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let request = Request::post(format!("/upload?path={}", form_encode(path)))
        .header("host", "agent")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let (response, body) = agent.http(request).await;
    (
        response.status().as_u16(),
        serde_json::from_slice(&body).unwrap(),
    )
}

fn with_header(
    mut request: Request<Full<Bytes>>,
    name: &'static str,
    value: &str,
) -> Request<Full<Bytes>> {
    request.headers_mut().insert(name, value.parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_bytes_round_trip_with_ranges_and_validators() {
    let agent = TestAgent::start().await;
    let content: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let path = agent.path("new dir/sub/data.bin");
    let (status, body) = upload(&agent, &path, &content).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"path": path, "written": 100_000}));
    let replayed = upload(&agent, &path, &content).await; // retries rewrite, never append
    assert_eq!(replayed.0, 200);

    let uri = format!("/download?path={}", form_encode(&path));
    let (response, bytes) = agent.http(get(&uri)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(bytes.as_ref(), content.as_slice());
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(headers.contains_key("last-modified"));
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));

    let (response, bytes) = agent
        .http(with_header(get(&uri), "range", "bytes=10-19"))
        .await;
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()["content-range"], "bytes 10-19/100000");
    assert_eq!(bytes.as_ref(), &content[10..20]);

    let (response, bytes) = agent
        .http(with_header(get(&uri), "range", "bytes=-5"))
        .await;
    assert_eq!(
        (response.status().as_u16(), bytes.as_ref()),
        (206, &content[99_995..])
    );

    let (response, _) = agent
        .http(with_header(get(&uri), "range", "bytes=100000-"))
        .await;
    assert_eq!(response.status(), 416);
    assert_eq!(response.headers()["content-range"], "bytes */100000");

    let stale = with_header(
        with_header(get(&uri), "range", "bytes=0-0"),
        "if-range",
        "\"old\"",
    );
    let (response, bytes) = agent.http(stale).await;
    assert_eq!((response.status().as_u16(), bytes.len()), (200, 100_000));

    let (response, bytes) = agent
        .http(with_header(get(&uri), "if-none-match", &etag))
        .await;
    assert_eq!((response.status().as_u16(), bytes.len()), (304, 0));

    let head = Request::head(&uri)
        .header("host", "agent")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, bytes) = agent.http(head).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "100000");
    assert!(bytes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_files_directories_and_bad_uploads_get_clear_4xx() {
    let agent = TestAgent::start().await;
    let missing = format!("/download?path={}", form_encode(&agent.path("nope")));
    let (response, body) = agent.http(get(&missing)).await;
    assert_eq!(response.status(), 404);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["detail"]["error"], "FileNotFound");

    let dir = format!("/download?path={}", form_encode(&agent.path("")));
    let (response, body) = agent.http(get(&dir)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["detail"]["error"],
        "ReadError"
    );

    let (status, body) = upload(&agent, &agent.path(""), b"x").await;
    assert_eq!(
        (status, body["detail"]["error"].as_str()),
        (400, Some("WriteError"))
    );
    let blocker = agent.path("plain-file");
    std::fs::write(&blocker, b"").unwrap();
    let (status, body) = upload(&agent, &format!("{blocker}/child"), b"x").await;
    assert_eq!(
        (status, body["detail"]["error"].as_str()),
        (400, Some("WriteError"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_is_refused_at_once_and_a_link_inside_the_sandbox_is_followed() {
    let agent = TestAgent::start().await;
    let fifo = agent.fifo("pipe.txt");
    let uri = format!("/download?path={}", form_encode(&fifo));
    // A generous bound on what must be immediate: the failure this test exists to catch is a
    // download waiting without end for a writer nobody will ever open.
    let answered = tokio::time::timeout(Duration::from_secs(60), agent.http(get(&uri))).await;
    let (response, body) = answered.unwrap_or_else(|_| {
        release_fifo(std::path::Path::new(&fifo));
        panic!("the download of a FIFO waited for a writer");
    });
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (response.status().as_u16(), &body["detail"]["error"]),
        (400, &json!("ReadError")),
        "{body}"
    );
    let message = body["detail"]["message"].as_str().unwrap();
    assert!(
        message.contains("is a FIFO; only regular files can be downloaded"),
        "{message}"
    );

    // Inside the sandbox its root is the boundary: a link the caller names is read.
    std::fs::write(agent.path("target.txt"), b"through the link").unwrap();
    std::os::unix::fs::symlink(agent.path("target.txt"), agent.path("link.txt")).unwrap();
    let uri = format!("/download?path={}", form_encode(&agent.path("link.txt")));
    let (response, bytes) = agent.http(get(&uri)).await;
    assert_eq!(
        (response.status().as_u16(), bytes.as_ref()),
        (200, b"through the link".as_slice())
    );
}
