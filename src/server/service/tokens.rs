//! Signed claims: the tokens of service URLs and download links.
//!
//! A token is `<claims>.<mac>`, both base64url without padding: the claims are a compact JSON
//! document, the MAC is HMAC-SHA256 over the encoded claims with the server's service key
//! (`STATE/service-key`, 32 random bytes, mode 0600). The key lives in the state directory, so
//! links survive a restart of the server; deleting the file revokes every link at once.
//!
//! A token names what it opens (a sandbox and a port, or a sandbox and a file) and is checked
//! against the origin it arrives on: a token of one sandbox or port opens nothing else.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum Grant {
    /// A service URL: HTTP and WebSockets to one port of one sandbox.
    Svc {
        sid: String,
        port: u16,
        /// Origins allowed to frame the service (`frame-ancestors`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        eo: Vec<String>,
    },
    /// A download link: one file of one sandbox, served with pinned headers.
    Dl {
        sid: String,
        path: String,
        /// Content-Type to answer with; `None`: guessed from the extension.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ct: Option<String>,
        /// Content-Disposition to answer with.
        cd: String,
        /// Content-Security-Policy to answer with.
        csp: String,
    },
}

/// A grant and when it stops working (seconds since the epoch; `None`: never).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(flatten)]
    pub grant: Grant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

/// A token this key did not sign as it stands (malformed, altered, or another server's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the link is malformed or was altered")]
pub struct InvalidToken;

/// The server's signing key.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key in `path`, or a new random one written there (mode 0600). A key file readable
    /// by others or owned by another user is refused: whoever reads it can forge links.
    pub fn load_or_create(path: &Path) -> anyhow::Result<TokenKey> {
        // Deleting the file makes a new key, which invalidates every link handed out.
        crate::server::key_file::load_or_create_bytes(path, "service key").map(TokenKey)
    }

    #[cfg(test)]
    pub fn fixed(byte: u8) -> TokenKey {
        TokenKey([byte; 32])
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"langsmith-service-token-v1.");
        mac.update(payload.as_bytes());
        mac
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The claims of `token` if this key signed it, expired or not: callers check the
    /// claims' target before their expiry, so a link for elsewhere is never "expired".
    /// The MAC is checked first, in constant time.
    pub fn open(&self, token: &str) -> Result<Claims, InvalidToken> {
        let (payload, tag) = token.split_once('.').ok_or(InvalidToken)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidToken)?;
        self.mac(payload)
            .verify_slice(&tag)
            .map_err(|_| InvalidToken)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| InvalidToken)?;
        serde_json::from_slice(&json).map_err(|_| InvalidToken)
    }
}

impl Claims {
    /// Whether the claims have expired at `now` (seconds since the epoch).
    pub fn expired(&self, now: i64) -> bool {
        self.exp.is_some_and(|exp| exp <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn service(exp: Option<i64>) -> Claims {
        Claims {
            grant: Grant::Svc {
                sid: "sb-1".into(),
                port: 8000,
                eo: vec![],
            },
            exp,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = TokenKey::fixed(7);
        let token = key.sign(&service(Some(1_000)));
        let claims = key.open(&token).unwrap();
        assert_eq!(claims, service(Some(1_000)));
        assert!(!claims.expired(999));
        assert!(claims.expired(1_000));
        let forever = key.open(&key.sign(&service(None))).unwrap();
        assert!(!forever.expired(i64::MAX));
    }

    #[test]
    fn altered_or_foreign_tokens_are_invalid() {
        let key = TokenKey::fixed(7);
        let token = key.sign(&service(Some(1_000)));
        assert_eq!(TokenKey::fixed(8).open(&token), Err(InvalidToken));
        // Another port's claims under the first token's MAC.
        let (_, tag) = token.split_once('.').unwrap();
        let other = key.sign(&Claims {
            grant: Grant::Svc {
                sid: "sb-1".into(),
                port: 8001,
                eo: vec![],
            },
            exp: Some(1_000),
        });
        let (payload, _) = other.split_once('.').unwrap();
        assert_eq!(key.open(&format!("{payload}.{tag}")), Err(InvalidToken));
        for junk in ["", "abc", "a.b", ".", "x.y.z"] {
            assert_eq!(key.open(junk), Err(InvalidToken), "{junk}");
        }
    }

    #[test]
    fn the_key_file_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service-key");
        let key = TokenKey::load_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let again = TokenKey::load_or_create(&path).unwrap();
        let token = key.sign(&service(None));
        assert!(again.open(&token).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(TokenKey::load_or_create(&path).is_err());
    }
}
