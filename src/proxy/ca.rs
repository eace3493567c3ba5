//! The server's egress CA: the certificate authority the proxy signs a leaf certificate with
//! for each host whose TLS it must open to inject headers (hosts a rule matches; every other
//! connection stays spliced end to end). Sandboxes trust it; its key never enters one.
//!
//! The CA lives in the state directory (`proxy-ca.pem`, and `proxy-ca.key` with mode 0600),
//! so it outlives restarts and sandboxes need not learn a new one. Leaves are minted on
//! demand per server name (ECDSA P-256, valid 90 days, re-minted after 30) and cached.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

const CERT_FILE: &str = "proxy-ca.pem";
const KEY_FILE: &str = "proxy-ca.key";
const CA_NAME: &str = "langsmith local sandbox egress CA";
/// How long a cached leaf is used before a fresh one is minted (they are valid for 90 days).
const LEAF_REUSE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most leaves kept; past it the cache starts over (minting takes about a millisecond).
const MAX_LEAVES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the egress CA in {0} is unusable: {1} (delete both files to make a new one)")]
    Unusable(PathBuf, String),
    #[error("minting a certificate for {0}: {1}")]
    Mint(String, String),
}

pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    leaves: Mutex<HashMap<String, (Instant, Arc<CertifiedKey>)>>,
}

/// Never the key: only which CA this is.
impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(CA_NAME)
    }
}

impl Ca {
    /// The CA kept in `dir`, or a new one written there.
    pub fn load_or_create(dir: &Path) -> Result<Ca, CaError> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        let unusable = |e: String| CaError::Unusable(dir.to_path_buf(), e);
        let (cert_pem, key_pem) = match std::fs::read_to_string(&key_path) {
            Ok(key_pem) => {
                let cert_pem =
                    std::fs::read_to_string(&cert_path).map_err(|error| CaError::Io {
                        action: "reading",
                        path: cert_path.clone(),
                        error,
                    })?;
                (cert_pem, key_pem)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (cert_pem, key_pem) = generate().map_err(unusable)?;
                write_private(&key_path, &key_pem)?;
                std::fs::write(&cert_path, &cert_pem).map_err(|error| CaError::Io {
                    action: "writing",
                    path: cert_path.clone(),
                    error,
                })?;
                (cert_pem, key_pem)
            }
            Err(error) => {
                return Err(CaError::Io {
                    action: "reading",
                    path: key_path,
                    error,
                });
            }
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| unusable(e.to_string()))?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| unusable(e.to_string()))?;
        let cert_der = rustls::pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| unusable(format!("{e:?}")))?;
        Ok(Ca {
            cert_pem,
            cert_der,
            issuer,
            leaves: Mutex::default(),
        })
    }

    /// The CA certificate (PEM), what sandboxes add to their trust store.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate and key for `server_name`, signed by this CA (cached).
    pub fn leaf(&self, server_name: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let name = server_name.trim_end_matches('.').to_ascii_lowercase();
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((made, leaf)) = leaves.get(&name)
            && made.elapsed() < LEAF_REUSE
        {
            return Ok(leaf.clone());
        }
        let leaf = Arc::new(self.mint(&name)?);
        if leaves.len() >= MAX_LEAVES {
            leaves.clear();
        }
        leaves.insert(name, (Instant::now(), leaf.clone()));
        Ok(leaf)
    }

    fn mint(&self, name: &str) -> Result<CertifiedKey, CaError> {
        let failed = |e: String| CaError::Mint(name.to_string(), e);
        let mut params =
            CertificateParams::new(vec![name.to_string()]).map_err(|e| failed(e.to_string()))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(90);
        let key = KeyPair::generate().map_err(|e| failed(e.to_string()))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| failed(e.to_string()))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::ring::sign::any_supported_type(&key_der)
            .map_err(|e| failed(e.to_string()))?;
        Ok(CertifiedKey::new(
            vec![cert.der().clone(), self.cert_der.clone()],
            signer,
        ))
    }
}

/// A new CA: its certificate and key, as PEM.
fn generate() -> Result<(String, String), String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Write `text` to a new file at `path` readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), CaError> {
    let io = |action, error| CaError::Io {
        action,
        path: path.to_path_buf(),
        error,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io("creating", e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("protecting", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", e))
}

#[cfg(test)]
mod tests;
