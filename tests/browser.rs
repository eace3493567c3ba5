//! A real headless Chromium opens a service URL's `browser_url`: the token becomes a cookie,
//! the page and its relative `app.js` load from the sandbox, and the script's text is in the
//! DOM. The same link works again after the server restarts (the key and the origin's
//! loopback address are kept in the state directory).

use std::process::Command;

use crate::common::process::run_ok;
use crate::common::{TestServer, sdk};
use crate::sdk_service::NO_PROXY;

/// The DOM Chromium rendered for `url`.
fn rendered_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-proxy-server",
        "--no-first-run",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg("--dump-dom")
    .arg(url);
    for (key, value) in NO_PROXY {
        cmd.env(key, value);
    }
    run_ok(&mut cmd)
}

#[test]
fn headless_chromium_renders_a_page_served_in_the_sandbox() {
    let mut server = TestServer::start();
    let mut site = sdk::spawn_script(&server, "browser_site.py", NO_PROXY);
    let url = site.wait_line("URL ")["URL ".len()..].to_string();
    assert!(url.starts_with("http://127.77."), "{url}");

    let dom = rendered_dom(&url);
    assert!(dom.contains("rendered by app.js in the sandbox"), "{dom}");

    server.stop_and_restart();
    let again = rendered_dom(&url);
    assert!(again.contains("rendered by app.js in the sandbox"), "{again}");

    site.send_line("done");
    let out = site.finish();
    assert!(out.contains("browser site ok"), "{out}");
}
