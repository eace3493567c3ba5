//! Resource limits really enforced: CPU quota (measured from the host's cgroup accounting),
//! memory, rootfs capacity, the process limit, and a memory update taking effect at restart.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::server::API_KEY;
use crate::common::{TestServer, image};
use crate::durability::assert_no_leftovers;

const MIB: i64 = 1 << 20;

/// The CPU measurement and the fork bomb must not share the machine's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A v1 cgroup file of the sandbox's container, read on the host.
fn cgroup_file(controller: &str, sandbox: &Value, file: &str) -> String {
    let id = sandbox["id"].as_str().unwrap();
    let path = format!("/sys/fs/cgroup/{controller}/langsmith/ls-{id}/{file}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn cpu_usage_ns(sandbox: &Value) -> u64 {
    cgroup_file("cpuacct", sandbox, "cpuacct.usage")
        .trim()
        .parse()
        .unwrap()
}

/// Runs two busy loops in the sandbox and returns the CPUs it got (cgroup CPU time over
/// wall time) across a few seconds.
fn cpus_used_by_two_busy_threads(api: &Api, sandbox: &Value) -> f64 {
    let r = api.exec(
        sandbox,
        "for i in 1 2; do (while :; do :; done) >/dev/null 2>&1 & done; echo started",
    );
    assert_eq!(r.stdout, "started\n", "{r:?}");
    let before = cpu_usage_ns(sandbox);
    wait_for(
        "the busy loops to burn CPU",
        Duration::from_secs(30),
        || (cpu_usage_ns(sandbox) > before + 200_000_000).then_some(()),
    );
    let (start_ns, start) = (cpu_usage_ns(sandbox), Instant::now());
    // The measurement window (not a synchronisation): long enough to span many CPU periods.
    std::thread::sleep(Duration::from_secs(4));
    let used = cpu_usage_ns(sandbox) - start_ns;
    used as f64 / start.elapsed().as_nanos() as f64
}

#[test]
fn the_cpu_quota_follows_vcpus() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("cpu", image::tiny(), 64 * MIB);

    let one = api.ready_sandbox("one", &snap, json!({"vcpus": 1, "mem_bytes": 256 * MIB}));
    let limited = cpus_used_by_two_busy_threads(&api, &one);
    let stat = cgroup_file("cpu", &one, "cpu.stat");
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .unwrap()
        .parse()
        .unwrap();
    api.delete_sandbox("one");

    let two = api.ready_sandbox("two", &snap, json!({"vcpus": 2, "mem_bytes": 256 * MIB}));
    let baseline = cpus_used_by_two_busy_threads(&api, &two);
    api.delete_sandbox("two");

    assert!(
        limited < 1.3,
        "vcpus 1 used {limited:.2} CPUs (vcpus 2: {baseline:.2})"
    );
    assert!(throttled > 0, "vcpus 1 was never throttled: {stat}");
    assert!(
        baseline > 1.5,
        "vcpus 2 used only {baseline:.2} CPUs (vcpus 1: {limited:.2})"
    );
    assert_no_leftovers(&server.state_dir);
}

/// `POST {dp}/execute` that may fail (the sandbox may be out of processes): `Some(stdout)`
/// only when the command ran.
fn try_exec(api: &Api, sandbox: &Value, command: &str) -> Option<String> {
    let dp = sandbox["dataplane_url"].as_str().unwrap();
    let resp = api
        .raw()
        .post(format!("{dp}/execute"))
        .header("X-Api-Key", API_KEY)
        .json(&json!({"command": command, "shell": "/bin/sh", "timeout": 20}))
        .send()
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body: Value = resp.json().ok()?;
    (body["exit_code"] == 0).then(|| body["stdout"].as_str().unwrap_or("").to_string())
}

/// Which limit stopped a fork bomb.
struct Stopped {
    pids_limit_hit: bool,
    oom_kills: bool,
}

fn oom_kills(sandbox: &Value) -> u64 {
    cgroup_file("memory", sandbox, "memory.oom_control")
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .map_or(0, |n| n.parse().unwrap())
}

/// Starts a fork bomb in `victim` that gives up forking after 10 s (busybox `timeout` would
/// only kill its first process), checks that `bystander` and the host keep working while a
/// limit holds it, and waits until `victim` answers again with its processes gone.
fn fork_bomb_and_recover(api: &Api, victim: &Value, bystander: &Value) -> Stopped {
    let pids_before = cgroup_file("pids", victim, "pids.events");
    let oom_before = oom_kills(victim);
    let r = api.exec(
        victim,
        "bash -c 'end=$((SECONDS+10)); b(){ [ $SECONDS -lt $end ] && { b|b & }; }; b' \
         >/dev/null 2>&1; echo launched",
    );
    assert_eq!(r.stdout, "launched\n", "{r:?}");
    let stopped = wait_for("a limit to stop the bomb", Duration::from_secs(60), || {
        let stopped = Stopped {
            pids_limit_hit: cgroup_file("pids", victim, "pids.events") != pids_before,
            oom_kills: oom_kills(victim) > oom_before,
        };
        (stopped.pids_limit_hit || stopped.oom_kills).then_some(stopped)
    });
    assert_eq!(api.exec(bystander, "echo fine").stdout, "fine\n");
    let host = std::process::Command::new("true").status().unwrap();
    assert!(host.success(), "the host could not start a process");
    wait_for("the sandbox to recover", Duration::from_secs(180), || {
        let current: u64 = cgroup_file("pids", victim, "pids.current")
            .trim()
            .parse()
            .unwrap();
        (current < 10 && try_exec(api, victim, "echo back").as_deref() == Some("back\n"))
            .then_some(())
    });
    stopped
}

#[test]
fn memory_disk_and_process_limits_hold_and_updates_apply_at_restart() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("lim", image::tiny(), 64 * MIB);
    let sb = api.ready_sandbox(
        "lim",
        &snap,
        json!({"vcpus": 1, "mem_bytes": 256 * MIB, "fs_capacity_bytes": 1024 * MIB}),
    );
    // The fork bomb's sandbox has the memory for the whole pids limit (in 256 MiB the
    // memory limit stops it first, which contains it just as well but proves less).
    let bomb = api.ready_sandbox("bomb", &snap, json!({"vcpus": 1, "mem_bytes": 1024 * MIB}));

    // 512 MiB in a 256 MiB sandbox: the allocating process dies, the sandbox answers.
    let r = api.exec(
        &sb,
        "bash -c 'x=$(head -c 536870912 /dev/zero | tr \"\\0\" a); echo ${#x}'",
    );
    assert!(!r.stdout.contains("536870912"), "allocated 512 MiB: {r:?}");
    assert_ne!(r.exit_code, 0, "{r:?}");
    assert_eq!(api.exec(&sb, "echo alive").stdout, "alive\n");

    // 2 GiB into a 1 GiB rootfs: ENOSPC.
    let r = api.exec(
        &sb,
        "dd if=/dev/zero of=/root/big bs=1M count=2048 2>&1; echo rc=$?",
    );
    assert!(r.stdout.contains("No space left on device"), "{r:?}");
    assert!(!r.stdout.contains("rc=0"), "{r:?}");
    assert_eq!(
        api.exec(&sb, "rm -f /root/big && echo gone").stdout,
        "gone\n"
    );

    // A fork bomb: the pids limit stops it, the host and other sandboxes carry on.
    let counters = fork_bomb_and_recover(&api, &bomb, &sb);
    assert!(counters.pids_limit_hit, "the pids limit was never hit");
    // In 256 MiB the memory limit stops it first: the OOM killer must take the bomb's
    // processes, never the agent (PID 1), or the sandbox would not answer again.
    let counters = fork_bomb_and_recover(&api, &sb, &bomb);
    assert!(
        counters.pids_limit_hit || counters.oom_kills,
        "nothing stopped the bomb"
    );

    // A memory update takes effect at the next start.
    let r = api.call(
        "PATCH",
        "/api/v2/sandboxes/boxes/lim",
        Some(json!({"mem_bytes": 512 * MIB})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call("POST", "/api/v2/sandboxes/boxes/lim/stop", None);
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api.call("POST", "/api/v2/sandboxes/boxes/lim/start", None);
    assert!(r.status == 202 || r.status == 200, "{}", r.body);
    let sb = wait_for("lim to start again", Duration::from_secs(60), || {
        let r = api.call("GET", "/api/v2/sandboxes/boxes/lim", None);
        (r.body["status"] == "ready").then_some(r.body)
    });
    let limit = cgroup_file("memory", &sb, "memory.limit_in_bytes");
    assert_eq!(limit.trim(), (512 * MIB).to_string());

    api.delete_sandbox("lim");
    api.delete_sandbox("bomb");
    assert_no_leftovers(&server.state_dir);
}
