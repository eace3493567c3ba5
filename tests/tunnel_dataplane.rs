//! `{dataplane_url}/tunnel` through the real server: the upgrade needs the API key, wakes a
//! stopped sandbox, and the agent's internal routes (`/_…`) are not reachable from outside.
//! The bytes a tunnel carries are tested with the CLI and the official SDK (`tunnel_cli`,
//! `sdk_tunnel`) and, stream by stream, in the agent's own tests.

use serde_json::json;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::common::api::Api;
use crate::common::server::API_KEY;
use crate::common::{TestServer, image};

/// The HTTP status the tunnel upgrade gets with `key` (101 when it is accepted).
fn upgrade_status(dataplane_url: &str, key: Option<&str>) -> u16 {
    let url = format!("{}/tunnel", dataplane_url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("X-Api-Key", key.parse().unwrap());
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        match tokio_tungstenite::connect_async(request).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(e) => panic!("tunnel upgrade failed without an answer: {e}"),
        }
    })
}

#[test]
fn the_tunnel_upgrade_needs_the_key_and_wakes_a_stopped_sandbox() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("tun", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("tun", &snapshot, json!({}));
    let dp = sb["dataplane_url"].as_str().unwrap();

    assert_eq!(upgrade_status(dp, None), 401);
    assert_eq!(upgrade_status(dp, Some("not-the-key")), 401);
    assert_eq!(upgrade_status(dp, Some(API_KEY)), 101);

    // The agent's internal routes stay internal, with or without an upgrade.
    let internal = api
        .raw()
        .get(format!("{dp}/_connect?port=22"))
        .header("X-Api-Key", API_KEY)
        .send()
        .unwrap();
    assert_eq!(internal.status().as_u16(), 404);

    let r = api.call("POST", "/api/v2/sandboxes/boxes/tun/stop", None);
    assert!(r.status < 300, "{:?}", r.body);
    let r = api.call("GET", "/api/v2/sandboxes/boxes/tun", None);
    assert_eq!(r.body["status"], "stopped");
    assert_eq!(upgrade_status(dp, Some(API_KEY)), 101);
    let r = api.call("GET", "/api/v2/sandboxes/boxes/tun", None);
    assert_eq!(r.body["status"], "ready", "a tunnel wakes its sandbox");
    api.delete_sandbox("tun");
}

/// A tunnel holds its sandbox active while its TCP connection lasts, so the server must
/// notice a client that vanished without closing: every accepted connection probes with
/// TCP keepalive (seen by the kernel's own socket listing).
#[test]
fn accepted_connections_probe_with_keepalive() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    // An answer means the server accepted (and tuned) the connection.
    tcp.write_all(b"GET /api/v2/sandboxes/boxes HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head[..9], b"HTTP/1.1 ");
    let server_port = addr.rsplit(':').next().unwrap();
    let client_port = tcp.local_addr().unwrap().port();
    let filter = format!("( sport = :{server_port} and dport = :{client_port} )");
    let out = std::process::Command::new("ss")
        .args(["-tnoH", "state", "established", &filter])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        listing.contains("timer:(keepalive,"),
        "no keepalive on the server's side: {listing:?}"
    );
}
