//! OpenSSH's server in the default snapshot: the finishing touches on the Debian tree before it
//! becomes the snapshot image, so `sandbox ssh-setup` works out of the box.
//!
//! Host keys are never baked into a snapshot (every sandbox of it would share them, and anyone
//! holding the image could impersonate them): the package's postinst made some, they are
//! removed, and the boot hook makes a sandbox's own on its first boot; they then live in its
//! writable layer across stop and start. The hook runs through the agent's `boot.d` (PID 1
//! runs every executable there once per boot) and returns once sshd listens, so a sandbox is
//! `ready` with sshd answering.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// `/etc/ssh/sshd_config.d/langsmith.conf`. Debian's main file includes `sshd_config.d/*.conf`
/// first, and the first value of a keyword wins, so these override it; `Subsystem sftp` stays
/// the main file's (repeating it is an error).
pub const SSHD_CONFIG: &str = "\
# Written for langsmith sandboxes.
# PAM's session modules (pam_loginuid) fail inside a container; keys are the only way in.
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
AllowAgentForwarding yes
AllowStreamLocalForwarding yes
";

/// `/etc/langsmith/boot.d/50-sshd`.
pub const BOOT_HOOK: &str = r#"#!/bin/sh
# Start OpenSSH's server on port 22 (see /etc/ssh/sshd_config.d/langsmith.conf). Host keys are
# made on this sandbox's first boot, never baked into its snapshot, and kept afterwards.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
ssh-keygen -A >&2 || exit 1
mkdir -p -m 0755 /run/sshd
rm -f /run/sshd.pid
/usr/sbin/sshd -E /var/log/sshd.log || exit 1
# sshd writes its pid file once it listens: return then (at most 5 s), so the sandbox turns
# ready with sshd answering.
i=0
while [ ! -s /run/sshd.pid ] && [ "$i" -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
"#;

/// The Debian packages OpenSSH needs (added to the default snapshot's list).
pub const PACKAGES: &str = "openssh-server,openssh-sftp-server,rsync";

/// An id of everything that makes the default Debian snapshot (`parts` are its package list
/// and suite): a cached default built by another recipe is rebuilt.
pub fn recipe_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts.iter().chain([&SSHD_CONFIG, &BOOT_HOOK]) {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("debian-{}", &hex::encode(hash.finalize())[..16])
}

/// Remove the host keys, write the config and the boot hook, prepare `/root/.ssh`.
pub async fn finish_tree(tree: &Path) -> Result<(), String> {
    let tree = tree.to_path_buf();
    tokio::task::spawn_blocking(move || finish_tree_blocking(&tree))
        .await
        .map_err(|e| e.to_string())?
}

fn finish_tree_blocking(tree: &Path) -> Result<(), String> {
    let step =
        |what: &str, e: std::io::Error| format!("preparing sshd in the snapshot: {what}: {e}");
    let etc_ssh = tree.join("etc/ssh");
    for entry in std::fs::read_dir(&etc_ssh).map_err(|e| step("listing /etc/ssh", e))? {
        let entry = entry.map_err(|e| step("listing /etc/ssh", e))?;
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(entry.path()).map_err(|e| step("removing a host key", e))?;
        }
    }
    let conf_dir = etc_ssh.join("sshd_config.d");
    std::fs::create_dir_all(&conf_dir).map_err(|e| step("sshd_config.d", e))?;
    std::fs::write(conf_dir.join("langsmith.conf"), SSHD_CONFIG)
        .map_err(|e| step("langsmith.conf", e))?;
    let root_ssh = tree.join("root/.ssh");
    std::fs::create_dir_all(&root_ssh).map_err(|e| step("/root/.ssh", e))?;
    std::fs::set_permissions(&root_ssh, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| step("/root/.ssh", e))?;
    let boot_d = tree.join("etc/langsmith/boot.d");
    std::fs::create_dir_all(&boot_d).map_err(|e| step("boot.d", e))?;
    let hook = boot_d.join("50-sshd");
    std::fs::write(&hook, BOOT_HOOK).map_err(|e| step("the boot hook", e))?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| step("the boot hook", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_id_follows_its_parts() {
        assert_eq!(recipe_id(&["a", "b"]), recipe_id(&["a", "b"]));
        assert_ne!(recipe_id(&["a", "b"]), recipe_id(&["a", "c"]));
        assert_ne!(recipe_id(&["ab"]), recipe_id(&["a", "b"]));
    }

    #[test]
    fn finishing_removes_host_keys_and_adds_config_hook_and_root_ssh() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path();
        std::fs::create_dir_all(tree.join("etc/ssh")).unwrap();
        for f in [
            "ssh_host_ed25519_key",
            "ssh_host_ed25519_key.pub",
            "sshd_config",
        ] {
            std::fs::write(tree.join("etc/ssh").join(f), "x").unwrap();
        }
        finish_tree_blocking(tree).unwrap();
        let left: Vec<String> = std::fs::read_dir(tree.join("etc/ssh"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(left, ["sshd_config", "sshd_config.d"]);
        let mode = |p: &str| {
            std::fs::metadata(tree.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("root/.ssh"), 0o700);
        assert_eq!(mode("etc/langsmith/boot.d/50-sshd"), 0o755);
        let conf =
            std::fs::read_to_string(tree.join("etc/ssh/sshd_config.d/langsmith.conf")).unwrap();
        assert!(
            conf.contains("UsePAM no") && !conf.contains("Subsystem"),
            "{conf}"
        );
    }
}
