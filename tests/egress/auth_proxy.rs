//! The auth proxy end to end, from a sandbox of the default Debian snapshot: the seed's
//! `proxy.json` applied with `langsmith sandbox create --proxy-config @proxy.json`, and code
//! in the sandbox that calls `https://api.openai.com` with no key at all.
//!
//! `api.openai.com` never leaves this machine: the server pins it with `--resolve` to an
//! HTTPS upstream on loopback whose certificate a test CA signed (`--upstream-ca`). The
//! upstream answers with the headers it was sent, so the test sees exactly what the host
//! added on the way out.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::api::{Api, Exec};
use crate::common::cli::Cli;
use crate::common::echo_upstream::EchoUpstream;
use crate::common::process::{assert_not_on_disk, wait_for};
use crate::common::upstream::{self, TlsUpstream};
use crate::common::{TestServer, host_tool};

const HOST: &str = "api.openai.com";

/// The seed's example, as written (the allow list gains the unmatched TLS host).
fn seed_proxy_json() -> Value {
    json!({
      "rules": [{
          "name": "openai",
          "match_hosts": ["api.openai.com"],
          "match_paths": [],
          "headers": [{
              "name": "Authorization",
              "type": "workspace_secret",
              "value": "Bearer {OPENAI_API_KEY}"
          }],
          "enabled": true
      }],
      "access_control": {"allow_list": ["api.openai.com", "plain.test"], "deny_list": []}
    })
}

fn ok(r: &Exec) -> &str {
    assert_eq!(r.exit_code, 0, "{r:?}");
    r.stdout.trim()
}

/// The values of `header` the upstream reported (one line per request), in order.
fn seen(out: &str, header: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix(&format!("{header}:")))
        .map(|v| v.trim().to_string())
        .collect()
}

fn set_secret(server: &TestServer, value: &str) {
    let out = Cli::new(server)
        .args(&["secrets", "set", "OPENAI_API_KEY", "--value-stdin"])
        .stdin(value)
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
}

fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    format!("@{}", path.display())
}

#[test]
fn code_in_a_sandbox_calls_a_model_api_without_a_key_and_the_host_adds_it() {
    let echo = EchoUpstream::start(&[HOST], 64);
    let plain = TlsUpstream::start(&["plain.test"], "untouched tls", 8);
    let cleartext = upstream::http("cleartext", 8);
    let work = tempfile::tempdir().unwrap();
    let pins = [
        format!("{HOST}:80=127.0.0.1:{cleartext}"),
        format!("plain.test:443=127.0.0.1:{}", plain.port),
    ];
    let args = echo.server_args(work.path(), &[HOST], &pins);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args, &[]);
    let api = Api::new(&server);
    let snapshot = api.default_snapshot_id();

    let first_key = format!("sk-first-{}", uuid::Uuid::new_v4().simple());
    set_secret(&server, &first_key);
    let create = |name: &str, config: &str| {
        Cli::new(&server)
            .args(&["sandbox", "create", name, "--snapshot-id", &snapshot])
            .args(&["--proxy-config", config, "--wait", "--timeout", "300"])
            .run()
    };

    // A rule for a host the allow list leaves out could never apply: refused, nothing made.
    let mut outside = seed_proxy_json();
    outside["access_control"]["allow_list"] = json!(["plain.test"]);
    let refused = create(
        "outside",
        &write_json(work.path(), "outside.json", &outside),
    );
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("rules[0].match_hosts[0]")
            && refused.stderr.contains("not in access_control.allow_list"),
        "{}",
        refused.stderr
    );

    let proxy_json = write_json(work.path(), "proxy.json", &seed_proxy_json());
    let created = create("agent", &proxy_json);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let sb = api.call("GET", "/api/v2/sandboxes/boxes/agent", None).body;
    assert!(!sb.to_string().contains(&first_key));

    // curl with no key (HTTP/2 to the proxy), and with a placeholder the rule replaces, on
    // one kept-alive connection, in HTTP/1.1 too.
    let out = api.exec(&sb, &format!("curl -sS https://{HOST}/v1/models"));
    assert_eq!(
        seen(ok(&out), "authorization"),
        [format!("Bearer {first_key}")]
    );
    for version in ["--http2", "--http1.1"] {
        let out = api.exec(
            &sb,
            &format!(
                "curl -sS {version} -H 'Authorization: Bearer placeholder' \
                 https://{HOST}/v1/a https://{HOST}/v1/b -w 'conns=%{{num_connects}}\\n'"
            ),
        );
        let out = ok(&out);
        assert_eq!(
            seen(out, "authorization"),
            [format!("Bearer {first_key}"), format!("Bearer {first_key}")],
            "{version}: {out}"
        );
        assert!(out.ends_with("conns=0"), "{version}: not kept alive: {out}");
    }
    // A `Connection` header naming the rule's header (hop-by-hop, so dropped on the way)
    // does not take off the header the rule sets.
    let out = api.exec(
        &sb,
        &format!(
            "curl -sS --http1.1 -H 'Connection: authorization' \
             -H 'Authorization: Bearer placeholder' https://{HOST}/v1/models"
        ),
    );
    assert_eq!(
        seen(ok(&out), "authorization"),
        [format!("Bearer {first_key}")]
    );

    // Python requests and Node's fetch validate the opened TLS through the bundle variables.
    let python = api.exec(
        &sb,
        &format!(
            "python3 -c \"import requests; s = requests.Session(); \
             print(s.get('https://{HOST}/v1/models').text); \
             print(s.get('https://{HOST}/v1/chat').text)\""
        ),
    );
    assert_eq!(
        seen(ok(&python), "authorization"),
        [format!("Bearer {first_key}"), format!("Bearer {first_key}")]
    );
    let node = host_tool::install(&api, &sb, "/usr/bin/node", "/opt/node");
    let fetch = api.exec(
        &sb,
        &format!(
            "{node} -e \"fetch('https://{HOST}/v1/models').then(r => r.text())\
             .then(t => console.log(t))\" 2>/dev/null"
        ),
    );
    assert_eq!(
        seen(ok(&fetch), "authorization"),
        [format!("Bearer {first_key}")]
    );

    // A WebSocket upgrade gets the header too, and then carries bytes both ways.
    let websocket = api.exec(
        &sb,
        &format!(
            "python3 -c \"
import socket, ssl
s = ssl.create_default_context().wrap_socket(
    socket.create_connection(('{HOST}', 443), timeout=10), server_hostname='{HOST}')
s.sendall(b'GET /v1/realtime HTTP/1.1\\r\\nHost: {HOST}\\r\\nUpgrade: websocket\\r\\n'
          b'Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n'
          b'Sec-WebSocket-Version: 13\\r\\n\\r\\n')
head = b''
while b'\\r\\n\\r\\n' not in head:
    head += s.recv(1)
print(head.decode().split('\\r\\n')[0])
print([l for l in head.decode().split('\\r\\n') if l.lower().startswith('x-seen')][0])
s.sendall(b'ping')
print(s.recv(4).decode())
\""
        ),
    );
    let lines: Vec<&str> = ok(&websocket).lines().collect();
    assert_eq!(
        lines[0], "HTTP/1.1 101 Switching Protocols",
        "{websocket:?}"
    );
    assert_eq!(
        lines[1].to_ascii_lowercase(),
        format!(
            "x-seen-authorization: bearer {}",
            first_key.to_ascii_lowercase()
        )
    );
    assert_eq!(lines[2], "ping");

    // Never in clear: cleartext HTTP to the matched host is refused; a request naming
    // another host on the opened connection is misdirected.
    let clear = api.exec(
        &sb,
        &format!("curl -sS -w ' %{{http_code}}' http://{HOST}/"),
    );
    let clear = ok(&clear);
    assert!(
        clear.ends_with(" 403") && clear.contains("header rule over cleartext HTTP"),
        "{clear}"
    );
    let misdirected = api.exec(
        &sb,
        &format!("curl -sS -w ' %{{http_code}}' -H 'Host: plain.test' https://{HOST}/v1/models"),
    );
    assert!(ok(&misdirected).ends_with(" 421"), "{misdirected:?}");
    // An unmatched HTTPS host keeps the client's own TLS, end to end.
    host_tool::upload(
        &api,
        sb["dataplane_url"].as_str().unwrap(),
        "/tmp/plain.pem",
        plain.cert_pem.clone().into_bytes(),
    );
    let untouched = api.exec(
        &sb,
        "curl -sS --cacert /tmp/plain.pem https://plain.test/ && \
         python3 -c \"import ssl; print(ssl.get_server_certificate(('plain.test', 443)))\"",
    );
    let untouched = ok(&untouched);
    assert!(
        untouched.starts_with("untouched tls plain.test"),
        "{untouched}"
    );
    assert!(untouched.contains(plain.cert_pem.trim()), "{untouched}");

    // The key is nowhere in the sandbox: not in a file, an environment, a command line.
    let dataplane = sb["dataplane_url"].as_str().unwrap();
    let reversed: String = first_key.chars().rev().collect();
    host_tool::upload(&api, dataplane, "/tmp/needle", reversed.into_bytes());
    host_tool::upload(&api, dataplane, "/tmp/find.py", FIND_NEEDLE.into());
    let search = api.exec(&sb, "python3 /tmp/find.py");
    assert_eq!(
        ok(&search),
        "searched",
        "the key is in the sandbox: {search:?}"
    );

    // The egress log names the rule for each request it set headers on, never the value.
    let log = Cli::new(&server)
        .args(&["sandbox", "egress-log", "agent"])
        .run();
    assert_eq!(log.code, 0, "{}", log.stderr);
    assert!(!log.stdout.contains(&first_key));
    let entries = log.json();
    let injected = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["header_rule"] == "openai" && e["request"] == "GET /v1/models")
        .count();
    assert!(injected >= 3, "{entries:#}");
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["request"] == "GET /v1/realtime"
                && e["status"] == 101
                && e["header_rule"] == "openai")
    );

    // Rotation reaches the sandbox when the configuration is applied again: by an update
    // (which also narrows the rule to /v1/* and adds an opaque header)…
    let second_key = format!("sk-second-{}", uuid::Uuid::new_v4().simple());
    set_secret(&server, &second_key);
    let mut narrowed = seed_proxy_json();
    narrowed["rules"][0]["match_paths"] = json!(["/v1/*"]);
    narrowed["rules"][0]["headers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "X-Account", "type": "opaque", "value": "acct-opaque-7"}));
    let update = Cli::new(&server)
        .args(&["sandbox", "update", "agent", "--proxy-config"])
        .arg(write_json(work.path(), "narrowed.json", &narrowed))
        .run();
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert!(
        !update.stdout.contains("acct-opaque-7"),
        "{}",
        update.stdout
    );
    let got = api.call("GET", "/api/v2/sandboxes/boxes/agent", None).body;
    assert_eq!(
        got["proxy_config"]["rules"][0]["headers"][1]["is_set"],
        true
    );
    let out = api.exec(
        &sb,
        &format!("curl -sS https://{HOST}/v1/models https://{HOST}/v2/models"),
    );
    let out = ok(&out);
    assert_eq!(
        seen(out, "authorization"),
        [format!("Bearer {second_key}"), String::new()],
        "{out}"
    );
    assert_eq!(seen(out, "x-account"), ["acct-opaque-7", ""], "{out}");

    // …or by a start, which reads the secrets anew (the opaque value is kept).
    let third_key = format!("sk-third-{}", uuid::Uuid::new_v4().simple());
    set_secret(&server, &third_key);
    for step in [
        &["sandbox", "stop", "agent"][..],
        &["sandbox", "start", "agent", "--wait"],
    ] {
        let out = Cli::new(&server).args(step).run();
        assert_eq!(out.code, 0, "{step:?}: {}", out.stderr);
    }
    let out = api.exec(&sb, &format!("curl -sS https://{HOST}/v1/models"));
    let out = ok(&out);
    assert_eq!(seen(out, "authorization"), [format!("Bearer {third_key}")]);
    assert_eq!(seen(out, "x-account"), ["acct-opaque-7"]);

    // A capture of the sandbox holds no key either, nor does anything the server keeps.
    let capture = api.call(
        "POST",
        "/api/v2/sandboxes/boxes/agent/snapshot",
        Some(json!({"name": "agent-capture"})),
    );
    assert!(capture.status < 300, "{}", capture.body);
    let captured = capture.body["id"].as_str().unwrap().to_string();
    wait_for("the capture", Duration::from_secs(300), || {
        let r = api.call(
            "GET",
            &format!("/api/v2/sandboxes/snapshots/{captured}"),
            None,
        );
        match r.body["status"].as_str() {
            Some("ready") => Some(()),
            Some("failed") => panic!("capture failed: {}", r.body),
            _ => None,
        }
    });

    // A secret that is gone is named: on update and on start.
    let gone = Cli::new(&server)
        .args(&["secrets", "delete", "OPENAI_API_KEY"])
        .run();
    assert_eq!(gone.code, 0, "{}", gone.stderr);
    let update = Cli::new(&server)
        .args(&["sandbox", "update", "agent", "--proxy-config", &proxy_json])
        .run();
    assert_ne!(update.code, 0);
    assert!(
        update.stderr.contains("OPENAI_API_KEY does not exist"),
        "{}",
        update.stderr
    );
    let stop = Cli::new(&server).args(&["sandbox", "stop", "agent"]).run();
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    let start = Cli::new(&server).args(&["sandbox", "start", "agent"]).run();
    assert_ne!(start.code, 0);
    assert!(
        start.stderr.contains("OPENAI_API_KEY does not exist"),
        "{}",
        start.stderr
    );
    for key in [&first_key, &second_key, &third_key] {
        assert_not_on_disk(&server.state_dir, key);
    }
    assert_not_on_disk(&server.state_dir, "acct-opaque-7");
}

/// Python: look for the reversed needle in `/tmp/needle` in every file, environment and
/// command line of the sandbox; print `searched` or where it is.
const FIND_NEEDLE: &str = "
import os
needle = open('/tmp/needle').read()[::-1].encode()
found = []
for top in ['/']:
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ('/proc', '/sys', '/dev')]
        for f in files:
            path = os.path.join(root, f)
            try:
                if os.path.isfile(path) and needle in open(path, 'rb').read():
                    found.append(path)
            except OSError:
                pass
for pid in os.listdir('/proc'):
    for what in ('environ', 'cmdline'):
        try:
            if needle in open(f'/proc/{pid}/{what}', 'rb').read():
                found.append(f'/proc/{pid}/{what}')
        except OSError:
            pass
print(found or 'searched')
";
