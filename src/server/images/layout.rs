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
            message: format!("reader task failed: {e}"),
        })?
}

fn fetch_blocking(dir: &Path, tag: Option<&str>) -> Result<FetchedImage, ImageError> {
    let fail = |message: String| ImageError::Layout {
        path: dir.to_path_buf(),
        message,
    };
    let index_path = dir.join("index.json");
    let index_bytes = std::fs::read(&index_path).map_err(|e| {
        fail(format!(
            "cannot read index.json ({e}); is this an OCI image layout directory?"
        ))
    })?;
    let index: Index = serde_json::from_slice(&index_bytes)
        .map_err(|e| fail(format!("index.json is not a valid OCI index: {e}")))?;
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
            return Err(fail(format!(
                "layer media type {} is not supported (gzip or uncompressed tar layers only)",
                layer.media_type
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

fn select_by_tag<'i>(index: &'i Index, tag: Option<&str>) -> Result<&'i Descriptor, String> {
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
            .ok_or_else(|| format!("no image tagged {tag:?} (tags: {})", tags())),
        None => match index.manifests.as_slice() {
            [only] => Ok(only),
            [] => Err("the layout holds no images".to_string()),
            _ => Err(format!(
                "the layout holds several images; name one with oci:DIR:TAG (tags: {})",
                tags()
            )),
        },
    }
}

/// The manifest for this host in a multi-platform index.
fn select_platform(index: &Index) -> Result<&Descriptor, String> {
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
        .ok_or_else(|| format!("no linux/{arch} image in the index"))
}

fn read_json<T: serde::de::DeserializeOwned>(blobs_root: &Path, digest: &str) -> Result<T, String> {
    let digest = BlobDigest::parse(digest).map_err(|e| e.to_string())?;
    let path = digest.path_under(blobs_root);
    blobs::verify_file(&path, &digest).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&path).map_err(|e| format!("reading blob {digest}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("blob {digest} is not valid JSON: {e}"))
}
