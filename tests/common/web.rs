//! A small web site served inside a sandbox (busybox `httpd` of the tiny image on
//! `127.0.0.1:PORT` in the sandbox's own network namespace), and an HTTP client for the links
//! that lead to it: service URLs and download links are fetched like any browser would,
//! never through a proxy from the environment (the local backend's origins are loopback).

use std::time::Duration;

use serde_json::Value;

use super::api::Api;

/// The page at `/`; it loads `app.js` by a relative URL.
pub const INDEX_HTML: &str = "<!doctype html><html><head><script src=\"app.js\"></script></head><body>hello from the sandbox</body></html>\n";
/// The asset at `/app.js`.
pub const APP_JS: &str = "document.body.dataset.loaded = 'yes';\n";

/// Write the site to `/www` of `sandbox` (its JSON) and serve it on `port` inside it; returns
/// once the server listens.
pub fn serve_site(api: &Api, sandbox: &Value, port: u16) {
    let write = api.exec(
        sandbox,
        &format!(
            "mkdir -p /www && printf '%s' '{INDEX_HTML}' > /www/index.html && \
             printf '%s' \"{APP_JS}\" > /www/app.js"
        ),
    );
    assert_eq!(write.exit_code, 0, "{write:?}");
    // Its own session and /dev/null for stdio: the exec's answer does not wait for it.
    let start = api.exec(
        sandbox,
        &format!(
            "setsid busybox httpd -f -p 127.0.0.1:{port} -h /www </dev/null >/dev/null 2>&1 & \
             for i in $(seq 1 200); do wget -q -O /dev/null http://127.0.0.1:{port}/ 2>/dev/null && exit 0; \
             sleep 0.05; done; exit 1"
        ),
    );
    assert_eq!(start.exit_code, 0, "httpd never listened: {start:?}");
}

/// A client for service and download links: no proxy, no redirects followed (a test looks
/// at each answer), a bound on every request.
pub fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `GET url` with an optional service token: status and body.
pub fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client().get(url);
    if let Some(token) = token {
        req = req.header("X-Langsmith-Sandbox-Service-Token", token);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}
