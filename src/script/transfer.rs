//! Copying between this machine and a sandbox: `Sandbox.upload(local, remote)` (a file, or a
//! directory tree file by file) and `Sandbox.download(remote, local)`.
//!
//! Only regular files travel (symlinks on the local side are followed for the top path and
//! skipped inside trees, so an upload never reaches outside the directory that was named);
//! modes are not carried — run uploaded scripts with `sh file` or `chmod` them.

use std::path::{Path, PathBuf};

use rhai::Engine;

use super::bridge::{ScriptResult, user_error};
use super::sandbox::SandboxObj;

/// Every regular file under `root` with its path relative to `root` (`/`-separated), sorted.
fn files_under(root: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if kind.is_dir() {
                pending.push((entry.path(), rel));
            } else if kind.is_file() {
                found.push((entry.path(), rel));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// Upload `local` to `remote`; returns the number of files sent.
fn upload(s: &SandboxObj, local: &str, remote: &str) -> ScriptResult<i64> {
    let reading = |e: std::io::Error| user_error(format!("upload: reading {local}: {e}"));
    let meta = std::fs::metadata(local).map_err(reading)?;
    let pairs = if meta.is_dir() {
        let base = remote.trim_end_matches('/');
        files_under(Path::new(local))
            .map_err(reading)?
            .into_iter()
            .map(|(path, rel)| (path, format!("{base}/{rel}")))
            .collect()
    } else {
        vec![(PathBuf::from(local), remote.to_string())]
    };
    for (path, target) in &pairs {
        let data = std::fs::read(path)
            .map_err(|e| user_error(format!("upload: reading {}: {e}", path.display())))?;
        s.write_file(target, data)?;
    }
    Ok(pairs.len() as i64)
}

/// Download `remote` into the local file `local` (parent directories are created).
fn download(s: &SandboxObj, remote: &str, local: &str) -> ScriptResult<()> {
    let data = s.read_file(remote)?;
    let path = Path::new(local);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| user_error(format!("download: creating {}: {e}", parent.display())))?;
    }
    std::fs::write(path, data).map_err(|e| user_error(format!("download: writing {local}: {e}")))
}

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("upload", |s: &mut SandboxObj, local: &str, remote: &str| {
            upload(s, local, remote)
        })
        .register_fn(
            "download",
            |s: &mut SandboxObj, remote: &str, local: &str| download(s, remote, local),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn trees_list_regular_files_with_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("top.sh"), "x").unwrap();
        std::fs::write(dir.path().join("a/b/deep.txt"), "y").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("a/link")).unwrap();
        let rels: Vec<String> = files_under(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(rels, vec!["a/b/deep.txt", "top.sh"]);
    }
}
