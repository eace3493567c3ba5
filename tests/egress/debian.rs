//! From a sandbox of the default Debian snapshot, with real `curl`, Python, `ip` and
//! `iptables`: what `access_control` allows gets out by name over HTTP, HTTPS (the upstream's
//! own certificate, untouched) and raw TCP; everything else is refused, visibly, and no way
//! around the proxy works.
//!
//! The upstreams listen on this machine's loopback, admitted with `--allow-private-cidr
//! 127.0.0.0/8` and named with `--resolve`. Connections to other addresses (`169.254.169.254`,
//! `192.0.2.1`) never leave the sandbox: its network namespace has no interface leading
//! anywhere, so they end at the server's proxy inside it, which refuses them before dialling
//! (the egress log shows each refusal).

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::api::{Api, Exec};
use crate::common::cli::Cli;
use crate::common::upstream::{self, TlsUpstream};
use crate::common::{TestServer, host_tool};

const CA: &str = "/tmp/upstream.pem";

/// The sandbox's egress log through the CLI: `(host, port, decision, rule, reason)`.
fn decisions(server: &TestServer, name: &str) -> Vec<Value> {
    let out = Cli::new(server)
        .args(&["sandbox", "egress-log", name])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json().as_array().unwrap().clone()
}

fn has(log: &[Value], host: &str, port: u16, decision: &str, rule: &str) -> bool {
    log.iter().any(|e| {
        e["host"] == host && e["port"] == port && e["decision"] == decision && e["rule"] == rule
    })
}

fn ok(r: &Exec) -> &str {
    assert_eq!(r.exit_code, 0, "{r:?}");
    r.stdout.trim()
}

#[test]
fn a_debian_sandbox_reaches_only_what_access_control_allows_and_cannot_go_around_it() {
    let http = upstream::http("plain hello", 64);
    let tls = TlsUpstream::start(&["allowed.test", "other.test"], "tls hello", 64);
    let raw = upstream::raw("raw hello\n", 16);
    let mut args: Vec<String> = vec!["--allow-private-cidr".into(), "127.0.0.0/8".into()];
    for pin in [
        format!("allowed.test:80=127.0.0.1:{http}"),
        format!("allowed.test:443=127.0.0.1:{}", tls.port),
        format!("other.test:80=127.0.0.1:{http}"),
        format!("other.test:443=127.0.0.1:{}", tls.port),
        format!("raw.test:7000=127.0.0.1:{raw}"),
    ] {
        args.extend(["--resolve".into(), pin]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args, &[]);
    let api = Api::new(&server);
    // The metadata address and a literal IP are listed on purpose: the refusals below come
    // from the proxy's own rules, not from a missing entry.
    let policy = json!({"access_control": {"allow_list": [
        "allowed.test", "raw.test:7000", "169.254.169.254", "192.0.2.1"
    ]}});
    let sb = api.default_sandbox_with("deb", json!({"proxy_config": policy}));
    let dataplane = sb["dataplane_url"].as_str().unwrap();
    host_tool::upload(&api, dataplane, CA, tls.cert_pem.clone().into_bytes());

    // The server's egress CA is in the trust store, with Debian's own CAs, and the usual
    // bundle variables name that store; update-ca-certificates keeps it there.
    let ca = std::fs::read_to_string(server.state_dir.join("proxy-ca.pem")).unwrap();
    let ca_line = ca.lines().nth(1).unwrap();
    let trust = api.exec(
        &sb,
        &format!(
            "echo $SSL_CERT_FILE $REQUESTS_CA_BUNDLE $NODE_EXTRA_CA_CERTS; \
             grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt; \
             update-ca-certificates >/dev/null 2>&1; echo updated=$?; \
             grep -c -F '{ca_line}' /etc/ssl/certs/ca-certificates.crt"
        ),
    );
    let lines: Vec<&str> = ok(&trust).lines().collect();
    assert_eq!(
        lines[0],
        "/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt \
         /usr/local/share/ca-certificates/langsmith-egress-ca.crt"
    );
    assert!(
        lines[1].parse::<u32>().unwrap() > 50,
        "Debian's CAs are gone: {trust:?}"
    );
    assert_eq!(&lines[2..], ["updated=0", "1"], "{trust:?}");

    // Allowed, by name: HTTP, HTTPS verified against the upstream's own certificate (so the
    // proxy did not terminate TLS), and raw TCP on a listed port.
    assert_eq!(
        ok(&api.exec(&sb, "curl -sS http://allowed.test/")),
        "plain hello"
    );
    let https = api.exec(
        &sb,
        &format!("curl -sS --cacert {CA} https://allowed.test/"),
    );
    assert_eq!(ok(&https), "tls hello allowed.test");
    let python = api.exec(
        &sb,
        &format!(
            "python3 -c \"import ssl, urllib.request as u; \
             c = ssl.create_default_context(cafile='{CA}'); \
             print(u.urlopen('https://allowed.test/', context=c).read().decode()); \
             print(ssl.get_server_certificate(('allowed.test', 443)))\""
        ),
    );
    let seen = ok(&python);
    assert!(seen.starts_with("tls hello allowed.test"), "{seen}");
    assert!(
        seen.contains(tls.cert_pem.trim()),
        "not the upstream's certificate: {seen}"
    );
    let raw_tcp = "python3 -c \"import socket; \
                   s = socket.create_connection(('raw.test', 7000), timeout=10); \
                   print(s.recv(100).decode().strip())\"";
    assert_eq!(ok(&api.exec(&sb, raw_tcp)), "raw hello");

    // Unlisted: 403 naming the rule for HTTP, a reset for TLS.
    let refused = api.exec(&sb, "curl -sS -w ' %{http_code}' http://other.test/");
    assert_eq!(
        ok(&refused),
        "blocked by sandbox access_control: other.test:80 (not in allow_list)\n 403"
    );
    let tls_refused = api.exec(&sb, &format!("curl -sS --cacert {CA} https://other.test/"));
    assert_ne!(tls_refused.exit_code, 0, "{tls_refused:?}");
    assert!(!tls_refused.stdout.contains("tls hello"), "{tls_refused:?}");

    // Going around it. Domain fronting either way, a forged Host, literal IPs for HTTPS and
    // raw TCP, the metadata address even when listed.
    for fronted in [
        "--connect-to allowed.test:443:other.test:443 https://allowed.test/",
        "--connect-to other.test:443:allowed.test:443 https://other.test/",
    ] {
        let r = api.exec(&sb, &format!("curl -sS --cacert {CA} {fronted}"));
        assert_ne!(r.exit_code, 0, "{fronted}: {r:?}");
        assert!(!r.stdout.contains("tls hello"), "{fronted}: {r:?}");
    }
    let forged_host = api.exec(
        &sb,
        "curl -sS -w ' %{http_code}' -H 'Host: other.test' http://allowed.test/",
    );
    assert!(ok(&forged_host).ends_with(" 403"), "{forged_host:?}");
    assert!(
        forged_host.stdout.contains("Host mismatch"),
        "{forged_host:?}"
    );
    let literal_https = api.exec(&sb, "curl -sSk https://192.0.2.1/");
    assert_ne!(literal_https.exit_code, 0, "{literal_https:?}");
    let literal_raw = "python3 -c \"import socket; \
                       s = socket.create_connection(('192.0.2.1', 7000), timeout=10); \
                       print('got', s.recv(100))\" 2>&1 | tail -1";
    let r = api.exec(&sb, literal_raw);
    assert!(
        r.stdout.contains("got b''") || r.stdout.contains("Connection reset"),
        "{r:?}"
    );
    let metadata = api.exec(
        &sb,
        "curl -sS -w ' %{http_code}' http://169.254.169.254/latest/meta-data/",
    );
    assert!(ok(&metadata).ends_with(" 403"), "{metadata:?}");
    assert!(metadata.stdout.contains("non-public"), "{metadata:?}");

    // The host's loopback services and the server's API port: 127.0.0.1 in a sandbox is the
    // sandbox's own loopback.
    let api_port = server.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let r = api.exec(
        &sb,
        &format!("curl -sS -o /dev/null http://127.0.0.1:{api_port}/; echo rc=$?"),
    );
    assert!(
        r.stdout.contains("rc=7"),
        "the host's API port answered: {r:?}"
    );

    // Only TCP leaves: UDP to an outside address (DNS to another server included) and ICMP
    // are dropped where they start.
    let udp = "python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
               s.sendto(b'x' * 12, ('192.0.2.1', 53))\" 2>&1 | tail -1";
    assert!(
        api.exec(&sb, udp)
            .stdout
            .contains("Operation not permitted"),
        "UDP left the sandbox"
    );
    let icmp = "python3 -c \"import socket; \
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); \
                s.sendto(b'\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00', ('192.0.2.1', 0))\" \
                2>&1 | tail -1";
    let r = api.exec(&sb, icmp);
    assert!(r.stdout.contains("Operation not permitted"), "{r:?}");

    // The network is not the sandbox's to change: no route, address or interface can be
    // added, and neither `nft` nor iptables (the host's own, copied in) can flush the
    // redirect or drop the table.
    for change in [
        "ip route add 192.0.2.0/24 dev eth0",
        "ip addr add 192.0.2.9/32 dev eth0",
        "ip link add probe0 type veth peer name probe1",
    ] {
        let r = api.exec(&sb, &format!("{change} 2>&1"));
        assert_ne!(r.exit_code, 0, "{change}: {r:?}");
        assert!(
            r.stdout.contains("Operation not permitted"),
            "{change}: {r:?}"
        );
    }
    let iptables = host_tool::install(&api, &sb, "/usr/sbin/xtables-nft-multi", "/opt/ipt");
    for flush in ["-t nat -F", "-F", "-P OUTPUT ACCEPT"] {
        let r = api.exec(&sb, &format!("{iptables} iptables {flush} 2>&1"));
        assert_ne!(r.exit_code, 0, "iptables {flush}: {r:?}");
    }
    let nft = host_tool::install(&api, &sb, "/usr/sbin/nft", "/opt/nft");
    for change in ["flush ruleset", "delete table inet langsmith"] {
        let r = api.exec(&sb, &format!("{nft} {change} 2>&1"));
        assert_ne!(r.exit_code, 0, "nft {change}: {r:?}");
        assert!(
            r.stdout.contains("Operation not permitted"),
            "nft {change}: {r:?}"
        );
    }
    let still = api.exec(&sb, "curl -sS -w ' %{http_code}' http://other.test/");
    assert!(ok(&still).ends_with(" 403"), "{still:?}");

    // Another sandbox's server is out of reach (by its service address, or by the address
    // every sandbox has for itself), though it answers inside its own sandbox.
    let neighbour = api.default_sandbox("neighbour");
    let serve = "nohup python3 -m http.server 8000 >/dev/null 2>&1 & \
                 for i in $(seq 100); do curl -s -o /dev/null localhost:8000 && break; \
                 sleep 0.1; done; curl -s -o /dev/null -w '%{http_code}' localhost:8000";
    assert_eq!(ok(&api.exec(&neighbour, serve)), "200");
    let grant = api.call(
        "POST",
        "/api/v2/sandboxes/boxes/neighbour/service-url",
        Some(json!({"port": 8000})),
    );
    assert_eq!(grant.status, 200, "{}", grant.body);
    let origin = grant.body["service_url"].as_str().unwrap().to_string();
    let host_port = origin
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for target in [host_port.as_str(), "198.18.0.1:8000"] {
        let r = api.exec(
            &sb,
            &format!("curl -sS -m 10 -o /dev/null http://{target}/; echo rc=$?"),
        );
        assert!(!r.stdout.contains("rc=0"), "{target} reached: {r:?}");
    }

    // An update through the CLI applies to the next connection of the running sandbox.
    let update = Cli::new(&server)
        .args(&[
            "sandbox",
            "update",
            "deb",
            "--proxy-config",
            r#"{"access_control": {"allow_list": ["allowed.test", "other.test:80"]}}"#,
        ])
        .run();
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert_eq!(
        ok(&api.exec(&sb, "curl -sS http://other.test/")),
        "plain hello"
    );
    let raw_now = api.exec(&sb, &format!("{raw_tcp} 2>&1 | tail -1"));
    assert!(!raw_now.stdout.contains("raw hello"), "{raw_now:?}");

    // Every decision above is in the log, with what decided it.
    let log = decisions(&server, "deb");
    for (host, port, decision, rule) in [
        ("allowed.test", 80, "allowed", "allow_list: allowed.test"),
        ("allowed.test", 443, "allowed", "allow_list: allowed.test"),
        ("raw.test", 7000, "allowed", "allow_list: raw.test:7000"),
        ("other.test", 80, "denied", "not in allow_list"),
        ("other.test", 443, "denied", "not in allow_list"),
        ("other.test", 443, "denied", "SNI mismatch"),
        ("allowed.test", 443, "denied", "SNI mismatch"),
        ("allowed.test", 80, "denied", "Host mismatch"),
        ("192.0.2.1", 443, "denied", "literal IP"),
        ("192.0.2.1", 7000, "denied", "literal IP"),
        ("169.254.169.254", 80, "denied", "non-public address"),
        ("other.test", 80, "allowed", "allow_list: other.test:80"),
        ("raw.test", 7000, "denied", "not in allow_list"),
    ] {
        assert!(
            has(&log, host, port, decision, rule),
            "no {decision} {host}:{port} ({rule}) in {log:#?}"
        );
    }
    // Every allowed TLS connection got the upstream's certificate at least, counted even
    // where the client hung up mid-relay (`get_server_certificate` resets once it has it).
    let https_entries: Vec<&Value> = log
        .iter()
        .filter(|e| e["host"] == "allowed.test" && e["port"] == 443 && e["decision"] == "allowed")
        .collect();
    assert_eq!(https_entries.len(), 3, "{https_entries:#?}");
    for entry in https_entries {
        assert!(entry["bytes_received"].as_u64().unwrap() > 0, "{entry}");
    }

    // `--follow` prints what is there, then each new decision as it comes.
    let mut follow = Cli::new(&server)
        .args(&["sandbox", "egress-log", "deb", "--follow"])
        .spawn_tied();
    let lines = follow_lines(&mut follow);
    let first: Value = serde_json::from_str(&lines.recv_timeout(WAIT).unwrap()).unwrap();
    assert_eq!(first["host"], "allowed.test", "{first}");
    let late = api.exec(&sb, "curl -sS -w ' %{http_code}' http://late.test/");
    assert!(ok(&late).ends_with(" 403"), "{late:?}");
    let seen = (0..100)
        .map_while(|_| lines.recv_timeout(WAIT).ok())
        .find(|line| line.contains("\"late.test\""))
        .expect("the new decision was not followed");
    assert!(seen.contains("\"denied\""), "{seen}");
    let _ = follow.kill();
    let _ = follow.wait();
}

const WAIT: Duration = Duration::from_secs(60);

/// The lines `child` prints, as they come, from a thread of their own.
fn follow_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
