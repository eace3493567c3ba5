//! Service URLs and download links through the official Python SDK (unmodified):
//! `tests/sdk/service_urls.py` and `tests/sdk/download_urls.py` assert the behaviour.

use crate::common::{TestServer, image, sdk};

/// Proxy variables would route 127.77.x.y away from this machine; httpx ignores empty ones.
pub(crate) const NO_PROXY: &[(&str, &str)] = &[
    ("HTTP_PROXY", ""),
    ("HTTPS_PROXY", ""),
    ("ALL_PROXY", ""),
    ("http_proxy", ""),
    ("https_proxy", ""),
    ("all_proxy", ""),
    ("NO_PROXY", "*"),
    ("no_proxy", "*"),
];

/// The default snapshot (Debian, with Python) serves `python3 -m http.server`.
#[test]
fn sdk_service_urls_reach_a_web_server_in_the_sandbox() {
    let server = TestServer::start();
    let out = sdk::run_script(&server, "service_urls.py", NO_PROXY);
    assert!(out.contains("sdk service urls ok"), "{out}");
}

#[test]
fn sdk_download_links_serve_one_file_with_pinned_headers() {
    let server = TestServer::start();
    let mut env = NO_PROXY.to_vec();
    env.push(("DOCKER_IMAGE", image::tiny()));
    let out = sdk::run_script(&server, "download_urls.py", &env);
    assert!(out.contains("sdk download urls ok"), "{out}");
}
