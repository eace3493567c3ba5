//! The server's open file limit: handed a low soft limit, it raises it to the hard one (up
//! to 65536), and serves more sandboxes than the limit it was handed would have allowed (each
//! idle sandbox keeps three of the server's descriptors open).

use serde_json::json;

use crate::common::api::Api;
use crate::common::process::open_file_limits;
use crate::common::{TestServer, image};

/// The soft limit the server is started with.
const HANDED: u64 = 64;
/// More sandboxes than [`HANDED`] descriptors allow: without the raise, the 14th create
/// failed with "Too many open files".
const SANDBOXES: usize = 30;

#[test]
fn a_server_handed_a_low_open_file_limit_raises_it_and_serves_more_sandboxes() {
    let server = TestServer::start_with_soft_open_file_limit(HANDED);
    let pid = server.pid().expect("the server runs");
    // Raised to the hard limit, or to the server's ceiling of 65536 below a higher one.
    let (soft, hard) = open_file_limits(pid);
    let expected = match hard.parse::<u64>() {
        Ok(hard) => hard.min(65_536).to_string(),
        Err(_) => "65536".to_string(), // `unlimited`
    };
    assert_eq!(
        soft, expected,
        "the soft limit was not raised (hard limit {hard})"
    );
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
