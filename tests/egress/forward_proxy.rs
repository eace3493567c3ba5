//! `--upstream-proxy`: every connection a sandbox is allowed goes out through the operator's
//! HTTP proxy with `CONNECT`, never directly; literal IPs a sandbox may not reach are refused
//! before the proxy is asked. The forward proxy and its upstream are on loopback.

use std::collections::HashMap;
use std::net::TcpListener;

use serde_json::json;

use crate::common::api::Api;
use crate::common::upstream::{self, ConnectProxy};
use crate::common::{TestServer, image};

#[test]
fn allowed_connections_go_through_the_forward_proxy_and_nothing_goes_around_it() {
    let http = upstream::http("via the forward proxy", 8);
    let routes = HashMap::from([("allowed.test:80".to_string(), http)]);
    let proxy = ConnectProxy::start(routes, 16);
    // A pin that a direct dial would follow: it must never be used while a proxy is set.
    let direct = TcpListener::bind("127.0.0.1:0").unwrap();
    let direct_port = direct.local_addr().unwrap().port();
    let pin = format!("unrouted.test:80=127.0.0.1:{direct_port}");
    let forward = format!("http://127.0.0.1:{}", proxy.port);
    let server = TestServer::start_with(
        &[
            "--upstream-proxy",
            &forward,
            "--allow-private-cidr",
            "127.0.0.0/8",
            "--resolve",
            &pin,
        ],
        &[],
    );
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("fwd", image::tiny(), 64 << 20);
    let policy = json!({"access_control": {"allow_list": [
        "allowed.test", "unrouted.test", "169.254.169.254"
    ]}});
    let sb = api.ready_sandbox("fwd", &snapshot, json!({"proxy_config": policy}));

    let got = api.exec(&sb, "wget -q -O - http://allowed.test/");
    assert_eq!(got.stdout, "via the forward proxy", "{got:?}");

    // The proxy refuses this one: the sandbox gets 502, and there is no direct fallback.
    let refused = api.exec(&sb, "wget -q -O - http://unrouted.test/ 2>&1");
    assert!(refused.stdout.contains("502"), "{refused:?}");
    direct.set_nonblocking(true).unwrap();
    assert!(
        direct.accept().is_err(),
        "dialled directly around the proxy"
    );

    // The metadata address is refused before the proxy is asked.
    let metadata = api.exec(&sb, "wget -q -O - http://169.254.169.254/ 2>&1");
    assert!(metadata.stdout.contains("403"), "{metadata:?}");

    let asked = proxy.asked.lock().unwrap().clone();
    assert_eq!(asked, vec!["allowed.test:80", "unrouted.test:80"]);
    let log = api.call("GET", "/api/v2/sandboxes/boxes/fwd/egress-log", None);
    let entries = log.body["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["host"] == "unrouted.test"
            && e["decision"] == "failed"
            && e["reason"].as_str().unwrap_or("").contains("403")),
        "{entries:?}"
    );
}
