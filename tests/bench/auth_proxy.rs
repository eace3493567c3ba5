//! Auth proxy benchmark (`cargo bench --bench auth_proxy`, as root: it starts the real server
//! and a sandbox of the default Debian snapshot): HTTPS requests to a host a header rule
//! matches (the proxy opens the TLS, sets the header, and makes its own TLS connection on),
//! against requests to a host no rule matches (spliced end to end) and the same requests
//! made directly on the host, all in the same run, to the same loopback HTTPS upstream.
//! Prints a table with ratios; asserts no times.
//!
//! One Python program (`http.client`, the same interpreter version inside and outside) makes
//! every request: first `N` requests on one kept-alive connection (requests per second),
//! then `M` requests each on a new connection (the added latency of a handshake with the
//! proxy's minted certificate and of its own handshake upstream).

#[path = "../common/mod.rs"]
mod common;

use std::process::Command;

use common::api::Api;
use common::echo_upstream::EchoUpstream;
use common::{TestServer, host_tool};
use serde_json::json;

const MATCHED: &str = "api.bench.test";
const UNMATCHED: &str = "plain.bench.test";

/// argv: host port cafile N M; prints seconds per kept-alive request and per new connection.
const CLIENT: &str = r#"
import http.client, ssl, sys, time
host, port, cafile, n, m = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
context = ssl.create_default_context(cafile=None if cafile == '-' else cafile)
def get(conn):
    conn.request('GET', '/v1/models')
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (response.status, body)
    return body
conn = http.client.HTTPSConnection(host, port, context=context)
get(conn)
start = time.perf_counter()
for _ in range(n):
    get(conn)
kept_alive = (time.perf_counter() - start) / n
conn.close()
start = time.perf_counter()
for _ in range(m):
    conn = http.client.HTTPSConnection(host, port, context=context)
    body = get(conn)
    conn.close()
new_connection = (time.perf_counter() - start) / m
print(kept_alive, new_connection)
print(body.decode().splitlines()[0])
"#;

struct Run {
    kept_alive_s: f64,
    new_connection_s: f64,
    /// The first line the upstream answered: the `authorization` it saw.
    seen: String,
}

fn parse(out: &str) -> Run {
    let mut lines = out.lines();
    let mut times = lines.next().expect("times").split_whitespace();
    let mut next = || times.next().unwrap().parse::<f64>().unwrap();
    Run {
        kept_alive_s: next(),
        new_connection_s: next(),
        seen: lines.next().unwrap_or_default().trim().to_string(),
    }
}

fn main() {
    // `cargo test --all-targets` runs this too (without `--bench`): a quick smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    let (n, m) = if benching { (2000, 200) } else { (20, 5) };
    let echo = EchoUpstream::start(&[MATCHED, UNMATCHED, "127.0.0.1"], 4 * m + 64);
    let work = tempfile::tempdir().unwrap();
    let client = work.path().join("client.py");
    std::fs::write(&client, CLIENT).unwrap();
    let ca = work.path().join("upstream-ca.pem");
    let args = echo.server_args(work.path(), &[MATCHED, UNMATCHED], &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args, &[]);
    let api = Api::new(&server);
    let config = json!({
        "rules": [{"name": "bench", "match_hosts": [MATCHED],
                   "headers": [{"name": "Authorization", "type": "plaintext",
                                "value": "Bearer bench"}]}],
        "access_control": {"allow_list": [MATCHED, UNMATCHED]},
    });
    let sb = api.default_sandbox_with("auth-bench", json!({"vcpus": 2, "proxy_config": config}));
    let dataplane = sb["dataplane_url"].as_str().unwrap();
    host_tool::upload(&api, dataplane, "/tmp/client.py", CLIENT.into());
    host_tool::upload(
        &api,
        dataplane,
        "/tmp/ca.pem",
        echo.ca_pem.clone().into_bytes(),
    );

    let port = echo.port.to_string();
    let direct = Command::new("python3")
        .arg(&client)
        .args(["127.0.0.1", &port, ca.to_str().unwrap()])
        .args([n.to_string(), m.to_string()])
        .output()
        .unwrap();
    assert!(direct.status.success(), "{direct:?}");
    let direct = parse(&String::from_utf8_lossy(&direct.stdout));
    let in_sandbox = |host: &str, cafile: &str| {
        let r = api.exec(
            &sb,
            &format!("python3 /tmp/client.py {host} 443 {cafile} {n} {m}"),
        );
        assert_eq!(r.exit_code, 0, "{r:?}");
        parse(&r.stdout)
    };
    let spliced = in_sandbox(UNMATCHED, "/tmp/ca.pem");
    // The egress CA through the system store: the sandbox trusts it like any client would.
    let intercepted = in_sandbox(MATCHED, "-");
    assert_eq!(direct.seen, "authorization:");
    assert_eq!(spliced.seen, "authorization:");
    assert_eq!(intercepted.seen, "authorization: Bearer bench");

    println!(
        "\n{:<42} {:>9} {:>9} {:>11} {:>9} {:>12} {:>12}",
        "", "direct", "spliced", "intercepted", "spl/dir", "inter/dir", "inter/spl"
    );
    let row = |what: &str, d: f64, s: f64, i: f64, digits: usize| {
        println!(
            "{what:<42} {d:>9.digits$} {s:>9.digits$} {i:>11.digits$} {:>8.0}% {:>11.0}% {:>11.0}%",
            100.0 * s / d,
            100.0 * i / d,
            100.0 * i / s,
        );
    };
    let rps = |r: &Run| 1.0 / r.kept_alive_s;
    let ms = |s: f64| s * 1000.0;
    row(
        &format!("requests/s, one kept-alive connection ({n})"),
        rps(&direct),
        rps(&spliced),
        rps(&intercepted),
        0,
    );
    row(
        "ms per request, kept alive (mean)",
        ms(direct.kept_alive_s),
        ms(spliced.kept_alive_s),
        ms(intercepted.kept_alive_s),
        3,
    );
    row(
        &format!("ms per new connection + request ({m}, mean)"),
        ms(direct.new_connection_s),
        ms(spliced.new_connection_s),
        ms(intercepted.new_connection_s),
        3,
    );
    println!(
        "(direct: the client on the host straight to the loopback upstream; spliced: from the \
         sandbox to a host no rule matches, through the DNS stub and the proxy's splice, TLS \
         end to end; intercepted: to a host a rule matches, TLS opened by the proxy with a \
         minted certificate, the header set, a second TLS connection upstream. For requests/s \
         the ratios are throughput against the baseline, for times time against the baseline. \
         Opening adds {:.3} ms per kept-alive request and {:.3} ms per new connection over \
         splicing.)",
        ms(intercepted.kept_alive_s - spliced.kept_alive_s),
        ms(intercepted.new_connection_s - spliced.new_connection_s),
    );
    api.delete_sandbox("auth-bench");
}
