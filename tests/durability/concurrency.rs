//! Twenty creates (waiting and not) and deletes at once, through independent clients.

use std::time::Duration;

use serde_json::{Value, json};

use super::{MIB, settled};
use crate::common::api::Api;
use crate::common::leftovers::assert_no_leftovers;
use crate::common::process::wait_for;
use crate::common::server::API_KEY;
use crate::common::{TestServer, image};

#[test]
fn concurrent_creates_and_deletes_leave_nothing_half_made() {
    let mut server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("par", image::tiny(), 64 * MIB);
    let url = server.url.clone();
    let workers: Vec<_> = (0..20)
        .map(|i| {
            let (url, snap) = (url.clone(), snap.clone());
            std::thread::spawn(move || {
                // Another quarter are deleted by a second client while their create waits.
                let racer = (i % 4 == 2).then(|| {
                    let url = url.clone();
                    std::thread::spawn(move || delete_once_listed(&url, &format!("par-{i}")))
                });
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(180))
                    .build()
                    .unwrap();
                let body = json!({"name": format!("par-{i}"), "snapshot_id": snap,
                    "wait_for_ready": i % 2 == 0, "timeout": 120, "mem_bytes": 128 * MIB});
                let r = http
                    .post(format!("{url}/api/v2/sandboxes/boxes"))
                    .header("X-Api-Key", API_KEY)
                    .json(&body)
                    .send()
                    .unwrap();
                let status = r.status().as_u16();
                let reply: Value = r.json().unwrap_or(Value::Null);
                // A quarter are deleted at once, racing their own boot.
                if status == 201 && i % 4 == 1 {
                    let d = http
                        .delete(format!("{url}/api/v2/sandboxes/boxes/par-{i}"))
                        .header("X-Api-Key", API_KEY)
                        .send()
                        .unwrap();
                    assert_eq!(d.status().as_u16(), 204, "delete par-{i}");
                }
                if let Some(racer) = racer {
                    racer.join().unwrap();
                }
                (i, status, reply)
            })
        })
        .collect();
    for worker in workers {
        let (i, status, reply) = worker.join().unwrap();
        match status {
            201 if i % 2 == 0 => assert_eq!(reply["status"], "ready", "par-{i}: {reply}"),
            201 => {}
            // Deleted by the racer while its create waited: a clear "gone" answer.
            404 | 409 if i % 4 == 2 => {
                assert!(reply["detail"].is_string() || reply.is_object(), "{reply}")
            }
            _ => panic!("par-{i} failed: {status} {reply}"),
        }
    }

    // Every sandbox still listed is either working or failed with a reason.
    let list = api.call("GET", "/api/v2/sandboxes/boxes?limit=100", None);
    let names: Vec<String> = list.body["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "deleting")
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    for name in &names {
        let sb = settled(&api, name);
        match sb["status"].as_str() {
            Some("ready") => assert_eq!(api.exec(&sb, "echo ok").stdout, "ok\n", "{name}"),
            Some("failed") => assert!(sb["status_message"].is_string(), "{sb}"),
            other => panic!("{name} is {other:?}: {sb}"),
        }
    }
    let deleters: Vec<_> = names
        .into_iter()
        .map(|name| {
            let url = url.clone();
            std::thread::spawn(move || {
                let d = reqwest::blocking::Client::new()
                    .delete(format!("{url}/api/v2/sandboxes/boxes/{name}"))
                    .header("X-Api-Key", API_KEY)
                    .timeout(Duration::from_secs(180))
                    .send()
                    .unwrap();
                assert_eq!(d.status().as_u16(), 204, "delete {name}");
            })
        })
        .collect();
    for d in deleters {
        d.join().unwrap();
    }
    api.wait_until_no_sandboxes();
    // A running server keeps warm sandboxes; stopping it ends them (and no others).
    server.stop();
    assert_no_leftovers(&server.state_dir);
}

/// DELETE `name` as soon as GET finds it (racing a create that is still waiting).
fn delete_once_listed(url: &str, name: &str) {
    let http = reqwest::blocking::Client::new();
    let get = || {
        http.get(format!("{url}/api/v2/sandboxes/boxes/{name}"))
            .header("X-Api-Key", API_KEY)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    wait_for("the sandbox to be listed", Duration::from_secs(60), || {
        (get() == 200).then_some(())
    });
    let d = http
        .delete(format!("{url}/api/v2/sandboxes/boxes/{name}"))
        .header("X-Api-Key", API_KEY)
        .timeout(Duration::from_secs(180))
        .send()
        .unwrap();
    assert_eq!(d.status().as_u16(), 204, "racing delete of {name}");
}
