//! Witnesses: records of the chain's end kept somewhere the log's directory is not, checked by
//! `verify` (issue 23, part 4).
//!
//! `HEAD` and the keyed anchor ([`crate::anchor`]) live in the home. A witness is one more
//! place that saw `(seq, hash)` after a durable append: the state database (every sync; an
//! attacker who wipes `audit/` and `secrets/` still has to find and edit it), or an external
//! file — on another mount, an append-only NFS share, a `chattr +a` file owned by another user —
//! of ed25519-signed checkpoints ([`FileWitness`]), written every N lines or minutes. `verify`
//! checks the log against each: the line a witness names must exist and carry the witnessed
//! hash. A witness may be behind the log (it agrees at its line); never ahead, never different.
//!
//! Like the anchor, a writer whose witness does not match the log at open leaves it alone
//! (frozen): a rebuilt log never launders the record of the old one.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::AuditError;
use crate::anchor::Checkpoint;

/// A place that records the chain's end outside the log.
pub trait Witness: Send + Sync + std::fmt::Debug {
    /// What it is, for reports (`state database`, `witness file /mnt/…`).
    fn name(&self) -> String;

    /// Called after every durable sync with the last durable line. A witness may record only
    /// some of these (every N lines or minutes).
    ///
    /// # Errors
    /// When it cannot be written; the log reports the error and carries on (the witness is
    /// then behind, which `verify` accepts).
    fn record(&self, seq: u64, hash: &str) -> Result<(), AuditError>;

    /// Told the record found at open (consistent with the log), so its cadence continues from
    /// there rather than recording at once.
    fn resume(&self, _from: &Checkpoint) {}

    /// The latest authenticated record; `None` when it has none.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] when its records are forged or out of order.
    fn latest(&self) -> Result<Option<Checkpoint>, AuditError>;
}

/// How one witness compares with the log, for `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessReport {
    /// [`Witness::name`].
    pub name: String,
    /// The line it vouches for (`None`: it holds no record yet).
    pub agrees_at: Option<u64>,
}

/// The ed25519 key a witness file is signed with (a 32-byte seed, kept in the secret store).
pub struct WitnessKey(Ed25519KeyPair);

impl std::fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessKey({})", self.public_hex())
    }
}

impl WitnessKey {
    /// The key from its 32-byte seed.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] when the seed is not 32 bytes.
    pub fn from_seed(seed: &[u8]) -> Result<Self, AuditError> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(Self)
            .map_err(|_| AuditError::Tampered {
                path: PathBuf::from("audit witness key"),
                line: 0,
                reason: "the witness key is not a 32-byte ed25519 seed".into(),
            })
    }

    /// A new random seed.
    ///
    /// # Errors
    /// When the system has no randomness.
    pub fn random_seed() -> Result<[u8; 32], AuditError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            AuditError::io("audit witness key", std::io::Error::other(e.to_string()))
        })?;
        Ok(seed)
    }

    /// The public key, hex (what a verifier pins).
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.public_key().as_ref())
    }
}

fn message(seq: u64, hash: &str, ts: &str) -> String {
    format!("pincer-audit-witness|{seq}|{hash}|{ts}")
}

#[derive(Debug)]
struct Cadence {
    seq: u64,
    at: Instant,
}

/// An append-only file of signed checkpoints, one JSON line each:
/// `{"seq", "hash", "ts", "key", "sig"}` — `key` the public key, `sig` an ed25519 signature
/// over `pincer-audit-witness|seq|hash|ts`.
#[derive(Debug)]
pub struct FileWitness {
    path: PathBuf,
    /// The key it signs with (writers); `None` for a verifier holding only the public key.
    key: Option<WitnessKey>,
    /// The public key records must verify under (hex).
    public: String,
    every_lines: u64,
    every: Duration,
    last: Mutex<Option<Cadence>>,
}

/// The largest witness file read back (a checkpoint line is ~300 bytes).
const MAX_WITNESS_FILE: u64 = 256 * 1024 * 1024;

impl FileWitness {
    /// A witness writing to `path`, signing with `key`, recording when `every_lines` lines or
    /// `every` time have passed since its last record.
    pub fn writer(path: &Path, key: WitnessKey, every_lines: u64, every: Duration) -> Self {
        Self {
            path: path.to_owned(),
            public: key.public_hex(),
            key: Some(key),
            every_lines: every_lines.max(1),
            every,
            last: Mutex::new(None),
        }
    }

    /// A witness that only reads `path`, checking records against the public key `public`
    /// (hex).
    pub fn reader(path: &Path, public: &str) -> Self {
        Self {
            path: path.to_owned(),
            key: None,
            public: public.to_ascii_lowercase(),
            every_lines: u64::MAX,
            every: Duration::MAX,
            last: Mutex::new(None),
        }
    }

    fn bad(&self, line: usize, reason: &str) -> AuditError {
        AuditError::Tampered {
            path: self.path.clone(),
            line,
            reason: reason.to_owned(),
        }
    }
}

impl Witness for FileWitness {
    fn name(&self) -> String {
        format!("witness file {}", self.path.display())
    }

    fn resume(&self, from: &Checkpoint) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Cadence {
            seq: from.seq,
            at: Instant::now(),
        });
    }

    fn record(&self, seq: u64, hash: &str) -> Result<(), AuditError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let due = match last.as_ref() {
            None => true,
            Some(c) if c.seq >= seq => false,
            Some(c) => seq - c.seq >= self.every_lines || c.at.elapsed() >= self.every,
        };
        if !due {
            return Ok(());
        }
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let sig = key.0.sign(message(seq, hash, &ts).as_bytes());
        let mut line = json!({
            "seq": seq, "hash": hash, "ts": ts,
            "key": self.public, "sig": hex::encode(sig.as_ref()),
        })
        .to_string();
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| AuditError::io(&self.path, e))?;
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| AuditError::io(&self.path, e))?;
        *last = Some(Cadence {
            seq,
            at: Instant::now(),
        });
        Ok(())
    }

    fn latest(&self) -> Result<Option<Checkpoint>, AuditError> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuditError::io(&self.path, e)),
        };
        let public = hex::decode(&self.public)
            .map_err(|_| self.bad(0, "the pinned public key is not hex"))?;
        let verifier = UnparsedPublicKey::new(&ED25519, public);
        let mut latest: Option<Checkpoint> = None;
        let reader = BufReader::new(std::io::Read::take(f, MAX_WITNESS_FILE));
        for (i, line) in reader.lines().enumerate() {
            let n = i + 1;
            let line = line.map_err(|e| AuditError::io(&self.path, e))?;
            if line.is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(&line).map_err(|_| self.bad(n, "a checkpoint is not JSON"))?;
            let (Some(seq), Some(hash), Some(ts), Some(key), Some(sig)) = (
                v.get("seq").and_then(Value::as_u64),
                v.get("hash").and_then(Value::as_str),
                v.get("ts").and_then(Value::as_str),
                v.get("key").and_then(Value::as_str),
                v.get("sig").and_then(Value::as_str),
            ) else {
                return Err(self.bad(n, "a checkpoint lacks seq, hash, ts, key or sig"));
            };
            if !key.eq_ignore_ascii_case(&self.public) {
                return Err(self.bad(n, "a checkpoint is signed with another key"));
            }
            let sig = hex::decode(sig).map_err(|_| self.bad(n, "a signature is not hex"))?;
            if verifier
                .verify(message(seq, hash, ts).as_bytes(), &sig)
                .is_err()
            {
                return Err(self.bad(
                    n,
                    "a checkpoint's signature does not verify (forged or edited)",
                ));
            }
            if latest.as_ref().is_some_and(|l| l.seq > seq) {
                return Err(self.bad(
                    n,
                    "checkpoints go backwards: the log was replaced by a shorter one",
                ));
            }
            latest = Some(Checkpoint {
                seq,
                hash: hash.to_owned(),
            });
        }
        Ok(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> WitnessKey {
        WitnessKey::from_seed(&[7u8; 32]).unwrap()
    }

    #[test]
    fn records_follow_the_cadence_and_verify() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("w.jsonl");
        let w = FileWitness::writer(&path, key(), 10, Duration::from_secs(3600));
        assert_eq!(w.latest().unwrap(), None);
        w.record(1, "a").unwrap(); // the first is always due
        w.record(5, "b").unwrap(); // not due
        w.record(11, "c").unwrap();
        let lines = std::fs::read_to_string(&path).unwrap();
        assert_eq!(lines.lines().count(), 2, "{lines}");
        let r = FileWitness::reader(&path, &key().public_hex());
        let latest = r.latest().unwrap().unwrap();
        assert_eq!((latest.seq, latest.hash.as_str()), (11, "c"));
        // A new writer resumes the cadence from the file's last record.
        let w2 = FileWitness::writer(&path, key(), 10, Duration::from_secs(3600));
        w2.resume(&latest);
        w2.record(15, "e").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        // Time passing makes a record due however few lines were added.
        let w3 = FileWitness::writer(&path, key(), 1000, Duration::ZERO);
        w3.resume(&latest);
        w3.record(12, "f").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    #[test]
    fn forged_edited_reordered_and_foreign_records_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("w.jsonl");
        let w = FileWitness::writer(&path, key(), 1, Duration::from_secs(3600));
        w.record(3, "x").unwrap();
        w.record(9, "y").unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        let pinned = key().public_hex();
        // Edited hash.
        std::fs::write(&path, good.replace("\"y\"", "\"z\"")).unwrap();
        assert!(FileWitness::reader(&path, &pinned).latest().is_err());
        // Backwards: the later line first.
        let mut l: Vec<&str> = good.lines().collect();
        l.reverse();
        std::fs::write(&path, l.join("\n")).unwrap();
        let err = FileWitness::reader(&path, &pinned).latest().unwrap_err();
        assert!(err.to_string().contains("backwards"), "{err}");
        // Signed by another key (an attacker's own witness file).
        let other = FileWitness::writer(
            &t.path().join("o.jsonl"),
            WitnessKey::from_seed(&[9u8; 32]).unwrap(),
            1,
            Duration::ZERO,
        );
        other.record(1, "q").unwrap();
        let err = FileWitness::reader(&t.path().join("o.jsonl"), &pinned)
            .latest()
            .unwrap_err();
        assert!(err.to_string().contains("another key"), "{err}");
    }
}
