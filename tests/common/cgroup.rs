//! Reading a sandbox container's cgroup files on the host (cgroup v1, where runc puts them:
//! `/langsmith/ls-<id>` under each controller).

/// The content of `file` in the `controller` hierarchy of sandbox `sandbox_id`'s container.
pub fn cgroup_file(controller: &str, sandbox_id: &str, file: &str) -> String {
    let path = format!("/sys/fs/cgroup/{controller}/langsmith/ls-{sandbox_id}/{file}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}
