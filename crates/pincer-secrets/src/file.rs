//! The sealed file: reading, sealing, atomic replacement and the lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::SecretsError;
use crate::key::Key;

const MAGIC: &[u8] = b"PINCER-SECRETS/1\n";
/// Magic, 16 hex digits of key id and a newline.
const HEADER_LEN: usize = MAGIC.len() + 17;
/// Far above any real store; a bigger file is not ours.
const MAX_FILE: u64 = 16 * 1024 * 1024;

fn corrupt(path: &Path, reason: &str) -> SecretsError {
    SecretsError::Corrupt {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, SecretsError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SecretsError::io(path, e)),
    };
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SecretsError::io(path, e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(corrupt(path, "larger than any secret store"));
    }
    Ok(Some(bytes))
}

/// Splits a store into (header, key id, nonce, sealed bytes).
fn parts<'a>(path: &Path, bytes: &'a [u8]) -> Result<(&'a [u8], &'a str, &'a [u8]), SecretsError> {
    if bytes.len() < HEADER_LEN + NONCE_LEN + CHACHA20_POLY1305.tag_len()
        || !bytes.starts_with(MAGIC)
        || bytes[HEADER_LEN - 1] != b'\n'
    {
        return Err(corrupt(
            path,
            "not a Pincer secret store (bad header or too short)",
        ));
    }
    let id = std::str::from_utf8(&bytes[MAGIC.len()..HEADER_LEN - 1])
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| corrupt(path, "the key id is not hex"))?;
    Ok((&bytes[..HEADER_LEN], id, &bytes[HEADER_LEN..]))
}

/// The id of the key the store at `path` is sealed with; `None` when there is no store.
pub(crate) fn key_id(path: &Path) -> Result<Option<String>, SecretsError> {
    match read_bounded(path)? {
        Some(bytes) => Ok(Some(parts(path, &bytes)?.1.to_owned())),
        None => Ok(None),
    }
}

fn aead(key: &Key) -> LessSafeKey {
    // A 32-byte key is always accepted by ChaCha20-Poly1305.
    match UnboundKey::new(&CHACHA20_POLY1305, key.bytes()) {
        Ok(k) => LessSafeKey::new(k),
        Err(_) => unreachable!("ChaCha20-Poly1305 takes any 32-byte key"),
    }
}

/// Decrypts the store at `path`; `None` when there is none.
pub(crate) fn open(
    path: &Path,
    key: Option<&Key>,
) -> Result<Option<Zeroizing<Vec<u8>>>, SecretsError> {
    let Some(bytes) = read_bounded(path)? else {
        return Ok(None);
    };
    let (header, id, rest) = parts(path, &bytes)?;
    let Some(key) = key else {
        return Err(SecretsError::NoKey {
            path: path.with_file_name("secrets.key"),
        });
    };
    if id != key.id() {
        return Err(SecretsError::WrongKey {
            path: path.to_owned(),
            sealed: id.to_owned(),
            in_use: key.id(),
        });
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| corrupt(path, "the nonce is malformed"))?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = aead(key)
        .open_in_place(nonce, Aad::from(header), &mut buf)
        .map_err(|_| {
            corrupt(
                path,
                "does not authenticate under its key: the file was changed or damaged",
            )
        })?
        .len();
    buf.truncate(len);
    Ok(Some(buf))
}

/// Seals `plain` under `key` into `path`, replacing it atomically.
pub(crate) fn seal(path: &Path, key: &Key, plain: &[u8]) -> Result<(), SecretsError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| SecretsError::Random(e.to_string()))?;
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(key.id().as_bytes());
    header.push(b'\n');
    let mut buf = Zeroizing::new(plain.to_vec());
    aead(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut *buf,
        )
        .map_err(|_| corrupt(path, "could not be sealed"))?;
    let mut out = header;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    let tmp = tmp_path(path);
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| SecretsError::io(&tmp, e))?;
    f.write_all(&out)
        .and_then(|()| f.sync_all())
        .map_err(|e| SecretsError::io(&tmp, e))?;
    rename_synced(&tmp, path)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Renames `from` to `to` and syncs the directory.
pub(crate) fn rename_synced(from: &Path, to: &Path) -> Result<(), SecretsError> {
    fs::rename(from, to).map_err(|e| SecretsError::io(to, e))?;
    sync_parent(to)
}

/// Removes `path` and syncs the directory.
pub(crate) fn remove_synced(path: &Path) -> Result<(), SecretsError> {
    fs::remove_file(path).map_err(|e| SecretsError::io(path, e))?;
    sync_parent(path)
}

/// Syncs the directory holding `path`, so a create or rename survives a power loss.
pub(crate) fn sync_parent(path: &Path) -> Result<(), SecretsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SecretsError::io(dir, e))
}

/// Creates the secrets directory (0700) when missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), SecretsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| SecretsError::io(dir, e))
}

/// Holds `secrets.lock` (shared for reading, exclusive for changes) until dropped. Without a
/// directory (nothing stored yet) a reader needs no lock.
pub(crate) fn lock(dir: &Path, exclusive: bool) -> Result<Option<File>, SecretsError> {
    let path = dir.join("secrets.lock");
    let f = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !exclusive => return Ok(None),
        Err(e) => return Err(SecretsError::io(&path, e)),
    };
    let op = if exclusive {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::LockShared
    };
    rustix::fs::flock(&f, op).map_err(|e| SecretsError::io(&path, e.into()))?;
    Ok(Some(f))
}
