//! Performance (`cargo bench --bench perf`, as root): every figure a user feels, through the
//! real server, the CLI and the official Python SDK, beside the floor of the OCI runtime
//! itself (`runc run`/`exec`/`delete` of a ready bundle of the same image, one at a time and
//! `PERF_CONCURRENT` at once) measured in the same run, of the SDK by itself against a stub
//! agent that answers at once ([`stub_agent`]), and of the shell the SDK asks for by itself
//! (`/bin/bash -c true` in runc's container). Prints one table with the ratios; asserts no
//! time, only that every command did what it was asked (exit codes, byte counts, no failed
//! create, every idle sandbox answering an exec and leaving nothing on the host once deleted).
//! Then it prints what each idle sandbox takes of the host's counted resources and which of
//! the machine's limits comes first ([`scale`]).
//!
//! Knobs (environment): `PERF_WARM_RUNS` (samples of each warm exec, default 50),
//! `PERF_CREATE_RUNS` (create → first run → delete cycles, 20, paced and then back to back),
//! `PERF_CREATE_PAUSE_MS` (the pause after each paced cycle, 300), `PERF_CONCURRENT` (creates at
//! once, 100), `PERF_BIG_MIB` (MiB through the SDK's `run()`, 64), `PERF_GIB` (GiB of stdout
//! through `langsmith sandbox exec`, 1), `PERF_IDLE` (idle sandboxes, 1000), `PERF_HOLD` (stop
//! with the server up and a sandbox ready, for a profiler) and `PERF_SERVER_LOG` (the server's `LANGSMITH_LOG`, e.g.
//! `langsmith::phases=debug` for per-phase timings on stderr). `cargo test`
//! runs a smoke of every part with small counts.

#[path = "../common/mod.rs"]
mod common;
mod scale;
mod stub_agent;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::api::Api;
use common::cli::Cli;
use common::leftovers::{assert_cgroups_and_processes_gone, assert_no_leftovers};
use common::process::run_ok;
use common::server::runc_containers;
use common::{TestServer, image, sdk};
use serde_json::{Value, json};

/// One measured figure: ours, the floor or anchor measured beside it, and the goal.
struct Row {
    figure: String,
    ours: Measure,
    floor: Option<(String, Measure)>,
    goal: &'static str,
}

#[derive(Clone, Copy)]
enum Measure {
    /// A latency: the median (or the named percentile) of the samples, in milliseconds.
    Millis(f64),
    /// A rate in MB/s (10^6 bytes).
    Rate(f64),
    /// Host memory per sandbox, in MB (10^6 bytes).
    Megabytes(f64),
}

impl Measure {
    fn show(self) -> String {
        match self {
            Measure::Millis(ms) => format!("{ms:.1} ms"),
            Measure::Rate(r) => format!("{r:.0} MB/s"),
            Measure::Megabytes(mb) => format!("{mb:.2} MB"),
        }
    }

    /// How many times better (>1) or worse (<1) `self` is than `floor`.
    fn ratio(self, floor: Measure) -> Option<f64> {
        match (self, floor) {
            (Measure::Millis(a), Measure::Millis(b)) => Some(b / a),
            (Measure::Rate(a), Measure::Rate(b)) => Some(a / b),
            _ => None,
        }
    }
}

fn setting(name: &str, benching: bool, full: usize, smoke: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { full } else { smoke })
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(samples: &[f64]) -> f64 {
    percentile(samples, 50.0)
}

fn millis_of(mut run: impl FnMut(), times: usize) -> Vec<f64> {
    (0..times)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// Runs `cmd` and counts its stdout in 1 MiB reads, as a consumer of a stream would;
/// returns the byte count and MB/s.
fn drain_rate(cmd: &mut Command) -> (u64, f64) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the producer");
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("reading the producer: {e}"),
        }
    }
    assert!(child.wait().unwrap().success(), "{cmd:?} failed");
    (total, total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// The floor: runc itself on a bundle of the tiny image, unpacked to a plain directory.
struct RuncFloor {
    root: tempfile::TempDir,
    bundle: std::path::PathBuf,
}

impl RuncFloor {
    fn new() -> RuncFloor {
        let work = tempfile::tempdir().unwrap();
        let layout = work.path().join("layout");
        image::build_tiny_layout(&layout, work.path());
        let bundle = work.path().join("floor-bundle");
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--image", &format!("{}:tiny", layout.display())])
                .arg(&bundle),
        );
        let config_path = bundle.join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        config["process"]["args"] = json!(["sleep", "1000000"]);
        config["process"]["terminal"] = json!(false);
        std::fs::write(&config_path, config.to_string()).unwrap();
        // The bundle lives as long as the work directory; keep it by moving it into root.
        let root = work;
        RuncFloor { bundle, root }
    }

    fn runc(&self) -> Command {
        let mut cmd = Command::new("runc");
        cmd.arg("--root")
            .arg(self.root.path().join("runc-state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        cmd
    }

    fn ok(&self, args: &[&str]) {
        let status = self.runc().args(args).status().unwrap();
        assert!(status.success(), "runc {args:?}: {status}");
    }

    fn run(&self, id: &str) {
        let status = self
            .runc()
            .args(["run", "-d", "--bundle"])
            .arg(&self.bundle)
            .arg(id)
            .status()
            .unwrap();
        assert!(status.success(), "runc run {id}: {status}");
    }

    /// Milliseconds per `/bin/bash -c true` (what the official SDK asks the agent to run for
    /// `run("true")`), started and waited for `times` times in a row by a shell in the
    /// running container `perf-floor` and timed there, less what the same number of bare
    /// forks and waits (`( : )`) take: the agent starts a command without a fork of itself
    /// (`clone(CLONE_VM | CLONE_VFORK)`). A mean, and the part of a warm exec that is the
    /// command itself, which no agent can go below.
    fn shell_alone(&self, times: usize) -> f64 {
        let script = format!(
            "start=$EPOCHREALTIME; for ((i = 0; i < {times}; i++)); do ( : ); done; \
             forked=$EPOCHREALTIME; for ((i = 0; i < {times}; i++)); do /bin/bash -c true; done; \
             echo \"$start $forked $EPOCHREALTIME\""
        );
        let out = self
            .runc()
            .args(["exec", "--env", "LC_ALL=C", "perf-floor", "/bin/bash", "-c"])
            .arg(&script)
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "the shell loop: {}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        let seconds: Vec<f64> = text
            .split_whitespace()
            .map(|t| t.parse().unwrap_or_else(|e| panic!("{e}: {text:?}")))
            .collect();
        assert_eq!(seconds.len(), 3, "{text:?}");
        let (forks, shells) = (seconds[1] - seconds[0], seconds[2] - seconds[1]);
        (shells - forks) * 1000.0 / times as f64
    }

    fn delete(&self, id: &str) {
        self.ok(&["delete", "-f", id]);
    }

    /// Starts `count` containers at once from the one bundle (a thread each) and gives each
    /// one's `runc run -d` time; deletes them after.
    fn burst(&self, count: usize) -> Vec<f64> {
        let ids: Vec<String> = (0..count).map(|i| format!("perf-floor-{i}")).collect();
        let times = std::thread::scope(|scope| {
            let runs: Vec<_> = ids
                .iter()
                .map(|id| scope.spawn(move || millis_of(|| self.run(id), 1)[0]))
                .collect();
            runs.into_iter().map(|run| run.join().unwrap()).collect()
        });
        for id in &ids {
            self.delete(id);
        }
        times
    }
}

/// `PERF_HOLD`: leaves the server up, with the sandbox `perf-cli` ready, until Enter, for
/// looking at one figure by hand (a profiler, `strace`, the phases log).
fn hold(server: &TestServer) {
    eprintln!(
        "holding: LANGSMITH_ENDPOINT={} LANGSMITH_API_KEY={} (sandbox perf-cli); Enter ends",
        server.url,
        common::server::API_KEY
    );
    let _ = std::io::stdin().read_line(&mut String::new());
}

/// One line of the SDK script's output.
fn sdk_figures(server: &TestServer, snapshot: &str, env: &[(&str, String)]) -> Vec<Value> {
    let mut all: Vec<(&str, &str)> = vec![("PERF_SNAPSHOT", snapshot)];
    all.extend(env.iter().map(|(k, v)| (*k, v.as_str())));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/perf_sdk.py");
    let output = run_ok(
        Command::new(sdk::python())
            .arg(script)
            .env("LANGSMITH_ENDPOINT", &server.url)
            .env("LANGSMITH_API_KEY", common::server::API_KEY)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(all),
    );
    output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn figure<'a>(figures: &'a [Value], name: &str) -> &'a Value {
    figures
        .iter()
        .find(|f| f["figure"] == name)
        .unwrap_or_else(|| panic!("the SDK script printed no {name}"))
}

fn samples(value: &Value) -> Vec<f64> {
    value["samples_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Waits (up to a minute) until the containers of the server at `state_dir`, its warm
/// sandboxes included, have stayed the same number for two seconds: the warm pool is full
/// and no start or teardown is under way. Memory and exec are then measured on a settled
/// server, not beside a warm sandbox's start.
fn settle(state_dir: &Path) {
    let containers = || runc_containers(state_dir).len();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let (mut count, mut since) = (containers(), Instant::now());
    while since.elapsed().as_secs() < 2 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = containers();
        if now != count {
            (count, since) = (now, Instant::now());
        }
    }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let warm_runs = setting("PERF_WARM_RUNS", benching, 50, 3);
    let create_runs = setting("PERF_CREATE_RUNS", benching, 20, 2);
    let concurrent = setting("PERF_CONCURRENT", benching, 100, 3);
    let big_mib = setting("PERF_BIG_MIB", benching, 64, 1);
    let stdout_mib = (setting("PERF_GIB", benching, 1, 0) << 10).max(8) as u64;
    let idle = setting("PERF_IDLE", benching, 1000, 3);
    let total = Instant::now();
    let mut rows = Vec::new();

    // The floor, first: nothing else runs yet.
    let floor = RuncFloor::new();
    let runc_cycle = millis_of(
        || {
            floor.run("perf-floor");
            floor.ok(&["exec", "perf-floor", "true"]);
            floor.delete("perf-floor");
        },
        create_runs,
    );
    let runc_burst = floor.burst(concurrent);
    floor.run("perf-floor");
    let runc_exec = millis_of(|| floor.ok(&["exec", "perf-floor", "true"]), warm_runs);
    let shell_alone = floor.shell_alone(warm_runs * 4);
    let (runc_bytes, runc_rate) = drain_rate(
        floor
            .runc()
            .args(["exec", "perf-floor", "head", "-c"])
            .arg((stdout_mib << 20).to_string())
            .arg("/dev/zero"),
    );
    assert_eq!(runc_bytes, stdout_mib << 20);
    floor.delete("perf-floor");

    // `PERF_SERVER_LOG=langsmith::phases=debug` shows where each operation's time went.
    let server_log = std::env::var("PERF_SERVER_LOG").unwrap_or_else(|_| "warn".into());
    let mut server = TestServer::start_with(&[], &[("LANGSMITH_LOG", &server_log)]);
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("perf", image::tiny(), 64 << 20);

    // The SDK's warm execs run in a sandbox made here, once the warm pool has refilled after
    // its create: the figure is the exec's, not that of a container starting beside it.
    api.ready_sandbox("perf-warm", &snapshot, json!({}));
    settle(&server.state_dir);
    let sdk = sdk_figures(
        &server,
        &snapshot,
        &[
            ("PERF_WARM_RUNS", warm_runs.to_string()),
            ("PERF_CREATE_RUNS", create_runs.to_string()),
            ("PERF_CONCURRENT", concurrent.to_string()),
            ("PERF_BIG_MIB", big_mib.to_string()),
            ("PERF_STUB_DATAPLANE", stub_agent::start()),
        ],
    );

    // The anchors on the server itself: one HTTP request per command, and the CLI.
    let warm = api.ready_sandbox("perf-cli", &snapshot, json!({}));
    settle(&server.state_dir);
    if std::env::var_os("PERF_HOLD").is_some() {
        hold(&server);
    }
    let http_exec = millis_of(
        || assert_eq!(api.exec(&warm, "true").exit_code, 0),
        warm_runs,
    );
    let cli_exec = millis_of(
        || {
            let out = Cli::new(&server)
                .args(&["sandbox", "exec", "perf-cli", "--", "true"])
                .run();
            assert_eq!(out.code, 0, "{}", out.stderr);
        },
        warm_runs,
    );
    // runc's floor container has no CPU limit, so the sandbox of this figure has the
    // machine's two cores rather than the default one: busybox `head` alone needs most of a
    // core to make a gigabyte, and the agent shares the sandbox's quota.
    api.ready_sandbox("perf-bulk", &snapshot, json!({"vcpus": 2}));
    let (cli_bytes, cli_rate) = drain_rate(
        &mut Cli::new(&server)
            .args(&["sandbox", "exec", "perf-bulk", "--", "head", "-c"])
            .arg((stdout_mib << 20).to_string())
            .arg("/dev/zero")
            .command(),
    );
    assert_eq!(cli_bytes, stdout_mib << 20);

    let runc_exec_p50 = Measure::Millis(median(&runc_exec));
    rows.push(Row {
        figure: "warm exec, SDK `run(\"true\")`, p50".into(),
        ours: Measure::Millis(median(&samples(figure(&sdk, "sdk_warm_exec")))),
        floor: Some({
            let sdk_alone = median(&samples(figure(&sdk, "sdk_stub_exec")));
            (
                format!(
                    "the SDK alone, against a stub that answers at once ({sdk_alone:.1} ms), \
                     plus the shell it asks for, `/bin/bash -c true` started and waited for \
                     in runc's container less a fork, mean ({shell_alone:.1} ms)"
                ),
                Measure::Millis(sdk_alone + shell_alone),
            )
        }),
        goal: "≤ 2 ms",
    });
    rows.push(Row {
        figure: "warm exec, HTTP `POST /execute`, p50".into(),
        ours: Measure::Millis(median(&http_exec)),
        floor: Some(("`runc exec true`".into(), runc_exec_p50)),
        goal: "—",
    });
    rows.push(Row {
        figure: "`langsmith sandbox exec x -- true`, whole process, p50".into(),
        ours: Measure::Millis(median(&cli_exec)),
        floor: Some(("`runc exec true`".into(), runc_exec_p50)),
        goal: "≤ 8 ms",
    });
    rows.push(Row {
        figure: "create (ready) → first `run(\"true\")`, SDK, one every ~0.3 s (warm pool), p50"
            .into(),
        ours: Measure::Millis(median(&samples(figure(&sdk, "sdk_create_first_run")))),
        floor: Some((
            "runc run + exec + delete".into(),
            Measure::Millis(median(&runc_cycle)),
        )),
        goal: "≤ 30 ms",
    });
    rows.push(Row {
        figure: "the same, back to back (no pause: some creates boot their own), p50".into(),
        ours: Measure::Millis(median(&samples(figure(&sdk, "sdk_create_back_to_back")))),
        floor: Some((
            "runc run + exec + delete".into(),
            Measure::Millis(median(&runc_cycle)),
        )),
        goal: "—",
    });
    rows.push(Row {
        figure: "delete, SDK, p50".into(),
        ours: Measure::Millis(median(&samples(figure(&sdk, "sdk_delete")))),
        floor: None,
        goal: "≤ 20 ms",
    });
    rows.push(Row {
        figure: format!(
            "{stdout_mib} MiB of stdout through `langsmith sandbox exec` (sandbox of 2 vCPUs)"
        ),
        ours: Measure::Rate(cli_rate),
        floor: Some(("`runc exec head -c`".into(), Measure::Rate(runc_rate))),
        goal: "≥ runc",
    });
    let big = figure(&sdk, "sdk_big_run");
    rows.push(Row {
        figure: format!("{big_mib} MiB through the SDK's `run()`, median of 3"),
        ours: Measure::Rate(big["mb_per_s"].as_f64().unwrap()),
        floor: Some((
            format!(
                "the same SDK against a stub sending the same messages at once (the source alone: {:.0} MB/s)",
                figure(&sdk, "sdk_big_source")["mb_per_s"].as_f64().unwrap()
            ),
            Measure::Rate(figure(&sdk, "sdk_big_stub")["mb_per_s"].as_f64().unwrap()),
        )),
        goal: "≥ 300 MB/s",
    });
    let burst = figure(&sdk, "sdk_concurrent_creates");
    let burst_errors = burst["errors"].as_array().unwrap();
    assert!(
        burst_errors.is_empty(),
        "concurrent creates failed: {burst_errors:?}"
    );
    rows.push(Row {
        figure: format!("{concurrent} concurrent creates, SDK, p95 (0 errors)"),
        ours: Measure::Millis(percentile(&samples(burst), 95.0)),
        floor: Some((
            format!("{concurrent} `runc run` at once, p95"),
            Measure::Millis(percentile(&runc_burst, 95.0)),
        )),
        goal: "≤ 1000 ms",
    });

    // Idle sandboxes: host memory per sandbox, and exec before and after.
    api.delete_sandbox("perf-cli");
    api.delete_sandbox("perf-bulk");
    api.wait_until_no_sandboxes();
    let probe = api.ready_sandbox("perf-idle-0", &snapshot, json!({}));
    settle(&server.state_dir);
    let exec_alone = millis_of(
        || assert_eq!(api.exec(&probe, "true").exit_code, 0),
        warm_runs,
    );
    // A sandbox's record by its name.
    let get = |name: &str| {
        let r = api.call("GET", &format!("/api/v2/sandboxes/boxes/{name}"), None);
        assert_eq!((r.status, r.body["name"].as_str()), (200, Some(name)));
        r.body
    };
    let got_alone = millis_of(|| drop(get("perf-idle-0")), warm_runs);
    let server_pid = server.pid().expect("the server runs");
    let (mem_before, slab_before) = scale::host_memory();
    let census_before = scale::Census::take(server_pid);
    let created = Instant::now();
    let mut sandboxes = vec![probe.clone()];
    let others: Vec<usize> = (1..idle).collect();
    sandboxes.extend(eight_at_a_time(&others, |i| {
        api.ready_sandbox(&format!("perf-idle-{i}"), &snapshot, json!({}))
    }));
    let create_seconds = created.elapsed().as_secs_f64();
    settle(&server.state_dir);
    let (mem_after, slab_after) = scale::host_memory();
    let census_after = scale::Census::take(server_pid);
    let per_sandbox = (mem_after - mem_before) / (idle.max(2) - 1) as f64 / 1e6;
    let last_name = format!("perf-idle-{}", idle - 1);
    let last = get(&last_name);
    let exec_crowded = millis_of(
        || assert_eq!(api.exec(&last, "true").exit_code, 0),
        warm_runs,
    );
    let got_crowded = millis_of(|| drop(get(&last_name)), warm_runs);
    let listed = millis_of(
        || {
            let r = api.call("GET", "/api/v2/sandboxes/boxes?limit=100", None);
            assert_eq!(r.status, 200);
        },
        warm_runs,
    );
    rows.push(Row {
        figure: format!(
            "{idle} idle sandboxes: host memory each (slab {:.2} MB)",
            (slab_after - slab_before) / (idle.max(2) - 1) as f64 / 1e6
        ),
        ours: Measure::Megabytes(per_sandbox),
        floor: None,
        goal: "≤ 3 MB",
    });
    rows.push(Row {
        figure: format!("HTTP exec p50 with {idle} sandboxes up"),
        ours: Measure::Millis(median(&exec_crowded)),
        floor: Some((
            "the same, 1 sandbox up".into(),
            Measure::Millis(median(&exec_alone)),
        )),
        goal: "unchanged",
    });
    rows.push(Row {
        figure: format!("get by name, p50 with {idle} sandboxes up"),
        ours: Measure::Millis(median(&got_crowded)),
        floor: Some((
            "the same, 1 sandbox up".into(),
            Measure::Millis(median(&got_alone)),
        )),
        goal: "—",
    });
    rows.push(Row {
        figure: format!("list (100 of {idle}), p50"),
        ours: Measure::Millis(median(&listed)),
        floor: None,
        goal: "—",
    });
    // Every one of them answers an exec.
    eight_at_a_time(&sandboxes, |sandbox| {
        let exec = api.exec(sandbox, "echo answered");
        assert_eq!(
            (exec.exit_code, exec.stdout.trim()),
            (0, "answered"),
            "{sandbox}"
        );
    });
    let ids: Vec<String> = sandboxes
        .iter()
        .map(|sandbox| sandbox["id"].as_str().unwrap().to_string())
        .collect();
    let deleted = Instant::now();
    let all: Vec<usize> = (0..idle).collect();
    eight_at_a_time(&all, |i| api.delete_sandbox(&format!("perf-idle-{i}")));
    api.wait_until_no_sandboxes();
    let delete_seconds = deleted.elapsed().as_secs_f64();
    // A running server keeps its warm sandboxes; it destroys them when it stops.
    server.stop();

    println!();
    println!("| figure | langsmith | floor / anchor (same run) | ratio | goal |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        let (floor, ratio) = match &row.floor {
            Some((name, m)) => (
                format!("{name}: {}", m.show()),
                row.ours
                    .ratio(*m)
                    .map_or("—".into(), |r| format!("{r:.2}×")),
            ),
            None => ("—".into(), "—".into()),
        };
        println!(
            "| {} | {} | {floor} | {ratio} | {} |",
            row.figure,
            row.ours.show(),
            row.goal
        );
    }
    println!();
    println!(
        "{idle} idle sandboxes created in {create_seconds:.1} s and deleted in {delete_seconds:.1} s \
         (8 at a time); ratio > 1 means faster than the floor. Whole run {:.0} s.",
        total.elapsed().as_secs_f64()
    );
    scale::print_limits(&census_before, &census_after, idle);
    // Checked once the figures are out, so a leftover does not cost the run's figures.
    assert_no_leftovers(&server.state_dir);
    assert_cgroups_and_processes_gone(&ids);
    println!();
    println!(
        "Each of the {idle} idle sandboxes answered an exec; once they were deleted and the \
         server stopped, no container, mount, loop device, id-range claim, cgroup or process \
         of theirs was left."
    );
}

/// Runs `work` on every item, eight at a time (a busy client's pace, which leaves the
/// server's own concurrency to show), and gives the results in the items' order.
fn eight_at_a_time<I: Sync, T: Send>(items: &[I], work: impl Fn(&I) -> T + Sync) -> Vec<T> {
    let workers = 8.min(items.len().max(1));
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mine = items.iter().enumerate().skip(w).step_by(workers);
                    mine.map(|(at, item)| (at, work(item))).collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            for (at, result) in handle.join().unwrap() {
                results[at] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}
