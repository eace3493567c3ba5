//! The official Python SDK, unmodified, against the local backend.

use crate::common::api::Api;
use crate::common::{TestServer, image, sdk};

#[test]
fn official_sdk_runs_the_basic_workflow() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("sdk-tiny", image::tiny(), 64 << 20);
    let out = sdk::run_script(&server, "workflow.py", &[("SNAPSHOT_ID", &snapshot)]);
    assert!(out.contains("sdk workflow ok"), "{out}");
}
