//! The built-in scripts (embedded at build time, one per subcommand) and their lookup: a user
//! scripts folder (`$LANGSMITH_SCRIPTS_DIR`, else `<config dir>/langsmith/scripts/`) is
//! searched first, so `sandbox/create.rhai` there overrides `sandbox create` and
//! `sandbox/mytool.rhai` adds `sandbox mytool`.

use std::borrow::Cow;
use std::path::PathBuf;

/// `(name, source)` of every built-in; the name is the path under `scripts/` without `.rhai`.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "sandbox/create",
        include_str!("../../scripts/sandbox/create.rhai"),
    ),
    (
        "sandbox/list",
        include_str!("../../scripts/sandbox/list.rhai"),
    ),
    (
        "sandbox/get",
        include_str!("../../scripts/sandbox/get.rhai"),
    ),
    (
        "sandbox/update",
        include_str!("../../scripts/sandbox/update.rhai"),
    ),
    (
        "sandbox/delete",
        include_str!("../../scripts/sandbox/delete.rhai"),
    ),
    (
        "sandbox/start",
        include_str!("../../scripts/sandbox/start.rhai"),
    ),
    (
        "sandbox/stop",
        include_str!("../../scripts/sandbox/stop.rhai"),
    ),
    (
        "sandbox/wait",
        include_str!("../../scripts/sandbox/wait.rhai"),
    ),
    (
        "sandbox/exec",
        include_str!("../../scripts/sandbox/exec.rhai"),
    ),
    (
        "sandbox/console",
        include_str!("../../scripts/sandbox/console.rhai"),
    ),
    (
        "sandbox/snapshot/build",
        include_str!("../../scripts/sandbox/snapshot/build.rhai"),
    ),
    (
        "sandbox/snapshot/capture",
        include_str!("../../scripts/sandbox/snapshot/capture.rhai"),
    ),
    (
        "sandbox/snapshot/get",
        include_str!("../../scripts/sandbox/snapshot/get.rhai"),
    ),
    (
        "sandbox/snapshot/list",
        include_str!("../../scripts/sandbox/snapshot/list.rhai"),
    ),
    (
        "sandbox/snapshot/wait",
        include_str!("../../scripts/sandbox/snapshot/wait.rhai"),
    ),
    (
        "sandbox/snapshot/delete",
        include_str!("../../scripts/sandbox/snapshot/delete.rhai"),
    ),
];

/// The documented examples, compiled (and where possible run) by the tests.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "examples/hello",
        include_str!("../../scripts/examples/hello.rhai"),
    ),
    (
        "examples/stream",
        include_str!("../../scripts/examples/stream.rhai"),
    ),
];

/// The user scripts folder, if one can be named.
pub fn user_dir() -> Option<PathBuf> {
    match std::env::var_os("LANGSMITH_SCRIPTS_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => dirs::config_dir().map(|d| d.join("langsmith").join("scripts")),
    }
}

/// Where a script came from, for error messages.
#[derive(Debug, Clone)]
pub struct Found {
    pub origin: String,
    pub source: Cow<'static, str>,
}

/// Find `name` (e.g. `sandbox/create`): user folder first, then the built-ins.
pub fn find(name: &str) -> Result<Option<Found>, std::io::Error> {
    if let Some(dir) = user_dir() {
        let path = dir.join(format!("{name}.rhai"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return Ok(Some(Found {
                    origin: path.display().to_string(),
                    source: Cow::Owned(text),
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, src)| Found {
            origin: format!("built-in {n}.rhai"),
            source: Cow::Borrowed(src),
        }))
}
