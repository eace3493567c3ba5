//! Provider rules and the official SDK's helpers: a configuration built with
//! `proxy_config`, `aws_auth`, `gcp_auth`, `workspace_secret` and `opaque_secret` is
//! accepted, and from the sandbox:
//!
//! * a request to an AWS endpoint signed with the placeholder keys the sandbox was given
//!   reaches the endpoint re-signed with the real ones (checked by signing it again);
//! * a request to a Google API carries a token the host minted with the service account's
//!   key at a local token endpoint (which checks the key's signature), cached across
//!   requests;
//! * a header rule from the same configuration sets its header.
//!
//! `s3.us-east-1.amazonaws.com` and `storage.googleapis.com` never leave this machine:
//! `--resolve` pins them to an HTTPS upstream on loopback, trusted through `--upstream-ca`,
//! and the key file's `token_uri` names a token endpoint on loopback.

use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::json;

use crate::common::api::{Api, Exec};
use crate::common::echo_upstream::EchoUpstream;
use crate::common::process::assert_not_on_disk;
use crate::common::{TestServer, sdk};

const S3: &str = "s3.us-east-1.amazonaws.com";
const STORAGE: &str = "storage.googleapis.com";
const GCP_SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_only";
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
fn the_sdk_helpers_config_signs_aws_requests_and_mints_gcp_tokens_on_the_host() {
    let echo = EchoUpstream::start(&[S3, STORAGE, "api.example.test"], 32);
    let tokens = TokenEndpoint::start();
    let work = tempfile::tempdir().unwrap();
    let args = echo.server_args(work.path(), &[S3, STORAGE, "api.example.test"], &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args, &[]);
    let api = Api::new(&server);
    let snapshot = api.default_snapshot_id();
    let secret_key = format!("real-secret-{}", uuid::Uuid::new_v4().simple());
    let service_account = tokens.key_file();
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", REAL_KEY_ID),
        ("MODEL_KEY", "model-key-1"),
        ("GCP_SERVICE_ACCOUNT", service_account.as_str()),
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

    // Bodies read to sign them: one declared over the limit is refused before it is read;
    // unsized ones (more than the sandbox's budget holds at once) wait their turn and all go.
    let large = api.exec(
        &sb,
        &format!(
            "curl -sS --http1.1 -o /dev/null -w '%{{http_code}}' -X PUT \
             -H 'Content-Length: 40000000' --data-binary x https://{S3}/bucket/big"
        ),
    );
    assert_eq!(ok(&large), "413");
    let chunked = api.exec(
        &sb,
        &format!(
            "for i in 1 2 3 4; do curl -sS --http1.1 -o /dev/null -w '%{{http_code}}\\n' \
             -X PUT -H 'Transfer-Encoding: chunked' --data-binary body$i \
             https://{S3}/bucket/chunked$i & done; wait"
        ),
    );
    assert_eq!(ok(&chunked).lines().collect::<Vec<_>>(), ["200"; 4]);

    // Google APIs: the host's token, minted once and reused; the sandbox has a placeholder.
    let gcloud_env = api.exec(&sb, "echo $CLOUDSDK_AUTH_ACCESS_TOKEN");
    assert!(ok(&gcloud_env).starts_with("placeholder"), "{gcloud_env:?}");
    let storage = api.exec(
        &sb,
        &format!(
            "curl -sS -H \"Authorization: Bearer $CLOUDSDK_AUTH_ACCESS_TOKEN\" \
             https://{STORAGE}/storage/v1/b https://{STORAGE}/storage/v1/b/x/o"
        ),
    );
    let bearers: Vec<&str> = ok(&storage)
        .lines()
        .filter_map(|l| l.strip_prefix("authorization: "))
        .collect();
    assert_eq!(
        bearers,
        ["Bearer ya29.local-1", "Bearer ya29.local-1"],
        "{storage:?}"
    );
    assert_eq!(tokens.minted(), 1);
    assert_not_on_disk(&server.state_dir, &secret_key);
    // A line from the middle of the account's private key.
    assert_not_on_disk(
        &server.state_dir,
        tokens.private_key.lines().nth(3).unwrap(),
    );
    assert_not_on_disk(&server.state_dir, "ya29.local");
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

/// A service account's token endpoint on loopback (cleartext HTTP: the key file's
/// `token_uri` names it): checks each JWT assertion against the account's public key,
/// issuer, audience and scope, and answers `ya29.local-N`.
struct TokenEndpoint {
    port: u16,
    private_key: String,
    minted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenEndpoint {
    fn start() -> TokenEndpoint {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        // `output()`: its progress dots stay out of the test's output.
        let generated = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&key)
            .output()
            .unwrap();
        assert!(generated.status.success(), "{generated:?}");
        let public = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(public.status.success());
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(&public.stdout).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let minted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = minted.clone();
        std::thread::spawn(move || {
            use std::io::{BufRead, BufReader, Read, Write};
            for stream in listener.incoming().take(16) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                let field = |name: &str| {
                    body.split('&')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                        .map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
                        .unwrap_or_default()
                        .into_owned()
                };
                let assertion = field("assertion");
                assert_eq!(
                    field("grant_type"),
                    "urn:ietf:params:oauth:grant-type:jwt-bearer"
                );
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                validation.set_audience(&[format!("http://127.0.0.1:{port}/token")]);
                validation.set_issuer(&["sandbox@test-project.iam.gserviceaccount.com"]);
                let checked =
                    jsonwebtoken::decode::<serde_json::Value>(&assertion, &decoding, &validation);
                let (status, answer) = match checked {
                    Ok(data) if data.claims["scope"] == GCP_SCOPE => {
                        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        (
                            "200 OK",
                            json!({"access_token": format!("ya29.local-{n}"),
                                          "expires_in": 3600, "token_type": "Bearer"}),
                        )
                    }
                    other => ("400 Bad Request", json!({"error": format!("{other:?}")})),
                };
                let answer = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        TokenEndpoint {
            port,
            private_key: std::fs::read_to_string(&key).unwrap(),
            minted,
        }
    }

    /// The service account's key file, as Google hands it out (one line of JSON).
    fn key_file(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "test-project",
            "client_email": "sandbox@test-project.iam.gserviceaccount.com",
            "private_key": self.private_key,
            "token_uri": format!("http://127.0.0.1:{}/token", self.port),
        })
        .to_string()
    }

    fn minted(&self) -> usize {
        self.minted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
