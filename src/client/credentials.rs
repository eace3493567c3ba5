//! The CLI's own credentials file (`paths::credentials_file()`): the API key (and workspace) of
//! each remote endpoint, keyed by its normalised base URL, for commands that run where no flag
//! or environment carries the key — an ssh `ProxyCommand` written by `sandbox ssh-setup` names
//! only `--api-url`, and the tunnel it runs finds the key here.
//!
//! The file is private to its user: written with mode 0600 in a 0700 directory, and refused
//! when it has any group or other permission bit or another owner (the key may have been read
//! or chosen by someone else), as the local backend treats its own key file.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// What is kept for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub api_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

/// The whole file: normalised base URL → credential.
type Credentials = BTreeMap<String, Credential>;

/// The file's entries; an absent file has none.
fn read(path: &Path) -> Result<Credentials, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::new()),
        Err(e) => return Err(format!("opening {}: {e}", path.display())),
    };
    // Checked on the open file, so the file checked is the file read.
    let meta = file
        .metadata()
        .map_err(|e| format!("reading the attributes of {}: {e}", path.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "the credentials file {} belongs to uid {}, not to you (uid {me}); remove it",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the credentials file {} has mode {mode:04o}, readable by others; refusing to use \
             it (chmod 600 it, and replace the keys in it if others may have read them)",
            path.display()
        ));
    }
    serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The credential kept for `base` (a normalised base URL), if any.
pub fn lookup(path: &Path, base: &str) -> Result<Option<Credential>, String> {
    Ok(read(path)?.remove(base))
}

/// Keep `credential` for `base`, replacing what was kept for it; other entries stay. The
/// file is replaced atomically (a new 0600 file renamed over it).
pub fn store(path: &Path, base: &str, credential: Credential) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Concurrent stores (two ssh-setups at once) read, change and write under one lock, so
    // neither loses the other's entry.
    let lock_path = dir.join(".credentials.lock");
    let lock_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking {}: {e}", lock_path.display()))?;
    let mut all = read(path)?;
    if all.get(base) == Some(&credential) {
        return Ok(());
    }
    all.insert(base.to_string(), credential);
    let mut text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
    text.push('\n');
    let temp = dir.join(format!(".credentials.json.{}", std::process::id()));
    // Never write through a file or link someone else put there: the name must be new.
    // Under the lock, one with this name can only be left from a crash of this process id.
    let _ = std::fs::remove_file(&temp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("writing {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cred(key: &str) -> Credential {
        Credential {
            api_key: key.into(),
            workspace_id: None,
        }
    }

    #[test]
    fn entries_are_kept_per_endpoint_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/langsmith/credentials.json");
        assert_eq!(lookup(&path, "https://a").unwrap(), None);
        store(&path, "https://a", cred("ka")).unwrap();
        store(&path, "https://b", cred("kb")).unwrap();
        store(&path, "https://a", cred("ka2")).unwrap();
        assert_eq!(lookup(&path, "https://a").unwrap(), Some(cred("ka2")));
        assert_eq!(lookup(&path, "https://b").unwrap(), Some(cred("kb")));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn a_file_others_can_read_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, r#"{"https://a": {"api_key": "k"}}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = lookup(&path, "https://a").unwrap_err();
        assert!(err.contains("mode 0644, readable by others"), "{err}");
        let err = store(&path, "https://b", cred("kb")).unwrap_err();
        assert!(err.contains("readable by others"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, "https://a").unwrap(), Some(cred("k")));
    }

    #[test]
    fn concurrent_stores_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::thread::scope(|scope| {
            for i in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    for round in 0..5 {
                        store(path, &format!("https://{i}"), cred(&format!("k{round}"))).unwrap();
                    }
                });
            }
        });
        for i in 0..8 {
            assert_eq!(
                lookup(&path, &format!("https://{i}")).unwrap(),
                Some(cred("k4"))
            );
        }
    }

    #[test]
    fn a_malformed_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, "{").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(lookup(&path, "x").unwrap_err().starts_with("reading "));
    }
}
