//! `aws` rules and the official SDK's helpers: a configuration built with `proxy_config`,
//! `aws_auth`, `workspace_secret` and `opaque_secret` is accepted, and from the sandbox a
//! request to an AWS endpoint signed with the placeholder keys the sandbox was given reaches
//! the endpoint re-signed with the real ones (checked by signing the same request again);
//! a header rule from the same configuration sets its header.
//!
//! `s3.us-east-1.amazonaws.com` never leaves this machine: `--resolve` pins it to an HTTPS
//! upstream on loopback, trusted through `--upstream-ca`.

use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::json;

use crate::common::api::{Api, Exec};
use crate::common::echo_upstream::EchoUpstream;
use crate::common::process::assert_not_on_disk;
use crate::common::{TestServer, sdk};

const S3: &str = "s3.us-east-1.amazonaws.com";
const REAL_KEY_ID: &str = "AKIAREALKEYFORTESTS1";

fn ok(r: &Exec) -> &str {
    assert_eq!(r.exit_code, 0, "{r:?}");
    r.stdout.trim()
}

/// The value of header `name` as the upstream received it.
fn received<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("hdr {name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn the_sdk_helpers_config_signs_aws_requests_with_the_real_keys() {
    let echo = EchoUpstream::start(&[S3, "api.example.test"], 32);
    let work = tempfile::tempdir().unwrap();
    let args = echo.server_args(work.path(), &[S3, "api.example.test"], &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args, &[]);
    let api = Api::new(&server);
    let snapshot = api.default_snapshot_id();
    let secret_key = format!("real-secret-{}", uuid::Uuid::new_v4().simple());
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", REAL_KEY_ID),
        ("MODEL_KEY", "model-key-1"),
    ] {
        let r = api.call(
            "PUT",
            &format!("/api/v1/workspaces/current/secrets/{key}"),
            Some(json!({"value": value})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    let out = sdk::run_script(
        &server,
        "proxy_config.py",
        &[("SNAPSHOT_ID", &snapshot), ("AWS_SECRET", &secret_key)],
    );
    assert_eq!(out.trim(), "sdk-proxy");
    let sb = api
        .call("GET", "/api/v2/sandboxes/boxes/sdk-proxy", None)
        .body;

    // The header rule from the same configuration.
    let model = api.exec(&sb, "curl -sS https://api.example.test/v1/models");
    assert!(
        ok(&model).starts_with("authorization: Bearer model-key-1\n"),
        "{model:?}"
    );

    // The sandbox has placeholders only, and signs with them; the upstream sees the real key
    // id and a signature made with the real secret.
    let env = api.exec(
        &sb,
        "echo $AWS_ACCESS_KEY_ID $AWS_REGION $AWS_EC2_METADATA_DISABLED $AWS_CA_BUNDLE",
    );
    let env = ok(&env).to_string();
    assert!(
        !env.contains(REAL_KEY_ID) && !env.contains(&secret_key),
        "{env}"
    );
    assert!(
        env.ends_with(" us-east-1 true /etc/ssl/certs/ca-certificates.crt"),
        "{env}"
    );
    let signed = api.exec(
        &sb,
        &format!(
            "curl -sS --aws-sigv4 aws:amz:us-east-1:s3 \
             -u \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" \
             -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' https://{S3}/bucket/key.txt"
        ),
    );
    let seen = ok(&signed);
    let authorization = received(seen, "authorization");
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={REAL_KEY_ID}/"))
            && authorization.contains("/us-east-1/s3/aws4_request"),
        "{authorization}"
    );
    assert_eq!(
        authorization,
        expected_signature(
            seen,
            "GET",
            "/bucket/key.txt",
            SignableBody::UnsignedPayload,
            &secret_key
        ),
        "not signed with the real secret"
    );

    // An unsigned request with a body: region and service from the endpoint's name, the
    // body read and hashed by the proxy.
    let put = api.exec(
        &sb,
        &format!("curl -sS -X PUT --data-binary 'hello body' https://{S3}/bucket/new.txt"),
    );
    let seen = ok(&put);
    assert_eq!(
        received(seen, "authorization"),
        expected_signature(
            seen,
            "PUT",
            "/bucket/new.txt",
            SignableBody::Bytes(b"hello body"),
            &secret_key
        ),
    );
    assert_not_on_disk(&server.state_dir, &secret_key);
    api.delete_sandbox("sdk-proxy");
}

/// The `Authorization` a request with the headers `seen` lists as signed would carry if
/// signed with the real keys at its `x-amz-date`.
fn expected_signature(
    seen: &str,
    method: &str,
    path: &str,
    body: SignableBody<'_>,
    secret_key: &str,
) -> String {
    let authorization = received(seen, "authorization");
    let signed_headers = authorization
        .split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let date = received(seen, "x-amz-date");
    let time = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc()
        .timestamp();
    let headers: Vec<(String, String)> = signed_headers
        .split(';')
        .map(|name| {
            let value = if name == "host" {
                seen.lines()
                    .find_map(|l| {
                        l.strip_prefix("hdr host: ")
                            .or_else(|| l.strip_prefix("hdr :authority: "))
                    })
                    .unwrap()
            } else {
                received(seen, name)
            };
            (name.to_string(), value.to_string())
        })
        .collect();
    let identity =
        aws_credential_types::Credentials::new(REAL_KEY_ID, secret_key, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(UNIX_EPOCH + Duration::from_secs(time as u64))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let url = format!("https://{S3}{path}");
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .iter()
        .find(|h| h.name() == "authorization")
        .unwrap()
        .value()
        .to_string()
}
