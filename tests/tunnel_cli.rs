//! `langsmith sandbox tunnel` and the shell's `sb.tunnel`: the LangSmith CLI's checks and
//! messages, listener mode to Python's HTTP server inside a sandbox of the default snapshot
//! (with its log lines, a refused port and SIGTERM), `--stdio` to an echo server, and a Rhai
//! script's tunnel closed by `close()`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::cli::{Cli, finish};
use crate::common::process::{free_port, wait_for};

fn error_of(server: &TestServer, args: &[&str]) -> (i32, String) {
    let out = Cli::new(server).args(args).run();
    (out.code, out.stderr.trim_end().to_string())
}

#[test]
fn tunnel_checks_come_in_the_clis_order_with_its_messages() {
    let server = TestServer::start();
    // Messages as the CLI prints them: Go-quoted inside `{"error": …}`.
    let cases: &[(&[&str], &str)] = &[
        (
            &["sandbox", "tunnel", "box"],
            r#""required flag(s) \"remote-port\" not set""#,
        ),
        // The name check comes before the range check.
        (
            &["sandbox", "tunnel", "--remote-port", "0"],
            r#""provide a sandbox name or --url""#,
        ),
        (
            &[
                "sandbox",
                "tunnel",
                "--url",
                "http://127.0.0.1:1/dp/x",
                "--remote-port",
                "0",
            ],
            r#""--remote-port must be between 1 and 65535 (got 0)""#,
        ),
        (
            &[
                "sandbox",
                "tunnel",
                "--name",
                "x",
                "--url",
                "http://127.0.0.1:1/dp/x",
                "--remote-port",
                "70000",
            ],
            r#""--remote-port must be between 1 and 65535 (got 70000)""#,
        ),
        (
            &[
                "sandbox",
                "tunnel",
                "--url",
                "http://127.0.0.1:1/dp/x",
                "--remote-port",
                "80",
                "--local-port",
                "70000",
            ],
            r#""--local-port must be between 1 and 65535 (got 70000)""#,
        ),
    ];
    for (args, message) in cases {
        let (code, stderr) = error_of(&server, args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(stderr, format!("{{\"error\": {message}}}"), "{args:?}");
    }
    // The name is looked up (leniently) before the port range is checked.
    let (code, stderr) = error_of(
        &server,
        &["sandbox", "tunnel", "nope", "--remote-port", "0"],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(r#"{"error": "getting sandbox: "#),
        "{stderr}"
    );
    // `--stdio` ignores `--local-port`; nothing answers the URL, so the dial fails.
    let (code, stderr) = error_of(
        &server,
        &[
            "sandbox",
            "tunnel",
            "--url",
            "http://127.0.0.1:1/dp/x",
            "--remote-port",
            "22",
            "--local-port",
            "0",
            "--stdio",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(r#"{"error": "connect: websocket dial (no response): "#),
        "{stderr}"
    );
}

/// A long-running command in the sandbox, through `langsmith sandbox exec` (ends with it).
fn serve(server: &TestServer, name: &str, command: &str) -> Child {
    Cli::new(server)
        .args(&["sandbox", "exec", name, "--", "sh", "-c", command])
        .spawn_tied()
}

/// Lines the child writes on stderr, as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line containing `needle` (every line seen is kept in `seen`).
fn line_with(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no line with {needle:?}; saw {seen:#?}"));
        seen.push(line.clone());
        if line.contains(needle) {
            return line;
        }
    }
}

/// `line` without its `time=` attribute, which must be RFC 3339 with milliseconds and an
/// offset, as Go's slog writes it.
fn after_time(line: &str) -> &str {
    let (time, rest) = line
        .strip_prefix("time=")
        .and_then(|l| l.split_once(' '))
        .unwrap_or_else(|| panic!("no time= first: {line:?}"));
    chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("{time}: {e}"));
    let millis = time[19..].trim_start_matches('.');
    assert!(
        time.as_bytes()[19] == b'.' && millis[..3].bytes().all(|b| b.is_ascii_digit()),
        "milliseconds in {time}"
    );
    assert!(
        matches!(millis.as_bytes()[3], b'Z' | b'+' | b'-'),
        "offset in {time}"
    );
    rest
}

// A raw string: Python needs its indentation, which `\` line continuations would strip.
const ECHO_SERVER: &str = r#"import socketserver
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(('127.0.0.1', 7000), Echo).serve_forever()
"#;

#[test]
fn tunnels_reach_servers_in_a_default_sandbox() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let sb = api.default_sandbox("tun");
    let dp = sb["dataplane_url"].as_str().unwrap().to_string();
    let setup = api.exec(
        &sb,
        "mkdir -p /srv/www && echo tunnelled > /srv/www/hello.txt",
    );
    assert_eq!(setup.exit_code, 0, "{setup:?}");
    let mut http = serve(
        &server,
        "tun",
        "python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv/www",
    );
    let mut echo = serve(&server, "tun", &format!("python3 -c \"{ECHO_SERVER}\""));

    // Listener mode, debug logging.
    let local = free_port();
    let mut tunnel = Cli::new(&server)
        .args(&[
            "sandbox",
            "tunnel",
            "tun",
            "--remote-port",
            "8000",
            "--log-level",
            "DEBUG",
        ])
        .args(&["--local-port", &local.to_string()])
        .spawn_tied();
    let lines = stderr_lines(&mut tunnel);
    let mut seen = Vec::new();
    let ws = format!("{}/tunnel", dp.replacen("http://", "ws://", 1));
    let line = line_with(&lines, "dialing tunnel", &mut seen);
    assert_eq!(
        after_time(&line),
        format!("level=DEBUG msg=\"dialing tunnel\" url={ws}")
    );
    let line = line_with(&lines, "session established", &mut seen);
    assert_eq!(
        after_time(&line),
        format!("level=INFO msg=\"tunnel session established\" url={ws}")
    );
    let line = line_with(&lines, "tunnel ready", &mut seen);
    assert_eq!(
        after_time(&line),
        format!(
            "level=INFO msg=\"tunnel ready\" local=127.0.0.1:{local} remote_port=8000 \
             sandbox_url={dp}"
        )
    );
    let url = format!("http://127.0.0.1:{local}/hello.txt");
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    // The HTTP server may still be starting: until it listens, the tunnel refuses the port.
    let body = wait_for(
        "the HTTP server through the tunnel",
        Duration::from_secs(60),
        || {
            client
                .get(&url)
                .send()
                .ok()?
                .error_for_status()
                .ok()?
                .text()
                .ok()
        },
    );
    assert_eq!(body, "tunnelled\n");
    let line = line_with(&lines, "stream connected", &mut seen);
    let client_port = after_time(&line)
        .strip_prefix("level=DEBUG msg=\"stream connected\" remote_port=8000 local_addr=127.0.0.1:")
        .unwrap_or_else(|| panic!("{line}"));
    client_port.parse::<u16>().unwrap();
    unsafe { libc::kill(tunnel.id() as i32, libc::SIGTERM) };
    let status = tunnel.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM ends the tunnel cleanly: {seen:#?}"
    );

    // A port nothing listens on: the connection is closed and the refusal logged.
    let closed_port = free_port();
    let mut refused = Cli::new(&server)
        .args(&["sandbox", "tunnel", "tun", "--remote-port", "9"])
        .args(&["--local-port", &closed_port.to_string()])
        .spawn_tied();
    let lines = stderr_lines(&mut refused);
    line_with(&lines, "tunnel ready", &mut seen);
    let mut conn = TcpStream::connect(("127.0.0.1", closed_port)).unwrap();
    let mut rest = Vec::new();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let line = line_with(&lines, "tunnel rejected", &mut seen);
    assert_eq!(
        after_time(&line),
        r#"level=ERROR msg="tunnel rejected" status=2 reason="dial failed (is the service running?)" port=9"#
    );
    unsafe { libc::kill(refused.id() as i32, libc::SIGINT) };
    assert_eq!(refused.wait().unwrap().code(), Some(0), "SIGINT too");

    // --stdio: bytes round trip through the echo server; nothing is logged.
    let payload: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let echoed = wait_for(
        "the echo server through --stdio",
        Duration::from_secs(60),
        || {
            let mut child = Cli::new(&server)
                .args(&[
                    "sandbox",
                    "tunnel",
                    "tun",
                    "--remote-port",
                    "7000",
                    "--stdio",
                ])
                .command()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let input = payload.clone();
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
            let mut out = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
            writer.join().unwrap();
            let (status, stderr) = finish(&mut child);
            if stderr.contains("dial failed") {
                return None; // the echo server is not listening yet
            }
            assert!(status.success() && stderr.is_empty(), "{status}: {stderr}");
            Some(out)
        },
    );
    assert!(
        echoed == payload,
        "{} bytes back of {}",
        echoed.len(),
        payload.len()
    );

    // --stdio to a closed port: the SDK's words as the JSON error.
    let out = Cli::new(&server)
        .args(&["sandbox", "tunnel", "tun", "--remote-port", "9", "--stdio"])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim_end(),
        r#"{"error": "sandbox tunnel rejected port 9: dial failed"}"#
    );
    assert!(out.stdout.is_empty());

    rhai_tunnel(&server, &api, &sb);
    let _ = http.kill();
    let _ = echo.kill();
    let _ = (http.wait(), echo.wait());
    api.delete_sandbox("tun");
}

/// `sb.tunnel(8000)` in a script: a free local port, a fetch through it while the script
/// waits, and `close()` stops the listener.
fn rhai_tunnel(server: &TestServer, api: &Api, sb: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.rhai");
    std::fs::write(
        &file,
        r#"let sb = sandbox("tun");
let t = sb.tunnel(8000);
print(`port ${t.local_port} ${t.remote_port}`);
sb.exec("while [ ! -f /tmp/fetched ]; do sleep 0.1; done", #{ timeout: 120 });
t.close();
t.close();
print("closed");
"#,
    )
    .unwrap();
    let mut child = Cli::new(server).arg("run").arg(&file).spawn_tied();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().unwrap().unwrap();
    let words: Vec<&str> = first.split(' ').collect();
    assert_eq!((words[0], words[2]), ("port", "8000"), "{first}");
    let port: u16 = words[1].parse().unwrap();
    let body = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/hello.txt"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "tunnelled\n");
    assert_eq!(api.exec(sb, "touch /tmp/fetched").exit_code, 0);
    assert_eq!(stdout.next().unwrap().unwrap(), "closed");
    let (status, stderr) = finish(&mut child);
    assert!(status.success(), "{stderr}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the closed tunnel no longer listens"
    );
}
