//! The keyed anchor: a checkpoint of the chain's end kept outside `audit/` and signed with a key
//! the log's directory does not hold (D5).
//!
//! The hash chain and `HEAD` alone detect an edit, a deletion or a truncated tail, but not a
//! rewrite: whoever can write `audit/` can delete every day file and `HEAD` ("0 lines"), or edit
//! a line and recompute every hash after it and `HEAD`. The anchor closes that: at every sync the
//! writer also records `(seq, hash)` in an anchor file outside `audit/` (Pincer keeps it in
//! `secrets/`, which no tool can read or write), with an HMAC-SHA256 over it under a 64-byte key
//! (`secrets/audit.key`, 64 random bytes, 0600). A rebuilt or wiped log no longer reaches the anchored line with
//! the anchored hash, and a forged anchor fails its MAC without the key.
//!
//! A writer never launders tampering: when the anchor it finds at open does not match the log,
//! it leaves the anchor as it is (frozen), so `verify` keeps reporting the problem.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AuditError;

/// The anchor file's fixed width: it is rewritten in place like `HEAD`.
const ANCHOR_LEN: usize = 256;

/// The secret key anchors are signed with. `Debug` never shows it.
#[derive(Clone)]
pub struct AnchorKey([u8; 64]);

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnchorKey({})", self.id())
    }
}

impl AnchorKey {
    /// A short public fingerprint of the key (first 16 hex digits of its sha256).
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    fn mac(&self, seq: u64, hash: &str) -> Hmac<Sha256> {
        // The key is exactly one SHA-256 block, so construction is infallible.
        let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&self.0.into());
        m.update(format!("pincer-audit-anchor|{seq}|{hash}").as_bytes());
        m
    }

    /// An HMAC over `text` (callers prefix it with their own domain, e.g. `pincer-audit-archive|`).
    pub(crate) fn sign_text(&self, text: &str) -> String {
        let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&self.0.into());
        m.update(text.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    pub(crate) fn check_text(&self, text: &str, mac_hex: &str) -> bool {
        let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&self.0.into());
        m.update(text.as_bytes());
        hex::decode(mac_hex).is_ok_and(|mac| m.verify_slice(&mac).is_ok())
    }

    pub(crate) fn sign(&self, seq: u64, hash: &str) -> String {
        hex::encode(self.mac(seq, hash).finalize().into_bytes())
    }

    pub(crate) fn check(&self, seq: u64, hash: &str, mac_hex: &str) -> bool {
        hex::decode(mac_hex).is_ok_and(|m| self.mac(seq, hash).verify_slice(&m).is_ok())
    }

    /// Reads the key at `path`; `None` when there is none.
    ///
    /// # Errors
    /// [`AuditError::Io`] when it cannot be read, [`AuditError::Tampered`] when it is not 32
    /// bytes.
    pub fn load(path: &Path) -> Result<Option<Self>, AuditError> {
        match fs::read(path) {
            Ok(bytes) => <[u8; 64]>::try_from(bytes.as_slice())
                .map(|k| Some(Self(k)))
                .map_err(|_| AuditError::Tampered {
                    path: path.to_owned(),
                    line: 0,
                    reason: "the audit anchor key is not 64 bytes".into(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuditError::io(path, e)),
        }
    }

    /// Reads the key at `path`, creating a random one (0600, never overwriting) when there is
    /// none. Returns whether it was created.
    ///
    /// # Errors
    /// [`AuditError::Io`] when it cannot be read or written.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), AuditError> {
        if let Some(k) = Self::load(path)? {
            return Ok((k, false));
        }
        let mut k = [0u8; 64];
        getrandom::fill(&mut k).map_err(|e| AuditError::io(path, std::io::Error::other(e)))?;
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| AuditError::io(parent, e))?;
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| AuditError::io(path, e))?;
        f.write_all(&k)
            .and_then(|()| f.sync_all())
            .map_err(|e| AuditError::io(path, e))?;
        Ok((Self(k), true))
    }
}

/// A verified anchor: the chain's end as last recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The anchored line.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// Where the anchor lives and the key it is signed with.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The anchor file (outside the log's directory).
    pub path: PathBuf,
    /// The signing key.
    pub key: AnchorKey,
}

impl Anchor {
    /// Records `(seq, hash)`: one fixed-width write at offset 0, like `HEAD`.
    pub(crate) fn write(&self, seq: u64, hash: &str) -> Result<(), AuditError> {
        let text = json!({
            "seq": seq,
            "hash": hash,
            "key": self.key.id(),
            "mac": self.key.sign(seq, hash),
        })
        .to_string();
        crate::log::write_fixed(&self.path, text, ANCHOR_LEN)
    }

    /// Reads and authenticates the anchor; `None` when the file does not exist.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] when it is malformed, signed with another key or its MAC does not
    /// match; [`AuditError::Io`] when it cannot be read.
    pub fn read(&self) -> Result<Option<Checkpoint>, AuditError> {
        let bad = |reason: &str| AuditError::Tampered {
            path: self.path.clone(),
            line: 0,
            reason: reason.to_owned(),
        };
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuditError::io(&self.path, e)),
        };
        let v: Value = serde_json::from_str(&text).map_err(|_| bad("the anchor is not JSON"))?;
        let (Some(seq), Some(hash), Some(key), Some(mac)) = (
            v.get("seq").and_then(Value::as_u64),
            v.get("hash").and_then(Value::as_str),
            v.get("key").and_then(Value::as_str),
            v.get("mac").and_then(Value::as_str),
        ) else {
            return Err(bad("the anchor lacks seq, hash, key or mac"));
        };
        if key != self.key.id() {
            return Err(bad("the anchor was signed with another key"));
        }
        if !self.key.check(seq, hash, mac) {
            return Err(bad(
                "the anchor's MAC does not match (forged or edited checkpoint)",
            ));
        }
        Ok(Some(Checkpoint {
            seq,
            hash: hash.to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use serde_json::{Value, json};

    use super::*;
    use crate::log::{GENESIS, day_files, line_hash};
    use crate::{AuditLog, Redactor, verify, verify_anchored};

    struct Home {
        _t: tempfile::TempDir,
        dir: PathBuf,
        key: PathBuf,
        anchor: PathBuf,
    }

    impl Home {
        fn open(&self) -> AuditLog {
            let (key, fresh) = AnchorKey::load_or_create(&self.key).unwrap();
            let anchor = Anchor {
                path: self.anchor.clone(),
                key,
            };
            AuditLog::open_anchored(
                &self.dir,
                Redactor::new(vec![], &[]).unwrap(),
                anchor,
                fresh,
            )
            .unwrap()
        }
        fn verify(&self) -> Result<crate::VerifyReport, AuditError> {
            verify_anchored(&self.dir, &self.key, &self.anchor)
        }
    }

    /// An anchored log with `n` lines after the `audit.anchored` line.
    fn anchored(n: u64) -> Home {
        let t = tempfile::tempdir().unwrap();
        let h = Home {
            dir: t.path().join("audit"),
            key: t.path().join("secrets/audit.key"),
            anchor: t.path().join("secrets/audit.anchor"),
            _t: t,
        };
        let log = h.open();
        for i in 0..n {
            log.append("tool.call", json!({"i": i})).unwrap();
        }
        drop(log);
        let r = h.verify().unwrap();
        assert_eq!((r.lines, r.anchored), (n + 1, Some(n + 1)));
        h
    }

    fn tampered(r: Result<crate::VerifyReport, AuditError>) -> String {
        match r {
            Err(AuditError::Tampered { reason, .. }) => reason,
            other => panic!("expected tampering, got {other:?}"),
        }
    }

    /// Rewrites every line from `from` (1-based) with a correct chain, and HEAD: what an
    /// attacker with write access to `audit/` does after editing a line.
    fn recompute(dir: &Path, edit: impl Fn(&mut Value)) {
        let p = day_files(dir).unwrap().pop().unwrap();
        let mut prev = GENESIS.to_owned();
        let mut out = String::new();
        let mut last = 0;
        for l in fs::read_to_string(&p).unwrap().lines() {
            let mut v: Value = serde_json::from_str(l).unwrap();
            edit(&mut v);
            let seq = v["seq"].as_u64().unwrap();
            let h = line_hash(seq, v["ts"].as_str().unwrap(), &prev, &v["event"]);
            v["prev_hash"] = json!(prev);
            v["hash"] = json!(h);
            prev = h;
            last = seq;
            out.push_str(&format!("{v}\n"));
        }
        fs::write(&p, out).unwrap();
        fs::write(
            dir.join("HEAD"),
            json!({"seq": last, "hash": prev}).to_string(),
        )
        .unwrap();
    }

    #[test]
    fn a_wiped_log_is_detected() {
        let h = anchored(3);
        for f in day_files(&h.dir).unwrap() {
            fs::remove_file(f).unwrap();
        }
        fs::remove_file(h.dir.join("HEAD")).unwrap();
        // The chain alone cannot tell: this is the attack.
        assert_eq!(verify(&h.dir).unwrap().lines, 0);
        assert!(tampered(h.verify()).contains("removed"));
    }

    #[test]
    fn truncation_with_a_rewritten_head_is_detected() {
        let h = anchored(3);
        let p = day_files(&h.dir).unwrap().pop().unwrap();
        let text = fs::read_to_string(&p).unwrap();
        let kept: Vec<&str> = text.lines().take(2).collect();
        let last: Value = serde_json::from_str(kept[1]).unwrap();
        fs::write(&p, format!("{}\n", kept.join("\n"))).unwrap();
        fs::write(
            h.dir.join("HEAD"),
            json!({"seq": 2, "hash": last["hash"]}).to_string(),
        )
        .unwrap();
        assert_eq!(verify(&h.dir).unwrap().lines, 2);
        assert!(tampered(h.verify()).contains("removed"));
    }

    #[test]
    fn an_edited_line_with_a_recomputed_chain_is_detected_and_never_laundered() {
        let h = anchored(3);
        recompute(&h.dir, |v| {
            if v["seq"] == 2 {
                v["event"]["i"] = json!(99);
            }
        });
        assert_eq!(verify(&h.dir).unwrap().lines, 4);
        assert!(tampered(h.verify()).contains("rewritten"));
        // A writer opening the tampered log does not re-sign it: the anchor stays frozen.
        let log = h.open();
        assert!(!log.is_anchored());
        log.append("tool.call", json!({"i": 5})).unwrap();
        drop(log);
        assert!(tampered(h.verify()).contains("rewritten"));
    }

    #[test]
    fn a_forged_or_deleted_anchor_is_detected() {
        let h = anchored(2);
        let text = fs::read_to_string(&h.anchor).unwrap();
        fs::write(&h.anchor, text.replace("\"seq\":3", "\"seq\":1")).unwrap();
        assert!(tampered(h.verify()).contains("MAC"));
        fs::remove_file(&h.anchor).unwrap();
        assert!(tampered(h.verify()).contains("missing"));
        let h = anchored(1);
        fs::remove_file(&h.key).unwrap();
        assert!(tampered(h.verify()).contains("key is missing"));
    }

    #[test]
    fn an_honest_log_stays_anchored_across_reopens_and_lazy_lines() {
        let h = anchored(2);
        let log = h.open();
        assert!(log.is_anchored());
        log.append_lazy("run.start", json!({})).unwrap();
        log.append("run.end", json!({})).unwrap();
        drop(log);
        let r = h.verify().unwrap();
        assert_eq!((r.lines, r.anchored), (5, Some(5)));
        // The key never appears in Debug output.
        let (k, _) = AnchorKey::load_or_create(&h.key).unwrap();
        assert!(format!("{k:?}").starts_with("AnchorKey("));
        assert_eq!(fs::metadata(&h.key).unwrap().len(), 64);
    }
}
