//! The data plane beyond WebSocket exec, against the real server and real sandboxes: the
//! official SDK (unmodified) for files (`tests/sdk/dataplane_files.py`) and the SSE exec
//! variant (`tests/sdk/dataplane_sse.py`), plus wire checks the SDK cannot make ([`wire`],
//! [`sse_wire`]).

mod sse_wire;
mod wire;

use crate::sdk_conformance::conform;

#[test]
fn sdk_files_round_trip_stat_ranges_glob_grep() {
    let out = conform("dataplane_files.py", &[]);
    assert!(out.contains("sdk dataplane files ok"), "{out}");
}

#[test]
fn sdk_sse_exec_flows() {
    let features = ("LANGSMITH_EXPERIMENTAL_FEATURES", "sandbox_sse_exec");
    let out = conform("dataplane_sse.py", &[features]);
    assert!(out.contains("sdk dataplane sse ok"), "{out}");
}
