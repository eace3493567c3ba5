//! Tests of the output layer: the LangSmith CLI's key order, Go escaping, tables from typed objects.

use rhai::{Array, Dynamic};

use super::{Format, render, to_json};
use crate::api::{Sandbox, Snapshot};
use crate::client::ConfigInputs;
use crate::script::{Bridge, ExitStatus, SandboxObj, SnapshotObj};

fn with_bridge<T>(f: impl FnOnce(std::sync::Arc<Bridge>) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    f(Bridge::new(rt.handle().clone(), ConfigInputs::default()))
}

fn sandbox() -> Sandbox {
    Sandbox {
        id: "id-1".into(),
        name: "my-vm".into(),
        status: "ready".into(),
        status_message: Some("hidden in the LangSmith CLI's output".into()),
        dataplane_url: Some("http://127.0.0.1:7433/dp/x?a<b&c>".into()),
        snapshot_id: Some("3f2a9c1e-aaaa".into()),
        vcpus: Some(2),
        mem_bytes: Some(0),
        fs_capacity_bytes: Some(8 << 30),
        created_at: "2026-03-29T00:09:28Z".into(),
        updated_at: "2026-03-29T00:09:30Z".into(),
        ..Default::default()
    }
}

#[test]
fn sandbox_json_has_ga_keys_in_order() {
    let text = with_bridge(|bridge| {
        to_json(&Dynamic::from(SandboxObj {
            data: sandbox(),
            bridge,
        }))
    });
    let expected = r#"{
  "id": "id-1",
  "name": "my-vm",
  "snapshot_id": "3f2a9c1e-aaaa",
  "vcpus": 2,
  "fs_capacity_bytes": 8589934592,
  "status": "ready",
  "dataplane_url": "http://127.0.0.1:7433/dp/x?a\u003cb\u0026c\u003e",
  "created_at": "2026-03-29T00:09:28Z",
  "updated_at": "2026-03-29T00:09:30Z"
}
"#;
    assert_eq!(text, expected);
}

#[test]
fn snapshot_json_always_has_capacity() {
    let snap = Snapshot {
        id: "s1".into(),
        name: "py".into(),
        status: "building".into(),
        docker_image: Some("python:3.12-slim".into()),
        created_at: "c".into(),
        updated_at: "u".into(),
        ..Default::default()
    };
    let text = with_bridge(|bridge| to_json(&Dynamic::from(SnapshotObj { data: snap, bridge })));
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "docker_image",
            "status",
            "fs_capacity_bytes",
            "created_at",
            "updated_at"
        ]
    );
}

#[test]
fn lists_strings_and_exit_statuses() {
    with_bridge(|bridge| {
        let empty = Dynamic::from(Array::new());
        assert_eq!(render(&empty, Format::Pretty), ("[]\n".to_string(), 0));
        let list: Array = vec![Dynamic::from(SandboxObj {
            data: sandbox(),
            bridge,
        })];
        let (table, code) = render(&Dynamic::from(list), Format::Pretty);
        assert_eq!(code, 0);
        assert!(table.starts_with("Sandboxes\n─────────\n"), "{table}");
        assert!(
            table.contains("  my-vm    ready         2    -      8.0 GB    3f2a9c1e...    "),
            "{table}"
        );
    });
    assert_eq!(
        render(&Dynamic::from("Sandbox deleted."), Format::Json),
        ("Sandbox deleted.\n".into(), 0)
    );
    assert_eq!(
        render(&Dynamic::from(ExitStatus(-1)), Format::Json),
        (String::new(), 255)
    );
    assert_eq!(render(&Dynamic::UNIT, Format::Json), (String::new(), 0));
}

#[test]
fn egress_log_entries_become_a_table_and_other_maps_stay_json() {
    let entry = crate::api::egress::EgressEntry {
        time: "2026-03-29T00:09:28.123Z".into(),
        sandbox_id: "id-1".into(),
        host: "pypi.org".into(),
        port: 443,
        decision: crate::api::egress::Decision::Denied,
        rule: "SNI mismatch".into(),
        reason: Some("TLS server name \"evil.test\" is not the name looked up".into()),
        bytes_sent: 0,
        bytes_received: 0,
        request: None,
        header_rule: None,
        status: None,
    };
    let list: Array = vec![rhai::serde::to_dynamic(&entry).unwrap()];
    let (table, code) = render(&Dynamic::from(list), Format::Pretty);
    assert_eq!(code, 0);
    assert!(table.starts_with("Egress decisions\n"), "{table}");
    assert!(table.contains("denied"), "{table}");
    assert!(table.contains("pypi.org:443"), "{table}");
    assert!(table.contains("SNI mismatch: TLS server name"), "{table}");
    let mut opened = entry.clone();
    opened.decision = crate::api::egress::Decision::Allowed;
    opened.request = Some("GET /v1/models".into());
    opened.status = Some(200);
    opened.header_rule = Some("openai".into());
    let list: Array = vec![rhai::serde::to_dynamic(&opened).unwrap()];
    let (table, _) = render(&Dynamic::from(list), Format::Pretty);
    assert!(table.contains("GET /v1/models → 200 [openai]"), "{table}");
    let other: Array = vec![rhai::serde::to_dynamic(serde_json::json!({"a": 1})).unwrap()];
    let (json, _) = render(&Dynamic::from(other), Format::Pretty);
    assert!(json.starts_with('['), "{json}");
}

#[test]
fn a_secret_list_becomes_a_table() {
    let list: Array = vec![
        rhai::serde::to_dynamic(serde_json::json!({"key": "OPENAI_API_KEY", "configs": [
            {"host_pattern": "api.openai.com", "header_name": "Authorization",
             "header_value_template": "Bearer {value}", "source": "DEFAULT"}]}))
        .unwrap(),
        rhai::serde::to_dynamic(serde_json::json!({"key": "MY_TOKEN"})).unwrap(),
    ];
    let (table, _) = render(&Dynamic::from(list), Format::Pretty);
    assert!(table.starts_with("Secrets\n"), "{table}");
    assert!(table.contains("OPENAI_API_KEY"), "{table}");
    assert!(table.contains("api.openai.com (Authorization)"), "{table}");
    assert!(table.contains("MY_TOKEN"), "{table}");
}
