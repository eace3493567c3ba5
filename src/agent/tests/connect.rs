//! `GET /_connect?port=P`: a raw pipe to a listening port, 502 when nothing listens.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TestAgent;
use crate::api::service::{CONNECT_PATH, CONNECT_UPGRADE};

fn connect_request(port: u16, upgrade: bool) -> Request<Full<Bytes>> {
    let mut request = Request::get(format!("{CONNECT_PATH}?port={port}")).header("host", "agent");
    if upgrade {
        request = request
            .header("upgrade", CONNECT_UPGRADE)
            .header("connection", "upgrade");
    }
    request.body(Full::new(Bytes::new())).unwrap()
}

/// Sends `request` on a connection that can be upgraded.
async fn send(
    agent: &TestAgent,
    request: Request<Full<Bytes>>,
) -> hyper::Response<hyper::body::Incoming> {
    let stream = tokio::net::UnixStream::connect(&agent.socket)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection.with_upgrades());
    sender.send_request(request).await.unwrap()
}

#[tokio::test]
async fn a_listening_port_becomes_a_byte_pipe_both_ways() {
    let agent = TestAgent::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let echo = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 5];
        conn.read_exact(&mut buf).await.unwrap();
        conn.write_all(&buf).await.unwrap();
    });
    let response = send(&agent, connect_request(port, true)).await;
    assert_eq!(response.status(), 101);
    let mut pipe = TokioIo::new(hyper::upgrade::on(response).await.unwrap());
    pipe.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    pipe.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    echo.await.unwrap();
    // The service closed its end: the pipe ends too.
    assert_eq!(pipe.read(&mut back).await.unwrap(), 0);
}

#[tokio::test]
async fn a_closed_port_is_a_502_and_a_plain_request_a_400() {
    let agent = TestAgent::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let response = send(&agent, connect_request(closed, true)).await;
    assert_eq!(response.status(), 502);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["detail"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Service is not reachable"),
        "{body}"
    );
    let response = send(&agent, connect_request(closed, false)).await;
    assert_eq!(response.status(), 400);
}
