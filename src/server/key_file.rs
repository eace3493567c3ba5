//! The generated API key's file, `STATE/api-key`: readable by the server's user only.
//!
//! A key file found with group or other permission bits is narrowed to 0600 with a
//! warning (the key may have been read meanwhile: rotate it by deleting the file); one
//! owned by another user is refused, since that user could have chosen or read the key.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// The key in `path`, or a new one written there (mode 0600) when the file is missing or
/// empty.
/// Any other failure to read an existing file is an error: replacing a key that could not be
/// read would lock out every client that holds it.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    match File::open(path) {
        Ok(mut file) => {
            check(&file, path)?;
            let mut existing = String::new();
            file.read_to_string(&mut existing)
                .with_context(|| format!("reading the API key file {}", path.display()))?;
            if !existing.trim().is_empty() {
                return Ok(existing.trim().to_string());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("opening the API key file {}", path.display()));
        }
    }
    let mut bytes = [0u8; 24];
    getrandom_fill(&mut bytes)?;
    let key = format!("lsv2_local_{}", hex::encode(bytes));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(key.as_bytes())?;
    f.sync_all()?;
    Ok(key)
}

/// Refuse a key file of another owner; narrow a loose mode to 0600 (on the open file, so
/// the file checked is the file read).
fn check(file: &File, path: &Path) -> anyhow::Result<()> {
    let meta = file
        .metadata()
        .with_context(|| format!("reading the attributes of {}", path.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "the API key file {} belongs to uid {}, not to the server's user (uid {me}): \
             another user could know the key; remove the file (a new key is generated) or \
             make it the server user's",
            path.display(),
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "the API key file {} had mode {mode:04o}, readable by others; narrowed to 0600 \
             (delete it to generate a new key if others may have read it)",
            path.display()
        );
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("narrowing the mode of {}", path.display()))?;
    }
    Ok(())
}

/// The 32 random bytes in `path` (what a key file called `what` holds), or new ones written
/// there (mode 0600) when it does not exist. A file another user owns, or others may read,
/// is refused: whoever read it holds the key.
pub fn load_or_create_bytes(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    match File::open(path) {
        Ok(mut file) => {
            let meta = file.metadata()?;
            if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
                bail!(
                    "the {what} {} must belong to the server's user with mode 0600 (anyone \
                     who read it holds the key)",
                    path.display()
                );
            }
            let mut key = [0u8; 32];
            file.read_exact(&mut key)
                .with_context(|| format!("reading the {what} {}", path.display()))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom_fill(&mut key)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("writing {}", path.display()))?;
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
    }
}

fn getrandom_fill(buf: &mut [u8]) -> anyhow::Result<()> {
    let mut f = File::open("/dev/urandom").context("opening /dev/urandom")?;
    f.read_exact(buf).context("reading /dev/urandom")?;
    if buf.iter().all(|b| *b == 0) {
        bail!("/dev/urandom returned only zeros");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn a_new_key_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-key");
        let key = load_or_create(&path).unwrap();
        assert!(key.starts_with("lsv2_local_"), "{key}");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_or_create(&path).unwrap(), key);
    }

    #[test]
    fn a_loose_mode_is_narrowed_and_the_key_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-key");
        std::fs::write(&path, "lsv2_local_existing\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), "lsv2_local_existing");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn an_unreadable_key_is_an_error_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-key");
        std::fs::write(&path, b"lsv2_\xff\xfe").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = load_or_create(&path).unwrap_err();
        assert!(
            format!("{error:#}").contains("reading the API key file"),
            "{error:#}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"lsv2_\xff\xfe");
    }

    #[test]
    fn a_key_file_of_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-key");
        std::fs::write(&path, "lsv2_local_theirs\n").unwrap();
        let other = nix::unistd::geteuid().as_raw() + 4242;
        if std::os::unix::fs::chown(&path, Some(other), None).is_err() {
            // Giving a file away needs root; elsewhere the refusal cannot be set up.
            return;
        }
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("belongs to uid"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "lsv2_local_theirs\n"
        );
    }
}
