//! The sandbox lifecycle through the CLI: create (with `--proxy-config @file`), get, list and
//! its table, exec, start/stop/wait/update and their confirmations, delete.

use serde_json::json;

use super::table::{bytes_text, expected_table, local_minute};
use super::{SANDBOX_KEYS, assert_key_order, build, create, failure, ok};
use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::cli::Cli;

#[test]
fn sandbox_lifecycle_commands() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snap = build(&server, "base");
    let snap_id = snap["id"].as_str().unwrap();
    assert_eq!(
        ok(&server, &["sandbox", "list", "--format", "pretty"]).stdout,
        "[]\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let proxy_file = dir.path().join("proxy.json");
    let proxy =
        json!({"access_control": {"allow_list": ["example.com"]}, "no_proxy": ["10.1.2.3"]});
    std::fs::write(&proxy_file, proxy.to_string()).unwrap();
    let proxy_arg = format!("@{}", proxy_file.display());
    let vm = create(
        &server,
        "vm",
        snap_id,
        &["--memory", "512mb", "--proxy-config", &proxy_arg],
    );
    assert_eq!(vm["status"], "ready");
    assert_eq!(vm["mem_bytes"], 512 << 20);
    assert!(
        vm.get("proxy_config").is_none(),
        "the LangSmith CLI does not print proxy_config: {vm}"
    );
    let stored = api.call("GET", "/api/v2/sandboxes/boxes/vm", None).body;
    assert_eq!(
        stored["proxy_config"]["access_control"],
        proxy["access_control"]
    );
    let db = create(
        &server,
        "db",
        snap_id,
        &["--vcpus", "1", "--rootfs-capacity", "128mb"],
    );

    let conflict = failure(
        &server,
        &[
            "sandbox",
            "create",
            "vm",
            "--snapshot-id",
            snap_id,
            "--wait",
        ],
    );
    assert!(
        conflict.starts_with("creating sandbox: HTTP 409: "),
        "{conflict}"
    );

    let pretty_get = ok(&server, &["--format", "pretty", "sandbox", "get", "vm"]);
    assert_eq!(
        pretty_get.json()["name"],
        "vm",
        "the LangSmith CLI's get is JSON even in pretty mode"
    );
    let got = ok(&server, &["sandbox", "get", "vm"]);
    assert_key_order(&got.stdout, &SANDBOX_KEYS);
    assert_eq!(got.json()["id"], vm["id"]);
    let listed = ok(&server, &["sandbox", "list"]).json();
    let rows: Vec<Vec<String>> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let snapshot = s["snapshot_id"].as_str().unwrap();
            vec![
                s["name"].as_str().unwrap().into(),
                s["status"].as_str().unwrap().into(),
                s["vcpus"]
                    .as_i64()
                    .filter(|v| *v != 0)
                    .map(|v| v.to_string())
                    .unwrap_or("-".into()),
                s["mem_bytes"]
                    .as_i64()
                    .filter(|v| *v != 0)
                    .map(bytes_text)
                    .unwrap_or("-".into()),
                s["fs_capacity_bytes"]
                    .as_i64()
                    .map(bytes_text)
                    .unwrap_or("-".into()),
                format!("{}...", &snapshot[..8]),
                local_minute(s["created_at"].as_str().unwrap()),
            ]
        })
        .collect();
    assert_eq!(rows.len(), 2, "{listed}");
    let pretty = ok(&server, &["--format", "pretty", "sandbox", "list"]);
    let headers = [
        "Name", "Status", "VCPUs", "Mem", "Rootfs", "Snapshot", "Created",
    ];
    assert_eq!(pretty.stdout, expected_table("Sandboxes", &headers, &rows));

    let exec = ok(
        &server,
        &[
            "sandbox",
            "exec",
            "vm",
            "--",
            "sh",
            "-c",
            "echo kept > /root/note; echo out; echo err >&2",
        ],
    );
    assert_eq!(
        (exec.stdout.as_str(), exec.stderr.as_str()),
        ("out\n", "err\n")
    );
    let code = Cli::new(&server)
        .args(&["sandbox", "exec", "vm", "--", "sh", "-c", "exit 7"])
        .run();
    assert_eq!(code.code, 7);

    let running = failure(&server, &["sandbox", "start", "vm"]);
    assert!(running.starts_with("starting sandbox: HTTP "), "{running}");
    let updated = ok(&server, &["sandbox", "update", "vm", "--memory", "256mb"]);
    assert_key_order(&updated.stdout, &SANDBOX_KEYS);
    assert_eq!(
        ok(&server, &["sandbox", "stop", "vm"]).stdout,
        "Sandbox stopped.\n"
    );
    let stopped = failure(&server, &["sandbox", "exec", "vm", "--", "true"]);
    assert_eq!(stopped, r#"sandbox "vm" is not ready (status: stopped)"#);
    assert_eq!(
        ok(&server, &["sandbox", "get", "vm"]).json()["status"],
        "stopped"
    );
    let started = ok(
        &server,
        &["sandbox", "start", "vm", "--wait", "--timeout", "60"],
    );
    assert_eq!(started.stdout, "Sandbox vm started\n");
    assert_eq!(
        ok(&server, &["sandbox", "wait", "vm"]).stdout,
        "Sandbox vm is ready\n"
    );
    let after = ok(&server, &["sandbox", "get", "vm"]).json();
    assert_eq!(after["mem_bytes"], 256 << 20, "{after}");
    let note = ok(
        &server,
        &["sandbox", "exec", "vm", "--", "cat", "/root/note"],
    );
    assert_eq!(note.stdout, "kept\n");

    let lazy = ok(
        &server,
        &["sandbox", "create", "lazy", "--snapshot-id", snap_id],
    );
    assert_key_order(&lazy.stdout, &SANDBOX_KEYS);
    assert_eq!(
        ok(&server, &["sandbox", "wait", "lazy", "--timeout", "60"]).stdout,
        "Sandbox lazy is ready\n"
    );
    assert_eq!(
        ok(&server, &["sandbox", "get", "lazy"]).json()["mem_bytes"],
        512 << 20
    );
    ok(&server, &["sandbox", "delete", "lazy"]);
    ok(&server, &["sandbox", "stop", "db"]);
    assert_eq!(
        ok(&server, &["sandbox", "start", "db"]).stdout,
        "Sandbox db started\n"
    );
    assert_eq!(
        ok(&server, &["sandbox", "wait", "db", "--timeout", "60"]).stdout,
        "Sandbox db is ready\n"
    );
    assert_eq!(db["fs_capacity_bytes"], 128 << 20);

    for name in ["vm", "db"] {
        assert_eq!(
            ok(&server, &["sandbox", "delete", name]).stdout,
            "Sandbox deleted.\n"
        );
    }
    let unknown = failure(&server, &["sandbox", "delete", "vm"]);
    assert!(
        unknown.starts_with("deleting sandbox: HTTP 404: "),
        "{unknown}"
    );
    assert_eq!(ok(&server, &["sandbox", "list"]).stdout, "[]\n");
}
