//! Images: turn an image reference into a snapshot — pull from an OCI registry (or read a
//! local OCI layout), apply its layers with whiteouts, and write a sparse ext4 image.
//!
//! This module owns the public entry points and the error type; the steps live in
//! `reference` (what to fetch), `registry` / `layout` (fetching blobs), `blobs` (digests and
//! the blob cache), `config` (the image config), `unpack` (layers → tree) and `ext4` (tree →
//! filesystem image).

mod blobs;
mod config;
mod ext4;
mod layout;
mod reference;
mod registry;
mod unpack;

use std::path::{Path, PathBuf};

/// The parsers of untrusted image data, for the fuzz targets (`server::fuzz`).
pub(super) mod parsers {
    pub use super::blobs::BlobDigest;
    pub use super::config::parse as image_config;
    pub use super::layout::check_metadata;
    pub use super::reference::parse as reference;
    pub use super::unpack::{LayerCompression, apply_layer};
}

pub use config::ImageConfig;
pub use ext4::make_ext4;
pub use layout::LayoutError;
pub use reference::ImageSource;
pub use unpack::LayerError;

/// Username and password for a private registry (basic auth, or exchanged for a bearer token
/// when the registry asks for one).
#[derive(Clone)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    // Never print the password, not even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Everything needed to build one snapshot image.
#[derive(Debug)]
pub struct BuildRequest<'a> {
    /// `python:3.12-slim`, `host:port/repo:tag`, `host/repo@sha256:…` or `oci:/path[:tag]`.
    pub reference: &'a str,
    /// The registry the credentials belong to, e.g. `https://registry.example.com`. The
    /// credentials are only ever sent to this host.
    pub registry_url: Option<&'a str>,
    pub credentials: Option<&'a RegistryCredentials>,
    /// Blobs are cached here by digest (`sha256/<hex>`), verified on download.
    pub blob_cache: &'a Path,
    /// Scratch space for this build (the unpacked tree); the caller removes it.
    pub work_dir: &'a Path,
    pub capacity_bytes: u64,
    /// The ext4 image file to create.
    pub output: &'a Path,
}

/// The result of a successful build.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Digest of the image manifest that was unpacked (the platform manifest when the
    /// reference named an index).
    pub digest: String,
    pub config: ImageConfig,
    /// Bytes allocated inside the filesystem (data + metadata + journal), from `dumpe2fs -h`.
    pub used_bytes: u64,
}

/// Why a build failed; `Display` is the message shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("pulling {reference}: {message}")]
    Pull { reference: String, message: String },
    #[error("reading OCI layout {path}: {source}")]
    Layout {
        path: PathBuf,
        #[source]
        source: layout::LayoutError,
    },
    #[error("{reference}: {message}")]
    Unsupported { reference: String, message: String },
    #[error("blob {digest} is corrupt: expected {digest}, got {actual}; pull again")]
    DigestMismatch { digest: String, actual: String },
    #[error("invalid image config: {0}")]
    Config(String),
    #[error("applying layer {digest}: {source}")]
    Layer {
        digest: String,
        #[source]
        source: unpack::LayerError,
    },
    #[error(
        "image needs {needed_mib} MiB but the capacity is {capacity_mib} MiB; \
         build with a larger --capacity"
    )]
    CapacityTooSmall { needed_mib: u64, capacity_mib: u64 },
    #[error("creating the ext4 image failed: {0}")]
    Mkfs(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}

/// Check a reference without fetching anything (e.g. to reject a bad request at once).
pub fn parse_reference(reference: &str) -> Result<ImageSource, ImageError> {
    reference::parse(reference)
}

/// Pull (or read) the image, unpack it into `work_dir`, and write the ext4 snapshot image.
pub async fn build_snapshot_image(req: &BuildRequest<'_>) -> Result<BuiltImage, ImageError> {
    let fetched = match parse_reference(req.reference)? {
        ImageSource::Registry(reference) => {
            let auth = registry::Auth::for_request(req.registry_url, req.credentials);
            registry::fetch(&reference, &auth, req.blob_cache).await?
        }
        ImageSource::Layout { dir, tag } => layout::fetch(&dir, tag.as_deref()).await?,
    };
    let config = config::parse(&fetched.config)?;

    let tree = req.work_dir.join("rootfs");
    let layers = fetched.layers.clone();
    let tree_for_unpack = tree.clone();
    tokio::task::spawn_blocking(move || unpack::apply_layers(&layers, &tree_for_unpack))
        .await
        .map_err(|e| ImageError::Layer {
            digest: "(all)".into(),
            source: unpack::LayerError::Interrupted(e.to_string()),
        })??;

    let used_bytes = make_ext4(&tree, req.capacity_bytes, req.output).await?;
    Ok(BuiltImage {
        digest: fetched.manifest_digest,
        config,
        used_bytes,
    })
}

/// One layer blob on local disk, ready to unpack.
#[derive(Debug, Clone)]
pub(crate) struct LayerBlob {
    pub digest: String,
    pub media_type: String,
    pub path: PathBuf,
}

/// What the fetch step hands to the unpack step.
#[derive(Debug)]
pub(crate) struct FetchedImage {
    pub manifest_digest: String,
    /// Raw bytes of the config blob (JSON), already digest-verified.
    pub config: Vec<u8>,
    pub layers: Vec<LayerBlob>,
}
