//! Resource limits really enforced: CPU quota (measured from the host's cgroup accounting),
//! memory, rootfs capacity, the process limit, and a memory update taking effect at restart.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::api::Api;
use crate::common::leftovers::assert_no_leftovers;
use crate::common::process::wait_for;
use crate::common::server::API_KEY;
use crate::common::{TestServer, image};

const MIB: i64 = 1 << 20;

/// The CPU measurement and the fork bomb must not share the machine's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A v1 cgroup file of the sandbox's container, read on the host.
fn cgroup_file(controller: &str, sandbox: &Value, file: &str) -> String {
    crate::common::cgroup::cgroup_file(controller, sandbox["id"].as_str().unwrap(), file)
}

fn cpu_usage_ns(sandbox: &Value) -> u64 {
    cgroup_file("cpuacct", sandbox, "cpuacct.usage")
        .trim()
        .parse()
        .unwrap()
}

/// What a sandbox running two busy loops got over a few seconds, from its host cgroup.
#[derive(Debug)]
struct CpuSample {
    /// CPU time over wall time.
    cpus: f64,
    /// Share of the CFS periods in which the quota throttled the sandbox.
    throttled_share: f64,
    /// CPUs the rest of the machine used meanwhile (from /proc/stat).
    others_cpus: f64,
}

/// Nanoseconds all CPUs of the host spent busy (everything but idle and iowait).
fn host_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    let ticks: u64 = fields.iter().sum::<u64>() - fields[3] - fields[4];
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn cpu_stat(sandbox: &Value, key: &str) -> u64 {
    cgroup_file("cpu", sandbox, "cpu.stat")
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {key} in cpu.stat"))
        .parse()
        .unwrap()
}

fn two_busy_threads(api: &Api, sandbox: &Value) -> CpuSample {
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
    let (usage, periods, throttled) = (
        cpu_usage_ns(sandbox),
        cpu_stat(sandbox, "nr_periods"),
        cpu_stat(sandbox, "nr_throttled"),
    );
    let (start, host_busy) = (Instant::now(), host_busy_ns());
    // The measurement window (not a synchronisation): long enough to span many CPU periods.
    std::thread::sleep(Duration::from_secs(4));
    let used = cpu_usage_ns(sandbox) - usage;
    let elapsed = start.elapsed().as_nanos() as f64;
    let others = host_busy_ns()
        .saturating_sub(host_busy)
        .saturating_sub(used);
    let periods = cpu_stat(sandbox, "nr_periods") - periods;
    let throttled = cpu_stat(sandbox, "nr_throttled") - throttled;
    CpuSample {
        cpus: used as f64 / elapsed,
        throttled_share: throttled as f64 / periods.max(1) as f64,
        others_cpus: others as f64 / elapsed,
    }
}

#[test]
fn the_cpu_quota_follows_vcpus() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("cpu", image::tiny(), 64 * MIB);

    let one = api.ready_sandbox("one", &snap, json!({"vcpus": 1, "mem_bytes": 256 * MIB}));
    let limited = two_busy_threads(&api, &one);
    let quota_one = cgroup_file("cpu", &one, "cpu.cfs_quota_us");
    api.delete_sandbox("one");
    let two = api.ready_sandbox("two", &snap, json!({"vcpus": 2, "mem_bytes": 256 * MIB}));
    let baseline = two_busy_threads(&api, &two);
    let quota_two = cgroup_file("cpu", &two, "cpu.cfs_quota_us");
    api.delete_sandbox("two");

    let seen = format!("vcpus 1: {limited:?}, vcpus 2: {baseline:?}");
    eprintln!("cpu measurement: {seen}");
    assert_eq!((quota_one.trim(), quota_two.trim()), ("100000", "200000"));
    // Two busy threads never get more than about one CPU under vcpus 1, however idle the
    // machine is.
    assert!(limited.cpus < 1.3, "{seen}");
    // How much the threads get besides depends on what else the machine runs (other test
    // suites may share its two cores): the comparisons below are made only over a window in
    // which the rest of the machine left room for more than one CPU.
    const ROOM: f64 = 0.3;
    if limited.others_cpus < ROOM {
        // The quota, not a lack of CPUs, is what held vcpus 1 back.
        assert!(limited.throttled_share > 0.1, "{seen}");
    }
    if baseline.others_cpus < ROOM {
        // The same two threads under vcpus 2: near two CPUs, and throttled far less often
        // (two busy threads plus the shell brush against a 2-CPU quota now and then).
        assert!(baseline.cpus > 1.5, "{seen}");
        assert!(baseline.throttled_share < 0.5, "{seen}");
    }
    if limited.others_cpus >= ROOM || baseline.others_cpus >= ROOM {
        eprintln!("the machine was busy: CPU comparisons skipped for a busy window ({seen})");
    }
    // A running server keeps warm sandboxes; stopping it ends them (and no others).
    server.stop();
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
    let stopped = wait_for("a limit to stop the bomb", Duration::from_secs(120), || {
        let stopped = Stopped {
            pids_limit_hit: cgroup_file("pids", victim, "pids.events") != pids_before,
            oom_kills: oom_kills(victim) > oom_before,
        };
        (stopped.pids_limit_hit || stopped.oom_kills).then_some(stopped)
    });
    assert_eq!(api.exec(bystander, "echo fine").stdout, "fine\n");
    let host = std::process::Command::new("true").status().unwrap();
    assert!(host.success(), "the host could not start a process");
    // Recovered: the bomb gives up forking after 10 s, a command runs again, and the
    // processes are gone.
    wait_for(
        "the sandbox to answer again",
        Duration::from_secs(300),
        || {
            let out = try_exec(api, victim, "echo back");
            (out.as_deref() == Some("back\n")).then_some(())
        },
    );
    wait_for(
        "the bomb's processes to go",
        Duration::from_secs(120),
        || {
            let current: u64 = cgroup_file("pids", victim, "pids.current")
                .trim()
                .parse()
                .unwrap();
            (current < 10).then_some(())
        },
    );
    stopped
}

#[test]
fn memory_disk_and_process_limits_hold_and_updates_apply_at_restart() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("lim", image::tiny(), 64 * MIB);
    let sb = api.ready_sandbox(
        "lim",
        &snap,
        json!({"vcpus": 1, "mem_bytes": 256 * MIB, "fs_capacity_bytes": 1024 * MIB}),
    );
    // A fork bomb in a 1 GiB sandbox (pids limit 2048) and in the 256 MiB one (512).
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
    // In 256 MiB the pids limit scales down with the memory, so it still stops the bomb
    // before memory runs out and the sandbox answers again once the bomb has burnt out.
    let counters = fork_bomb_and_recover(&api, &sb, &bomb);
    assert!(
        counters.pids_limit_hit,
        "the pids limit did not stop the bomb"
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
    // …and it is what the sandbox itself sees.
    let inside = api.exec(&sb, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
    assert_eq!(inside.stdout.trim(), (512 * MIB).to_string(), "{inside:?}");

    api.delete_sandbox("lim");
    api.delete_sandbox("bomb");
    // A running server keeps warm sandboxes; stopping it ends them (and no others).
    server.stop();
    assert_no_leftovers(&server.state_dir);
}
