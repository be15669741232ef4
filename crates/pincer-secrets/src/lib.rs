//! The encrypted secret store (D10).
//!
//! Secrets (provider keys, bot tokens, hook secrets, MCP credentials, search keys) live in one
//! file, `$PINCER_HOME/secrets/secrets.enc`, sealed with ChaCha20-Poly1305 under a 32-byte key
//! taken from `PINCER_SECRETS_KEY` (64 hex digits) when set, else from `secrets/secrets.key`
//! (created 0600 on first use). Config refers to a secret as `secret:NAME` wherever it names an
//! environment variable; the value is decrypted only by the code that uses it, when it uses it.
//!
//! File format (version 1):
//!
//! ```text
//! PINCER-SECRETS/1\n          magic
//! <16 hex digits>\n           id of the key it is sealed with (not the key)
//! <12-byte nonce><ciphertext+16-byte tag>
//! ```
//!
//! The first two lines are the AEAD's associated data, so neither can be changed unnoticed. The
//! plaintext is a JSON object of name → value. Every change rewrites the whole file (new random
//! nonce) through a temporary file, fsync and rename, under an exclusive lock, so a crash leaves
//! the old or the new store, never a torn one.
//!
//! Rotation ([`Vault::rotate_key`]) writes the new key as `secrets.key.new` first, re-seals the
//! store under it, then renames the key into place; a crash in between is finished by the next
//! open (the store's key id names which key it needs).
//!
//! Decrypted values are [`Secret`]s, wiped from memory when dropped (best effort: the JSON
//! parser's own scratch buffers are not).

mod error;
mod file;
mod key;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use zeroize::Zeroizing;

pub use error::SecretsError;
use key::Key;

/// A decrypted secret, wiped when dropped.
pub type Secret = Zeroizing<String>;

/// The environment variable that may hold the key (64 hex digits).
pub const KEY_VAR: &str = "PINCER_SECRETS_KEY";
/// The environment variable `rotate-key` takes the new key from when the key is in the
/// environment.
pub const NEW_KEY_VAR: &str = "PINCER_SECRETS_NEW_KEY";
/// The prefix of a config reference to a stored secret.
pub const REFERENCE_PREFIX: &str = "secret:";
/// The largest value stored (a PEM bundle fits; a file does not belong here).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The name a `secret:NAME` reference names, when `reference` is one and the name is valid.
pub fn reference(reference: &str) -> Option<&str> {
    reference
        .strip_prefix(REFERENCE_PREFIX)
        .filter(|n| name_ok(n))
}

/// Whether `name` can name a secret: 1–64 of `A-Z a-z 0-9 _ . -`, starting with a letter or
/// digit.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Where the key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `PINCER_SECRETS_KEY`.
    Environment,
    /// `secrets/secrets.key`.
    File,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Secrets re-sealed.
    pub secrets: usize,
    /// The old key's id.
    pub old_key: String,
    /// The new key's id.
    pub new_key: String,
}

/// The secret store of one home.
#[derive(Debug)]
pub struct Vault {
    dir: PathBuf,
    env_key: Option<Key>,
}

impl Vault {
    /// The store in `dir` (the home's `secrets/`), with the key from `env_key` (the value of
    /// [`KEY_VAR`]) when given, else from the key file.
    ///
    /// # Errors
    /// [`SecretsError::BadKey`] when `env_key` is not 64 hex digits.
    pub fn new(dir: &Path, env_key: Option<&str>) -> Result<Self, SecretsError> {
        let env_key = env_key
            .filter(|k| !k.is_empty())
            .map(|k| Key::from_hex(k, KEY_VAR))
            .transpose()?;
        Ok(Self {
            dir: dir.to_owned(),
            env_key,
        })
    }

    /// `secrets.enc`.
    pub fn store_path(&self) -> PathBuf {
        self.dir.join("secrets.enc")
    }

    /// `secrets.key`.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("secrets.key")
    }

    fn new_key_path(&self) -> PathBuf {
        self.dir.join("secrets.key.new")
    }

    /// Where the key comes from.
    pub fn key_source(&self) -> KeySource {
        if self.env_key.is_some() {
            KeySource::Environment
        } else {
            KeySource::File
        }
    }

    /// Whether a store exists (anything was ever set).
    pub fn exists(&self) -> bool {
        self.store_path().exists()
    }

    /// The key in use, finishing an interrupted rotation; `None` when there is no key yet.
    fn key(&self, create: bool) -> Result<Option<Key>, SecretsError> {
        if let Some(k) = &self.env_key {
            return Ok(Some(k.clone()));
        }
        let sealed_with = file::key_id(&self.store_path())?;
        let pending = self.new_key_path();
        if let Some(new) = Key::load(&pending)? {
            if sealed_with.as_deref() == Some(new.id().as_str()) {
                // The store was re-sealed under the new key but the key was not yet moved.
                file::rename_synced(&pending, &self.key_path())?;
                return Ok(Some(new));
            }
            // The rotation stopped before re-sealing: the old key still holds.
            file::remove_synced(&pending)?;
        }
        match Key::load(&self.key_path())? {
            Some(k) => Ok(Some(k)),
            None if create && sealed_with.is_none() => {
                let k = Key::random()?;
                k.save(&self.key_path())?;
                Ok(Some(k))
            }
            None if sealed_with.is_some() => Err(SecretsError::NoKey {
                path: self.key_path(),
            }),
            None => Ok(None),
        }
    }

    /// Every secret, decrypted (empty when there is no store).
    fn load(&self, key: Option<&Key>) -> Result<BTreeMap<String, Secret>, SecretsError> {
        let Some(plain) = file::open(&self.store_path(), key)? else {
            return Ok(BTreeMap::new());
        };
        let bad = |reason: &str| SecretsError::Corrupt {
            path: self.store_path(),
            reason: reason.to_owned(),
        };
        let value: Value = serde_json::from_slice(&plain).map_err(|_| bad("not a JSON object"))?;
        let Value::Object(map) = value else {
            return Err(bad("not a JSON object"));
        };
        map.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, Zeroizing::new(s))),
                _ => Err(bad("a value is not a string")),
            })
            .collect()
    }

    fn save(&self, key: &Key, map: &BTreeMap<String, Secret>) -> Result<(), SecretsError> {
        let obj: serde_json::Map<String, Value> = map
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect();
        let plain = Zeroizing::new(serde_json::to_vec(&Value::Object(obj)).unwrap_or_default());
        file::seal(&self.store_path(), key, &plain)
    }

    /// The names stored, sorted.
    ///
    /// # Errors
    /// [`SecretsError`] when the store cannot be read or opened with the key.
    pub fn names(&self) -> Result<Vec<String>, SecretsError> {
        let _lock = file::lock(&self.dir, false)?;
        let key = self.key(false)?;
        Ok(self.load(key.as_ref())?.into_keys().collect())
    }

    /// Every stored value (for redaction: no stored secret may reach a log or a model).
    ///
    /// # Errors
    /// As [`Self::names`].
    pub fn values(&self) -> Result<Vec<Secret>, SecretsError> {
        let _lock = file::lock(&self.dir, false)?;
        let key = self.key(false)?;
        Ok(self.load(key.as_ref())?.into_values().collect())
    }

    /// One secret's value; `None` when it is not stored.
    ///
    /// # Errors
    /// As [`Self::names`].
    pub fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        let _lock = file::lock(&self.dir, false)?;
        let key = self.key(false)?;
        Ok(self.load(key.as_ref())?.remove(name))
    }

    /// Stores `value` as `name`; returns whether it replaced a value.
    ///
    /// # Errors
    /// [`SecretsError::BadName`] / [`SecretsError::TooLarge`] for the input, otherwise as
    /// [`Self::names`] or when the store cannot be written.
    pub fn set(&self, name: &str, value: &str) -> Result<bool, SecretsError> {
        if !name_ok(name) {
            return Err(SecretsError::BadName(name.to_owned()));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(SecretsError::TooLarge {
                name: name.to_owned(),
                limit: MAX_VALUE_BYTES,
            });
        }
        if value.is_empty() {
            return Err(SecretsError::Empty(name.to_owned()));
        }
        file::ensure_dir(&self.dir)?;
        let _lock = file::lock(&self.dir, true)?;
        let Some(key) = self.key(true)? else {
            return Err(SecretsError::NoKey {
                path: self.key_path(),
            });
        };
        let mut map = self.load(Some(&key))?;
        let replaced = map
            .insert(name.to_owned(), Zeroizing::new(value.to_owned()))
            .is_some();
        self.save(&key, &map)?;
        Ok(replaced)
    }

    /// Removes `name`; returns whether it was stored.
    ///
    /// # Errors
    /// As [`Self::set`].
    pub fn remove(&self, name: &str) -> Result<bool, SecretsError> {
        if !self.exists() {
            return Ok(false);
        }
        let _lock = file::lock(&self.dir, true)?;
        let Some(key) = self.key(false)? else {
            return Ok(false);
        };
        let mut map = self.load(Some(&key))?;
        let removed = map.remove(name).is_some();
        if removed {
            self.save(&key, &map)?;
        }
        Ok(removed)
    }

    /// Re-seals every secret under a new key. With the key in a file, a random key replaces it;
    /// with the key in the environment, `new_env_key` (the value of [`NEW_KEY_VAR`]) is required
    /// and the operator puts it in place of [`KEY_VAR`] afterwards.
    ///
    /// # Errors
    /// [`SecretsError::NewKeyNeeded`] when the key is in the environment and no new one is given;
    /// otherwise as [`Self::set`].
    pub fn rotate_key(&self, new_env_key: Option<&str>) -> Result<Rotation, SecretsError> {
        file::ensure_dir(&self.dir)?;
        let _lock = file::lock(&self.dir, true)?;
        let old = self.key(true)?.ok_or_else(|| SecretsError::NoKey {
            path: self.key_path(),
        })?;
        let map = self.load(Some(&old))?;
        let new = match (self.key_source(), new_env_key.filter(|k| !k.is_empty())) {
            (KeySource::Environment, Some(hex)) => Key::from_hex(hex, NEW_KEY_VAR)?,
            (KeySource::Environment, None) => return Err(SecretsError::NewKeyNeeded),
            (KeySource::File, _) => Key::random()?,
        };
        if new.id() == old.id() {
            return Err(SecretsError::BadKey {
                var: NEW_KEY_VAR,
                reason: "is the key in use".into(),
            });
        }
        match self.key_source() {
            KeySource::Environment => self.save(&new, &map)?,
            KeySource::File => {
                new.save(&self.new_key_path())?;
                self.save(&new, &map)?;
                file::rename_synced(&self.new_key_path(), &self.key_path())?;
            }
        }
        Ok(Rotation {
            secrets: map.len(),
            old_key: old.id(),
            new_key: new.id(),
        })
    }
}

#[cfg(test)]
mod tests;
