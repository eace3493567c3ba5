//! A real `docker-registry` on loopback, shared by every test of the run.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::process::{die_with_parent, free_port, wait_for};

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub host: String,
    _child: std::process::Child,
    _dir: tempfile::TempDir,
}

/// The registry of this test run, started on first use. It is spawned from a thread that
/// lives as long as the test process, so it dies with the process.
pub fn shared() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(start()).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap()
    })
}

fn start() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let (child, host) = spawn(dir.path(), "");
    Registry {
        host,
        _child: child,
        _dir: dir,
    }
}

/// Start `docker-registry` on a free loopback port with its storage under `dir` and
/// `extra_config` (YAML, e.g. an `auth:` section) appended to its config; returns the process
/// and `127.0.0.1:PORT` once it accepts connections.
pub fn spawn(dir: &std::path::Path, extra_config: &str) -> (std::process::Child, String) {
    let port = free_port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra_config}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    die_with_parent(&mut cmd);
    let child = cmd
        .spawn()
        .expect("starting docker-registry (apt-get install docker-registry)");
    let host = format!("127.0.0.1:{port}");
    wait_for("docker-registry to answer", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&host).ok().map(drop)
    });
    (child, host)
}
