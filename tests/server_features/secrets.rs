//! Workspace secrets on the local backend: create, update, list, bulk set and delete, the
//! errors, values that never come back out and are sealed at rest, and a restart.

use serde_json::{Value, json};

use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::process::assert_not_on_disk;

const SECRETS: &str = "/api/v1/workspaces/current/secrets";
const VALUE: &str = "sk-local-test-4f1c9e2a77";

fn keys(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn secrets_are_write_only_sealed_at_rest_and_kept_across_a_restart() {
    let mut server = TestServer::start();
    let api = Api::new(&server);

    let r = api.call(
        "PUT",
        &format!("{SECRETS}/MY_TOKEN"),
        Some(json!({"value": VALUE})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"key": "MY_TOKEN", "configs": []}));
    let r = api.call(
        "PUT",
        &format!("{SECRETS}/OPENAI_API_KEY"),
        Some(json!({"value": "sk-openai"})),
    );
    assert_eq!(
        r.body["configs"][0]["host_pattern"], "api.openai.com",
        "{}",
        r.body
    );
    assert_eq!(r.body["configs"][0]["source"], "DEFAULT");

    // Only keys come back, configs when asked for; never a value.
    let list = api.call("GET", SECRETS, None);
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body,
        json!([{"key": "MY_TOKEN"}, {"key": "OPENAI_API_KEY"}])
    );
    let with = api.call("GET", &format!("{SECRETS}?include_configs=true"), None);
    assert!(!with.body.to_string().contains(VALUE), "{}", with.body);
    assert_eq!(with.body[0]["configs"], json!([]));

    // Hosts change without the value; a bad one is refused naming it, changing nothing.
    let hosts = json!({"configs": [{"host_pattern": "*.example.com",
        "header_name": "Authorization", "header_value_template": "Bearer {value}"}]});
    let r = api.call("PUT", &format!("{SECRETS}/MY_TOKEN"), Some(hosts));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["configs"][0]["source"], "CUSTOM");
    let bad = json!({"configs": [{"host_pattern": "ok.test"},
        {"host_pattern": "x.test", "header_value_template": "Bearer"}]});
    let r = api.call("PUT", &format!("{SECRETS}/MY_TOKEN"), Some(bad));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .to_string()
            .contains("configs[1].header_value_template"),
        "{}",
        r.body
    );
    let kept = api.call("GET", &format!("{SECRETS}?include_configs=true"), None);
    assert_eq!(kept.body[0]["configs"][0]["host_pattern"], "*.example.com");

    // Errors: no value to create, a bad key, an empty value or one with NUL. (Line breaks are
    // fine: a service account's key file has them; a header cannot carry them, which is
    // checked when a rule uses the secret.)
    for (path, body, field) in [
        (format!("{SECRETS}/NEW_ONE"), json!({}), "value"),
        (format!("{SECRETS}/1BAD"), json!({"value": "x"}), "key"),
        (format!("{SECRETS}/EMPTY"), json!({"value": ""}), "value"),
        (
            format!("{SECRETS}/NUL"),
            json!({"value": "a\u{0}b"}),
            "value",
        ),
    ] {
        let r = api.call("PUT", &path, Some(body));
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert!(r.body.to_string().contains(field), "{path}: {}", r.body);
    }
    let r = api.call(
        "PUT",
        &format!("{SECRETS}/NUL"),
        Some(json!({"value": "a-nul\u{0}b"})),
    );
    assert!(
        !r.body.to_string().contains("a-nul"),
        "the value was echoed: {}",
        r.body
    );

    // Bulk: the SDK's form. A bad item changes nothing; null deletes.
    let r = api.call(
        "POST",
        SECRETS,
        Some(json!([{"key": "A_KEY", "value": "a"}, {"key": "bad key", "value": "b"}])),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("[1].key"), "{}", r.body);
    let r = api.call(
        "POST",
        "/workspaces/current/secrets",
        Some(json!([{"key": "A_KEY", "value": "a"}, {"key": "OPENAI_API_KEY", "value": null}])),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(keys(&r.body), ["A_KEY", "MY_TOKEN"]);

    // Nothing without the API key.
    let r = api.call_with_key("GET", SECRETS, None, None);
    assert_eq!(r.status, 401, "{}", r.body);

    // At rest the value is sealed: not in the database, nor anywhere in the state directory.
    assert_not_on_disk(&server.state_dir, VALUE);
    let key_file = server.state_dir.join("secrets-key");
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&key_file).unwrap());
    assert_eq!(mode & 0o777, 0o600);

    // Kept across a restart; deleting is idempotent.
    server.stop_and_restart();
    let list = api.call("GET", SECRETS, None);
    assert_eq!(keys(&list.body), ["A_KEY", "MY_TOKEN"]);
    for _ in 0..2 {
        let r = api.call("DELETE", &format!("{SECRETS}/MY_TOKEN"), None);
        assert_eq!(r.status, 204, "{}", r.body);
    }
    assert_eq!(keys(&api.call("GET", SECRETS, None).body), ["A_KEY"]);
}
