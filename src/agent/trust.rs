//! The server's egress CA in the sandbox's trust store, added by PID 1 at every boot before
//! the boot hooks run: appended to each system CA bundle the image has (once), and
//! `api::trust::TRUST_STORE` made when the image has none by that name (the system bundle
//! plus the CA, so tools pointed at it by `SSL_CERT_FILE` and friends still trust what the
//! image trusts). The CA's certificate is mounted read-only at `api::trust::EGRESS_CA`, in
//! Debian's directory of local CAs, so `update-ca-certificates` keeps it too.
//!
//! This runs inside the sandbox, on the sandbox's own files; a failure is reported on the
//! agent's log and never stops the boot.

use super::log::agent_log;
use std::path::Path;

use crate::api::trust::{EGRESS_CA, SYSTEM_BUNDLES, TRUST_STORE};

pub fn install() {
    if let Err(e) = try_install(Path::new("/")) {
        agent_log!("adding the egress CA to the trust store: {e}");
    }
}

/// [`install`] under `root` (the sandbox's `/`; a directory in tests).
fn try_install(root: &Path) -> std::io::Result<()> {
    let inside = |path: &str| root.join(path.trim_start_matches('/'));
    let ca = match std::fs::read_to_string(inside(EGRESS_CA)) {
        Ok(ca) => format!("{}\n", ca.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut system = None;
    for bundle in SYSTEM_BUNDLES.iter().map(|b| inside(b)) {
        if !std::fs::metadata(&bundle).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut text = std::fs::read_to_string(&bundle)?;
        if !text.contains(ca.trim()) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&ca);
            std::fs::write(&bundle, &text)?;
        }
        system.get_or_insert(text);
    }
    let store = inside(TRUST_STORE);
    if std::fs::metadata(&store).is_err() {
        if let Some(dir) = store.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&store, system.unwrap_or(ca))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nEGRESS\n-----END CERTIFICATE-----\n";

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    fn read(root: &Path, path: &str) -> String {
        std::fs::read_to_string(root.join(path.trim_start_matches('/'))).unwrap()
    }

    #[test]
    fn the_ca_joins_each_bundle_once() {
        let system = "-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----";
        let root = root_with(&[(EGRESS_CA, CA), (TRUST_STORE, system)]);
        try_install(root.path()).unwrap();
        try_install(root.path()).unwrap();
        let store = read(root.path(), TRUST_STORE);
        assert!(store.starts_with(system), "{store}");
        assert_eq!(store.matches("EGRESS").count(), 1, "{store}");
    }

    #[test]
    fn an_image_with_another_bundle_gets_the_store_too() {
        let system = "-----BEGIN CERTIFICATE-----\nFEDORA\n-----END CERTIFICATE-----\n";
        let fedora = "/etc/pki/tls/certs/ca-bundle.crt";
        let root = root_with(&[(EGRESS_CA, CA), (fedora, system)]);
        try_install(root.path()).unwrap();
        for path in [fedora, TRUST_STORE] {
            let text = read(root.path(), path);
            assert!(
                text.contains("FEDORA") && text.contains("EGRESS"),
                "{path}: {text}"
            );
        }
        // No bundle at all: the store holds the CA alone; no CA mounted: nothing changes.
        let bare = root_with(&[(EGRESS_CA, CA)]);
        try_install(bare.path()).unwrap();
        assert_eq!(read(bare.path(), TRUST_STORE), CA);
        let untouched = root_with(&[(TRUST_STORE, system)]);
        try_install(untouched.path()).unwrap();
        assert_eq!(read(untouched.path(), TRUST_STORE), system);
    }
}
