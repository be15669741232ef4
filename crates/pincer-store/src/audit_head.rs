//! The audit chain's end recorded in the state database: a [`pincer_audit::Witness`] of the
//! day-file log (issue 23, part 4). Its own connection to `state.db` (made by the same
//! `sqlite::connect` as the store's), so it never queues behind the store's thread. The head
//! only moves forward.
//!
//! Written off the audit log's durable path (issue 24): [`Witness::record`] hands the newest
//! `(seq, hash)` to a writer thread and returns, so a turn's durable sync never waits for a
//! second SQLite writer (and its busy handler's sleeps while the store's thread holds the write
//! lock). Records arriving while one is written, or within 50 ms of the last write, are
//! coalesced to the newest (a busy gateway syncs once per turn). A witness may be behind the
//! log — `verify` accepts that — and this one is at most 50 ms behind (plus one write); dropping
//! it (the log closing) writes what is pending first.
//!
//! The connection is made (and the schema checked) at the first write or read, on the thread
//! that needs it — for a one-shot `pincer ask`, the writer thread at the end of the turn,
//! while the turn finishes; a process that never syncs never opens it (issue 24).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use chrono::Utc;
use pincer_audit::{AuditError, Checkpoint, Witness};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::StoreError;
use crate::sqlite::{connect, migrate, stamp};

/// The audit head in one SQLite state database.
#[derive(Debug)]
pub struct SqliteAuditHead {
    path: PathBuf,
    conn: Arc<Lazy>,
    queue: Arc<Queue>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The connection, made at first use.
type Lazy = OnceLock<Mutex<Connection>>;

/// The connection, made (created 0600, with the store's settings and busy wait, and migrated)
/// on first use; a failure is reported to this caller and the next use tries again.
fn conn<'a>(lazy: &'a Lazy, path: &Path) -> Result<&'a Mutex<Connection>, AuditError> {
    if let Some(c) = lazy.get() {
        return Ok(c);
    }
    let open = || -> Result<Connection, StoreError> {
        let mut c = connect(path)?;
        migrate(&mut c)?;
        Ok(c)
    };
    let made = open().map_err(|e| AuditError::Chain {
        location: name(path),
        message: e.to_string(),
    })?;
    // Two first uses at once: one connection is kept, the other closed.
    Ok(lazy.get_or_init(|| Mutex::new(made)))
}

/// What the writer thread is to write next.
#[derive(Debug, Default)]
struct Queue {
    slot: Mutex<Slot>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Slot {
    next: Option<(u64, String)>,
    writing: bool,
    closed: bool,
    /// Someone waits in [`Queue::drain`]: write without coalescing.
    flush: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until nothing is pending or being written.
    fn drain(&self) {
        let mut s = self.lock();
        s.flush = true;
        self.changed.notify_all();
        while s.next.is_some() || s.writing {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.flush = false;
    }
}

impl SqliteAuditHead {
    /// The head in the database at `path`. Nothing is opened yet: the connection is made (and
    /// the schema migrated) at the first write or read, and an error there is reported by it
    /// (a write's as the witness falling behind, a read's to the caller); the next use tries
    /// again.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            conn: Arc::new(OnceLock::new()),
            queue: Arc::default(),
            writer: Mutex::new(None),
        }
    }

    fn fail(&self, e: &rusqlite::Error) -> AuditError {
        fail(&self.path, e)
    }

    /// Writes `(seq, hash)` on this thread.
    fn write_here(&self, seq: u64, hash: &str) -> Result<(), AuditError> {
        let c = conn(&self.conn, &self.path)?;
        write(c, seq, hash).map_err(|e| self.fail(&e))
    }

    /// Starts the writer thread on first use (a process that never syncs never starts it).
    fn ensure_writer(&self) -> Result<(), AuditError> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if w.is_some() {
            return Ok(());
        }
        let (queue, conn, path) = (self.queue.clone(), self.conn.clone(), self.path.clone());
        let handle = std::thread::Builder::new()
            .name("pincer-audit-head".into())
            .spawn(move || write_loop(&queue, &conn, &path))
            .map_err(|e| AuditError::Chain {
                location: name(&self.path),
                message: format!("starting its writer: {e}"),
            })?;
        *w = Some(handle);
        Ok(())
    }
}

fn name(path: &Path) -> String {
    format!("state database {} (audit_head)", path.display())
}

fn fail(path: &Path, e: &rusqlite::Error) -> AuditError {
    AuditError::Chain {
        location: name(path),
        message: e.to_string(),
    }
}

fn write(conn: &Mutex<Connection>, seq: u64, hash: &str) -> Result<(), rusqlite::Error> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    conn.prepare_cached(
        "INSERT INTO audit_head (id, seq, hash, updated_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
             updated_at = excluded.updated_at
         WHERE excluded.seq > audit_head.seq",
    )
    .and_then(|mut st| st.execute(params![seq, hash, stamp(Utc::now())]))
    .map(drop)
}

/// The writer thread: writes the newest pending head until closed and drained.
fn write_loop(queue: &Queue, lazy: &Lazy, path: &Path) {
    loop {
        let (seq, hash) = {
            let mut s = queue.lock();
            loop {
                if let Some(next) = s.next.take() {
                    s.writing = true;
                    break next;
                }
                if s.closed {
                    return;
                }
                s = queue
                    .changed
                    .wait(s)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let written =
            conn(lazy, path).and_then(|c| write(c, seq, &hash).map_err(|e| fail(path, &e)));
        if let Err(e) = written {
            // Behind, which `verify` accepts; the log is not failed for it.
            tracing::error!("audit log: {} not updated: {e}", name(path));
        }
        let mut s = queue.lock();
        s.writing = false;
        queue.changed.notify_all();
        // Coalesce: at most one write per COALESCE while the log is busy (a served gateway
        // syncs once per turn), at once when closing or when someone waits for it.
        let until = std::time::Instant::now() + COALESCE;
        while !s.closed && !s.flush {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            s = queue
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The shortest time between two head writes while records keep coming.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(50);

impl Drop for SqliteAuditHead {
    /// Writes what is pending, then stops the writer.
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.changed.notify_all();
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = writer {
            let _ = h.join();
        }
    }
}

impl Witness for SqliteAuditHead {
    fn name(&self) -> String {
        name(&self.path)
    }

    fn record(&self, seq: u64, hash: &str) -> Result<(), AuditError> {
        if let Err(e) = self.ensure_writer() {
            // No thread: write here, as before.
            tracing::error!("audit log: {e}");
            return self.write_here(seq, hash);
        }
        let mut s = self.queue.lock();
        if s.next.as_ref().is_none_or(|(n, _)| seq > *n) {
            s.next = Some((seq, hash.to_owned()));
        }
        drop(s);
        self.queue.changed.notify_all();
        Ok(())
    }

    fn latest(&self) -> Result<Option<Checkpoint>, AuditError> {
        // What this process recorded is read back, not what is still on its way.
        self.queue.drain();
        let conn = conn(&self.conn, &self.path)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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
        let h = SqliteAuditHead::new(&path);
        assert_eq!(h.latest().unwrap(), None);
        h.record(5, "five").unwrap();
        h.record(3, "three").unwrap();
        h.record(9, "nine").unwrap();
        drop(h);
        let again = SqliteAuditHead::new(&path);
        assert_eq!(
            again.latest().unwrap(),
            Some(Checkpoint {
                seq: 9,
                hash: "nine".into()
            })
        );
        // Many records at once (handed to the writer, coalesced): the newest is what is read
        // back, and what a fresh handle finds after this one is dropped.
        for seq in 10..200 {
            again.record(seq, &format!("h{seq}")).unwrap();
        }
        assert_eq!(again.latest().unwrap().unwrap().seq, 199);
        again.record(200, "last").unwrap();
        drop(again);
        let third = SqliteAuditHead::new(&path);
        assert_eq!(
            third.latest().unwrap(),
            Some(Checkpoint {
                seq: 200,
                hash: "last".into()
            })
        );
        // The store opens the same file and sees its schema up to date.
        crate::SqliteStore::open(&path).unwrap();
    }

    /// Nothing is opened until the head is written or read; a database that cannot be opened
    /// is reported then (to the reader), and tried again at the next use.
    #[test]
    fn the_connection_is_made_at_first_use() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("state.db");
        let h = SqliteAuditHead::new(&path);
        assert!(!path.exists());
        h.record(1, "one").unwrap();
        assert_eq!(h.latest().unwrap().unwrap().seq, 1);
        assert!(path.exists());

        let nowhere = SqliteAuditHead::new(&t.path().join("missing/dir/state.db"));
        nowhere.record(1, "one").unwrap();
        let e = nowhere.latest().unwrap_err();
        assert!(e.to_string().contains("missing/dir/state.db"), "{e}");
        // The failure is not kept: once the database can be made, the next use makes it.
        std::fs::create_dir_all(t.path().join("missing/dir")).unwrap();
        assert_eq!(nowhere.latest().unwrap(), None);
        nowhere.record(2, "two").unwrap();
        assert_eq!(nowhere.latest().unwrap().unwrap().seq, 2);
    }
}
