//! Egress benchmark (`cargo bench --bench egress`, as root: it starts the real server and a
//! runc sandbox): a download and a run of small requests from inside a sandbox through the
//! egress proxy, against the same download and requests made directly on the host over
//! loopback in the same run. Prints a table with ratios; asserts no times.
//!
//! Both sides run the same programs (busybox `wget`, timed by bash's `$EPOCHREALTIME`)
//! against the same host-side HTTP server on loopback: the sandbox reaches it by name
//! (`--resolve` pins it; the DNS stub, the proxy's checks and its splice are on the path) or
//! by a literal IP pinned the same way (no DNS lookup). `EGRESS_BENCH_MIB` (default 1024; 16
//! when run by `cargo test`) is the size of the download.

#[path = "../common/mod.rs"]
mod common;
// Shared with the tunnel benchmark; this one reads only the CPU counters.
#[allow(dead_code)]
mod cpu;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use common::api::Api;
use common::{TestServer, image};
use serde_json::json;

const CHUNK: usize = 256 * 1024;
/// The literal IP the sandbox uses for the small server (pinned to loopback, never dialled).
const SMALL_IP: &str = "192.0.2.10";

fn main() {
    // `cargo test --all-targets` runs this too (without `--bench`): a quick smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    let mib: usize = std::env::var("EGRESS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1024 } else { 16 });
    let (rounds, requests) = if benching { (5, 200) } else { (1, 10) };
    let bulk = http_server(mib << 20);
    let small = http_server(1);
    let pins = [
        format!("bulk.test:80=127.0.0.1:{bulk}"),
        format!("small.test:80=127.0.0.1:{small}"),
        format!("{SMALL_IP}:80=127.0.0.1:{small}"),
    ];
    let mut args = vec!["--allow-private-cidr", "127.0.0.0/8"];
    for pin in &pins {
        args.extend(["--resolve", pin.as_str()]);
    }
    let server = TestServer::start_with(&args, &[]);
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("egress-bench", image::tiny(), 64 << 20);
    let policy = json!({"access_control": {"allow_list": ["bulk.test", "small.test", SMALL_IP]}});
    let sb = api.ready_sandbox(
        "egress-bench",
        &snapshot,
        json!({"vcpus": 2, "proxy_config": policy}),
    );
    let in_sandbox = |script: &str| -> f64 {
        let r = api.exec(&sb, &format!("bash -c '{script}'"));
        assert_eq!(r.exit_code, 0, "{r:?}");
        r.stdout.trim().parse().expect("seconds")
    };
    let on_host = |script: &str| -> f64 {
        let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("seconds")
    };

    let download = |url: &str| timed(&format!("busybox wget -q -O /dev/null {url}"));
    let (host_before, wall) = (host_cpu(), std::time::Instant::now());
    let direct_s =
        median((0..rounds).map(|_| on_host(&download(&format!("http://127.0.0.1:{bulk}/")))));
    let (host_after, direct_wall) = (host_cpu(), wall.elapsed().as_secs_f64());
    let server_pid = server.pid().expect("server runs").to_string();
    let cgroup = format!("/langsmith/ls-{}", sb["id"].as_str().unwrap());
    let cpu_now = || {
        [
            cpu::process_seconds("self"),
            cpu::process_seconds(&server_pid),
            cpu::sandbox_seconds(&cgroup),
        ]
    };
    let (cpu_before, wall) = (cpu_now(), std::time::Instant::now());
    let proxied_s = median((0..rounds).map(|_| in_sandbox(&download("http://bulk.test/"))));
    let pid_file = server.state_dir.join(format!(
        "runtime/sandboxes/{}/bundle/container.pid",
        sb["id"].as_str().unwrap()
    ));
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let inside = http_server_in_namespace(pid.trim(), mib << 20);
    let inside_s =
        median((0..rounds).map(|_| in_sandbox(&download(&format!("http://127.0.0.1:{inside}/")))));
    let (cpu_after, wall) = (cpu_now(), wall.elapsed().as_secs_f64());
    let spent = |i: usize| cpu_after[i] - cpu_before[i];
    let loop_of = |url: &str| {
        timed(&format!(
            "for i in $(seq {requests}); do busybox wget -q -O /dev/null {url} || exit 1; done"
        ))
    };
    let per_request = |total: f64| total / requests as f64 * 1000.0;
    let direct_ms = per_request(on_host(&loop_of(&format!("http://127.0.0.1:{small}/"))));
    let by_ip_ms = per_request(in_sandbox(&loop_of(&format!("http://{SMALL_IP}/"))));
    let by_name_ms = per_request(in_sandbox(&loop_of("http://small.test/")));

    let inside_small = http_server_in_namespace(pid.trim(), 1);
    let inside_ms = per_request(in_sandbox(&loop_of(&format!(
        "http://127.0.0.1:{inside_small}/"
    ))));

    let mibs = |seconds: f64| mib as f64 / seconds;
    println!(
        "\n{:<44} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "host", "sandbox", "proxied", "/host", "/sandbox"
    );
    let (host, sandbox, proxied) = (mibs(direct_s), mibs(inside_s), mibs(proxied_s));
    println!(
        "{:<44} {host:>9.1} {sandbox:>9.1} {proxied:>9.1} {:>8.0}% {:>8.0}%",
        format!("download {mib} MiB, MiB/s (median of {rounds})"),
        100.0 * proxied / host,
        100.0 * proxied / sandbox,
    );
    for (what, proxied) in [
        ("request by literal IP, ms (mean)", by_ip_ms),
        ("request by name (DNS stub too), ms (mean)", by_name_ms),
    ] {
        println!(
            "{what:<44} {direct_ms:>9.2} {inside_ms:>9.2} {proxied:>9.2} {:>8.0}% {:>8.0}%",
            100.0 * proxied / direct_ms,
            100.0 * proxied / inside_ms,
        );
    }
    println!(
        "(host: busybox wget on the host straight to the loopback server; sandbox: the same \
         wget in the sandbox to the same server code listening on the sandbox's own \
         loopback, no proxy; proxied: through the DNS stub and the egress proxy. Each request \
         is a new wget and a new connection, {requests} in a row: the proxy adds about \
         {:.2} ms per connection by IP and {:.2} ms by name. For times the ratios are \
         proxied/baseline, for MiB/s the other way round.)",
        by_ip_ms - inside_ms,
        by_name_ms - inside_ms
    );
    println!(
        "where the time goes, direct downloads: CPU s over {direct_wall:.2} s wall: upstream \
         (bench) {:.2}, wget {:.2}",
        host_after[0] - host_before[0],
        host_after[1] - host_before[1]
    );
    println!(
        "where the time goes, proxied downloads: CPU s over {wall:.2} s wall: upstream \
         (bench) {:.2}, server (proxy) {:.2}, sandbox (wget) {:.2}",
        spent(0),
        spent(1),
        spent(2)
    );
    drop(sb);
    api.delete_sandbox("egress-bench");
}

/// CPU seconds of this process (the upstream servers) and of its finished children (the
/// direct downloads).
fn host_cpu() -> [f64; 2] {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    [
        cpu::process_seconds("self"),
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
    ]
}

/// A bash script that runs `command` and prints the seconds it took.
fn timed(command: &str) -> String {
    format!(
        "s=$EPOCHREALTIME; {command} || exit 1; e=$EPOCHREALTIME; \
         d=$(( ${{e/./}} - ${{s/./}} )); printf \"%d.%06d\\n\" $((d / 1000000)) $((d % 1000000))"
    )
}

fn median(samples: impl Iterator<Item = f64>) -> f64 {
    let mut samples: Vec<f64> = samples.collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// An HTTP server on loopback answering every request with `bytes` of body; its port.
fn http_server(bytes: usize) -> u16 {
    serve(TcpListener::bind("127.0.0.1:0").unwrap(), bytes)
}

/// The same server on the loopback of the network namespace of process `pid` (a sandbox's
/// PID 1): the sandbox reaches it directly, without the proxy.
fn http_server_in_namespace(pid: &str, bytes: usize) -> u16 {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let listener = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        TcpListener::bind("127.0.0.1:0").unwrap()
    })
    .join()
    .unwrap();
    serve(listener, bytes)
}

fn serve(listener: TcpListener, bytes: usize) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n"
                );
                if conn.write_all(header.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![0x5au8; CHUNK];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(CHUNK);
                    if conn.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    port
}
