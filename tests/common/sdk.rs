//! The official LangSmith Python SDK, pinned, in a virtualenv made on first use.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::process::run_ok;
use super::server::{API_KEY, TestServer};

/// The SDK version the conformance scripts are written against.
pub const SDK_VERSION: &str = "0.14.17";

/// Path of the virtualenv's python, creating the virtualenv (and installing the SDK) once.
pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sdk-venv-{SDK_VERSION}"));
        let python = venv.join("bin/python");
        let marker = venv.join(".installed");
        if !marker.exists() {
            run_ok(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            run_ok(Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("langsmith=={SDK_VERSION}"),
            ]));
            std::fs::write(&marker, SDK_VERSION).unwrap();
        }
        python
    })
}

/// Run `tests/sdk/<script>` with the SDK pointed at `server`; `env` adds variables.
/// Panics with the script's output when it fails.
pub fn run_script(server: &TestServer, script: &str, env: &[(&str, &str)]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let mut cmd = Command::new(python());
    cmd.arg(path)
        .env("LANGSMITH_ENDPOINT", &server.url)
        .env("LANGSMITH_API_KEY", API_KEY)
        .env_remove("LANGCHAIN_ENDPOINT")
        .env_remove("LANGCHAIN_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_ok(&mut cmd)
}
