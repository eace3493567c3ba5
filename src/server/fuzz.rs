//! Entry points of the fuzz targets in `fuzz/` (run with `scripts/fuzz.sh`): one per parser
//! of untrusted input, each handing its parser exactly what the server or the agent would.
//! Each must return for any input and never panic; a panic is the bug a fuzzer reports.
//!
//! The same entries run over the corpus kept in `fuzz/corpus/` as a unit test, so every
//! input that once found a bug stays a regression test in the ordinary suite. (The seventh
//! target, the CLI's size strings, calls `crate::text::parse_size` itself.)

use serde::de::DeserializeOwned;

use super::images::parsers;
use super::json::read_body;
use super::validate;
use crate::api::exec::{ClientMessage, ExecuteRequest, StreamResumeRequest};
use crate::api::secrets::{PutSecret, SecretUpsert};
use crate::api::service::{DownloadUrlRequest, ServiceUrlRequest};
use crate::api::{
    CaptureSnapshotRequest, CreateSandboxRequest, CreateSnapshotRequest, UpdateSandboxRequest,
};
use crate::proxy::access::AccessControl;
use crate::proxy::rules::Rules;

/// What a fuzz target calls with each input.
pub type Entry = fn(&[u8]);

/// The fuzz targets, by name: `fuzz/fuzz_targets/NAME.rs` calls the entry of the same name.
/// (The CLI's size strings have a target of their own, on `crate::text::parse_size`.)
pub const TARGETS: [(&str, Entry); 6] = [
    ("control_plane_body", control_plane_body),
    ("proxy_config", proxy_config),
    ("exec_message", exec_message),
    ("tunnel_header", tunnel_header),
    ("image_layer", image_layer),
    ("image_metadata", image_metadata),
];

/// A control-plane request body, as each endpoint reads it, then the checks of its fields
/// that need no server state.
pub fn control_plane_body(data: &[u8]) {
    fn read<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
        read_body::<T>(data).ok()
    }
    if let Some(req) = read::<CreateSandboxRequest>(data) {
        if let Some(name) = &req.name {
            let _ = validate::sandbox_name(name);
        }
        if let Some(bytes) = req.fs_capacity_bytes {
            let _ = validate::capacity("fs_capacity_bytes", bytes);
        }
        for (field, seconds) in [
            ("idle_ttl_seconds", req.idle_ttl_seconds),
            ("delete_after_stop_seconds", req.delete_after_stop_seconds),
        ] {
            if let Some(seconds) = seconds {
                let _ = validate::ttl(field, seconds);
            }
        }
        let _ = validate::proxy_config(req.proxy_config.as_ref());
    }
    if let Some(req) = read::<UpdateSandboxRequest>(data) {
        let _ = validate::proxy_config(req.proxy_config.as_ref());
    }
    if let Some(req) = read::<CreateSnapshotRequest>(data) {
        let _ = validate::snapshot_name(&req.name);
        let _ = parsers::reference(&req.docker_image);
        if let Some(tag) = &req.tag {
            let _ = validate::tag(tag);
        }
    }
    if let Some(req) = read::<CaptureSnapshotRequest>(data) {
        let _ = validate::snapshot_name(&req.name);
    }
    let _ = read::<Vec<SecretUpsert>>(data);
    let _ = read::<PutSecret>(data);
    let _ = read::<ServiceUrlRequest>(data);
    let _ = read::<DownloadUrlRequest>(data);
    let _ = read::<super::registries::RegistryRequest>(data);
}

/// A `proxy_config`: its validation, its header rules and its access control.
pub fn proxy_config(data: &[u8]) {
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = validate::proxy_config(Some(&config));
    if let Ok(rules) = Rules::from_proxy_config(Some(&config)) {
        let _ = rules.secret_names();
        for rule in &rules.rules {
            let _ = rule.destinations();
        }
    }
    let _ = AccessControl::from_proxy_config(Some(&config));
}

/// A message of the exec protocols, as the agent reads it.
pub fn exec_message(data: &[u8]) {
    let _ = serde_json::from_slice::<ClientMessage>(data);
    let _ = serde_json::from_slice::<ExecuteRequest>(data);
    let _ = serde_json::from_slice::<StreamResumeRequest>(data);
}

/// A tunnel stream's connect header.
pub fn tunnel_header(data: &[u8]) {
    if let Some(header) = data.first_chunk::<{ crate::api::tunnel::HEADER_LEN }>() {
        let _ = crate::api::tunnel::decode_header(*header);
    }
}

/// An image layer (a tar, plain or gzip by the first byte), unpacked into a scratch tree as
/// a pull would: whatever it holds stays inside the tree.
pub fn image_layer(data: &[u8]) {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch =
        std::env::temp_dir().join(format!("langsmith-fuzz-layer-{}-{run}", std::process::id()));
    let (blob, tree) = (scratch.join("layer"), scratch.join("tree"));
    let prepared = std::fs::create_dir_all(&tree).and_then(|()| std::fs::write(&blob, data));
    if prepared.is_ok() {
        let compression = if data.starts_with(&[0x1f, 0x8b]) {
            parsers::LayerCompression::Gzip
        } else {
            parsers::LayerCompression::None
        };
        let _ = parsers::apply_layer(&blob, compression, &tree);
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// An image's metadata: an OCI layout's index and manifest, an image config, a digest and
/// an image reference.
pub fn image_metadata(data: &[u8]) {
    parsers::check_metadata(data, Some("latest"));
    let _ = parsers::image_config(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parsers::BlobDigest::parse(text);
        let _ = parsers::reference(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kept input of every target returns without a panic.
    #[test]
    fn the_kept_corpus_passes_every_target() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, entry) in TARGETS {
            let dir = corpus.join(name);
            let inputs: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|f| f.unwrap().path())
                .collect();
            assert!(!inputs.is_empty(), "no corpus for {name}");
            for input in inputs {
                entry(&std::fs::read(&input).unwrap());
            }
        }
    }
}
