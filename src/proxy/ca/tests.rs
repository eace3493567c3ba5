use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert};

use super::*;

/// Serves whatever leaf the CA mints for the client's SNI.
#[derive(Debug)]
struct Minting(Arc<Ca>);

impl ResolvesServerCert for Minting {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.leaf(hello.server_name()?).ok()
    }
}

/// A TLS handshake in memory between a client trusting `roots` and a server minting from
/// `ca`; whether it completed.
fn handshake(ca: Arc<Ca>, roots: rustls::RootCertStore, name: &str) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Minting(ca)));
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut server = rustls::ServerConnection::new(Arc::new(server)).unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
    for _ in 0..10 {
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        server.read_tls(&mut &bytes[..]).unwrap();
        if server.process_new_packets().is_err() {
            return false;
        }
        let mut bytes = Vec::new();
        server.write_tls(&mut bytes).unwrap();
        client.read_tls(&mut &bytes[..]).unwrap();
        if client.process_new_packets().is_err() {
            return false;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return true;
        }
    }
    false
}

fn roots_of(ca: &Ca) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der.clone()).unwrap();
    roots
}

#[test]
fn leaves_for_any_name_verify_against_the_ca_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    let roots = roots_of(&ca);
    let ca = Arc::new(ca);
    assert!(handshake(ca.clone(), roots.clone(), "api.example.com"));
    assert!(handshake(ca.clone(), roots, "a.b.example.org"));
    // A client that trusts another CA refuses these leaves.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Ca::load_or_create(other_dir.path()).unwrap();
    assert!(!handshake(ca.clone(), roots_of(&other), "api.example.com"));
    // Leaves are cached per name.
    let a = ca.leaf("API.example.com.").unwrap();
    let b = ca.leaf("api.example.com").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &ca.leaf("other.example.com").unwrap()));
}

#[test]
fn the_ca_is_kept_and_its_key_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let first = Ca::load_or_create(dir.path()).unwrap();
    let again = Ca::load_or_create(dir.path()).unwrap();
    assert_eq!(first.cert_pem(), again.cert_pem());
    assert!(first.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let key = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap();
    assert_eq!(key.mode() & 0o777, 0o600);
    // The same CA signs after a restart: a leaf of the reloaded CA verifies with the first.
    assert!(handshake(
        Arc::new(again),
        roots_of(&first),
        "api.example.com"
    ));
    std::fs::write(dir.path().join(CERT_FILE), "garbage").unwrap();
    assert!(matches!(
        Ca::load_or_create(dir.path()),
        Err(CaError::Unusable(..))
    ));
}
