//! `sandbox snapshot build|wait|get|list|delete`: JSON shapes, the pretty table, confirmations
//! and 404s.

use super::table::{bytes_text, expected_table, local_minute};
use super::{SNAPSHOT_KEYS, assert_key_order, build, failure, ok};
use crate::common::{TestServer, image};

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
