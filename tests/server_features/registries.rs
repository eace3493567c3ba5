//! `/registries` CRUD, and snapshot builds that pull with a stored registry's credentials;
//! `/snapshots-by-name`.

use std::time::Duration;

use serde_json::json;

use super::private_registry::PrivateRegistry;
use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::server::API_KEY;

const REGISTRIES: &str = "/api/v2/sandboxes/registries";

#[test]
fn registries_crud_never_echoes_the_password() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let created = api.call(
        "POST",
        REGISTRIES,
        Some(json!({"name": "internal", "url": "registry.example.com",
                    "username": "u", "password": "pw-secret-1"})),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["name"], "internal");
    assert_eq!(created.body["auth_type"], "DOCKER_CONFIG");
    assert!(!created.body["id"].as_str().unwrap().is_empty());
    assert!(created.body.get("password").is_none());
    assert!(!created.body.to_string().contains("pw-secret-1"));

    // A duplicate name is a conflict the SDK must not retry.
    let dup = api
        .raw()
        .post(server.api("/registries"))
        .header("X-Api-Key", API_KEY)
        .json(&json!({"name": "internal", "url": "other.example.com"}))
        .send()
        .unwrap();
    assert_eq!(dup.status().as_u16(), 409);
    assert_eq!(dup.headers()["x-should-retry"], "false");

    let other = api.call(
        "POST",
        "/v2/sandboxes/registries",
        Some(
            json!({"name": "ecr", "url": "1.dkr.ecr.us-east-1.amazonaws.com",
                    "auth_type": "AWS_ROLE", "aws_role_arn": "arn:aws:iam::1:role/pull"}),
        ),
    );
    assert_eq!(other.status, 201, "{:?}", other.body);
    assert_eq!(other.body["provider"], "ECR");

    let all = api.call("GET", REGISTRIES, None);
    assert_eq!(all.status, 200);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(all.body["registries"], all.body["items"]);
    assert!(all.body["next_cursor"].is_null());
    let some = api.call("GET", &format!("{REGISTRIES}?name_contains=inter"), None);
    assert_eq!(some.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(some.body["items"][0]["name"], "internal");
    assert!(!some.body.to_string().contains("pw-secret-1"));

    let renamed = api.call(
        "PATCH",
        &format!("{REGISTRIES}/internal"),
        Some(json!({"name": "internal2", "password": "pw-rotated"})),
    );
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "internal2");
    assert_eq!(renamed.body["id"], created.body["id"]);
    assert!(!renamed.body.to_string().contains("pw-rotated"));
    assert_eq!(
        api.call("GET", &format!("{REGISTRIES}/internal"), None)
            .status,
        404
    );
    let clash = api.call(
        "PATCH",
        &format!("{REGISTRIES}/internal2"),
        Some(json!({"name": "ecr"})),
    );
    assert_eq!(clash.status, 409);

    assert_eq!(
        api.call("DELETE", &format!("{REGISTRIES}/internal2"), None)
            .status,
        204
    );
    assert_eq!(
        api.call("GET", &format!("{REGISTRIES}/internal2"), None)
            .status,
        404
    );
    assert_eq!(
        api.call("DELETE", &format!("{REGISTRIES}/internal2"), None)
            .status,
        404
    );

    let bad = api.call(
        "POST",
        REGISTRIES,
        Some(json!({"name": "x", "url": "h", "auth_type": "NOPE"})),
    );
    assert_eq!(bad.status, 422, "{:?}", bad.body);
}

#[test]
fn builds_pull_with_a_stored_registrys_credentials() {
    let registry = PrivateRegistry::with_tiny_image("alice", "s3cret");
    let server = TestServer::start();
    let api = Api::new(&server);
    let image = format!("{}/private/tiny:1", registry.host);

    let unknown = api.call(
        "POST",
        "/api/v2/sandboxes/snapshots",
        Some(json!({"name": "priv", "docker_image": image, "registry_id": "00000000-0000-0000-0000-000000000000"})),
    );
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    assert!(
        unknown.body.to_string().contains("registry"),
        "{:?}",
        unknown.body
    );

    // Without credentials the private registry refuses the pull.
    let anonymous = build(&api, "priv", &image, None);
    assert_eq!(anonymous["status"], "failed", "{anonymous}");

    let reg = api.call(
        "POST",
        REGISTRIES,
        Some(json!({"name": "private", "url": registry.host, "username": "alice", "password": "s3cret"})),
    );
    assert_eq!(reg.status, 201, "{:?}", reg.body);
    let registry_id = reg.body["id"].as_str().unwrap();
    let built = build(&api, "priv", &image, Some(registry_id));
    assert_eq!(built["status"], "ready", "{built}");
    assert_eq!(built["registry_id"], registry_id);
    assert_eq!(built["tags"], json!(["latest"]));

    // The tag list under the name: only the successful build holds a tag.
    let by_name = api.call("GET", "/api/v2/sandboxes/snapshots-by-name/priv", None);
    assert_eq!(by_name.status, 200, "{:?}", by_name.body);
    assert_eq!(
        by_name.body,
        json!({"name": "priv", "tags": [{"tag": "latest", "snapshot_id": built["id"]}]})
    );
    let missing = api.call("GET", "/v2/sandboxes/snapshots-by-name/nobody", None);
    assert_eq!(missing.status, 404);
    let tagged = api.call(
        "GET",
        "/api/v2/sandboxes/snapshots-by-name/priv:latest",
        None,
    );
    assert_eq!(tagged.status, 422, "{:?}", tagged.body);

    let sb = api.ready_sandbox("from-private", built["id"].as_str().unwrap(), json!({}));
    assert_eq!(
        api.exec(&sb, "cat /etc/hello").stdout,
        "hello from the tiny image\n"
    );
    api.delete_sandbox("from-private");
}

/// Build a snapshot and wait for its final status; returns its JSON.
fn build(api: &Api, name: &str, image: &str, registry_id: Option<&str>) -> serde_json::Value {
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/snapshots",
        Some(
            json!({"name": name, "docker_image": image, "fs_capacity_bytes": 64 << 20,
                    "registry_id": registry_id}),
        ),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    wait_for("the snapshot build", Duration::from_secs(120), || {
        let s = api.call("GET", &format!("/api/v2/sandboxes/snapshots/{id}"), None);
        (s.body["status"] != "building").then_some(s.body)
    })
}

/// The official SDK's generated registries client and a create without a snapshot.
#[test]
fn official_sdk_uses_registries_and_the_default_snapshot() {
    let registry = PrivateRegistry::with_tiny_image("alice", "s3cret");
    let server = TestServer::start_with(&["--default-image", crate::common::image::tiny()], &[]);
    let image = format!("{}/private/tiny:1", registry.host);
    let out = crate::common::sdk::run_script(
        &server,
        "registries_default.py",
        &[("REGISTRY_HOST", &registry.host), ("PRIVATE_IMAGE", &image)],
    );
    assert!(out.contains("sdk registries ok"), "{out}");
}
