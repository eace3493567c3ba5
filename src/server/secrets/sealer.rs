//! Secret values at rest: sealed with ChaCha20-Poly1305 (`ring`) under a key of its own,
//! `STATE/secrets-key` (32 random bytes, mode 0600), kept apart from the database so a copy
//! of `state.db` alone reveals no value. Each value has a fresh random nonce, and the
//! secret's name is the associated data: a sealed value moved to another name does not open.

use std::path::Path;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// A sealed value: its nonce and the ciphertext with the tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("no random bytes for a nonce")]
    Random,
    #[error("the value of secret {0:?} does not open with this server's secrets key")]
    Open(String),
}

pub struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl Sealer {
    /// The sealer of the key in `path`, made (mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Sealer> {
        let bytes = crate::server::key_file::load_or_create_bytes(path, "secrets key")?;
        Ok(Sealer::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8; 32]) -> Sealer {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 32-byte key");
        Sealer {
            key: LessSafeKey::new(unbound),
            random: SystemRandom::new(),
        }
    }

    pub fn seal(&self, name: &str, value: &str) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut data = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .map_err(|_| SealError::Random)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext: data,
        })
    }

    pub fn open(&self, name: &str, sealed: &Sealed) -> Result<String, SealError> {
        let failed = || SealError::Open(name.to_string());
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| failed())?;
        let mut data = sealed.ciphertext.clone();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut data)
            .map_err(|_| failed())?;
        String::from_utf8(plain.to_vec()).map_err(|_| failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_under_its_own_name_only() {
        let sealer = Sealer::from_bytes(&[7; 32]);
        let sealed = sealer.seal("OPENAI_API_KEY", "sk-test-1234").unwrap();
        assert!(
            !sealed
                .ciphertext
                .windows(4)
                .any(|w| w == b"1234" || w == b"sk-t"),
            "the value is in clear"
        );
        assert_eq!(
            sealer.open("OPENAI_API_KEY", &sealed).unwrap(),
            "sk-test-1234"
        );
        assert!(sealer.open("OTHER_KEY", &sealed).is_err());
        let again = sealer.seal("OPENAI_API_KEY", "sk-test-1234").unwrap();
        assert_ne!(again.nonce, sealed.nonce, "a nonce is never reused");
        let other = Sealer::from_bytes(&[8; 32]);
        assert!(other.open("OPENAI_API_KEY", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(sealer.open("OPENAI_API_KEY", &tampered).is_err());
    }

    #[test]
    fn the_key_file_is_private_and_kept() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets-key");
        let sealed = Sealer::load_or_create(&path)
            .unwrap()
            .seal("K", "v")
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let again = Sealer::load_or_create(&path).unwrap();
        assert_eq!(again.open("K", &sealed).unwrap(), "v");
    }
}
