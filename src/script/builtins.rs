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
    (
        "examples/fanout",
        include_str!("../../scripts/examples/fanout.rhai"),
    ),
    (
        "examples/snapshot_reuse",
        include_str!("../../scripts/examples/snapshot_reuse.rhai"),
    ),
    (
        "examples/test_suite",
        include_str!("../../scripts/examples/test_suite.rhai"),
    ),
];

/// The user scripts folder, if one can be named.
pub fn user_dir() -> Option<PathBuf> {
    crate::paths::user_scripts_dir()
}

/// Where a script came from, for error messages.
#[derive(Debug, Clone)]
pub struct Found {
    pub origin: String,
    pub source: Cow<'static, str>,
}

/// Whether `name` can name a subcommand script: letters, digits, `-` and `_`, not starting
/// with `-`. Nothing else may reach a path, so `..`, `/` and the like never leave the folder.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Find `name` (e.g. `sandbox/create`): user folder first, then the built-ins. A name with a
/// part that is not [plain](is_plain_name) is not found, whatever the folder holds.
pub fn find(name: &str) -> Result<Option<Found>, std::io::Error> {
    if !name.split('/').all(is_plain_name) {
        return Ok(None);
    }
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

/// User scripts that add subcommands under `parent` (e.g. `sandbox`): `(name, description)`
/// for each `<scripts dir>/<parent>/<name>.rhai` with a [plain](is_plain_name) name that is
/// not a built-in, sorted. The
/// description is the script's first `//` comment line (after any shebang).
pub fn user_commands(parent: &str) -> Vec<(String, String)> {
    let Some(dir) = user_dir().map(|d| d.join(parent)) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, String)> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".rhai")
                .filter(|name| is_plain_name(name))?
                .to_string();
            let builtin = format!("{parent}/{name}");
            if BUILTINS.iter().any(|(n, _)| *n == builtin) {
                return None; // an override: already listed with its built-in description
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let about = text
                .lines()
                .filter(|l| !l.starts_with("#!"))
                .find_map(|l| l.trim().strip_prefix("//"))
                .map(|l| l.trim().to_string())
                .unwrap_or_else(|| format!("User script {}", path.display()));
            Some((name, about))
        })
        .collect();
    found.sort();
    found
}
