//! Tunnel benchmark (`cargo bench --bench tunnel`, as root: it starts the real server and a
//! runc sandbox): throughput of one stream and of 8 streams at once, and connection set-up
//! time, through `langsmith sandbox tunnel` versus raw loopback TCP to a host-side sink and
//! echo server measured in the same run. Prints a table with ratios; asserts no times.
//!
//! Inside the sandbox a busybox `nc` sinks (`cat >/dev/null`) or echoes (`cat`) each
//! connection; on the host, threads do the same. A transfer is timed from connect until the
//! sink closed the connection after the last byte (end of input, then EOF back), so bytes
//! still in buffers are counted. `TUNNEL_BENCH_MIB` (default 256) is the size of the single
//! stream (16 when run by `cargo test`); each of the 8 parallel streams carries a quarter of it.

#[path = "../common/mod.rs"]
mod common;
mod cpu;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::api::Api;
use common::cli::Cli;
use common::process::free_port;
use common::{TestServer, image};
use serde_json::json;

const SINK_PORT: u16 = 7001;
const ECHO_PORT: u16 = 7000;
const SETUP_SAMPLES: usize = 100;
const CHUNK: usize = 256 * 1024;
/// What the sinks write first on each connection.
const READY: &[u8; 6] = b"ready\n";

fn main() {
    // `cargo test --all-targets` runs this too (without `--bench`): a quick smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    let mib: usize = std::env::var("TUNNEL_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 256 } else { 16 });
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("bench", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("bench", &snapshot, json!({"vcpus": 2}));
    let mut servers = [
        // The sink greets each connection, so the bench knows it was accepted (see `ready`).
        format!("nc -ll -p {SINK_PORT} -e sh -c 'echo ready; cat >/dev/null'"),
        format!("nc -ll -p {ECHO_PORT} -e cat"),
    ]
    .map(|cmd| {
        Cli::new(&server)
            .args(&["sandbox", "exec", "bench", "--", "sh", "-c", &cmd])
            .spawn_tied()
    });
    let sink_tunnel = tunnel(&server, SINK_PORT);
    let echo_tunnel = tunnel(&server, ECHO_PORT);
    let host_sink = host_server(false);
    let host_echo = host_server(true);
    // Until the servers in the sandbox listen, the tunnel closes connections at once.
    for _ in 0..300 {
        if echo_once(echo_tunnel.1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let one = mib << 20;
    let each = one / 4;
    let path = cpu::TunnelPath::find(
        sink_tunnel.0.id(),
        server.pid().expect("server runs"),
        sb["id"].as_str().unwrap(),
    );
    let (one_tunnelled, one_cpu) = measured(&path, || throughput(sink_tunnel.1, 1, one));
    let (eight_tunnelled, eight_cpu) = measured(&path, || throughput(sink_tunnel.1, 8, each));
    let rows = [
        (
            "1 stream, MiB/s",
            throughput(host_sink, 1, one),
            one_tunnelled,
        ),
        (
            "8 streams, MiB/s (sum)",
            throughput(host_sink, 8, each),
            eight_tunnelled,
        ),
        (
            "set-up + 1-byte echo, ms (median)",
            setup_ms(host_echo),
            setup_ms(echo_tunnel.1),
        ),
    ];
    println!(
        "\n{:<36} {:>12} {:>12} {:>8}",
        "", "loopback", "tunnel", "ratio"
    );
    for (what, raw, tunnelled) in rows {
        println!(
            "{what:<36} {raw:>12.1} {tunnelled:>12.1} {:>7.0}%",
            100.0 * tunnelled / raw
        );
    }
    println!(
        "(single stream {mib} MiB, parallel streams {} MiB each, {SETUP_SAMPLES} set-ups; \
         for times the ratio is tunnel/loopback)",
        mib / 4
    );
    println!("where the time goes, 1 stream:  {one_cpu}");
    println!("where the time goes, 8 streams: {eight_cpu}");
    for (mut child, _) in [sink_tunnel, echo_tunnel] {
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }
    for child in &mut servers {
        let _ = child.kill();
        let _ = child.wait();
    }
    drop(sb);
    api.delete_sandbox("bench");
}

/// `langsmith sandbox tunnel bench --remote-port P` on a free local port, once it is ready.
fn tunnel(server: &TestServer, remote: u16) -> (std::process::Child, u16) {
    let local = free_port();
    let mut child = Cli::new(server)
        .args(&[
            "sandbox",
            "tunnel",
            "bench",
            "--remote-port",
            &remote.to_string(),
        ])
        .args(&["--local-port", &local.to_string(), "--log-level", "error"])
        .spawn_tied();
    // At `error` the CLI logs nothing on success; wait until the port accepts instead.
    drop(child.stderr.take().map(BufReader::new).map(|r| {
        std::thread::spawn(move || {
            for line in r.lines().map_while(Result::ok) {
                eprintln!("tunnel: {line}");
            }
        })
    }));
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", local)).is_ok() {
            return (child, local);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the tunnel to {remote} never listened");
}

/// A host-side sink (reads to EOF, then closes) or echo server; returns its port.
fn host_server(echo: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut conn = conn;
                if !echo && conn.write_all(READY).is_err() {
                    return;
                }
                let mut buf = vec![0u8; CHUNK];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) if echo => {
                            if conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    port
}

/// `run()`'s value, and the CPU each part of the tunnel's path spent meanwhile.
fn measured(path: &cpu::TunnelPath, run: impl FnOnce() -> f64) -> (f64, String) {
    let before = path.now();
    let start = Instant::now();
    let value = run();
    let wall = start.elapsed().as_secs_f64();
    (value, path.now().report_since(&before, wall))
}

/// Aggregate MiB/s of `streams` connections sending `bytes` each at once to a sink.
///
/// The connections are opened one after another, each until the sink greeted it, before the
/// clock starts: a burst of connects would overflow the small listen backlog of busybox `nc`
/// and stall on the kernel's 1 s SYN retransmission, which is not the tunnel's time.
fn throughput(port: u16, streams: usize, bytes: usize) -> f64 {
    let conns: Vec<TcpStream> = (0..streams).map(|_| ready(port)).collect();
    let start = Instant::now();
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| std::thread::spawn(move || send_all(conn, bytes)))
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    (streams * bytes) as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

/// A connection to the sink on `port`, once the sink greeted it.
fn ready(port: u16) -> TcpStream {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut greeting = [0u8; READY.len()];
    conn.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting, *READY, "the sink's greeting");
    conn
}

fn send_all(mut conn: TcpStream, bytes: usize) {
    let chunk = vec![0x5au8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK);
        conn.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    conn.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
}

fn echo_once(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut byte = [0u8; 1];
    conn.write_all(b"x").is_ok() && conn.read_exact(&mut byte).is_ok() && byte == *b"x"
}

/// Median ms of connect + one byte echoed back.
fn setup_ms(port: u16) -> f64 {
    let mut samples: Vec<f64> = (0..SETUP_SAMPLES)
        .map(|_| {
            let start = Instant::now();
            assert!(echo_once(port), "echo through port {port}");
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
