//! The two TLS ends of an opened connection: the server end the sandbox talks to (a leaf the
//! egress CA minted for the name it asked for) and the client end towards the real host,
//! which must prove itself against the host's trust store plus the operator's
//! `--upstream-ca` certificates, exactly as if the sandbox had connected itself.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::ca::Ca;

pub const H2: &[u8] = b"h2";
pub const HTTP11: &[u8] = b"http/1.1";

/// The TLS settings of interception, made once per server.
pub struct TlsConfigs {
    /// What the sandbox's side is served with: ALPN `h2` and `http/1.1`.
    pub server: Arc<ServerConfig>,
    /// Towards the real host for a sandbox that speaks HTTP/2: offers `h2` and `http/1.1`.
    pub client_h2: Arc<ClientConfig>,
    /// Towards the real host for a sandbox that speaks HTTP/1.1 (whose upgrades, such as
    /// WebSocket, need HTTP/1.1 on both sides): offers `http/1.1` only.
    pub client_http11: Arc<ClientConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("reading --upstream-ca {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("--upstream-ca {0} holds no PEM certificate")]
    NoCertificate(String),
    #[error("--upstream-ca {path}: {error}")]
    Invalid { path: String, error: String },
}

impl TlsConfigs {
    /// The configurations for `ca`, trusting the host's store and the PEM files in
    /// `upstream_cas`.
    pub fn new(
        ca: Arc<Ca>,
        upstream_cas: &[impl AsRef<Path>],
    ) -> Result<TlsConfigs, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(MintedLeaves(ca)));
        server.alpn_protocols = vec![H2.to_vec(), HTTP11.to_vec()];
        let roots = roots(upstream_cas)?;
        let client = |alpn: Vec<Vec<u8>>| {
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = alpn;
            Arc::new(config)
        };
        Ok(TlsConfigs {
            server: Arc::new(server),
            client_h2: client(vec![H2.to_vec(), HTTP11.to_vec()]),
            client_http11: client(vec![HTTP11.to_vec()]),
        })
    }
}

/// The host's trust store (unreadable entries are skipped: a store with a bad certificate
/// still holds the good ones) and every certificate of the `--upstream-ca` files.
fn roots(upstream_cas: &[impl AsRef<Path>]) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!("host trust store: {error}");
    }
    roots.add_parsable_certificates(native.certs);
    for path in upstream_cas {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|error| TlsSetupError::Read {
            path: shown.clone(),
            error,
        })?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::Invalid {
                path: shown.clone(),
                error: format!("{e:?}"),
            })?;
        if certs.is_empty() {
            return Err(TlsSetupError::NoCertificate(shown));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsSetupError::Invalid {
                path: shown.clone(),
                error: e.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        // Opened connections will fail to verify any host, each saying so in the egress log.
        tracing::warn!(
            "no trusted certificates: the host's trust store is empty and no --upstream-ca was given"
        );
    }
    Ok(roots)
}

/// Serves each handshake a leaf for the server name the sandbox asked for. The connection
/// has already checked that name is the one its DNS lookup returned.
#[derive(Debug)]
struct MintedLeaves(Arc<Ca>);

impl ResolvesServerCert for MintedLeaves {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        match self.0.leaf(name) {
            Ok(leaf) => Some(leaf),
            Err(e) => {
                tracing::warn!("egress CA: {e}");
                None
            }
        }
    }
}
