//! `GET /_connect?port=P` with `Upgrade: langsmith-tcp`: the server's service proxy asks the
//! agent for a raw TCP connection to `127.0.0.1:P` inside this sandbox. The agent dials first
//! and answers 101 only once the port accepted, so "nothing listens" is a plain 502 JSON
//! error the server can pass on; after the 101 the connection is a byte pipe both ways.
//!
//! Only the server reaches the agent's socket; the data plane refuses paths starting with
//! `_`, so clients cannot call this through `{dataplane_url}` (service URLs are the way in).

use axum::extract::{Query, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::app::ApiError;
use super::port_dial;
use crate::api::error::kind;
use crate::api::service::CONNECT_UPGRADE as UPGRADE_PROTOCOL;

#[derive(Deserialize)]
pub struct ConnectQuery {
    port: u16,
}

pub async fn connect(
    query: Result<Query<ConnectQuery>, axum::extract::rejection::QueryRejection>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let Ok(Query(ConnectQuery { port })) = query else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            kind::INVALID_REQUEST,
            "pass the port as ?port=<1-65535>",
        ));
    };
    let asks_for_pipe = req.headers().get(header::UPGRADE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(UPGRADE_PROTOCOL.as_bytes())
    });
    if port == 0 || !asks_for_pipe {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            kind::INVALID_REQUEST,
            format!("send Upgrade: {UPGRADE_PROTOCOL} and a port between 1 and 65535"),
        ));
    }
    let service = port_dial::dial(port).await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            kind::SERVICE_UNREACHABLE,
            format!("Service is not reachable: nothing accepted a connection on port {port} ({e})"),
        )
    })?;
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut client = TokioIo::new(upgraded);
        let mut service = service;
        // Either side ending ends the pipe; the task owns both ends, so nothing outlives it.
        let _ = tokio::io::copy_bidirectional(&mut client, &mut service).await;
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    Ok(resp)
}
