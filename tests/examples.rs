//! The automations in `scripts/examples/` run through `langsmith run` against the real server:
//! fan-out over parallel sandboxes behind a start barrier, build → capture → reuse a snapshot, and a test suite run in
//! a fresh sandbox. Each must leave nothing behind, also when it fails.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::api::Api;
use crate::common::cli::{Cli, CliOutput};
use crate::common::{TestServer, image};

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

/// `langsmith ARGS…` against `server`, killed (and the test failed) if it has not finished
/// within a bound generous for any machine: what it guards against is a wait without end.
fn run_within_deadline(server: &TestServer, args: &[&str], why: &str) -> CliOutput {
    let child = Cli::new(server).args(args).spawn();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(600))
        .unwrap_or_else(|_| {
            // SAFETY: kill(2) on the child spawned above, which has not been reaped yet.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{why}");
        })
        .unwrap();
    out.into()
}

#[test]
fn fanout_runs_the_command_in_every_sandbox_at_once() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("fan-tiny", image::tiny(), 64 << 20);
    // The example's start barrier is the proof of parallelism: every command waits for its
    // `go` until all of them have printed `ready`, so commands run one after another could
    // never get past the first.
    let command = "echo \"in $FANOUT_SANDBOX\"";
    let out = run_within_deadline(
        &server,
        &[
            "run",
            &example("fanout.rhai"),
            &snapshot,
            "3",
            command,
            "fan",
        ],
        "fanout.rhai never passed its start barrier: the commands did not run side by side",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let results = out.json();
    let results = results.as_array().expect("an array of results");
    assert_eq!(results.len(), 3, "{results:?}");
    for (i, r) in results.iter().enumerate() {
        let name = format!("fan-{i}");
        assert_eq!(r["sandbox"], name.as_str());
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(
            r["stdout"],
            format!("in {name}\n"),
            "the output after the barrier, the `ready` line consumed by the script"
        );
        assert_sandbox_gone(&api, &name);
    }
}

#[test]
fn a_captured_snapshot_carries_what_was_installed_into_a_new_sandbox() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let out = Cli::new(&server)
        .args(&[
            "run",
            &example("snapshot_reuse.rhai"),
            image::tiny(),
            "reuse",
        ])
        .run();
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
    let out = Cli::new(&server)
        .args(&[
            "run",
            &example("test_suite.rhai"),
            &snapshot,
            suite.path().to_str().unwrap(),
            "suite-box",
        ])
        .run();
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
    let out = Cli::new(&server)
        .args(&[
            "run",
            &example("test_suite.rhai"),
            &snapshot,
            "/nonexistent/suite",
            "suite-box",
        ])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("upload: reading /nonexistent/suite"),
        "{}",
        out.stderr
    );
    assert_sandbox_gone(&api, "suite-box");
}

/// `tunnel_web.rhai`: a web site served by Python in a default-snapshot sandbox, fetched
/// through a tunnel and through a service URL, and the sandbox gone afterwards.
#[test]
fn the_web_example_fetches_through_a_tunnel_and_a_service_url() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let out = run_within_deadline(
        &server,
        &["run", &example("tunnel_web.rhai"), "web-example"],
        "tunnel_web.rhai did not finish",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["sandbox"], "web-example");
    for way in ["tunnel", "service"] {
        assert_eq!(r[way]["status"], 200, "{way}: {r}");
        let page = r[way]["page"].as_str().unwrap();
        assert!(
            page.contains("hello from the sandbox") && page.contains("src=\"app.js\""),
            "{way}: {r}"
        );
        assert!(
            r[way]["asset"].as_str().unwrap().contains("(app.js ran)"),
            "{way}: {r}"
        );
    }
    assert_eq!(r["service"]["status_without_token"], 401, "{r}");
    assert_sandbox_gone(&api, "web-example");
}
