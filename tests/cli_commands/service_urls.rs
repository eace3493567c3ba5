//! `sandbox service-url` and `sandbox generate-download-url` against the real server: the
//! printed objects, the minted links fetched like a browser would, and the argument errors
//! that come before any request.

use serde_json::{Value, json};

use super::{failure, ok};
use crate::common::api::Api;
use crate::common::cli::Cli;
use crate::common::web::{APP_JS, INDEX_HTML, client, get, serve_site};
use crate::common::{TestServer, image};

const PORT: u16 = 8000;

/// A ready sandbox of the tiny image serving the test site on [`PORT`].
fn web_sandbox(api: &Api, name: &str) -> Value {
    let snapshot = api.ready_snapshot(&format!("{name}-snap"), image::tiny(), 64 << 20);
    let sb = api.ready_sandbox(name, &snapshot, json!({}));
    serve_site(api, &sb, PORT);
    sb
}

/// Seconds from now until an RFC 3339 `…Z` time.
fn seconds_until(rfc3339: &str) -> i64 {
    let at = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("expires_at {rfc3339:?}: {e}"));
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
}

/// `langsmith sandbox service-url svc --port PORT EXTRA…`, which must succeed: its JSON.
fn service_url(server: &TestServer, port: &str, extra: &[&str]) -> Value {
    let mut args = vec!["sandbox", "service-url", "svc", "--port", port];
    args.extend_from_slice(extra);
    ok(server, &args).json()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn service_url_prints_a_token_link_that_serves_the_sandbox_port() {
    let server = TestServer::start();
    let api = Api::new(&server);
    web_sandbox(&api, "svc");

    let out = ok(
        &server,
        &["sandbox", "service-url", "svc", "--port", "8000"],
    );
    let link = out.json();
    let mut printed = keys(&link);
    printed.sort();
    assert_eq!(
        printed,
        [
            "browser_url",
            "embed_url",
            "expires_at",
            "service_url",
            "token"
        ],
        "{}",
        out.stdout
    );
    let expires = link["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z'), "{expires}");
    let left = seconds_until(expires);
    assert!(
        (500..=600).contains(&left),
        "default lifetime 600 s: {left}"
    );
    let (service, token) = (
        link["service_url"].as_str().unwrap(),
        link["token"].as_str().unwrap(),
    );
    assert!(service.ends_with('/'), "{service}");
    assert!(
        link["browser_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{service}_svc/auth?token=")),
        "{link}"
    );

    assert_eq!(get(service, Some(token)), (200, INDEX_HTML.to_string()));
    assert_eq!(
        get(&format!("{service}app.js"), Some(token)),
        (200, APP_JS.to_string())
    );
    let (status, body) = get(service, None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authentication required"), "{body}");

    // A shorter lifetime; a port where nothing listens is minted but not reachable.
    let short = service_url(&server, "9", &["--expires-in-seconds", "60"]);
    assert!(seconds_until(short["expires_at"].as_str().unwrap()) <= 60);
    let (status, body) = get(
        short["service_url"].as_str().unwrap(),
        short["token"].as_str(),
    );
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("Service is not reachable"), "{body}");

    // Login mode: no token, and tokens for that port are refused until `--access off`.
    let grant = service_url(&server, "8000", &["--access", "workspace"]);
    assert_eq!(grant["access"], "workspace", "{grant}");
    assert!(grant.get("token").is_none(), "{grant}");
    let refused = failure(
        &server,
        &["sandbox", "service-url", "svc", "--port", "8000"],
    );
    assert!(refused.contains("HTTP 409"), "{refused}");
    let again = service_url(&server, "8000", &["--access", "off"]);
    assert!(
        again["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{again}"
    );

    let missing = failure(
        &server,
        &["sandbox", "service-url", "nope", "--port", "8000"],
    );
    assert!(missing.contains("HTTP 404"), "{missing}");
    api.delete_sandbox("svc");
}

#[test]
fn generate_download_url_prints_a_link_to_one_file() {
    let server = TestServer::start();
    let api = Api::new(&server);
    web_sandbox(&api, "dl");

    let out = ok(
        &server,
        &[
            "sandbox",
            "generate-download-url",
            "dl",
            "--path",
            "/www/app.js",
        ],
    );
    let link = out.json();
    let mut printed = keys(&link);
    printed.sort();
    assert_eq!(
        printed,
        ["download_url", "expires_at", "token"],
        "{}",
        out.stdout
    );
    assert_eq!(link["expires_at"], Value::Null, "never expires by default");
    let url = link["download_url"].as_str().unwrap();
    let resp = client().get(url).send().unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(resp.text().unwrap(), APP_JS);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"app.js\""
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox"),
        "{headers:?}"
    );

    let pinned = ok(
        &server,
        &[
            "sandbox",
            "generate-download-url",
            "dl",
            "--path",
            "/www/index.html",
            "--expires-in-seconds",
            "120",
            "--content-type",
            "text/plain",
            "--content-disposition",
            "inline",
        ],
    )
    .json();
    let left = seconds_until(pinned["expires_at"].as_str().unwrap());
    assert!((0..=120).contains(&left), "{pinned}");
    let resp = client()
        .get(pinned["download_url"].as_str().unwrap())
        .header("Range", "bytes=0-14")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline"),
        "{:?}",
        resp.headers()
    );
    assert_eq!(resp.text().unwrap(), &INDEX_HTML[..15]);
    api.delete_sandbox("dl");
}

/// The CLI pointed at an address where nothing listens: an argument error must come first,
/// or the message would be a connection failure instead.
fn bad_input(args: &[&str]) -> String {
    let out = Cli::bare()
        .env("LANGSMITH_ENDPOINT", "http://127.0.0.1:1")
        .env("LANGSMITH_API_KEY", "unused")
        .env_remove("LANGSMITH_WORKSPACE_ID")
        .args(args)
        .run();
    assert_eq!(out.code, 1, "{args:?} should fail: {}", out.stdout);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let line: Value = serde_json::from_str(out.stderr.trim_end())
        .unwrap_or_else(|e| panic!("one JSON error line ({e}): {}", out.stderr));
    line["error"].as_str().unwrap().to_string()
}

#[test]
fn bad_arguments_fail_before_any_request() {
    let svc = |extra: &[&str]| {
        let mut args = vec!["sandbox", "service-url"];
        args.extend_from_slice(extra);
        bad_input(&args)
    };
    assert_eq!(svc(&["box"]), r#"required flag(s) "port" not set"#);
    assert_eq!(svc(&["--port", "80"]), "accepts 1 arg(s), received 0");
    for port in ["0", "65536", "-1"] {
        assert_eq!(
            svc(&["box", &format!("--port={port}")]),
            format!("--port must be between 1 and 65535 (got {port})")
        );
    }
    assert_eq!(
        svc(&["box", "--port", "x"]),
        r#"invalid argument "x" for "--port" flag: strconv.ParseInt: parsing "x": invalid syntax"#
    );
    for secs in ["0", "86401"] {
        assert_eq!(
            svc(&["box", "--port", "80", "--expires-in-seconds", secs]),
            format!("--expires-in-seconds must be between 1 and 86400 (got {secs})")
        );
    }
    assert_eq!(
        svc(&["box", "--port", "80", "--access", "public"]),
        r#"--access must be restricted, workspace, or off (got "public")"#
    );
    assert_eq!(
        svc(&[
            "box",
            "--port",
            "80",
            "--access",
            "restricted",
            "--expires-in-seconds",
            "60"
        ]),
        "--expires-in-seconds does not apply to --access restricted: login links do not expire"
    );

    let dl = |extra: &[&str]| {
        let mut args = vec!["sandbox", "generate-download-url"];
        args.extend_from_slice(extra);
        bad_input(&args)
    };
    assert_eq!(dl(&["box"]), r#"required flag(s) "path" not set"#);
    assert_eq!(dl(&["box", "--path", ""]), "--path must not be empty");
    assert_eq!(
        dl(&["box", "--path", "/a", "--expires-in-seconds", "0"]),
        "--expires-in-seconds must be at least 1 (got 0)"
    );
    assert_eq!(
        dl(&["box", "--path", "/a", "--content-disposition", "download"]),
        r#"--content-disposition must be attachment or inline (got "download")"#
    );
    assert_eq!(
        dl(&["box", "--path", "/a", "--content-type", ""]),
        "--content-type must not be empty"
    );
}

/// The same links from a script: `Sandbox.service_url`, `download_url`, the grant listing and
/// its revocation, fetched with `http_get`.
#[test]
fn scripts_mint_fetch_list_and_revoke_links() {
    let server = TestServer::start();
    let api = Api::new(&server);
    web_sandbox(&api, "rhai");
    let script = r#"
        let sb = sandbox(args.argv[0]);
        let svc = sb.service_url(8000, #{ expires_in_seconds: 120 });
        let auth = #{ headers: #{ "X-Langsmith-Sandbox-Service-Token": svc.token } };
        let page = http_get(svc.service_url, auth);
        let asset = http_get(`${svc.service_url}app.js`, auth);
        let anonymous = http_get(svc.service_url);
        let link = sb.download_url("/www/index.html", #{ content_disposition: "inline" });
        let file = http_get(link.download_url);
        let login = sb.service_url(8080, #{ access: "restricted" });
        let before = sb.service_urls();
        sb.revoke_service_urls(8080);
        let after = sb.service_urls();
        #{
            svc_keys: svc.keys(), page: page.body, page_status: page.status, asset: asset.body,
            anonymous: anonymous.status, dl: file.body, dl_status: file.status,
            dl_disposition: file.headers["content-disposition"], dl_expires: link.expires_at,
            login_access: login.access, login_token: login.token,
            before: before.map(|g| `${g.port}:${g.access}`),
            after: after.map(|g| `${g.port}:${g.access}`),
        }
    "#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.rhai");
    std::fs::write(&file, script).unwrap();
    let out = Cli::new(&server).arg("run").arg(&file).arg("rhai").run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    let mut svc_keys: Vec<&str> = r["svc_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    svc_keys.sort();
    assert_eq!(
        svc_keys,
        [
            "browser_url",
            "embed_url",
            "expires_at",
            "service_url",
            "token"
        ]
    );
    assert_eq!(r["page_status"], 200, "{r}");
    assert_eq!(r["page"], INDEX_HTML);
    assert_eq!(r["asset"], APP_JS);
    assert_eq!(r["anonymous"], 401);
    assert_eq!(r["dl_status"], 200, "{r}");
    assert_eq!(r["dl"], INDEX_HTML);
    assert!(
        r["dl_disposition"].as_str().unwrap().starts_with("inline"),
        "{r}"
    );
    assert_eq!(r["dl_expires"], Value::Null);
    assert_eq!(r["login_access"], "restricted");
    assert_eq!(r["login_token"], Value::Null);
    let listed = |key: &str| -> Vec<String> {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect()
    };
    let before = listed("before");
    assert!(before.contains(&"8000:token".to_string()), "{before:?}");
    assert!(
        before.contains(&"8080:restricted".to_string()),
        "{before:?}"
    );
    assert!(
        !listed("after").iter().any(|g| g.starts_with("8080:")),
        "{r}"
    );
    api.delete_sandbox("rhai");
}
