//! The server's open file limit: handed a low soft limit, it raises it to the hard one, and
//! serves more sandboxes than the limit it was handed would have allowed (each sandbox keeps
//! about three of the server's descriptors open).

use serde_json::json;

use crate::common::api::Api;
use crate::common::{TestServer, image};

/// The soft limit the server is started with.
const HANDED: u64 = 64;
/// More sandboxes than [`HANDED`] descriptors allow: creates used to fail with "Too many
/// open files" from about the 16th.
const SANDBOXES: usize = 30;

/// The soft and hard limits on open files of process `pid`, from `/proc/<pid>/limits`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open file limit in {limits}"));
    // `Max open files  <soft>  <hard>  files`
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

#[test]
fn a_server_handed_a_low_open_file_limit_raises_it_and_serves_more_sandboxes() {
    let server = TestServer::start_with_soft_open_file_limit(HANDED);
    let pid = server.pid().expect("the server runs");
    let (soft, hard) = open_file_limits(pid);
    assert_eq!(soft, hard, "the soft limit was not raised to the hard one");
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("open-files", image::tiny(), 64 << 20);
    for i in 0..SANDBOXES {
        let sandbox = api.ready_sandbox(&format!("files-{i}"), &snapshot, json!({}));
        assert_eq!(api.exec(&sandbox, "true").exit_code, 0);
    }
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    assert!(
        open > HANDED,
        "{SANDBOXES} sandboxes keep only {open} descriptors open: raise SANDBOXES so the \
         test still goes past the limit the server was handed"
    );
    for i in 0..SANDBOXES {
        api.delete_sandbox(&format!("files-{i}"));
    }
    api.wait_until_no_sandboxes();
}
