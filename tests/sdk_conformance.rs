//! Control-plane conformance: the official Python SDK (unmodified, pinned in `common::sdk`)
//! drives every control-plane method it has against the local server. Each script in
//! `tests/sdk/` asserts its own expectations and prints a final `… ok` line.

use crate::common::{TestServer, image, registry, sdk};

/// Run `script` against a fresh server with the tiny test image; returns its output.
pub(crate) fn conform(script: &str, extra: &[(&str, &str)]) -> String {
    let server = TestServer::start();
    let mut env = vec![("DOCKER_IMAGE", image::tiny())];
    env.extend_from_slice(extra);
    sdk::run_script(&server, script, &env)
}

#[test]
fn sdk_sandbox_lifecycle_and_references() {
    let out = conform("sandboxes.py", &[]);
    assert!(out.contains("sdk sandboxes ok"), "{out}");
}

#[test]
fn sdk_snapshot_build_list_and_delete() {
    let out = conform("snapshots.py", &[]);
    assert!(out.contains("sdk snapshots ok"), "{out}");
}

#[test]
fn sdk_typed_errors() {
    let out = conform("errors.py", &[]);
    assert!(out.contains("sdk errors ok"), "{out}");
}

#[test]
fn sdk_capture_snapshot() {
    let out = conform("capture.py", &[]);
    assert!(out.contains("sdk capture ok"), "{out}");
}

#[test]
fn sdk_registries() {
    let host = registry::shared().host.clone();
    let out = conform("registries.py", &[("REGISTRY_HOST", &host)]);
    assert!(out.contains("sdk registries ok"), "{out}");
}

#[test]
fn sdk_default_snapshot() {
    // The default snapshot comes from the tiny image here; the Debian-built default is
    // exercised by `server_features::default_snapshot` (ignored: it needs the mirror).
    let server = TestServer::start_with(&["--default-image", image::tiny()], &[]);
    let out = sdk::run_script(&server, "default_snapshot.py", &[]);
    assert!(out.contains("sdk default snapshot ok"), "{out}");
}
