//! A registry that dies in the middle of a pull (here: a proxy in front of the real one that
//! cuts every connection once part of a layer went through, and refuses new ones): the build
//! ends `failed` with a message that says so, nothing half-pulled is kept, and the name builds
//! once a registry answers again.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::MIB;
use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::{TestServer, image, registry};

/// Forwards to `upstream` until `budget` bytes came back in all, then dies.
struct DyingProxy {
    addr: String,
    died: Arc<AtomicBool>,
}

impl DyingProxy {
    fn start(upstream: &str, budget: usize) -> DyingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let died = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let upstream = upstream.to_string();
        let dead = died.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if dead.load(Ordering::SeqCst) {
                    continue; // dropped at once: the registry is gone
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut all = open.lock().unwrap();
                all.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                drop(all);
                let (mut up_in, mut up_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_in, &mut up_out);
                });
                let (mut down_in, mut down_out) = (server, client);
                let (sent, dead, open) = (sent.clone(), dead.clone(), open.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n) = down_in.read(&mut buf) {
                        if n == 0 || dead.load(Ordering::SeqCst) {
                            break;
                        }
                        let total = sent.fetch_add(n, Ordering::SeqCst) + n;
                        if total > budget {
                            dead.store(true, Ordering::SeqCst);
                            for stream in open.lock().unwrap().iter() {
                                let _ = stream.shutdown(Shutdown::Both);
                            }
                            break;
                        }
                        if down_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = down_out.shutdown(Shutdown::Both);
                });
            }
        });
        DyingProxy { addr, died }
    }
}

#[test]
fn a_registry_dying_mid_pull_fails_the_build_and_keeps_nothing() {
    let live = image::tiny();
    let upstream = &registry::shared().host;
    // Past the manifest and config, well inside the image's one layer (over 1 MiB).
    let proxy = DyingProxy::start(upstream, 256 << 10);
    let dying = live.replace(upstream.as_str(), &proxy.addr);
    let server = TestServer::start();
    let api = Api::new(&server);
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/snapshots",
        Some(json!({"name": "cut-pull", "docker_image": dying, "fs_capacity_bytes": 64 * MIB})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let failed = wait_for("the build's verdict", Duration::from_secs(120), || {
        let s = api.call("GET", &format!("/api/v2/sandboxes/snapshots/{id}"), None);
        (s.body["status"] != "building").then_some(s.body)
    });
    assert!(
        proxy.died.load(Ordering::SeqCst),
        "the pull ended before the cut"
    );
    assert_eq!(failed["status"], "failed", "{failed}");
    let why = failed["status_message"].as_str().unwrap_or_default();
    assert!(
        why.contains(&proxy.addr),
        "the message names the registry: {failed}"
    );

    // Nothing half-pulled is kept: no scratch left, and every stored blob is whole.
    let scratch = server.state_dir.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().flatten().collect();
    assert!(left.is_empty(), "scratch left: {left:?}");
    // The image's config came through whole before the cut; the layer did not.
    let blobs = server.state_dir.join("blobs/sha256");
    let mut whole = 0;
    for blob in std::fs::read_dir(&blobs).unwrap().flatten() {
        let name = blob.file_name().to_string_lossy().into_owned();
        let digest = hex::encode(Sha256::digest(std::fs::read(blob.path()).unwrap()));
        assert_eq!(digest, name, "a partial blob was kept");
        whole += 1;
    }
    assert!(whole >= 1, "no blob came through before the cut");
    // The same name builds from a registry that answers.
    api.ready_snapshot("cut-pull", live, 64 * MIB);
}
