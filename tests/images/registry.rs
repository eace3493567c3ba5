//! End-to-end pulls from a real `docker-registry` on loopback (plain HTTP), fed with
//! `skopeo copy` from an OCI layout built by `umoci`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use langsmith::server::images::RegistryCredentials;

use crate::common::process::run_ok;

use super::build::{
    MIB, assert_image_contents, build, build_layout, build_with_credentials, debugfs,
};

/// A `docker-registry serve` process on a free loopback port, killed on drop.
struct LocalRegistry {
    child: Child,
    addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> Self {
        Self::start_with_users(None)
    }

    /// With `user`, the registry demands HTTP basic auth (bcrypt htpasswd).
    fn start_with_users(user: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                storage.display()
            ) + user
                .map(|(name, password)| htpasswd_config(dir.path(), name, password))
                .unwrap_or_default()
                .as_str(),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("docker-registry is installed");
        let mut registry = LocalRegistry {
            child,
            addr,
            log,
            _dir: dir,
        };
        registry.wait_until_ready();
        registry
    }

    /// Poll `GET /v2/` until it answers 200, failing fast if the process dies.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("registry exited with {status}: {}", self.log());
            }
            if matches!(self.get_v2_status(), Some(200 | 401)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "registry never answered: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get_v2_status(&self) -> Option<u16> {
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        write!(stream, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.split_whitespace().nth(1)?.parse().ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn push(&self, layout: &Path, tag: &str, name: &str) {
        self.push_as(layout, tag, name, None);
    }

    fn push_as(&self, layout: &Path, tag: &str, name: &str, creds: Option<&str>) {
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["copy", "--insecure-policy", "--dest-tls-verify=false"]);
        if let Some(creds) = creds {
            skopeo.arg(format!("--dest-creds={creds}"));
        }
        run_ok(
            skopeo
                .arg(format!("oci:{}:{tag}", layout.display()))
                .arg(format!("docker://{}/{name}", self.addr)),
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn pulls_from_a_loopback_registry_over_http() {
    let registry = LocalRegistry::start();
    let scratch = tempfile::tempdir().unwrap();
    let layout = build_layout(scratch.path(), "v1", None);
    registry.push(&layout, "v1", "tiny:1");

    let reference = format!("{}/tiny:1", registry.addr);
    let (built, image) = build(scratch.path(), &reference, 64 * MIB).await;
    let built = built.unwrap();
    assert_image_contents(&image);
    assert_eq!(built.config.cmd, vec!["/bin/sh"]);

    let inspect = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{reference}"),
    ]));
    assert_eq!(built.digest, inspect.trim());
    let cached = std::fs::read_dir(scratch.path().join("blobs/sha256"))
        .unwrap()
        .count();
    assert!(
        cached >= 3,
        "config and both layers are cached, found {cached}"
    );

    let missing = format!("{}/tiny:2", registry.addr);
    let (err, _) = build(scratch.path(), &missing, 64 * MIB).await;
    assert_eq!(
        err.unwrap_err().to_string(),
        format!("pulling {missing}: manifest unknown")
    );
}

/// An index listing another platform first must resolve to this host's manifest.
#[tokio::test]
async fn picks_the_host_platform_from_an_index() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = LocalRegistry::start();
    let scratch = tempfile::tempdir().unwrap();
    let ours = build_layout(&scratch.path().join("ours"), "v1", None);
    let theirs = build_layout(
        &scratch.path().join("theirs"),
        "v1",
        Some(("other-arch", 0)),
    );
    registry.push(&ours, "v1", "multi:ours");
    registry.push(&theirs, "v1", "multi:theirs");

    let http = reqwest::Client::new();
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let mut entries = Vec::new();
    for (tag, arch) in [("theirs", "s390x"), ("ours", host_arch())] {
        let body = http
            .get(registry.url(&format!("/v2/multi/manifests/{tag}")))
            .header("Accept", oci_manifest)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        entries.push(serde_json::json!({
            "mediaType": oci_manifest,
            "digest": format!("sha256:{}", hex::encode(Sha256::digest(&body))),
            "size": body.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let put = http
        .put(registry.url("/v2/multi/manifests/both"))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(serde_json::to_vec(&index).unwrap())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "index push: {}", put.status());

    let reference = format!("{}/multi:both", registry.addr);
    let (built, image) = build(scratch.path(), &reference, 64 * MIB).await;
    built.unwrap();
    assert_image_contents(&image);
    let other = debugfs(&image, "stat /other-arch");
    assert!(
        other.contains("File not found"),
        "took the wrong platform: {other}"
    );
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An `auth.htpasswd` config section for one user; the bcrypt hash comes from Python's
/// `crypt` module (the registry only accepts bcrypt).
fn htpasswd_config(dir: &Path, name: &str, password: &str) -> String {
    let hash = run_ok(Command::new("python3").args([
        "-c",
        "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))",
        password,
    ]));
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("{name}:{}\n", hash.trim())).unwrap();
    format!(
        "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        path.display()
    )
}

#[tokio::test]
async fn basic_auth_credentials_go_only_to_their_registry() {
    let registry = LocalRegistry::start_with_users(Some(("alice", "s3cret")));
    let scratch = tempfile::tempdir().unwrap();
    let layout = build_layout(scratch.path(), "v1", None);
    registry.push_as(&layout, "v1", "private/tiny:1", Some("alice:s3cret"));
    let reference = format!("{}/private/tiny:1", registry.addr);
    let alice = RegistryCredentials {
        username: "alice".into(),
        password: "s3cret".into(),
    };

    let (anonymous, _) = build(scratch.path(), &reference, 64 * MIB).await;
    let message = anonymous.unwrap_err().to_string();
    assert!(message.contains("not authorized by"), "{message}");

    let elsewhere = Some("https://registry.example.com");
    let (leaked, _) = build_with_credentials(
        scratch.path(),
        &reference,
        64 * MIB,
        elsewhere,
        Some(&alice),
    )
    .await;
    assert!(
        leaked.is_err(),
        "credentials for another host must not be sent"
    );

    let url = registry.url("");
    let (built, image) = build_with_credentials(
        scratch.path(),
        &reference,
        64 * MIB,
        Some(&url),
        Some(&alice),
    )
    .await;
    built.unwrap();
    assert_image_contents(&image);
}
