//! Local OCI image layouts (`oci:DIR[:TAG]`): find the manifest in `index.json` by its
//! `org.opencontainers.image.ref.name` annotation, descend through a nested index to the
//! host platform, and hand back verified blobs straight from `DIR/blobs/sha256/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::blobs::{self, BlobDigest};
use super::unpack::LayerCompression;
use super::{FetchedImage, ImageError, LayerBlob};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// What is wrong with a layout directory or the image it should hold.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read index.json ({0}); is this an OCI image layout directory?")]
    NoIndex(#[source] std::io::Error),
    #[error("index.json is not a valid OCI index: {0}")]
    BadIndex(#[source] serde_json::Error),
    #[error("no image tagged {tag:?} (tags: {tags})")]
    NoSuchTag { tag: String, tags: String },
    #[error("the layout holds no images")]
    Empty,
    #[error("the layout holds several images; name one with oci:DIR:TAG (tags: {0})")]
    Ambiguous(String),
    #[error("no linux/{0} image in the index")]
    NoPlatform(&'static str),
    #[error("layer media type {0} is not supported (gzip or uncompressed tar layers only)")]
    UnsupportedLayer(String),
    #[error("reading blob {digest}: {source}")]
    UnreadableBlob {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} is not valid JSON: {source}")]
    BadJson {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    /// An index or manifest blob is missing, corrupt or named by an unsupported digest.
    #[error("{0}")]
    Blob(#[source] Box<ImageError>),
    #[error("reader task failed: {0}")]
    Interrupted(String),
}

#[derive(Debug, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Read the image tagged `tag` (or the only image) from the layout at `dir`.
pub async fn fetch(dir: &Path, tag: Option<&str>) -> Result<FetchedImage, ImageError> {
    let dir = dir.to_path_buf();
    let tag = tag.map(str::to_string);
    tokio::task::spawn_blocking(move || fetch_blocking(&dir, tag.as_deref()))
        .await
        .map_err(|e| ImageError::Layout {
            path: PathBuf::new(),
            source: LayoutError::Interrupted(e.to_string()),
        })?
}

fn fetch_blocking(dir: &Path, tag: Option<&str>) -> Result<FetchedImage, ImageError> {
    let fail = |source: LayoutError| ImageError::Layout {
        path: dir.to_path_buf(),
        source,
    };
    let index_path = dir.join("index.json");
    let index_bytes = std::fs::read(&index_path).map_err(|e| fail(LayoutError::NoIndex(e)))?;
    let index: Index =
        serde_json::from_slice(&index_bytes).map_err(|e| fail(LayoutError::BadIndex(e)))?;
    let mut chosen = select_by_tag(&index, tag).map_err(&fail)?.clone();

    let blobs_root = dir.join("blobs");
    while INDEX_TYPES.contains(&chosen.media_type.as_str()) {
        let nested: Index = read_json(&blobs_root, &chosen.digest).map_err(&fail)?;
        chosen = select_platform(&nested).map_err(&fail)?.clone();
    }

    let manifest: Manifest = read_json(&blobs_root, &chosen.digest).map_err(&fail)?;
    let config_digest = BlobDigest::parse(&manifest.config.digest)?;
    let config_path = config_digest.path_under(&blobs_root);
    blobs::verify_file(&config_path, &config_digest)?;
    let config = std::fs::read(&config_path)
        .map_err(ImageError::io(format!("reading {}", config_path.display())))?;

    let mut layers = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        if LayerCompression::for_media_type(&layer.media_type).is_none() {
            return Err(fail(LayoutError::UnsupportedLayer(
                layer.media_type.clone(),
            )));
        }
        let digest = BlobDigest::parse(&layer.digest)?;
        let path = digest.path_under(&blobs_root);
        blobs::verify_file(&path, &digest)?;
        layers.push(LayerBlob {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            path,
        });
    }
    Ok(FetchedImage {
        manifest_digest: chosen.digest.clone(),
        config,
        layers,
    })
}

/// Read `bytes` as an image index and a manifest, and choose from the index as a pull of
/// `tag` would: the layout's parsers on untrusted input, for the fuzz targets.
pub fn check_metadata(bytes: &[u8], tag: Option<&str>) {
    if let Ok(index) = serde_json::from_slice::<Index>(bytes) {
        let _ = select_by_tag(&index, tag);
        let _ = select_platform(&index);
    }
    let _ = serde_json::from_slice::<Manifest>(bytes);
}

fn select_by_tag<'i>(index: &'i Index, tag: Option<&str>) -> Result<&'i Descriptor, LayoutError> {
    let tags = || {
        let names: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    match tag {
        Some(tag) => index
            .manifests
            .iter()
            .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
            .ok_or_else(|| LayoutError::NoSuchTag {
                tag: tag.to_string(),
                tags: tags(),
            }),
        None => match index.manifests.as_slice() {
            [only] => Ok(only),
            [] => Err(LayoutError::Empty),
            _ => Err(LayoutError::Ambiguous(tags())),
        },
    }
}

/// The manifest for this host in a multi-platform index.
fn select_platform(index: &Index) -> Result<&Descriptor, LayoutError> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    index
        .manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .ok_or(LayoutError::NoPlatform(arch))
}

fn read_json<T: serde::de::DeserializeOwned>(
    blobs_root: &Path,
    digest: &str,
) -> Result<T, LayoutError> {
    let blob = |e: ImageError| LayoutError::Blob(Box::new(e));
    let digest = BlobDigest::parse(digest).map_err(blob)?;
    let path = digest.path_under(blobs_root);
    blobs::verify_file(&path, &digest).map_err(blob)?;
    let bytes = std::fs::read(&path).map_err(|source| LayoutError::UnreadableBlob {
        digest: digest.to_string(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| LayoutError::BadJson {
        digest: digest.to_string(),
        source,
    })
}
