//! The automations in `scripts/examples/` run through `langsmith run` against the real server:
//! fan-out over parallel sandboxes, build → capture → reuse a snapshot, and a test suite run in
//! a fresh sandbox. Each must leave nothing behind, also when it fails.

use serde_json::Value;

use crate::common::api::Api;
use crate::common::{TestServer, cli, image};

fn example(name: &str) -> String {
    format!("{}/scripts/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn assert_sandbox_gone(api: &Api, name: &str) {
    let r = api.call("GET", &format!("/api/v2/sandboxes/boxes/{name}"), None);
    assert_eq!(
        r.status, 404,
        "sandbox {name} must be deleted: {:?}",
        r.body
    );
}

/// The two numbers of `/proc/uptime` lines printed before and after the workload.
fn uptimes(stdout: &str) -> (f64, f64) {
    let seconds: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(seconds.len(), 2, "{stdout:?}");
    (seconds[0], seconds[1])
}

#[test]
fn fanout_runs_the_command_in_every_sandbox_at_once() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("fan-tiny", image::tiny(), 64 << 20);
    // /proc/uptime is the host's clock in every sandbox. The workload holds each command open
    // long enough that, when they run in parallel, every one starts before any one ends.
    let command = "cat /proc/uptime; sleep 5; cat /proc/uptime; echo \"$FANOUT_SANDBOX\" >&2; echo \"in $FANOUT_SANDBOX\"";
    let out = cli::run(
        &server,
        &[
            "run",
            &example("fanout.rhai"),
            &snapshot,
            "3",
            command,
            "fan",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let results = out.json();
    let results = results.as_array().expect("an array of results");
    assert_eq!(results.len(), 3, "{results:?}");
    let mut spans = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let name = format!("fan-{i}");
        assert_eq!(r["sandbox"], name.as_str());
        assert_eq!(r["exit_code"], 0, "{r}");
        let stdout = r["stdout"].as_str().unwrap();
        assert!(stdout.ends_with(&format!("in {name}\n")), "{stdout:?}");
        let numbers: String = stdout.lines().take(2).collect::<Vec<_>>().join("\n");
        spans.push(uptimes(&numbers));
        assert_sandbox_gone(&api, &name);
    }
    let last_start = spans.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    let first_end = spans.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(
        last_start < first_end,
        "the commands did not overlap, so they ran one after another: {spans:?}"
    );
}

#[test]
fn a_captured_snapshot_carries_what_was_installed_into_a_new_sandbox() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let out = cli::run(
        &server,
        &[
            "run",
            &example("snapshot_reuse.rhai"),
            image::tiny(),
            "reuse",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["builder_said"], "hello, builder\n", "{r}");
    assert_eq!(r["reused_said"], "hello, reuse\n", "{r}");
    assert_eq!(r["exit_code"], 0);
    assert!(
        r["source_sandbox"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    for name in ["reuse-builder", "reuse-reused"] {
        assert_sandbox_gone(&api, name);
    }
    for key in ["base_snapshot", "captured_snapshot"] {
        let id = r[key].as_str().unwrap();
        let s = api.call("GET", &format!("/api/v2/sandboxes/snapshots/{id}"), None);
        assert_eq!(
            s.status, 404,
            "snapshot {key} must be deleted: {:?}",
            s.body
        );
    }
}

/// A copy of the example suite with one extra, failing test.
fn suite_with_a_broken_test() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let copy = |rel: &str| {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(example(&format!("suite/{rel}")), to).unwrap();
    };
    for rel in [
        "run.sh",
        "lib/calc.sh",
        "tests/test_add.sh",
        "tests/test_shout.sh",
    ] {
        copy(rel);
    }
    std::fs::write(
        dir.path().join("tests/test_broken.sh"),
        ". ./lib/calc.sh\n[ \"$(add 1 1)\" = 3 ] || { echo \"add 1 1 is not 3\"; exit 1; }\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_test_suite_runs_in_a_fresh_sandbox_and_its_results_are_collected() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("suite-tiny", image::tiny(), 64 << 20);
    let suite = suite_with_a_broken_test();
    let out = cli::run(
        &server,
        &[
            "run",
            &example("test_suite.rhai"),
            &snapshot,
            suite.path().to_str().unwrap(),
            "suite-box",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["files"], 5, "{r}");
    assert_eq!(
        r["passed"],
        serde_json::json!(["test_add", "test_shout"]),
        "{r}"
    );
    assert_eq!(r["failed"], serde_json::json!(["test_broken"]), "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["exit_code"], 1);
    let log: Vec<&str> = r["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(log, vec!["  test_broken: add 1 1 is not 3"], "{r}");
    assert_sandbox_gone(&api, "suite-box");

    // A run that fails half-way (the suite folder does not exist) still deletes its sandbox.
    let out = cli::run(
        &server,
        &[
            "run",
            &example("test_suite.rhai"),
            &snapshot,
            "/nonexistent/suite",
            "suite-box",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("upload: reading /nonexistent/suite"),
        "{}",
        out.stderr
    );
    assert_sandbox_gone(&api, "suite-box");
}
