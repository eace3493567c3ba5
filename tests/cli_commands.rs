//! The GA sandbox commands (`spec/cli.md`) against the real server: exact JSON key order
//! (§10), plain confirmations, `--format pretty` tables, size-string errors (§1.6) and the
//! lifecycle commands' effects on a real sandbox.

use serde_json::{Value, json};

use crate::common::api::Api;
use crate::common::cli::{self, CliOutput};
use crate::common::{TestServer, image};

const SNAPSHOT_KEYS: [&str; 11] = [
    "id",
    "name",
    "docker_image",
    "image_digest",
    "source_sandbox_id",
    "status",
    "status_message",
    "fs_capacity_bytes",
    "fs_used_bytes",
    "created_at",
    "updated_at",
];
const SANDBOX_KEYS: [&str; 10] = [
    "id",
    "name",
    "snapshot_id",
    "vcpus",
    "mem_bytes",
    "fs_capacity_bytes",
    "status",
    "dataplane_url",
    "created_at",
    "updated_at",
];

fn ok(server: &TestServer, args: &[&str]) -> CliOutput {
    let out = cli::run(server, args);
    assert_eq!(out.code, 0, "{args:?}: {} / {}", out.stdout, out.stderr);
    out
}

/// The message of the one-line `{"error": "…"}` a failed command prints (exit status 1).
fn failure(server: &TestServer, args: &[&str]) -> String {
    let out = cli::run(server, args);
    assert_eq!(out.code, 1, "{args:?} should fail: {}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("{\"error\": \""), "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stderr).expect("the error line is JSON");
    v["error"].as_str().unwrap().to_string()
}

/// Top-level keys of a 2-space-indented JSON object, in printed order.
fn keys_in_order(object_text: &str) -> Vec<String> {
    object_text
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split_once('"').map(|(k, _)| k.to_string()))
        .collect()
}

/// `expected` in order, with absent optional keys skipped.
fn assert_key_order(object_text: &str, expected: &[&str]) {
    let keys = keys_in_order(object_text);
    let wanted: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|k| keys.iter().any(|got| got == k))
        .collect();
    assert_eq!(keys, wanted, "{object_text}");
    for must in ["id", "name", "status", "created_at", "updated_at"] {
        assert!(
            keys.iter().any(|k| k == must),
            "{must} missing: {object_text}"
        );
    }
}

fn build(server: &TestServer, name: &str) -> Value {
    let out = ok(
        server,
        &[
            "sandbox",
            "snapshot",
            "build",
            name,
            "--docker-image",
            image::tiny(),
            "--capacity",
            "64mb",
            "--wait",
        ],
    );
    assert_key_order(&out.stdout, &SNAPSHOT_KEYS);
    out.json()
}

fn create(server: &TestServer, name: &str, snapshot_id: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "sandbox",
        "create",
        name,
        "--snapshot-id",
        snapshot_id,
        "--wait",
    ];
    args.extend_from_slice(extra);
    let out = ok(server, &args);
    assert_key_order(&out.stdout, &SANDBOX_KEYS);
    out.json()
}

/// The GA table (§1.5) drawn independently of the CLI's own renderer.
fn expected_table(title: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let numeric = |c: &str| {
        let c = c.trim().strip_prefix('-').unwrap_or(c.trim());
        let (int, frac) = c.split_once('.').unwrap_or((c, "0"));
        !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && !frac.is_empty()
            && frac.bytes().all(|b| b.is_ascii_digit())
    };
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap()
        })
        .collect();
    let mut out = format!("{title}\n{}\n ", "─".repeat(title.len()));
    for (i, h) in headers.iter().enumerate() {
        let gap = widths[i] - h.len();
        let sep = if i + 1 == headers.len() { " " } else { "  " };
        out += &format!(
            " {}{}{} {sep}",
            " ".repeat(gap / 2),
            h.to_uppercase(),
            " ".repeat(gap - gap / 2)
        );
    }
    out += "\n-";
    for (i, w) in widths.iter().enumerate() {
        let end = if i + 1 == widths.len() { "-" } else { "+" };
        out += &format!("-{}-{end}", "-".repeat(*w));
    }
    out += "\n";
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let lead = if i == 0 { " " } else { "  " };
            let body = if numeric(cell) {
                format!("{pad}{cell}")
            } else {
                format!("{cell}{pad}")
            };
            out += &format!("{lead} {body} ");
        }
        out += " \n";
    }
    out
}

fn local_minute(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn bytes_text(b: i64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MB", b as f64 / (1u64 << 20) as f64)
    }
}

#[test]
fn snapshot_commands_print_ga_shapes() {
    let server = TestServer::start();
    let empty = ok(
        &server,
        &["--format", "pretty", "sandbox", "snapshot", "list"],
    );
    assert_eq!(empty.stdout, "[]\n");

    let started = ok(
        &server,
        &[
            "sandbox",
            "snapshot",
            "build",
            "plain",
            "--docker-image",
            image::tiny(),
            "--capacity",
            "64mb",
        ],
    );
    assert_key_order(&started.stdout, &SNAPSHOT_KEYS);
    let id = started.json()["id"].as_str().unwrap().to_string();
    let waited = ok(
        &server,
        &["sandbox", "snapshot", "wait", &id, "--timeout", "120"],
    );
    assert_eq!(waited.json()["status"], "ready");
    assert_key_order(&waited.stdout, &SNAPSHOT_KEYS);
    let got = ok(&server, &["sandbox", "snapshot", "get", &id]);
    assert_eq!(got.json()["id"], id.as_str());
    assert_key_order(&got.stdout, &SNAPSHOT_KEYS);
    let other = build(&server, "other");

    let listed = ok(&server, &["sandbox", "snapshot", "list"]);
    assert!(
        listed.stdout.starts_with("[\n  {\n    \"id\": "),
        "{}",
        listed.stdout
    );
    let all = listed.json();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                s["id"].as_str().unwrap().into(),
                s["name"].as_str().unwrap().into(),
                s["docker_image"].as_str().unwrap_or("-").into(),
                s["status"].as_str().unwrap().into(),
                s["fs_used_bytes"]
                    .as_i64()
                    .map(bytes_text)
                    .unwrap_or("-".into()),
                local_minute(s["created_at"].as_str().unwrap()),
            ]
        })
        .collect();
    let pretty = ok(
        &server,
        &["sandbox", "snapshot", "list", "--format", "pretty"],
    );
    let headers = ["ID", "Name", "Image", "Status", "Size", "Created"];
    assert_eq!(pretty.stdout, expected_table("Snapshots", &headers, &rows));

    let missing = failure(
        &server,
        &[
            "sandbox",
            "snapshot",
            "get",
            "00000000-0000-4000-8000-000000000000",
        ],
    );
    assert!(
        missing.starts_with("getting snapshot: HTTP 404: "),
        "{missing}"
    );
    let deleted = ok(&server, &["sandbox", "snapshot", "delete", &id]);
    assert_eq!(deleted.stdout, "Snapshot deleted.\n");
    let gone = failure(&server, &["sandbox", "snapshot", "delete", &id]);
    assert!(gone.starts_with("deleting snapshot: HTTP 404: "), "{gone}");
    ok(
        &server,
        &[
            "sandbox",
            "snapshot",
            "delete",
            other["id"].as_str().unwrap(),
        ],
    );
    assert_eq!(ok(&server, &["sandbox", "snapshot", "list"]).stdout, "[]\n");
}

#[test]
fn size_and_argument_errors_use_the_ga_messages() {
    let server = TestServer::start();
    // `--memory=VALUE`: a separate `-5mb` would be read as shorthand flags, as pflag does.
    let create = |size: &str| {
        let flag = format!("--memory={size}");
        failure(
            &server,
            &["sandbox", "create", "x", "--snapshot-id", "s", &flag],
        )
    };
    assert_eq!(create(""), "invalid --memory: empty size");
    let dash = failure(
        &server,
        &[
            "sandbox",
            "create",
            "x",
            "--snapshot-id",
            "s",
            "--memory",
            "-5mb",
        ],
    );
    assert_eq!(dash, "unknown shorthand flag: '5' in -5mb");
    assert_eq!(
        create("-5mb"),
        r#"invalid --memory: invalid size "-5mb": no number"#
    );
    assert_eq!(
        create("512"),
        r#"invalid --memory: invalid size "512": unit required (e.g. 512mb, 2gb)"#
    );
    assert_eq!(
        create("2pb"),
        r#"invalid --memory: invalid size "2pb": unknown unit "pb""#
    );
    assert_eq!(
        create("512kb"),
        r#"invalid --memory: invalid size "512kb": must be at least 1mb"#
    );
    assert_eq!(
        create("1025tb"),
        r#"invalid --memory: invalid size "1025tb": must be less than 1pb"#
    );
    let rootfs = failure(
        &server,
        &[
            "sandbox",
            "create",
            "x",
            "--snapshot-id",
            "s",
            "--rootfs-capacity",
            "1.2.3gb",
        ],
    );
    assert_eq!(
        rootfs,
        r#"invalid --rootfs-capacity: invalid size "1.2.3gb": strconv.ParseFloat: parsing "1.2.3": invalid syntax"#
    );
    let capacity = failure(
        &server,
        &[
            "sandbox",
            "snapshot",
            "build",
            "x",
            "--docker-image",
            "i",
            "--capacity",
            "4 zb",
        ],
    );
    assert_eq!(
        capacity,
        r#"invalid --capacity: invalid size "4 zb": unknown unit "zb""#
    );
    let image = failure(&server, &["sandbox", "snapshot", "build", "x"]);
    assert_eq!(image, "--docker-image is required");
    let update = failure(&server, &["sandbox", "update", "x"]);
    assert_eq!(
        update,
        "nothing to update (use --vcpus, --memory, --rootfs-capacity, or --proxy-config)"
    );
    let proxy = failure(
        &server,
        &["sandbox", "update", "x", "--proxy-config", "{nope"],
    );
    assert!(
        proxy.starts_with("invalid --proxy-config: invalid JSON: "),
        "{proxy}"
    );
    let unknown = failure(&server, &["sandbox", "get", "nobody"]);
    assert!(
        unknown.starts_with("getting sandbox: HTTP 404: "),
        "{unknown}"
    );
}

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
        "GA does not print proxy_config: {vm}"
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
    let code = cli::run(
        &server,
        &["sandbox", "exec", "vm", "--", "sh", "-c", "exit 7"],
    );
    assert_eq!(code.code, 7);

    let running = failure(&server, &["sandbox", "start", "vm"]);
    assert!(running.starts_with("starting sandbox: HTTP "), "{running}");
    let updated = ok(&server, &["sandbox", "update", "vm", "--memory", "256mb"]);
    assert_key_order(&updated.stdout, &SANDBOX_KEYS);
    assert_eq!(
        ok(&server, &["sandbox", "stop", "vm"]).stdout,
        "Sandbox stopped.\n"
    );
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
