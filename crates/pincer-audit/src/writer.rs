//! [`AuditLog`]: what every part of Pincer appends to, over day files (one machine, or processes
//! sharing a home) or a database chain (processes sharing Postgres). Events are redacted and
//! stamped here, whichever side keeps them, so both hold the same lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::anchor::{Anchor, AnchorKey};
use crate::chain::{ChainStore, chain_entries, verify_chain};
use crate::log::{FileLog, pending};
use crate::read::{Entry, entries};
use crate::verify::{VerifyReport, verify_witnessed};
use crate::witness::Witness;
use crate::{AuditError, Redactor};

#[derive(Debug)]
enum Sink {
    Files(Box<FileLog>),
    Chain(Arc<dyn ChainStore>),
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditLog {
    redactor: Redactor,
    sink: Sink,
}

impl AuditLog {
    /// Opens (creating, mode 0700) the day-file log in `dir`, continuing the chain from `HEAD`
    /// or, without one, from the last line on disk.
    ///
    /// # Errors
    /// [`AuditError`] when the directory or `HEAD` cannot be read.
    pub fn open(dir: &Path, redactor: Redactor) -> Result<Self, AuditError> {
        Ok(Self {
            redactor,
            sink: Sink::Files(Box::new(FileLog::open(dir)?)),
        })
    }

    /// Opens the day-file log like [`AuditLog::open`] and moves a keyed anchor with `HEAD` from
    /// now on ([`crate::anchor`]).
    ///
    /// `fresh_key` says the key was just created: the current end of the log is then trusted and
    /// anchored, and an `audit.anchored` line records it. Otherwise the anchor found must match
    /// the log; when it is missing, forged or does not match, it is left frozen as it is (never
    /// rewritten over a tampered log) and `verify_anchored` keeps reporting the problem.
    ///
    /// # Errors
    /// As [`AuditLog::open`], and when the anchor cannot be written.
    pub fn open_anchored(
        dir: &Path,
        redactor: Redactor,
        anchor: Anchor,
        fresh_key: bool,
    ) -> Result<Self, AuditError> {
        Ok(Self {
            redactor,
            sink: Sink::Files(Box::new(FileLog::open_anchored(dir, anchor, fresh_key)?)),
        })
    }

    /// Adds witnesses to a day-file log ([`crate::witness`]; see `FileLog::add_witnesses`). A
    /// database chain keeps its own checkpoint in the database, and ignores them.
    #[must_use]
    pub fn with_witnesses(mut self, witnesses: Vec<Arc<dyn Witness>>) -> Self {
        if let Sink::Files(f) = &mut self.sink {
            f.add_witnesses(witnesses);
        }
        self
    }

    /// A log kept in a database chain ([`crate::chain`]); the store was opened with the anchor
    /// key and decided whether it moves the checkpoint.
    pub fn on_chain(store: Arc<dyn ChainStore>, redactor: Redactor) -> Self {
        Self {
            redactor,
            sink: Sink::Chain(store),
        }
    }

    /// Whether a keyed anchor moves with the chain's end (false when unanchored or frozen).
    pub fn is_anchored(&self) -> bool {
        match &self.sink {
            Sink::Files(f) => f.is_anchored(),
            Sink::Chain(c) => c.is_anchored(),
        }
    }

    /// Appends one event of type `kind` with `fields` (an object), redacted before hashing, and
    /// returns its sequence number once it is durable (on disk, or committed).
    ///
    /// # Errors
    /// [`AuditError::Io`] or [`AuditError::Chain`] when the line cannot be stored durably.
    pub fn append(&self, kind: &str, fields: Value) -> Result<u64, AuditError> {
        let p = pending(kind, fields, Some(&self.redactor));
        match &self.sink {
            Sink::Files(f) => f.append(p),
            Sink::Chain(c) => c.append(p, true)?.ok_or_else(|| AuditError::Chain {
                location: c.location(),
                message: "the chain did not report the line's sequence number".into(),
            }),
        }
    }

    /// Appends like [`Self::append`] without waiting for the disk or the database: the next
    /// `append`, [`Self::sync`] or drop of this log makes it durable. For records that nothing
    /// irreversible waits on.
    ///
    /// # Errors
    /// When the line cannot be written (files) or queued (database).
    pub fn append_lazy(&self, kind: &str, fields: Value) -> Result<(), AuditError> {
        let p = pending(kind, fields, Some(&self.redactor));
        match &self.sink {
            Sink::Files(f) => f.write_line(p).map(drop),
            Sink::Chain(c) => c.append(p, false).map(drop),
        }
    }

    /// Makes every line this log has written durable (a no-op when they already are).
    ///
    /// # Errors
    /// When the sync or commit fails.
    pub fn sync(&self) -> Result<(), AuditError> {
        match &self.sink {
            Sink::Files(f) => f.sync(),
            Sink::Chain(c) => c.sync(),
        }
    }

    /// Whether every line this log has written is durable (nothing for [`Self::sync`] to do).
    pub fn is_synced(&self) -> bool {
        match &self.sink {
            Sink::Files(f) => f.is_synced(),
            Sink::Chain(c) => c.is_synced(),
        }
    }

    /// Every entry after line `after`, in order (for the API's audit listing).
    ///
    /// # Errors
    /// When the log cannot be read.
    pub fn entries_after(&self, after: u64) -> Result<Vec<Entry>, AuditError> {
        match &self.sink {
            Sink::Files(f) => {
                let mut all = entries(f.dir())?;
                all.retain(|e| e.seq > after);
                Ok(all)
            }
            Sink::Chain(c) => chain_entries(c.as_ref(), after),
        }
    }

    /// The redactor applied to every event (also used for run artifacts).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Where the log is (a directory, or a database URL without its password), for messages.
    pub fn location(&self) -> PathBuf {
        match &self.sink {
            Sink::Files(f) => f.dir().to_owned(),
            Sink::Chain(c) => PathBuf::from(c.location()),
        }
    }
}

/// Where to read a log back from, for `pincer audit verify|tail|search` and `pincer doctor`.
#[derive(Debug, Clone)]
pub enum AuditSource {
    /// Day files, anchored by `anchor` signed with the key at `key`.
    Files {
        /// The `audit/` directory.
        dir: PathBuf,
        /// `secrets/audit.key`.
        key: PathBuf,
        /// `secrets/audit.anchor`.
        anchor: PathBuf,
        /// Witnesses of the chain's end ([`crate::witness`]).
        witnesses: Vec<Arc<dyn Witness>>,
    },
    /// A database chain, verified with this node's key (when it has one).
    Chain {
        /// The store.
        store: Arc<dyn ChainStore>,
        /// The anchor key.
        key: Option<AnchorKey>,
    },
}

impl AuditSource {
    /// Verifies the whole log and its anchor.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] naming the first problem; other errors when it cannot be read.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        match self {
            Self::Files {
                dir,
                key,
                anchor,
                witnesses,
            } => verify_witnessed(dir, key, anchor, witnesses),
            Self::Chain { store, key } => verify_chain(store.as_ref(), key.as_ref()),
        }
    }

    /// Every entry after line `after`, in order.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub fn entries_after(&self, after: u64) -> Result<Vec<Entry>, AuditError> {
        match self {
            Self::Files { dir, .. } => {
                let mut all = entries(dir)?;
                all.retain(|e| e.seq > after);
                Ok(all)
            }
            Self::Chain { store, .. } => chain_entries(store.as_ref(), after),
        }
    }

    /// Whether the log exists yet (a database chain always does).
    pub fn exists(&self) -> bool {
        match self {
            // A log whose directory is gone but whose anchor or witnesses remember it exists:
            // `verify` must say what was lost, not "no log yet".
            Self::Files {
                dir,
                anchor,
                witnesses,
                ..
            } => {
                dir.is_dir()
                    || anchor.exists()
                    || witnesses.iter().any(|w| !matches!(w.latest(), Ok(None)))
            }
            Self::Chain { .. } => true,
        }
    }

    /// Where the log is, for messages.
    pub fn location(&self) -> String {
        match self {
            Self::Files { dir, .. } => dir.display().to_string(),
            Self::Chain { store, .. } => store.location(),
        }
    }
}

/// The `audit.anchored` event a writer records when it starts anchoring a chain.
pub fn anchored_event(key: &AnchorKey, lines_before: u64) -> Value {
    json!({"key": key.id(), "lines_before": lines_before})
}
