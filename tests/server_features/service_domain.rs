//! `--service-domain`: service URLs and download links as host names under one domain,
//! routed by `Host` on the main listener (a real client resolving the names to the server,
//! as wildcard DNS would), never falling through to the API.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use crate::common::api::Api;
use crate::common::{TestServer, image};

#[test]
fn a_service_domain_routes_services_and_downloads_by_host() {
    let server = TestServer::start_with(&["--service-domain", "svc.test"], &[]);
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("tiny", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("web", &snapshot, json!({}));
    let id = sb["id"].as_str().unwrap();
    // busybox httpd binds, then daemonizes: the port is open once the command returns.
    let started = api.exec(
        &sb,
        "mkdir -p /www && echo hello-by-host > /www/index.html && \
         busybox httpd -p 127.0.0.1:8000 -h /www",
    );
    assert_eq!(started.exit_code, 0, "{started:?}");

    let listen: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let service_host = format!("{id}--8000.svc.test");
    let download_host = format!("{id}--dl.svc.test");
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .resolve(&service_host, listen)
        .resolve(&download_host, listen)
        .build()
        .unwrap();

    let minted = api.call(
        "POST",
        "/api/v2/sandboxes/boxes/web/service-url",
        Some(json!({"port": 8000})),
    );
    assert_eq!(minted.status, 200, "{:?}", minted.body);
    let service_url = minted.body["service_url"].as_str().unwrap();
    assert_eq!(
        service_url,
        format!("http://{service_host}:{}/", listen.port())
    );
    let token = minted.body["token"].as_str().unwrap();
    let page = client
        .get(service_url)
        .header("X-Langsmith-Sandbox-Service-Token", token)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().unwrap(), "hello-by-host\n");

    // A service host never serves the API, even with the key.
    let api_through_service = client
        .get(format!("{service_url}api/v2/sandboxes/boxes"))
        .header("X-Api-Key", crate::common::server::API_KEY)
        .send()
        .unwrap();
    assert_eq!(api_through_service.status(), 401);

    let link = api.call(
        "POST",
        "/api/v2/sandboxes/boxes/web/download-url",
        Some(json!({"path": "/www/index.html"})),
    );
    assert_eq!(link.status, 200, "{:?}", link.body);
    let download_url = link.body["download_url"].as_str().unwrap();
    assert!(
        download_url.starts_with(&format!("http://{download_host}:{}/", listen.port())),
        "{download_url}"
    );
    let file = client.get(download_url).send().unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.text().unwrap(), "hello-by-host\n");

    api.delete_sandbox("web");
}
