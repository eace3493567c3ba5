//! Isolation basics, checked from inside a real sandbox.

use std::net::TcpListener;

use serde_json::json;

use crate::common::api::Api;
use crate::common::server::runc_containers;
use crate::common::{TestServer, image};

const MIB: i64 = 1 << 20;

#[test]
fn a_sandbox_sees_only_itself_and_its_limits_hold() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("iso", image::tiny(), 64 * MIB);
    let sb = api.ready_sandbox(
        "iso",
        &snapshot,
        json!({"vcpus": 1, "mem_bytes": 128 * MIB, "fs_capacity_bytes": 64 * MIB}),
    );

    // Processes: only the sandbox's own (the agent as PID 1, the shell, ps).
    let ps = api.exec(&sb, "ps -o pid,args");
    assert_eq!(ps.exit_code, 0, "{ps:?}");
    let procs: Vec<&str> = ps.stdout.lines().skip(1).collect();
    assert!(
        procs.len() <= 4,
        "unexpected processes in the sandbox: {procs:?}"
    );
    assert!(
        procs
            .iter()
            .any(|p| p.trim_start().starts_with("1 ") && p.contains("agent")),
        "{procs:?}"
    );
    assert!(!ps.stdout.contains("docker-registry") && !ps.stdout.contains("langsmith server"));

    // Host files are not there.
    let marker = format!("/tmp/langsmith-host-marker-{}", std::process::id());
    std::fs::write(&marker, "host secret").unwrap();
    let r = api.exec(&sb, &format!("cat {marker}"));
    std::fs::remove_file(&marker).unwrap();
    assert_ne!(r.exit_code, 0, "host file visible in the sandbox: {r:?}");

    // The host's loopback services are unreachable; the sandbox has only its own `lo`.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = api.exec(
        &sb,
        &format!("nc -z -w 2 127.0.0.1 {port} && echo reached || echo blocked"),
    );
    assert_eq!(r.stdout.trim(), "blocked", "{r:?}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the host listener was reached");
    // Its interfaces are its own: loopback and the veth pair whose both ends stay in its
    // namespace (the egress path); nothing links it to the host.
    let r = api.exec(&sb, "cat /proc/net/dev");
    let mut ifaces: Vec<&str> = r
        .stdout
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    ifaces.sort();
    assert_eq!(ifaces, vec!["eth0", "eth0p", "lo"], "{}", r.stdout);

    // Writing past the rootfs capacity fails with ENOSPC inside; the host is unaffected.
    let r = api.exec(
        &sb,
        "dd if=/dev/zero of=/big bs=1M count=200 2>&1; echo rc=$?",
    );
    assert!(r.stdout.contains("No space left on device"), "{r:?}");
    assert!(!r.stdout.contains("rc=0"), "{r:?}");
    api.exec(&sb, "rm -f /big");

    // A process allocating past the memory limit is killed inside; the sandbox lives on.
    let r = api.exec(
        &sb,
        "bash -c 'x=$(head -c 300000000 /dev/zero | tr \"\\0\" a); echo ${#x}'",
    );
    assert!(
        !r.stdout.contains("300000000"),
        "allocated past the limit: {r:?}"
    );
    assert_ne!(r.exit_code, 0, "{r:?}");
    let r = api.exec(&sb, "echo alive");
    assert_eq!(r.stdout, "alive\n");

    // Pseudo-terminals come from one pool every sandbox on the host shares: a sandbox
    // opening them in a loop gets its own share (`PTYS_PER_SANDBOX`, 128), not the pool.
    // (`command` keeps the shell alive when a redirection of `exec` fails.)
    let r = api.exec(
        &sb,
        "n=0; while [ $n -lt 400 ]; do \
           command eval \"exec $((n + 10))<>/dev/ptmx\" 2>/dev/null || break; n=$((n + 1)); \
         done; echo $n",
    );
    assert_eq!(r.stdout, "128\n", "{r:?}");

    api.delete_sandbox("iso");
}

#[test]
fn a_delete_frees_the_name_at_once_and_leaves_no_container_mount_or_loop_device() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("clean", image::tiny(), 64 * MIB);
    let sb = api.ready_sandbox("clean", &snapshot, json!({}));
    let id = sb["id"].as_str().unwrap().to_string();
    // Acknowledged once recorded: the name is gone and free at once, whether or not the
    // teardown has finished yet.
    let r = api.call("DELETE", "/api/v2/sandboxes/boxes/clean", None);
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api.call("GET", "/api/v2/sandboxes/boxes/clean", None);
    assert_eq!(r.status, 404);
    let again = api.ready_sandbox("clean", &snapshot, json!({}));
    assert_ne!(again["id"], sb["id"]);
    api.wait_until_torn_down(&id);

    let containers = runc_containers(&server.state_dir);
    assert!(
        !containers.iter().any(|c| c.contains(&id)),
        "{containers:?}"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&id), "mounts left behind for {id}");
    let loops = std::process::Command::new("losetup")
        .arg("-a")
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&loops.stdout).contains(&id),
        "loop devices left behind"
    );
    assert!(
        !server
            .state_dir
            .join("runtime/sandboxes")
            .join(&id)
            .exists()
    );
    api.delete_sandbox("clean");
}

/// A user killing every process it can (`kill -9 -1` spares only PID 1) takes the agent's
/// data-plane server with it; PID 1 starts it again and the sandbox keeps answering.
#[test]
fn the_agent_comes_back_after_kill_minus_one() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("k1", image::tiny(), 64 * MIB);
    let sb = api.ready_sandbox("k1", &snapshot, json!({}));
    let dp = sb["dataplane_url"].as_str().unwrap().to_string();
    // The request itself dies with the server that runs it: its answer does not matter.
    let _ = api
        .raw()
        .post(format!("{dp}/execute"))
        .header("X-Api-Key", crate::common::server::API_KEY)
        .json(&json!({"command": "kill -9 -1", "shell": "/bin/sh"}))
        .send();
    crate::common::process::wait_for(
        "the agent to answer again",
        std::time::Duration::from_secs(30),
        || {
            let resp = api
                .raw()
                .post(format!("{dp}/execute"))
                .header("X-Api-Key", crate::common::server::API_KEY)
                .json(&json!({"command": "echo back", "shell": "/bin/sh"}))
                .send()
                .ok()?;
            let body: serde_json::Value = resp.json().ok()?;
            (body["stdout"] == "back\n").then_some(())
        },
    );
    let r = api.call("GET", "/api/v2/sandboxes/boxes/k1", None);
    assert_eq!(r.body["status"], "ready");
    api.delete_sandbox("k1");
}

/// A service listening on one sandbox's loopback is that sandbox's alone: another sandbox's
/// `127.0.0.1:PORT` is its own, empty, loopback, and a service-URL token minted for one
/// sandbox opens neither the other's origin nor, through its own, the other's service.
#[test]
fn a_service_in_one_sandbox_is_out_of_reach_of_another() {
    use crate::common::web::{INDEX_HTML, get, serve_site};
    const PORT: u16 = 8000;
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("iso-svc", image::tiny(), 64 * MIB);
    let a = api.ready_sandbox("iso-a", &snapshot, json!({}));
    let b = api.ready_sandbox("iso-b", &snapshot, json!({}));
    serve_site(&api, &b, PORT);
    let probe = format!(
        "nc -w 2 127.0.0.1 {PORT} </dev/null >/dev/null 2>&1 && echo reached || echo blocked; \
         wget -q -O /tmp/page http://127.0.0.1:{PORT}/ 2>/dev/null && cat /tmp/page || echo no-answer"
    );
    let from_b = api.exec(&b, &probe);
    assert_eq!(
        from_b.stdout,
        format!("reached\n{INDEX_HTML}"),
        "{from_b:?}"
    );

    let from_a = api.exec(&a, &probe);
    assert_eq!(from_a.stdout, "blocked\nno-answer\n", "{from_a:?}");

    let mint = |name: &str| {
        let r = api.call(
            "POST",
            &format!("/api/v2/sandboxes/boxes/{name}/service-url"),
            Some(json!({"port": PORT})),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    };
    let (link_a, link_b) = (mint("iso-a"), mint("iso-b"));
    let (url_a, url_b) = (
        link_a["service_url"].as_str().unwrap(),
        link_b["service_url"].as_str().unwrap(),
    );
    let (token_a, token_b) = (link_a["token"].as_str(), link_b["token"].as_str());
    assert_ne!(url_a, url_b, "each sandbox+port has its own origin");
    assert_eq!(get(url_b, token_b), (200, INDEX_HTML.to_string()));
    let (status, body) = get(url_b, token_a);
    assert_eq!(status, 403, "A's token on B's origin: {body}");
    assert!(!body.contains("hello from the sandbox"), "{body}");
    let (status, body) = get(url_a, token_a);
    assert_eq!(status, 502, "A's own origin has nothing on {PORT}: {body}");
    assert!(body.contains("Service is not reachable"), "{body}");

    api.delete_sandbox("iso-a");
    api.delete_sandbox("iso-b");
}
