//! Host facts never reach an answer. Every host path the server names lies under its state
//! directory (images, each sandbox's files, the runtime's own state) or under
//! `/run/langsmith` (what runc is shown while it starts a sandbox, and the claims on host id
//! ranges), and the only host process ids it could name appear as `/proc/<pid>`. Errors
//! keep them, for the server's own log; what a client reads (an error body, a recorded
//! status message) says `STATE_DIR/…`, `RUN_DIR/…` and `/proc/PID/…` instead.

use std::path::Path;
use std::sync::{LazyLock, RwLock};

use regex::Regex;

/// The state directories of the servers in this process (one, outside tests), as given and
/// as resolved.
static STATE_DIRS: RwLock<Vec<String>> = RwLock::new(Vec::new());

static PROC_PID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/proc/[0-9]+\b").expect("a valid pattern"));

/// Hide `state_dir` from now on.
pub fn hide_state_dir(state_dir: &Path) {
    let mut names = vec![state_dir.to_string_lossy().into_owned()];
    if let Ok(resolved) = state_dir.canonicalize() {
        names.push(resolved.to_string_lossy().into_owned());
    }
    let mut dirs = STATE_DIRS.write().unwrap_or_else(|p| p.into_inner());
    for name in names {
        let name = name.trim_end_matches('/').to_string();
        if name.len() > 1 && !dirs.contains(&name) {
            dirs.push(name);
        }
    }
    // Longest first, so a directory inside another is replaced whole.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
}

/// `text` with every host fact replaced.
pub fn scrub(text: &str) -> String {
    let mut text = text.to_string();
    for dir in STATE_DIRS.read().unwrap_or_else(|p| p.into_inner()).iter() {
        text = text.replace(dir.as_str(), "STATE_DIR");
    }
    let text = text.replace("/run/langsmith", "RUN_DIR");
    PROC_PID.replace_all(&text, "/proc/PID").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_paths_and_process_ids_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        hide_state_dir(&state);
        let text = format!(
            "cannot mount {}/runtime/sandboxes/x/upper.ext4 at /run/langsmith/views/x/rootfs: \
             see /proc/4242/mountinfo",
            state.display()
        );
        assert_eq!(
            scrub(&text),
            "cannot mount STATE_DIR/runtime/sandboxes/x/upper.ext4 at RUN_DIR/views/x/rootfs: \
             see /proc/PID/mountinfo"
        );
        assert_eq!(scrub("/proc/self/status"), "/proc/self/status");
    }
}
