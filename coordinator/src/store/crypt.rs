//! Encryption at rest for Secrets: ChaCha20-Poly1305 with a random nonce per write and the
//! object's key as associated data (a ciphertext cannot be moved to another key). The
//! 256-bit key lives in `<data-dir>/secrets.key` (mode 0600), created on first start.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

const MAGIC: &[u8; 4] = b"skE1";

/// The at-rest key.
pub struct SecretBox {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// Encryption failures.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// The key file could not be read or created.
    #[error("secrets key {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is not 32 bytes.
    #[error("secrets key {0} is corrupt (want 32 bytes)")]
    BadKey(String),
    /// A stored value failed to decrypt (wrong key or damaged data).
    #[error("a stored Secret could not be decrypted: wrong secrets.key or damaged data")]
    Decrypt,
}

impl SecretBox {
    /// Loads the key, creating it on first start.
    pub fn open(path: &Path) -> Result<Self, CryptError> {
        let err = |source| CryptError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = SystemRandom::new();
                let mut k = [0u8; 32];
                rng.fill(&mut k)
                    .map_err(|_| err(std::io::Error::other("no randomness")))?;
                skiff_transport::files::write_private(path, &k).map_err(err)?;
                k.to_vec()
            }
            Err(e) => return Err(err(e)),
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| CryptError::BadKey(path.display().to_string()))?;
        Ok(SecretBox {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts `plain`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("system randomness");
        let mut out = Vec::with_capacity(4 + NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .expect("sealing cannot fail for in-memory buffers");
        out.extend_from_slice(&body);
        out
    }

    /// Decrypts what [`SecretBox::seal`] wrote.
    pub fn open_sealed(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptError> {
        if sealed.len() < 4 + NONCE_LEN + 16 || &sealed[..4] != MAGIC {
            return Err(CryptError::Decrypt);
        }
        let nonce: [u8; NONCE_LEN] = sealed[4..4 + NONCE_LEN].try_into().expect("length checked");
        let mut body = sealed[4 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| CryptError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let dir = std::env::temp_dir().join(format!("skiff-crypt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.key");
        let b = SecretBox::open(&path).unwrap();
        let s = b.seal(b"Secret/default/x", b"hunter2");
        assert!(!s.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(b.open_sealed(b"Secret/default/x", &s).unwrap(), b"hunter2");
        assert!(b.open_sealed(b"Secret/default/y", &s).is_err());
        let b2 = SecretBox::open(&path).unwrap();
        assert_eq!(b2.open_sealed(b"Secret/default/x", &s).unwrap(), b"hunter2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
