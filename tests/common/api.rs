//! Plain HTTP calls to the server's API, for tests that check wire behaviour directly.

use std::time::Duration;

use serde_json::{Value, json};

use super::process::wait_for;
use super::server::{API_KEY, TestServer};

pub struct Api {
    http: reqwest::blocking::Client,
    base: String,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Api {
    pub fn new(server: &TestServer) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            base: server.url.clone(),
        }
    }

    /// `METHOD {server}{path}` with the test key and an optional JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_with_key(method, path, body, Some(API_KEY))
    }

    pub fn call_with_key(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("X-Api-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply { status, body }
    }

    pub fn raw(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// Build a snapshot from `image` and wait until it is ready; returns its id.
    pub fn ready_snapshot(&self, name: &str, image: &str, capacity: i64) -> String {
        let r = self.call(
            "POST",
            "/api/v2/sandboxes/snapshots",
            Some(json!({"name": name, "docker_image": image, "fs_capacity_bytes": capacity})),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        wait_for("the snapshot build", Duration::from_secs(120), || {
            let s = self.call("GET", &format!("/api/v2/sandboxes/snapshots/{id}"), None);
            match s.body["status"].as_str() {
                Some("ready") => Some(()),
                Some("failed") => panic!("snapshot build failed: {}", s.body),
                _ => None,
            }
        });
        id
    }

    /// Create a sandbox and wait for it server-side; returns its JSON.
    pub fn ready_sandbox(&self, name: &str, snapshot_id: &str, extra: Value) -> Value {
        let mut body = json!({"name": name, "snapshot_id": snapshot_id, "wait_for_ready": true, "timeout": 60});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = self.call("POST", "/api/v2/sandboxes/boxes", Some(body));
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.body["status"], "ready");
        r.body
    }

    /// Create a sandbox with no snapshot (the default Debian one, built on first use, which
    /// can take minutes) and wait until it is ready; returns its JSON.
    pub fn default_sandbox(&self, name: &str) -> Value {
        self.default_sandbox_with(name, json!({}))
    }

    /// [`Self::default_sandbox`] with more fields of the create body (`extra`, an object).
    pub fn default_sandbox_with(&self, name: &str, extra: Value) -> Value {
        let mut body = json!({"name": name, "wait_for_ready": false});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = self.call("POST", "/api/v2/sandboxes/boxes", Some(body));
        assert_eq!(r.status, 201, "{:?}", r.body);
        wait_for(
            &format!("sandbox {name} to be ready"),
            Duration::from_secs(900),
            || {
                let r = self.call("GET", &format!("/api/v2/sandboxes/boxes/{name}"), None);
                match r.body["status"].as_str() {
                    Some("ready") => Some(r.body),
                    Some("failed") => panic!("sandbox {name} failed: {}", r.body),
                    _ => None,
                }
            },
        )
    }

    /// The id of the default snapshot, built (through a throwaway sandbox) if need be.
    pub fn default_snapshot_id(&self) -> String {
        let warm = self.default_sandbox("default-snapshot-warm-up");
        self.delete_sandbox("default-snapshot-warm-up");
        warm["snapshot_id"].as_str().unwrap().to_string()
    }

    /// Deletes sandbox `name` and waits for its teardown (DELETE answers before it), so
    /// what follows sees the host without it.
    pub fn delete_sandbox(&self, name: &str) {
        let found = self.call("GET", &format!("/api/v2/sandboxes/boxes/{name}"), None);
        assert_eq!(found.status, 200, "{:?}", found.body);
        let id = found.body["id"].as_str().unwrap().to_string();
        let r = self.call("DELETE", &format!("/api/v2/sandboxes/boxes/{name}"), None);
        assert_eq!(r.status, 204, "{:?}", r.body);
        self.wait_until_torn_down(&id);
    }

    /// Waits until the server has no sandbox, not even one being deleted: DELETE answers
    /// once it is recorded, and its teardown finishes after.
    pub fn wait_until_no_sandboxes(&self) {
        wait_for("every sandbox to be gone", Duration::from_secs(120), || {
            let none = |query: &str| {
                let list = self.call("GET", &format!("/api/v2/sandboxes/boxes?{query}"), None);
                list.body["sandboxes"].as_array().unwrap().is_empty()
            };
            (none("limit=100") && none("status=deleting")).then_some(())
        });
    }

    /// Waits until the sandbox `id` is gone by id too: its teardown has finished.
    pub fn wait_until_torn_down(&self, id: &str) {
        wait_for("the sandbox's teardown", Duration::from_secs(120), || {
            let r = self.call("GET", &format!("/api/v2/sandboxes/boxes/{id}"), None);
            (r.status == 404).then_some(())
        });
    }
}

/// Result of a command run through the data plane's `POST {dp}/execute`.
#[derive(Debug)]
pub struct Exec {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
}

impl Api {
    /// Run `command` with `sh -c` in the sandbox whose JSON is `sandbox`.
    pub fn exec(&self, sandbox: &Value, command: &str) -> Exec {
        let dp = sandbox["dataplane_url"].as_str().expect("dataplane_url");
        let resp = self
            .http
            .post(format!("{dp}/execute"))
            .header("X-Api-Key", API_KEY)
            .json(&json!({"command": command, "shell": "/bin/sh", "timeout": 60}))
            .send()
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().unwrap();
        assert!(status.is_success(), "execute {command:?}: {status} {body}");
        Exec {
            stdout: body["stdout"].as_str().unwrap_or_default().to_string(),
            stderr: body["stderr"].as_str().unwrap_or_default().to_string(),
            exit_code: body["exit_code"].as_i64().unwrap_or(-1),
        }
    }
}
