//! The audit chain's end recorded in the state database: a [`pincer_audit::Witness`] of the
//! day-file log (issue 23, part 4). Its own connection to `state.db` — the audit writer is
//! synchronous and may run on any thread, so it does not queue behind the store's thread —
//! with the same busy timeout and WAL settings. The head only moves forward.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use pincer_audit::{AuditError, Checkpoint, Witness};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::StoreError;
use crate::sqlite::{migrate, stamp};

/// The audit head in one SQLite state database.
#[derive(Debug)]
pub struct SqliteAuditHead {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteAuditHead {
    /// Opens (and migrates) the database at `path`.
    ///
    /// # Errors
    /// When it cannot be opened or migrated.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Created 0600 like the store itself when it does not exist yet.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn fail(&self, e: &rusqlite::Error) -> AuditError {
        AuditError::Chain {
            location: self.name(),
            message: e.to_string(),
        }
    }
}

impl Witness for SqliteAuditHead {
    fn name(&self) -> String {
        format!("state database {} (audit_head)", self.path.display())
    }

    fn record(&self, seq: u64, hash: &str) -> Result<(), AuditError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.prepare_cached(
            "INSERT INTO audit_head (id, seq, hash, updated_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                 updated_at = excluded.updated_at
             WHERE excluded.seq > audit_head.seq",
        )
        .and_then(|mut st| st.execute(params![seq, hash, stamp(Utc::now())]))
        .map(drop)
        .map_err(|e| self.fail(&e))
    }

    fn latest(&self) -> Result<Option<Checkpoint>, AuditError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let row: Option<(i64, String)> = conn
            .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(|e| self.fail(&e))?;
        Ok(row.map(|(seq, hash)| Checkpoint {
            seq: u64::try_from(seq).unwrap_or(0),
            hash,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_only_moves_forward_and_survives_reopening() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("state.db");
        let h = SqliteAuditHead::open(&path).unwrap();
        assert_eq!(h.latest().unwrap(), None);
        h.record(5, "five").unwrap();
        h.record(3, "three").unwrap();
        h.record(9, "nine").unwrap();
        drop(h);
        let again = SqliteAuditHead::open(&path).unwrap();
        assert_eq!(
            again.latest().unwrap(),
            Some(Checkpoint {
                seq: 9,
                hash: "nine".into()
            })
        );
        // The store opens the same file and sees its schema up to date.
        crate::SqliteStore::open(&path).unwrap();
    }
}
