//! Content-addressed blobs: digest validation, the on-disk blob cache (`sha256/<hex>`), and
//! streaming verification. A cache file only ever appears after its content matched its
//! digest (written to a temporary name, verified, then renamed), so a present file is trusted.

use std::io::Read;
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::ImageError;

/// A validated `sha256:<64 lowercase hex>` digest. Validation matters: the hex becomes a
/// file name, so anything else could escape the cache directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDigest {
    hex: String,
}

impl BlobDigest {
    pub fn parse(digest: &str) -> Result<Self, ImageError> {
        let unsupported = |message: String| ImageError::Unsupported {
            reference: digest.to_string(),
            message,
        };
        let Some((algorithm, hex)) = digest.split_once(':') else {
            return Err(unsupported("not a digest (expected sha256:<hex>)".into()));
        };
        if algorithm != "sha256" {
            return Err(unsupported(format!(
                "digest algorithm {algorithm} is not supported; only sha256 is"
            )));
        }
        let well_formed = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(unsupported("malformed sha256 digest".into()));
        }
        Ok(BlobDigest {
            hex: hex.to_string(),
        })
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Where this blob lives under an OCI layout's or the cache's `blobs`-style root.
    pub fn path_under(&self, root: &Path) -> PathBuf {
        root.join("sha256").join(&self.hex)
    }
}

impl std::fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Write `stream` into the cache as `digest`, hashing as it goes and refusing to write more
/// than `max_bytes` (the size the manifest promised), so a hostile registry cannot fill the
/// disk. Returns the cache path.
pub async fn store_stream<S, E>(
    cache: &Path,
    digest: &BlobDigest,
    max_bytes: u64,
    mut stream: S,
) -> Result<PathBuf, ImageError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let final_path = digest.path_under(cache);
    let dir = final_path.parent().expect("cache path has a parent");
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(ImageError::io(format!(
            "creating blob cache {}",
            dir.display()
        )))?;
    let temp_path = dir.join(format!(
        ".partial-{}-{}",
        digest.hex(),
        uuid::Uuid::new_v4()
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&temp_path)
            .await
            .map_err(ImageError::io(format!("creating {}", temp_path.display())))?;
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        while let Some(chunk) = stream.next().await {
            // The image's name is added by the caller, which knows it.
            let chunk = chunk.map_err(|e| ImageError::Pull {
                reference: String::new(),
                message: format!(
                    "blob {digest}: the download broke off ({e}); nothing of it was kept, \
                     build again once the registry answers"
                ),
            })?;
            written += chunk.len() as u64;
            if written > max_bytes {
                return Err(ImageError::DigestMismatch {
                    digest: digest.to_string(),
                    actual: format!("more than the {max_bytes} bytes the manifest declares"),
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(ImageError::io(format!("writing {}", temp_path.display())))?;
        }
        file.sync_all()
            .await
            .map_err(ImageError::io(format!("syncing {}", temp_path.display())))?;
        check_hash(digest, hasher)?;
        tokio::fs::rename(&temp_path, &final_path)
            .await
            .map_err(ImageError::io(format!("storing {}", final_path.display())))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp_path).await;
    }
    result.map(|()| final_path)
}

/// Hash a file already on disk (blobs of a local OCI layout) and compare with its digest.
pub fn verify_file(path: &Path, digest: &BlobDigest) -> Result<(), ImageError> {
    let mut file =
        std::fs::File::open(path).map_err(ImageError::io(format!("opening {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(ImageError::io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    check_hash(digest, hasher)
}

fn check_hash(digest: &BlobDigest, hasher: Sha256) -> Result<(), ImageError> {
    let actual = hex::encode(hasher.finalize());
    if actual == digest.hex() {
        Ok(())
    } else {
        Err(ImageError::DigestMismatch {
            digest: digest.to_string(),
            actual: format!("sha256:{actual}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_must_be_well_formed_sha256() {
        let good = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(BlobDigest::parse(&good).unwrap().to_string(), good);
        for bad in [
            "sha256:../../etc/passwd",
            "sha512:abcd",
            "nocolon",
            &format!("sha256:{}", "0F".repeat(32)),
        ] {
            assert!(BlobDigest::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn stream_is_verified_before_it_enters_the_cache() {
        let cache = tempfile::tempdir().unwrap();
        let data = b"hello blob".to_vec();
        let digest =
            BlobDigest::parse(&format!("sha256:{}", hex::encode(Sha256::digest(&data)))).unwrap();
        let chunks = || {
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(
                data.clone(),
            ))])
        };
        let path = store_stream(cache.path(), &digest, 100, chunks())
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);

        let wrong = BlobDigest::parse(&format!("sha256:{}", "1".repeat(64))).unwrap();
        let err = store_stream(cache.path(), &wrong, 100, chunks())
            .await
            .unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(!wrong.path_under(cache.path()).exists());

        let err = store_stream(cache.path(), &digest, 3, chunks())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("more than the 3 bytes"), "{err}");
        let leftovers = std::fs::read_dir(cache.path().join("sha256"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 1, "only the verified blob remains");
    }
}
