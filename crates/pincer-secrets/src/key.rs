//! The 32-byte store key: from hex in the environment or a 0600 file. `Debug` shows only its id.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::SecretsError;

/// A store key, wiped when dropped.
#[derive(Clone)]
pub(crate) struct Key(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id())
    }
}

impl Key {
    /// A public fingerprint: 16 hex digits of a domain-separated sha256.
    pub(crate) fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"pincer-secrets-key-id|");
        h.update(self.0.as_slice());
        hex::encode(&h.finalize()[..8])
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn random() -> Result<Self, SecretsError> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(k.as_mut_slice()).map_err(|e| SecretsError::Random(e.to_string()))?;
        Ok(Self(k))
    }

    pub(crate) fn from_hex(text: &str, var: &'static str) -> Result<Self, SecretsError> {
        let mut k = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), k.as_mut_slice()).map_err(|_| SecretsError::BadKey {
            var,
            reason: "must be 64 hex digits (32 bytes)".into(),
        })?;
        Ok(Self(k))
    }

    /// The key in `path`; `None` when the file does not exist.
    pub(crate) fn load(path: &Path) -> Result<Option<Self>, SecretsError> {
        let bytes = match fs::read(path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SecretsError::io(path, e)),
        };
        let mut k = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(SecretsError::Corrupt {
                path: path.to_owned(),
                reason: "the key file is not 32 bytes".into(),
            });
        }
        k.copy_from_slice(&bytes);
        Ok(Some(Self(k)))
    }

    /// Writes the key to `path` (0600, never over an existing file) and syncs it.
    pub(crate) fn save(&self, path: &Path) -> Result<(), SecretsError> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| SecretsError::io(path, e))?;
        f.write_all(self.0.as_slice())
            .and_then(|()| f.sync_all())
            .map_err(|e| SecretsError::io(path, e))?;
        crate::file::sync_parent(path)
    }
}
