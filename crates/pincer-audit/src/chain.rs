//! A chain kept in a database instead of day files: the audit log of a deployment whose
//! processes share Postgres (`[storage] url`), so machines need not share a filesystem for it.
//!
//! The line format, the hash chain, the redaction and the verification are this crate's, the
//! same as for day files; a [`ChainStore`] only keeps lines in order. It chains each batch of
//! [`Pending`] events with [`chain`] after the stored end, under its own lock, and stores the
//! lines together with a [`SignedCheckpoint`] of the new end (the database's `HEAD` and keyed
//! anchor in one): an edited line breaks the chain, a removed tail no longer reaches the
//! checkpoint, and a forged checkpoint fails its MAC without the key, which stays in each
//! node's `secrets/` and never enters the database.

use std::fmt::Debug;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::AuditError;
use crate::anchor::AnchorKey;
use crate::log::{GENESIS, line_hash};
use crate::read::Entry;
use crate::verify::{VerifyReport, check_line};

/// One event waiting for its place in the chain: already redacted and timestamped.
#[derive(Debug, Clone)]
pub struct Pending {
    /// RFC 3339 UTC, microseconds.
    pub ts: String,
    /// `type` plus fields.
    pub event: Value,
}

/// A line as chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chained {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// The JSON line, exactly as a day file would hold it (without the newline).
    pub line: String,
}

/// Chains `pending` after the line `(seq, hash)` (`(0, GENESIS)` for an empty chain).
pub fn chain(seq: u64, hash: &str, pending: &[Pending]) -> Vec<Chained> {
    let mut prev = hash.to_owned();
    pending
        .iter()
        .zip(seq + 1..)
        .map(|(p, seq)| {
            let hash = line_hash(seq, &p.ts, &prev, &p.event);
            let line =
                json!({"seq": seq, "ts": p.ts, "prev_hash": prev, "hash": hash, "event": p.event})
                    .to_string();
            prev.clone_from(&hash);
            Chained { seq, hash, line }
        })
        .collect()
}

/// The end of a stored chain, signed with the anchor key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The last line.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// [`AnchorKey::id`] of the key that signed it.
    pub key_id: String,
    /// HMAC-SHA256 over `(seq, hash)`, hex.
    pub mac: String,
}

impl SignedCheckpoint {
    /// Signs `(seq, hash)` with `key`.
    pub fn sign(key: &AnchorKey, seq: u64, hash: &str) -> Self {
        Self {
            seq,
            hash: hash.to_owned(),
            key_id: key.id(),
            mac: key.sign(seq, hash),
        }
    }

    /// Whether `key` signed it.
    pub fn signed_by(&self, key: &AnchorKey) -> bool {
        key.check(self.seq, &self.hash, &self.mac)
    }
}

/// Where a database chain is kept. Implementations serialise appends from every process on the
/// database (a lock held for the transaction) and store each batch of lines and the new
/// checkpoint atomically. Calls block the calling thread; async callers use the blocking pool.
pub trait ChainStore: Send + Sync + Debug {
    /// Queues one event. With `wait`, returns its sequence number once it is committed; without,
    /// returns `None` at once (the line is committed with the next batch, and [`Self::sync`]
    /// waits for it).
    ///
    /// # Errors
    /// [`AuditError::Chain`] when the database refuses or cannot be reached.
    fn append(&self, pending: Pending, wait: bool) -> Result<Option<u64>, AuditError>;

    /// Returns once every event queued so far is committed.
    ///
    /// # Errors
    /// As [`Self::append`].
    fn sync(&self) -> Result<(), AuditError>;

    /// Whether nothing queued is waiting to be committed.
    fn is_synced(&self) -> bool;

    /// Up to `limit` stored lines after line `after`, in order, exactly as stored.
    ///
    /// # Errors
    /// As [`Self::append`].
    fn read(&self, after: u64, limit: usize) -> Result<Vec<String>, AuditError>;

    /// The stored checkpoint, if any (not checked: [`verify_chain`] checks it).
    ///
    /// # Errors
    /// As [`Self::append`].
    fn checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError>;

    /// Whether this writer moves the checkpoint (false when it found the stored one
    /// inconsistent and left it frozen).
    fn is_anchored(&self) -> bool;

    /// Where the chain is, for messages (a URL without its password, and the table).
    fn location(&self) -> String;
}

/// How many lines one read brings back.
const PAGE: usize = 1000;

/// Every stored entry after line `after`, in order.
///
/// # Errors
/// As [`ChainStore::read`].
pub fn chain_entries(store: &dyn ChainStore, after: u64) -> Result<Vec<Entry>, AuditError> {
    let mut out = Vec::new();
    let mut from = after;
    loop {
        let page = store.read(from, PAGE)?;
        let n = page.len();
        for raw in page {
            if let Some(e) = Entry::parse(&raw) {
                from = e.seq;
                out.push(e);
            }
        }
        if n < PAGE {
            return Ok(out);
        }
    }
}

/// Verifies a database chain the way [`crate::verify_anchored`] verifies day files: every line
/// chained from the first, the checkpoint present once there are lines, signed by `key`, and
/// reached with its hash. Without a key the chain is verified unanchored.
///
/// # Errors
/// [`AuditError::Tampered`] naming the store and the first bad line (`line` is its sequence
/// number; 0 for the checkpoint); [`AuditError::Chain`] when the store cannot be read.
pub fn verify_chain(
    store: &dyn ChainStore,
    key: Option<&AnchorKey>,
) -> Result<VerifyReport, AuditError> {
    let location = PathBuf::from(store.location());
    let bad = |reason: String| AuditError::Tampered {
        path: location.clone(),
        line: 0,
        reason,
    };
    // The checkpoint first: lines appended while we read are after it.
    let cp = store.checkpoint()?;
    let mut prev = GENESIS.to_owned();
    let mut seq = 0u64;
    let mut at_cp = (cp.as_ref().map(|c| c.seq) == Some(0)).then(|| GENESIS.to_owned());
    loop {
        let page = store.read(seq, PAGE)?;
        let n = page.len();
        for raw in page {
            let expected = seq + 1;
            let line_no = usize::try_from(expected).unwrap_or(usize::MAX);
            prev = check_line(&location, line_no, &raw, expected, &prev)?;
            seq = expected;
            if cp.as_ref().is_some_and(|c| c.seq == seq) {
                at_cp = Some(prev.clone());
            }
        }
        if n < PAGE {
            break;
        }
    }
    let mut report = VerifyReport {
        lines: seq,
        files: 0,
        last_hash: prev,
        after_head: 0,
        anchored: None,
        witnesses: Vec::new(),
        archived: 0,
        archived_elsewhere: 0,
    };
    let Some(cp) = cp else {
        if seq > 0 {
            return Err(bad(format!(
                "the chain holds {seq} lines but no checkpoint (deleted?)"
            )));
        }
        return Ok(report);
    };
    if cp.seq > seq {
        return Err(bad(format!(
            "the checkpoint records {} lines but the chain holds {seq}: lines were removed from the end",
            cp.seq
        )));
    }
    if at_cp.as_deref() != Some(cp.hash.as_str()) {
        return Err(bad(format!(
            "line {} does not carry the checkpoint's hash: the chain was rewritten",
            cp.seq
        )));
    }
    report.after_head = seq - cp.seq;
    if let Some(key) = key {
        if cp.key_id != key.id() {
            return Err(bad(format!(
                "the checkpoint is signed by key {}, not by this node's key {} (copy secrets/audit.key from a node of this deployment)",
                cp.key_id,
                key.id()
            )));
        }
        if !cp.signed_by(key) {
            return Err(bad(
                "the checkpoint's signature does not verify: it was forged or edited".into(),
            ));
        }
        report.anchored = Some(cp.seq);
    }
    Ok(report)
}
