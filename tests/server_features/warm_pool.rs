//! Warm sandboxes: a create of the kind last asked for adopts one started ahead of time and
//! makes it its own (name, limits); the API never shows the others, and they go with their
//! snapshot and with the server.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::api::Api;
use crate::common::leftovers::assert_no_leftovers;
use crate::common::process::{run_ok, wait_for};
use crate::common::server::runc_containers;
use crate::common::{TestServer, image};

const MIB: i64 = 1 << 20;

/// The ids of the containers the server at `state_dir` runs, warm ones included.
fn containers(state_dir: &Path) -> BTreeSet<String> {
    runc_containers(state_dir)
        .iter()
        .map(|name| name.trim_start_matches("ls-").to_string())
        .collect()
}

/// The server's log, where the pool says which warm sandboxes are ready to be taken.
const POOL_LOG: &str = "info,langsmith::server::warm_pool=debug";

/// The ids the log at `log` names as warm and ready.
fn ready_in_log(log: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("warm sandbox ready"))
        .filter_map(|line| line.split("sandbox=").nth(1))
        .map(|id| id.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// Waits until the server runs exactly `count` containers besides `known`'s, each one the
/// log says is ready to be taken; returns their ids.
fn wait_for_warm(
    server: &TestServer,
    log: &Path,
    known: &[&Value],
    count: usize,
) -> BTreeSet<String> {
    let known: BTreeSet<String> = known
        .iter()
        .map(|sb| sb["id"].as_str().unwrap().to_string())
        .collect();
    wait_for(
        &format!("{count} warm sandboxes"),
        Duration::from_secs(120),
        || {
            let warm: BTreeSet<String> = containers(&server.state_dir)
                .difference(&known)
                .cloned()
                .collect();
            let ready = warm.is_subset(&ready_in_log(log));
            (warm.len() == count && ready).then_some(warm)
        },
    )
}

fn cgroup_file(controller: &str, sandbox: &Value, file: &str) -> String {
    let id = sandbox["id"].as_str().unwrap();
    crate::common::cgroup::cgroup_file(controller, id, file)
        .trim()
        .to_string()
}

#[test]
fn a_create_adopts_a_warm_sandbox_and_makes_it_its_own() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    let mut server = TestServer::start_logging(POOL_LOG, &log);
    let state_dir = server.state_dir.clone();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("warm-pool", image::tiny(), 64 * MIB);

    // The first create of its kind boots its own; one of its kind is then started ahead.
    let first = api.ready_sandbox("first", &snap, json!({}));
    let warm = wait_for_warm(&server, &log, &[&first], 1);

    // The next one like it (other name and limits are still its kind) takes it over.
    let second = api.ready_sandbox(
        "second-box",
        &snap,
        json!({"vcpus": 2, "mem_bytes": 256 * MIB}),
    );
    let id = second["id"].as_str().unwrap();
    assert!(warm.contains(id), "{id} was not one of the warm {warm:?}");
    let identity = api.exec(
        &second,
        "hostname; cat /etc/hostname; echo $HOSTNAME; grep -c second-box /etc/hosts",
    );
    assert_eq!(
        identity.stdout, "second-box\nsecond-box\nsecond-box\n1\n",
        "{identity:?}"
    );
    assert_eq!(cgroup_file("cpu", &second, "cpu.cfs_quota_us"), "200000");
    assert_eq!(
        cgroup_file("memory", &second, "memory.limit_in_bytes"),
        (256 * MIB).to_string()
    );
    assert_eq!(cgroup_file("pids", &second, "pids.max"), "512");
    assert_eq!(
        api.exec(&second, "echo written > /root/f && cat /root/f")
            .stdout,
        "written\n"
    );

    // A create that took one has the pool refilled to its size (2); the API shows none.
    let warm = wait_for_warm(&server, &log, &[&first, &second], 2);
    let list = api.call("GET", "/api/v2/sandboxes/boxes", None);
    let names: BTreeSet<&str> = list.body["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sb| sb["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["first", "second-box"]));

    // A warm sandbox whose container died is booted afresh when taken, network included.
    let runc_root = state_dir.join("runtime/runc");
    for id in &warm {
        run_ok(Command::new("runc").arg("--root").arg(&runc_root).args([
            "kill",
            &format!("ls-{id}"),
            "KILL",
        ]));
    }
    let revived = api.ready_sandbox("revived", &snap, json!({}));
    assert!(warm.contains(revived["id"].as_str().unwrap()));
    assert_eq!(api.exec(&revived, "hostname").stdout, "revived\n");
    let interfaces = api.exec(&revived, "cat /proc/net/dev").stdout;
    assert!(interfaces.contains("eth0"), "no network: {interfaces}");
    api.delete_sandbox("revived");

    // Another environment is another kind: that create boots its own, and the pool turns to
    // its kind.
    let warm = wait_for_warm(&server, &log, &[&first, &second], 2);
    let third = api.ready_sandbox(
        "third",
        &snap,
        json!({"run_config": {"env_vars": {"FLAVOUR": "mint"}}}),
    );
    assert!(!warm.contains(third["id"].as_str().unwrap()));
    assert_eq!(api.exec(&third, "echo $FLAVOUR").stdout, "mint\n");
    wait_for(
        "the other kind's warm sandboxes to go",
        Duration::from_secs(120),
        || containers(&state_dir).is_disjoint(&warm).then_some(()),
    );
    wait_for_warm(&server, &log, &[&first, &second, &third], 1);

    // Deleting the snapshot takes its warm sandboxes along.
    for name in ["first", "second-box", "third"] {
        api.delete_sandbox(name);
    }
    let r = api.call(
        "DELETE",
        &format!("/api/v2/sandboxes/snapshots/{snap}"),
        None,
    );
    assert_eq!(r.status, 204, "{:?}", r.body);
    wait_for_warm(&server, &log, &[], 0);
    server.stop();
    assert_no_leftovers(&state_dir);
}

#[test]
fn warm_sandboxes_end_with_the_server_and_the_pool_can_be_turned_off() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    let mut server = TestServer::start_logging(POOL_LOG, &log);
    let api = Api::new(&server);
    let snap = api.ready_snapshot("warm-stop", image::tiny(), 64 * MIB);
    let kept = api.ready_sandbox("kept", &snap, json!({}));
    wait_for_warm(&server, &log, &[&kept], 1);
    // A stop leaves the sandboxes with a record running, and no warm one.
    server.stop();
    let left = containers(&server.state_dir);
    assert_eq!(
        left,
        BTreeSet::from([kept["id"].as_str().unwrap().to_string()])
    );

    // Warm sandboxes no create has asked for in a while go: here the TTL unit, and with it
    // the minute they are kept, is one second.
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("short.log");
    let short = TestServer::start_logging_with(
        POOL_LOG,
        &log,
        &[("LANGSMITH_SERVER_TTL_UNIT_SECONDS", "1")],
    );
    let api = Api::new(&short);
    let snap = api.ready_snapshot("warm-short", image::tiny(), 64 * MIB);
    let only = api.ready_sandbox("only", &snap, json!({}));
    let only_id = BTreeSet::from([only["id"].as_str().unwrap().to_string()]);
    wait_for("a warm sandbox to start", Duration::from_secs(120), || {
        (!ready_in_log(&log).is_empty()).then_some(())
    });
    wait_for("the warm sandbox to go", Duration::from_secs(120), || {
        (containers(&short.state_dir) == only_id).then_some(())
    });

    let off = TestServer::start_with(&["--warm-pool", "0"], &[]);
    let api = Api::new(&off);
    let snap = api.ready_snapshot("warm-off", image::tiny(), 64 * MIB);
    let one = api.ready_sandbox("one", &snap, json!({}));
    let two = api.ready_sandbox("two", &snap, json!({}));
    // Without a pool nothing is ever started ahead: every container has a record.
    let ids = [&one, &two].map(|sb| sb["id"].as_str().unwrap().to_string());
    assert_eq!(containers(&off.state_dir), BTreeSet::from(ids));
}
