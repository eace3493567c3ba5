//! The local half of `sandbox ssh-setup`: choosing the public key, and the OpenSSH client
//! files under `~/.ssh` (`known_hosts_sandboxes`, `config`), created `0700`/`0600` when missing
//! and rewritten in place otherwise. The text of those files is `text::ssh_config`'s.
//!
//! The `ProxyCommand` names how to reach the endpoint but never its key: for a remote endpoint
//! the key (and workspace) is kept in the CLI's credentials file, where the tunnel finds it at
//! ssh time; the local backend needs none (the tunnel reads the backend's own key file), only
//! `LANGSMITH_STATE_DIR` when it was moved. The ProxyCommand runs this very binary (absolute
//! path) so an ssh started from an environment with another `langsmith` on `PATH`, or none,
//! still works.
//!
//! These run on the script thread, so plain `std::fs` is fine here.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Engine, Map};

use super::bridge::{Bridge, ScriptResult, user_error};
use crate::client::credentials::{self, Credential};
use crate::client::{ClientError, Resolved};
use crate::paths;
use crate::text::ssh_config::{self, Outcome, TunnelTarget};

/// `~/.ssh` (of `$HOME`, as the LangSmith CLI reads it).
fn ssh_dir() -> Result<PathBuf, String> {
    dirs::home_dir()
        .map(|home| home.join(".ssh"))
        .ok_or_else(|| "no home directory".to_string())
}

/// The public key to upload: `identity` when given, else the first of the usual ones.
fn choose_public_key(identity: &str) -> Result<PathBuf, String> {
    if !identity.is_empty() {
        let path = PathBuf::from(identity);
        return if path.exists() {
            Ok(path)
        } else {
            Err(format!("public key not found: {identity}"))
        };
    }
    let dir = ssh_dir()?;
    let tried: Vec<PathBuf> = ["id_ed25519.pub", "id_rsa.pub", "id_ecdsa.pub"]
        .iter()
        .map(|name| dir.join(name))
        .collect();
    if let Some(found) = tried.iter().find(|p| p.exists()) {
        return Ok(found.clone());
    }
    let names: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "no SSH public key found (tried {}); use --identity to specify one",
        names.join(", ")
    ))
}

/// `#{path, key}`: the chosen public key and its trimmed text.
fn public_key(identity: &str) -> Result<Map, String> {
    let path = choose_public_key(identity)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading public key {}: {e}", path.display()))?;
    let mut map = Map::new();
    map.insert("path".into(), path.display().to_string().into());
    map.insert("key".into(), text.trim().to_string().into());
    Ok(map)
}

/// Replace `path` with `text`: created `0600` (with its directory `0700`) when missing; an
/// existing file keeps its mode.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// A file's text; a missing file is empty.
fn read_or_empty(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

/// Upsert `sandbox-<name> <host_key>` in `~/.ssh/known_hosts_sandboxes`.
fn known_host_upsert(name: &str, host_key: &str) -> Result<(), String> {
    ssh_config::check_alias_name(name)?;
    let host_key = ssh_config::parse_host_key(host_key)?;
    let path = ssh_dir()?.join("known_hosts_sandboxes");
    let text = read_or_empty(&path).map_err(|e| e.to_string())?;
    let alias = ssh_config::alias(name);
    write_private(
        &path,
        &ssh_config::upsert_known_host(&text, &alias, &host_key),
    )
    .map_err(|e| e.to_string())
}

/// Where the ProxyCommand's tunnel will find the endpoint; a remote endpoint's key is kept
/// in the credentials file for it.
fn tunnel_target(bridge: &Bridge) -> Result<TunnelTarget, String> {
    match bridge
        .inputs()
        .resolve()
        .map_err(|e: ClientError| e.to_string())?
    {
        Resolved::Remote(endpoint) => {
            let path = paths::credentials_file()
                .ok_or_else(|| "no config directory for the credentials file".to_string())?;
            let kept = Credential {
                api_key: endpoint.api_key.clone(),
                workspace_id: endpoint.workspace_id.clone(),
            };
            credentials::store(&path, &endpoint.base, kept)
                .map_err(|e| format!("keeping the API key: {e}"))?;
            Ok(TunnelTarget::Remote {
                api_url: endpoint.base,
            })
        }
        Resolved::Local { .. } => {
            let state_dir = std::env::var_os(paths::STATE_DIR_VAR)
                .filter(|d| !d.is_empty())
                .map(|d| std::path::absolute(PathBuf::from(d)))
                .transpose()
                .map_err(|e| e.to_string())?;
            Ok(TunnelTarget::Local {
                state_dir: state_dir.map(|d| d.display().to_string()),
            })
        }
    }
}

/// Write the `Host sandbox-<name>` block into `~/.ssh/config`: `#{outcome, path}` with
/// `outcome` one of `wrote`, `updated`, `unchanged`.
fn config_upsert(bridge: &Bridge, name: &str) -> Result<Map, String> {
    ssh_config::check_alias_name(name)?;
    let dir = ssh_dir()?;
    let target = tunnel_target(bridge)?;
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let command = ssh_config::proxy_command(&exe.display().to_string(), name, &target);
    let known = dir.join("known_hosts_sandboxes");
    let block = ssh_config::render_block(name, &command, &known.display().to_string());
    let path = dir.join("config");
    let text = read_or_empty(&path).map_err(|e| e.to_string())?;
    let (text, outcome) = ssh_config::upsert_block(&text, &ssh_config::alias(name), &block);
    if outcome != Outcome::Unchanged {
        write_private(&path, &text).map_err(|e| e.to_string())?;
    }
    let mut map = Map::new();
    let outcome = match outcome {
        Outcome::Wrote => "wrote",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
    };
    map.insert("outcome".into(), outcome.into());
    map.insert("path".into(), path.display().to_string().into());
    Ok(map)
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    engine.register_fn("ssh_alias", |name: &str| -> ScriptResult<String> {
        ssh_config::check_alias_name(name).map_err(user_error)?;
        Ok(ssh_config::alias(name))
    });
    engine.register_fn("ssh_public_key", |identity: &str| -> ScriptResult<Map> {
        public_key(identity).map_err(user_error)
    });
    engine.register_fn(
        "ssh_known_host_upsert",
        |name: &str, host_key: &str| -> ScriptResult<()> {
            known_host_upsert(name, host_key).map_err(user_error)
        },
    );
    let b = bridge.clone();
    engine.register_fn(
        "ssh_config_upsert",
        move |name: &str| -> ScriptResult<Map> { config_upsert(&b, name).map_err(user_error) },
    );
}
