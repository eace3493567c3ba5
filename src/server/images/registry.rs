//! Pulling from an OCI distribution registry with `oci-client`: choose HTTP or HTTPS per
//! host, attach credentials only for the registry they belong to, resolve an index to the
//! host platform's manifest, and stream config and layer blobs into the digest cache.

use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol, current_platform_resolver};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::blobs::{self, BlobDigest};
use super::reference::{is_loopback_registry, normalise_registry_host, registry_url_host};
use super::unpack::LayerCompression;
use super::{FetchedImage, ImageError, LayerBlob, RegistryCredentials};

/// Which registry host the user's credentials belong to, and whether it asked for HTTP.
pub struct Auth<'a> {
    host: Option<String>,
    explicit_http: bool,
    credentials: Option<&'a RegistryCredentials>,
}

impl<'a> Auth<'a> {
    pub fn for_request(
        registry_url: Option<&str>,
        credentials: Option<&'a RegistryCredentials>,
    ) -> Self {
        let (host, explicit_http) = match registry_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => {
                let (host, http) = registry_url_host(url);
                (Some(host), http)
            }
            None => (None, false),
        };
        Auth {
            host,
            explicit_http,
            credentials,
        }
    }

    fn is_for(&self, registry: &str) -> bool {
        self.host.as_deref() == Some(normalise_registry_host(registry).as_str())
    }

    /// Credentials go only to the registry they were given for, never to another host the
    /// reference happens to name. Without a registry URL they apply to the reference's host.
    fn registry_auth(&self, registry: &str) -> RegistryAuth {
        match self.credentials {
            Some(c) if self.host.is_none() || self.is_for(registry) => {
                RegistryAuth::Basic(c.username.clone(), c.password.clone())
            }
            _ => RegistryAuth::Anonymous,
        }
    }

    fn protocol(&self, reference: &Reference) -> ClientProtocol {
        let registry = reference.resolve_registry();
        let plain_http = is_loopback_registry(registry)
            || (self.explicit_http && self.is_for(reference.registry()));
        if plain_http {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        }
    }
}

/// Resolve `reference` to a platform manifest and make its config and layers local.
pub async fn fetch(
    reference: &Reference,
    auth: &Auth<'_>,
    blob_cache: &Path,
) -> Result<FetchedImage, ImageError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let name = reference.whole();
    let pull_error = |e: OciDistributionError| ImageError::Pull {
        reference: name.clone(),
        message: describe(&e, reference.registry()),
    };
    let client = Client::new(ClientConfig {
        protocol: auth.protocol(reference),
        platform_resolver: Some(Box::new(current_platform_resolver)),
        ..ClientConfig::default()
    });
    let registry_auth = auth.registry_auth(reference.registry());
    let (manifest, manifest_digest) = client
        .pull_image_manifest(reference, &registry_auth)
        .await
        .map_err(pull_error)?;

    for layer in &manifest.layers {
        if LayerCompression::for_media_type(&layer.media_type).is_none() {
            return Err(ImageError::Unsupported {
                reference: name.clone(),
                message: format!(
                    "layer media type {} is not supported (gzip or uncompressed tar layers only)",
                    layer.media_type
                ),
            });
        }
    }

    let config_path = cached_blob(&client, reference, &manifest.config, blob_cache)
        .await
        .map_err(|e| with_reference(e, &name))?;
    let config = tokio::fs::read(&config_path)
        .await
        .map_err(ImageError::io(format!("reading {}", config_path.display())))?;
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        let path = cached_blob(&client, reference, layer, blob_cache)
            .await
            .map_err(|e| with_reference(e, &name))?;
        layers.push(LayerBlob {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            path,
        });
    }
    Ok(FetchedImage {
        manifest_digest,
        config,
        layers,
    })
}

/// The cache path of `descriptor`'s blob, downloading (and verifying) it if absent.
async fn cached_blob(
    client: &Client,
    reference: &Reference,
    descriptor: &OciDescriptor,
    cache: &Path,
) -> Result<std::path::PathBuf, ImageError> {
    let digest = BlobDigest::parse(&descriptor.digest)?;
    let path = digest.path_under(cache);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(path);
    }
    let max_bytes = u64::try_from(descriptor.size).unwrap_or(0);
    let stream = client
        .pull_blob_stream(reference, descriptor)
        .await
        .map_err(|e| ImageError::Pull {
            reference: String::new(),
            message: format!("blob {digest}: {}", describe(&e, reference.registry())),
        })?;
    blobs::store_stream(cache, &digest, max_bytes, stream).await
}

/// Blob errors are raised without the image name; add it so the message says what failed.
fn with_reference(error: ImageError, name: &str) -> ImageError {
    match error {
        ImageError::Pull { reference, message } if reference.is_empty() => ImageError::Pull {
            reference: name.to_string(),
            message,
        },
        other => other,
    }
}

/// Turn an `oci-client` error into a sentence a user can act on.
fn describe(error: &OciDistributionError, registry: &str) -> String {
    match error {
        OciDistributionError::RegistryError { envelope, .. } => {
            let messages: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        format!("{:?}", e.code)
                    } else {
                        e.message.clone()
                    }
                })
                .collect();
            messages.join("; ")
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => format!(
            "not authorized by {registry}; check the image name and pass registry credentials \
             (--registry-url/--registry-username/--registry-password) if it is private"
        ),
        OciDistributionError::ServerError { code, message, .. } => {
            let message = message.trim();
            if message.is_empty() {
                format!("registry answered HTTP {code}")
            } else {
                format!("registry answered HTTP {code}: {message}")
            }
        }
        OciDistributionError::RequestError(e) => {
            let mut text = format!("cannot reach registry {registry}: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
        OciDistributionError::ImageManifestNotFoundError(_) => format!(
            "no {}/{} image in the index; pick an image built for this platform",
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
        other => other.to_string(),
    }
}
