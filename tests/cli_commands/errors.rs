//! Argument errors with the LangSmith CLI's messages: size strings, required flags, `update` with
//! nothing to change, bad `--proxy-config`, unknown sandboxes.

use super::failure;
use crate::common::TestServer;

#[test]
fn size_and_argument_errors_use_the_ga_messages() {
    let server = TestServer::start();
    // `--memory=VALUE`: a separate `-5mb` would be read as shorthand flags, as pflag does.
    let create = |size: &str| {
        let flag = format!("--memory={size}");
        failure(
            &server,
            &["sandbox", "create", "x", "--snapshot-id", "s", &flag],
        )
    };
    assert_eq!(create(""), "invalid --memory: empty size");
    let dash = failure(
        &server,
        &[
            "sandbox",
            "create",
            "x",
            "--snapshot-id",
            "s",
            "--memory",
            "-5mb",
        ],
    );
    assert_eq!(dash, "unknown shorthand flag: '5' in -5mb");
    assert_eq!(
        create("-5mb"),
        r#"invalid --memory: invalid size "-5mb": no number"#
    );
    assert_eq!(
        create("512"),
        r#"invalid --memory: invalid size "512": unit required (e.g. 512mb, 2gb)"#
    );
    assert_eq!(
        create("2pb"),
        r#"invalid --memory: invalid size "2pb": unknown unit "pb""#
    );
    assert_eq!(
        create("512kb"),
        r#"invalid --memory: invalid size "512kb": must be at least 1mb"#
    );
    assert_eq!(
        create("1025tb"),
        r#"invalid --memory: invalid size "1025tb": must be less than 1pb"#
    );
    let rootfs = failure(
        &server,
        &[
            "sandbox",
            "create",
            "x",
            "--snapshot-id",
            "s",
            "--rootfs-capacity",
            "1.2.3gb",
        ],
    );
    assert_eq!(
        rootfs,
        r#"invalid --rootfs-capacity: invalid size "1.2.3gb": strconv.ParseFloat: parsing "1.2.3": invalid syntax"#
    );
    let capacity = failure(
        &server,
        &[
            "sandbox",
            "snapshot",
            "build",
            "x",
            "--docker-image",
            "i",
            "--capacity",
            "4 zb",
        ],
    );
    assert_eq!(
        capacity,
        r#"invalid --capacity: invalid size "4 zb": unknown unit "zb""#
    );
    let image = failure(&server, &["sandbox", "snapshot", "build", "x"]);
    assert_eq!(image, "--docker-image is required");
    let update = failure(&server, &["sandbox", "update", "x"]);
    assert_eq!(
        update,
        "nothing to update (use --vcpus, --memory, --rootfs-capacity, or --proxy-config)"
    );
    let proxy = failure(
        &server,
        &["sandbox", "update", "x", "--proxy-config", "{nope"],
    );
    assert!(
        proxy.starts_with("invalid --proxy-config: invalid JSON: "),
        "{proxy}"
    );
    let unknown = failure(&server, &["sandbox", "get", "nobody"]);
    assert!(
        unknown.starts_with("getting sandbox: HTTP 404: "),
        "{unknown}"
    );

    let missing_file = failure(
        &server,
        &[
            "sandbox",
            "update",
            "x",
            "--proxy-config",
            "@/nonexistent/proxy.json",
        ],
    );
    assert!(
        missing_file.starts_with("invalid --proxy-config: reading file /nonexistent/proxy.json: "),
        "{missing_file}"
    );
}

#[test]
fn arity_usage_and_zero_timeouts_use_the_ga_messages() {
    let server = TestServer::start();
    let cases: [(&[&str], &str); 6] = [
        (&["sandbox", "get"], "accepts 1 arg(s), received 0"),
        (
            &["sandbox", "delete", "a", "b"],
            "accepts 1 arg(s), received 2",
        ),
        (
            &["sandbox", "exec", "vm"],
            "usage: langsmith sandbox exec <name> -- <command>",
        ),
        (
            &["sandbox", "wait", "vm", "--timeout", "0"],
            "timed out after 0s waiting for sandbox",
        ),
        (
            &["sandbox", "snapshot", "wait", "some-id", "--timeout", "0"],
            "timed out after 0s waiting for snapshot",
        ),
        (&["sandbox", "list", "--bogus"], "unknown flag: --bogus"),
    ];
    for (args, message) in cases {
        assert_eq!(failure(&server, args), message, "{args:?}");
    }
}
