//! Images: turn an image reference into a snapshot — pull from an OCI registry (or read a
//! local OCI layout), apply its layers with whiteouts, and write a sparse ext4 image.

// ---- Temporary interface stubs (replaced by the images implementation) ----
use std::path::Path;

pub struct RegistryCredentials {
    pub username: String,
    pub password: String,
}
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}
pub struct BuildRequest<'a> {
    pub reference: &'a str,
    pub registry_url: Option<&'a str>,
    pub credentials: Option<&'a RegistryCredentials>,
    pub blob_cache: &'a Path,
    pub work_dir: &'a Path,
    pub capacity_bytes: u64,
    pub output: &'a Path,
}
pub struct BuiltImage {
    pub digest: String,
    pub config: ImageConfig,
    pub used_bytes: u64,
}
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(pub String);
pub async fn build_snapshot_image(req: &BuildRequest<'_>) -> Result<BuiltImage, ImageError> {
    Err(ImageError(format!("not implemented: {}", req.reference)))
}
