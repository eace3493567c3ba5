//! Header rules in `proxy_config` on create and update: validated with 422s naming the field,
//! `workspace_secret` references that must exist, `opaque` values that are sealed, never
//! shown (`is_set: true`) and kept across an update that leaves them out.

use serde_json::{Value, json};

use crate::common::api::{Api, Reply};
use crate::common::process::assert_not_on_disk;
use crate::common::{TestServer, image};

const OPAQUE: &str = "opaque-9d2e71f0-value";
const BOXES: &str = "/api/v2/sandboxes/boxes";

fn config(opaque: Value) -> Value {
    json!({"rules": [{
        "name": "model-api",
        "match_hosts": ["api.example.com", "*.example.com"],
        "match_paths": ["/v1/*"],
        "headers": [
            {"name": "Authorization", "type": "workspace_secret", "value": "Bearer {MODEL_KEY}"},
            {"name": "X-Account", "type": "opaque", "value": opaque},
            {"name": "X-Version", "type": "plaintext", "value": "2024-01-01"}
        ],
        "env_vars": {"MODEL_KEY": "placeholder"}
    }], "access_control": {"allow_list": ["api.example.com", "*.example.com"]}})
}

/// Create `name` with `proxy_config`, without waiting for it to boot.
fn create(api: &Api, snapshot: &str, name: &str, proxy_config: Value) -> Reply {
    api.call(
        "POST",
        BOXES,
        Some(
            json!({"name": name, "snapshot_id": snapshot, "proxy_config": proxy_config,
                    "wait_for_ready": false}),
        ),
    )
}

fn headers(sb: &Value) -> Vec<Value> {
    sb["proxy_config"]["rules"][0]["headers"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn rules_are_checked_secrets_must_exist_and_opaque_values_stay_hidden() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("rules", image::tiny(), 64 << 20);
    let create = |name: &str, proxy_config: Value| create(&api, &snapshot, name, proxy_config);

    // The secret a template names must exist first; nothing is created meanwhile.
    let r = create("rules", config(json!(OPAQUE)));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.to_string().contains("MODEL_KEY does not exist"),
        "{}",
        r.body
    );
    assert_eq!(api.call("GET", &format!("{BOXES}/rules"), None).status, 404);
    let r = api.call(
        "PUT",
        "/api/v1/workspaces/current/secrets/MODEL_KEY",
        Some(json!({"value": "real-model-key"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let r = create("rules", config(json!(OPAQUE)));
    assert_eq!(r.status, 201, "{}", r.body);
    let shown = headers(&r.body);
    assert_eq!(shown[0]["value"], "Bearer {MODEL_KEY}");
    assert_eq!(
        shown[1],
        json!({"name": "X-Account", "type": "opaque", "is_set": true})
    );
    assert_eq!(shown[2]["value"], "2024-01-01");
    let got = api.call("GET", &format!("{BOXES}/rules"), None);
    assert_eq!(headers(&got.body), shown);
    let listed = api.call("GET", &format!("{BOXES}?limit=10"), None);
    assert!(
        !listed.body.to_string().contains("sealed"),
        "{}",
        listed.body
    );

    // An update that leaves the opaque value out keeps it; a header with no value to keep
    // is refused.
    let r = api.call(
        "PATCH",
        &format!("{BOXES}/rules"),
        Some(json!({"proxy_config": config(Value::Null)})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(headers(&r.body)[1]["is_set"], true);
    let mut renamed = config(Value::Null);
    renamed["rules"][0]["name"] = json!("another-rule");
    let r = api.call(
        "PATCH",
        &format!("{BOXES}/rules"),
        Some(json!({"proxy_config": renamed})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.to_string().contains("rules[0].headers[1].value"),
        "{}",
        r.body
    );

    // Mistakes name their field and change nothing; providers are refused clearly.
    for (change, field) in [
        (json!({"match_hosts": ["*.com"]}), "rules[0].match_hosts[0]"),
        (
            json!({"match_paths": ["/a/*/b"]}),
            "rules[0].match_paths[0]",
        ),
        (json!({"type": "azure"}), "rules[0].type"),
        // A host the allow list leaves out: the rule could never apply.
        (
            json!({"match_hosts": ["api.example.com", "other.test"]}),
            "rules[0].match_hosts[1]",
        ),
    ] {
        let mut bad = config(json!("x"));
        bad["rules"][0]
            .as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        let r = api.call(
            "PATCH",
            &format!("{BOXES}/rules"),
            Some(json!({"proxy_config": bad})),
        );
        assert_eq!(r.status, 422, "{change}: {}", r.body);
        assert!(r.body.to_string().contains(field), "{change}: {}", r.body);
    }
    let after = api.call("GET", &format!("{BOXES}/rules"), None);
    assert_eq!(headers(&after.body), shown);

    // A multi-line secret (a key file, say) is fine as a secret but cannot be a header.
    let r = api.call(
        "PUT",
        "/api/v1/workspaces/current/secrets/MULTILINE",
        Some(json!({"value": "line one\nline two"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut multiline = config(Value::Null);
    multiline["rules"][0]["headers"][0]["value"] = json!("Bearer {MULTILINE}");
    let r = api.call(
        "PATCH",
        &format!("{BOXES}/rules"),
        Some(json!({"proxy_config": multiline})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.to_string().contains("not a valid HTTP header value"),
        "{}",
        r.body
    );

    // A secret whose configs name its hosts goes to no other host.
    let r = api.call(
        "PUT",
        "/api/v1/workspaces/current/secrets/LIMITED",
        Some(json!({"value": "limited-value", "configs": [{"host_pattern": "api.example.com"}]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut wide = config(Value::Null);
    wide["rules"][0]["headers"][0]["value"] = json!("Bearer {LIMITED}");
    let r = api.call(
        "PATCH",
        &format!("{BOXES}/rules"),
        Some(json!({"proxy_config": wide})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .to_string()
            .contains("LIMITED may only be sent to api.example.com; *.example.com is not"),
        "{}",
        r.body
    );
    wide["rules"][0]["match_hosts"] = json!(["api.example.com"]);
    let r = api.call(
        "PATCH",
        &format!("{BOXES}/rules"),
        Some(json!({"proxy_config": wide})),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Enabled rules' env_vars reach commands, under the sandbox's own env_vars.
    let rule = |name: &str, enabled: bool, vars: Value| {
        json!({"name": name, "enabled": enabled, "match_hosts": ["api.example.com"],
               "headers": [{"name": "X-A", "type": "plaintext", "value": "a"}],
               "env_vars": vars})
    };
    let envs = api.ready_sandbox(
        "envs",
        &snapshot,
        json!({
            "proxy_config": {"rules": [
                rule("first", true, json!({"GH_TOKEN": "from-first", "MODEL_KEY": "rule"})),
                rule("second", true, json!({"GH_TOKEN": "from-second"})),
                rule("off", false, json!({"X_DISABLED": "1"})),
            ]},
            "run_config": {"env_vars": {"MODEL_KEY": "mine"}},
        }),
    );
    let seen = api.exec(&envs, "echo $GH_TOKEN $MODEL_KEY ${X_DISABLED:-unset}");
    assert_eq!(seen.stdout.trim(), "from-second mine unset", "{seen:?}");
    api.delete_sandbox("envs");

    // The opaque value is nowhere in clear on disk.
    assert_not_on_disk(&server.state_dir, OPAQUE);
    api.delete_sandbox("rules");
}

/// A workspace secret whose `configs` name hosts goes to no other: through header rules and
/// through provider rules (which send keys to every endpoint of their provider), checked
/// on create, on update and again on start (its hosts may have changed since). Opaque
/// keys stay in the kind of rule they were given to, and keys that could not be used are
/// refused with the configuration, never quoted back.
#[test]
fn secrets_go_only_where_their_hosts_allow_and_keys_stay_in_their_place() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("limits", image::tiny(), 64 << 20);
    let put_secret = |key: &str, value: &str, hosts: &[&str]| {
        let configs: Vec<Value> = hosts.iter().map(|h| json!({"host_pattern": h})).collect();
        let r = api.call(
            "PUT",
            &format!("/api/v1/workspaces/current/secrets/{key}"),
            Some(json!({"value": value, "configs": configs})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    let create = |name: &str, proxy_config: Value| create(&api, &snapshot, name, proxy_config);
    let refused = |r: Reply, says: &[&str]| {
        assert_eq!(r.status, 422, "{}", r.body);
        for text in says {
            assert!(r.body.to_string().contains(text), "{text}: {}", r.body);
        }
    };
    let aws = |id: &str| {
        json!({"rules": [{"name": "cloud", "type": "aws", "aws": {
            "access_key_id": {"type": "workspace_secret", "value": id},
            "secret_access_key": {"type": "opaque", "value": "aws-secret-5e0b"}}}]})
    };

    // An aws rule signs for every AWS endpoint: a secret limited to some of them is refused.
    put_secret("AWS_ID", "AKIDLIMITED", &["*.amazonaws.com"]);
    refused(
        create("cloud", aws("{AWS_ID}")),
        &[
            "rules[0].aws",
            "AWS_ID may only be sent to *.amazonaws.com; *.amazonaws.com.cn is not",
        ],
    );
    assert_eq!(api.call("GET", &format!("{BOXES}/cloud"), None).status, 404);
    put_secret(
        "AWS_ID",
        "AKIDLIMITED",
        &["*.amazonaws.com", "*.amazonaws.com.cn"],
    );
    let r = create("cloud", aws("{AWS_ID}"));
    assert_eq!(r.status, 201, "{}", r.body);

    // A key id the signer would put in a header must be one line.
    put_secret("AWS_MULTILINE", "AKID\nSECOND-LINE", &[]);
    refused(
        create("multiline", aws("{AWS_MULTILINE}")),
        &["access_key_id must be one line of printable text"],
    );

    // The aws rule's opaque key cannot be kept by a header of the same rule and name, which
    // would send it to another host.
    let into_header = json!({"rules": [{"name": "cloud", "match_hosts": ["api.example.com"],
        "headers": [{"name": "secret_access_key", "type": "opaque"}]}]});
    refused(
        api.call(
            "PATCH",
            &format!("{BOXES}/cloud"),
            Some(json!({"proxy_config": into_header})),
        ),
        &["rules[0].headers[0].value", "no stored value to keep"],
    );

    // A key file that is not one is refused without being quoted.
    let gcp = json!({"rules": [{"name": "gcloud", "type": "gcp", "gcp": {
        "service_account_json": {"type": "opaque", "value": "\"not-a-key-3f9a\""}}}]});
    let r = create("gcloud", gcp);
    assert!(!r.body.to_string().contains("3f9a"), "{}", r.body);
    refused(r, &["service account key is not a key file"]);

    // A secret's hosts are checked again when a configuration is applied: narrowed after
    // the sandbox was made, its start and its update are refused.
    put_secret("LIMITED", "limited-value-77", &[]);
    let mut header_rule = config(json!("x"));
    header_rule["rules"][0]["match_hosts"] = json!(["api.example.com"]);
    header_rule["rules"][0]["headers"][0]["value"] = json!("Bearer {LIMITED}");
    api.ready_sandbox(
        "narrowed",
        &snapshot,
        json!({"proxy_config": header_rule.clone()}),
    );
    put_secret("LIMITED", "limited-value-77", &["other.example.com"]);
    let r = api.call("POST", &format!("{BOXES}/narrowed/stop"), None);
    assert_eq!(r.status, 204, "{}", r.body);
    let narrowed = ["LIMITED may only be sent to other.example.com; api.example.com is not"];
    refused(
        api.call("POST", &format!("{BOXES}/narrowed/start"), None),
        &narrowed,
    );
    let r = api.call("GET", &format!("{BOXES}/narrowed"), None);
    assert_eq!(r.body["status"], "stopped", "{}", r.body);
    refused(
        api.call(
            "PATCH",
            &format!("{BOXES}/narrowed"),
            Some(json!({"proxy_config": header_rule})),
        ),
        &narrowed,
    );
    api.delete_sandbox("narrowed");
    api.delete_sandbox("cloud");
    assert_not_on_disk(&server.state_dir, "aws-secret-5e0b");
}
