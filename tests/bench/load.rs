//! Load (`cargo bench --bench load`, as root: it starts the real server and runc sandboxes):
//! 1000 exec streams at once across 50 sandboxes, then 100 tunnels at once, through the real
//! server with the native client; every byte is checked. The server's resident memory and
//! open descriptors are read before (after a warm-up), at the peak and after everything was
//! closed. Prints a summary; asserts no times, only that every stream and tunnel carried its
//! bytes intact and that the descriptors came back to their baseline.
//!
//! `LOAD_SANDBOXES`, `LOAD_EXECS`, `LOAD_TUNNELS` and `LOAD_TUNNEL_KIB` scale it (defaults
//! 50, 1000, 100, 1024; `cargo test` runs a smoke of 4, 40, 8, 64). `LOAD_ROUNDS` (default 2,
//! smoke 1) runs the whole load that many times and reports the last: memory that grows
//! from round to round is a leak, memory that stays is the allocator keeping freed pages.
//! Every phase has a deadline, so a hang ends the run with an error instead of a stall.

#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::api::Api;
use common::server::API_KEY;
use common::{TestServer, image};
use langsmith::client::Client;
use langsmith::client::config::Endpoint;
use langsmith::client::exec::ExecOptions;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ECHO_PORT: u16 = 7000;
/// Lines each exec stream prints (`seq`): about 50 KB of output per stream.
const LINES: usize = 10_000;
const PHASE_DEADLINE: Duration = Duration::from_secs(600);

fn setting(name: &str, benching: bool, full: usize, smoke: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { full } else { smoke })
}

/// What `/proc` says of the server process.
#[derive(Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: usize,
}

fn usage(pid: u32) -> Usage {
    let rss_kib = common::process::resident_kib(pid).unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    Usage { rss_kib, fds }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let sandboxes = setting("LOAD_SANDBOXES", benching, 50, 4);
    let execs = setting("LOAD_EXECS", benching, 1000, 40);
    let tunnels = setting("LOAD_TUNNELS", benching, 100, 8);
    let tunnel_bytes = setting("LOAD_TUNNEL_KIB", benching, 1024, 64) << 10;

    let server = TestServer::start();
    let pid = server.pid().expect("the server runs");
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("load", image::tiny(), 64 << 20);
    let boxes: Vec<Value> = (0..sandboxes)
        .map(|i| api.ready_sandbox(&format!("load-{i}"), &snapshot, json!({"vcpus": 1})))
        .collect();
    let dataplanes: Vec<String> = boxes
        .iter()
        .map(|sb| sb["dataplane_url"].as_str().unwrap().to_string())
        .collect();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Client::new(Endpoint {
        base: server.url.clone(),
        api_key: API_KEY.to_string(),
        workspace_id: None,
    })
    .unwrap();
    let rounds = setting("LOAD_ROUNDS", benching, 2, 1);
    let report = runtime.block_on(async {
        // One exec and one tunnel first, so what is set up once is in the baseline.
        let (baseline, echoes) = warm_up(&client, &dataplanes, pid).await;
        // Earlier rounds, so a leak would show as growth from round to round.
        let mut after_rounds = Vec::new();
        for _ in 1..rounds {
            exec_streams(&client, &dataplanes, execs).await;
            tunnel_streams(&client, &dataplanes, tunnels, tunnel_bytes, pid).await;
            after_rounds.push(settled(pid, baseline).await);
        }
        let started = Instant::now();
        let exec = tokio::time::timeout(PHASE_DEADLINE, exec_streams(&client, &dataplanes, execs))
            .await
            .expect("the exec phase passed its deadline");
        let exec_time = started.elapsed();
        let peak_exec = usage(pid);
        let started = Instant::now();
        let tunnel = tokio::time::timeout(
            PHASE_DEADLINE,
            tunnel_streams(&client, &dataplanes, tunnels, tunnel_bytes, pid),
        )
        .await
        .expect("the tunnel phase passed its deadline");
        let tunnel_time = started.elapsed();
        drop(echoes);
        let after = settled(pid, baseline).await;
        Report {
            baseline,
            after_rounds,
            peak_exec,
            exec,
            exec_time,
            tunnel,
            tunnel_time,
            after,
        }
    });
    report.print(sandboxes, execs, tunnels, tunnel_bytes);
    for i in 0..sandboxes {
        api.delete_sandbox(&format!("load-{i}"));
    }
    assert_eq!(report.exec.failed, 0, "exec streams failed");
    assert_eq!(report.tunnel.0.failed, 0, "tunnels failed");
    assert!(
        report.after.fds <= report.baseline.fds,
        "the server kept {} descriptors more than its baseline",
        report.after.fds - report.baseline.fds
    );
}

/// Start the echo server of each sandbox (kept running for the tunnel phase), wait until one
/// answers through a tunnel, and read the baseline.
async fn warm_up(client: &Client, dataplanes: &[String], pid: u32) -> (Usage, Vec<Echo>) {
    let mut echoes = Vec::new();
    for dp in dataplanes {
        let opts = ExecOptions {
            close_stdin: true,
            idle_timeout_seconds: Some(-1),
            ..ExecOptions::default()
        };
        let command = client
            .exec(dp, &format!("nc -ll -p {ECHO_PORT} -e cat"), &opts)
            .await
            .expect("start the echo server");
        echoes.push(Echo(command));
    }
    let out = client
        .run(&dataplanes[0], "seq 1 3", &ExecOptions::default())
        .await
        .expect("a first exec");
    assert_eq!(out.stdout, "1\n2\n3\n");
    for dp in dataplanes {
        // Until nc listens, the tunnel closes each connection at once: bounded retries.
        let mut answered = false;
        for _ in 0..300 {
            if echo_through_tunnel(client, dp, b"ping".to_vec())
                .await
                .is_ok()
            {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answered, "the echo server in {dp} never answered");
    }
    (usage(pid), echoes)
}

/// A command kept running for the length of the run; killed when dropped.
struct Echo(langsmith::client::exec::Command);

impl Drop for Echo {
    fn drop(&mut self) {
        self.0.kill();
    }
}

#[derive(Default)]
struct Outcome {
    ok: usize,
    failed: usize,
    bytes: u64,
    first_error: Option<String>,
}

impl Outcome {
    fn add(&mut self, result: Result<u64, String>) {
        match result {
            Ok(bytes) => {
                self.ok += 1;
                self.bytes += bytes;
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// `count` commands at once, spread over the sandboxes, each printing a different range of
/// numbers that is checked line by line.
async fn exec_streams(client: &Client, dataplanes: &[String], count: usize) -> Outcome {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let client = client.clone();
        let dp = dataplanes[i % dataplanes.len()].clone();
        tasks.spawn(async move {
            let first = i * LINES + 1;
            let last = first + LINES - 1;
            let expected: String = (first..=last).map(|n| format!("{n}\n")).collect();
            let out = client
                .run(&dp, &format!("seq {first} {last}"), &ExecOptions::default())
                .await
                .map_err(|e| format!("stream {i}: {e}"))?;
            if out.exit_code != 0 || out.stdout != expected {
                return Err(format!(
                    "stream {i}: exit {} with {} of {} bytes{}",
                    out.exit_code,
                    out.stdout.len(),
                    expected.len(),
                    if out.stdout.len() == expected.len() {
                        " (different)"
                    } else {
                        ""
                    }
                ));
            }
            Ok(expected.len() as u64)
        });
    }
    let mut outcome = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        outcome.add(joined.unwrap_or_else(|e| Err(format!("a task panicked: {e}"))));
    }
    outcome
}

/// `count` tunnels at once, spread over the sandboxes, each carrying `bytes` of a pattern of
/// its own to the sandbox's echo server and back.
async fn tunnel_streams(
    client: &Client,
    dataplanes: &[String],
    count: usize,
    bytes: usize,
    pid: u32,
) -> (Outcome, Usage) {
    let peak = Arc::new(std::sync::Mutex::new(usage(pid)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let client = client.clone();
        let dp = dataplanes[i % dataplanes.len()].clone();
        let pattern: Vec<u8> = (0..bytes).map(|n| ((n * 31 + i * 7) % 251) as u8).collect();
        tasks.spawn(async move {
            echo_through_tunnel(&client, &dp, pattern)
                .await
                .map_err(|e| format!("tunnel {i}: {e}"))
        });
    }
    let mut outcome = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        let now = usage(pid);
        let mut peak = peak.lock().unwrap();
        if now.rss_kib > peak.rss_kib {
            *peak = now;
        }
        drop(peak);
        outcome.add(joined.unwrap_or_else(|e| Err(format!("a task panicked: {e}"))));
    }
    let peak = *peak.lock().unwrap();
    (outcome, peak)
}

/// Open a tunnel to the echo port, send `data` through it and check that it came back.
async fn echo_through_tunnel(client: &Client, dp: &str, data: Vec<u8>) -> Result<u64, String> {
    let mut tunnel = client
        .tunnel(dp, ECHO_PORT, 0, Arc::new(|_| {}))
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", tunnel.local_port()))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut reader, mut writer) = stream.into_split();
        let sent = data.clone();
        let writing = tokio::spawn(async move {
            writer.write_all(&sent).await?;
            writer.shutdown().await
        });
        let mut echoed = Vec::with_capacity(data.len());
        reader
            .read_to_end(&mut echoed)
            .await
            .map_err(|e| format!("read: {e}"))?;
        writing
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("write: {e}"))?;
        if echoed != data {
            return Err(format!(
                "{} bytes sent, {} came back{}",
                data.len(),
                echoed.len(),
                if echoed.len() == data.len() {
                    " (different)"
                } else {
                    ""
                }
            ));
        }
        Ok(data.len() as u64 * 2)
    }
    .await;
    tunnel.close().await;
    result
}

/// How far above its baseline the server's memory may stay and count as back.
const MEMORY_SLACK_KIB: u64 = 16 << 10;

/// The server's usage once its descriptors and memory are back to the baseline, or after a
/// bounded wait (sockets take a moment to close on both sides, and the server hands freed
/// memory back every few seconds).
async fn settled(pid: u32, baseline: Usage) -> Usage {
    for _ in 0..200 {
        let now = usage(pid);
        if now.fds <= baseline.fds && now.rss_kib <= baseline.rss_kib + MEMORY_SLACK_KIB {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    usage(pid)
}

struct Report {
    baseline: Usage,
    /// After each round before the measured one.
    after_rounds: Vec<Usage>,
    peak_exec: Usage,
    exec: Outcome,
    exec_time: Duration,
    tunnel: (Outcome, Usage),
    tunnel_time: Duration,
    after: Usage,
}

impl Report {
    fn print(&self, sandboxes: usize, execs: usize, tunnels: usize, tunnel_bytes: usize) {
        let (tunnel, peak_tunnel) = &self.tunnel;
        println!();
        println!(
            "load: {sandboxes} sandboxes, {execs} exec streams at once, {tunnels} tunnels at once"
        );
        println!(
            "{:<28} {:>6} {:>7} {:>12} {:>9}",
            "phase", "ok", "failed", "bytes", "seconds"
        );
        for (name, outcome, time) in [
            ("exec streams (seq)", &self.exec, self.exec_time),
            ("tunnels (echo)", tunnel, self.tunnel_time),
        ] {
            println!(
                "{:<28} {:>6} {:>7} {:>12} {:>9.1}",
                name,
                outcome.ok,
                outcome.failed,
                outcome.bytes,
                time.as_secs_f64()
            );
            if let Some(e) = &outcome.first_error {
                println!("  first failure: {e}");
            }
        }
        println!(
            "(each exec stream {LINES} lines checked; each tunnel {} KiB each way, checked)",
            tunnel_bytes >> 10
        );
        println!(
            "{:<28} {:>10} {:>10} {:>10} {:>10}",
            "server", "baseline", "exec peak", "tunnel pk", "after"
        );
        let usages = [self.baseline, self.peak_exec, *peak_tunnel, self.after];
        println!(
            "{:<28} {:>10} {:>10} {:>10} {:>10}",
            "resident memory, MiB",
            usages[0].rss_kib / 1024,
            usages[1].rss_kib / 1024,
            usages[2].rss_kib / 1024,
            usages[3].rss_kib / 1024
        );
        println!(
            "{:<28} {:>10} {:>10} {:>10} {:>10}",
            "open descriptors", usages[0].fds, usages[1].fds, usages[2].fds, usages[3].fds
        );
        for (round, usage) in self.after_rounds.iter().enumerate() {
            println!(
                "(after round {} of the same load: {} MiB resident, {} descriptors)",
                round + 1,
                usage.rss_kib / 1024,
                usage.fds
            );
        }
    }
}
