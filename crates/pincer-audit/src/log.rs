//! The append side of the audit log.
//!
//! fsync policy (group commit): each appended line is written with one `write`, and `append`
//! returns only once the day file has been `fdatasync`ed past that line. Appends that arrive
//! while a sync is running wait for the next one, so concurrent callers share a single
//! `fdatasync` instead of queueing one each. `append_lazy` writes and chains the line the same
//! way but leaves the sync to the next `append`, `sync` or drop — for records nothing
//! irreversible waits on (`run.start`, `task.end`); a process crash cannot lose them (they are in
//! the page cache), a power loss can. After each sync `HEAD` is rewritten in place (one
//! fixed-width write) with the last durable line, so it never points past what is on disk, and it
//! only moves forward. Several writers (processes, or instances in one process) share the chain:
//! each line is chained and written under an exclusive `flock` on `<dir>/.lock`, continuing from
//! the last line on disk when another writer appended since. A crash
//! can lose only lines whose `append` had not returned, and `verify` reports a torn last line.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::anchor::Anchor;
use crate::chain::Pending;
use crate::witness::Witness;
use crate::{AuditError, Redactor};

/// `prev_hash` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// sha256 over the canonical JSON (sorted keys) of a line without its own hash.
pub(crate) fn line_hash(seq: u64, ts: &str, prev_hash: &str, event: &Value) -> String {
    let canonical =
        json!({"seq": seq, "ts": ts, "prev_hash": prev_hash, "event": event}).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

#[derive(Debug)]
struct State {
    seq: u64,
    hash: String,
    file: Option<(String, Arc<File>)>,
    /// Length of the day file after this instance's last write; a different length means
    /// another writer (another process, or another instance) appended since.
    end: Option<u64>,
}

/// An exclusive `flock` on `<dir>/.lock`, held while a line is chained and written (or `HEAD`
/// moved), so several writers (processes, or instances in one process) extend one chain. The
/// lock file stays open for the log's life; a process-local mutex around it keeps two threads
/// of one instance from sharing (and one of them releasing) the same `flock`. Released on drop.
struct DirLock<'a>(MutexGuard<'a, File>);

impl<'a> DirLock<'a> {
    fn acquire(file: &'a Mutex<File>, dir: &Path) -> Result<Self, AuditError> {
        let f = file.lock().unwrap_or_else(PoisonError::into_inner);
        rustix::fs::flock(&*f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| AuditError::io(dir.join(".lock"), e.into()))?;
        Ok(Self(f))
    }
}

impl Drop for DirLock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&*self.0, rustix::fs::FlockOperation::Unlock);
    }
}

fn open_lock_file(dir: &Path) -> Result<File, AuditError> {
    let path = dir.join(".lock");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| AuditError::io(&path, e))
}

/// The `(seq, hash)` of the last complete line of `f`, reading as little of its tail as finds
/// one (4 KiB, then more, up to 1 MiB).
fn last_line_of(f: &File) -> Option<(u64, String)> {
    use std::os::unix::fs::FileExt;
    let len = f.metadata().ok()?.len();
    let mut window = 4096u64;
    loop {
        let from = len.saturating_sub(window);
        let mut buf = vec![0; usize::try_from(len - from).ok()?];
        f.read_exact_at(&mut buf, from).ok()?;
        // Only complete lines: up to the last newline.
        let end = buf.iter().rposition(|&b| b == b'\n')?;
        let found = buf[..end].split(|&b| b == b'\n').rev().find_map(|l| {
            let v: Value = serde_json::from_slice(l).ok()?;
            Some((v.get("seq")?.as_u64()?, v.get("hash")?.as_str()?.to_owned()))
        });
        if found.is_some() || from == 0 || window >= 1024 * 1024 {
            return found;
        }
        window *= 8;
    }
}

/// How far the log is known to be on disk.
#[derive(Debug)]
struct Durable {
    synced: u64,
    syncing: bool,
}

/// An open audit log directory (the day-file side of [`crate::AuditLog`]).
#[derive(Debug)]
pub(crate) struct FileLog {
    dir: PathBuf,
    state: Mutex<State>,
    durable: Mutex<Durable>,
    synced_cv: Condvar,
    /// `<dir>/.lock`, open for the log's life (see [`DirLock`]).
    lock_file: Mutex<File>,
    /// The keyed checkpoint moved with `HEAD`, while it is consistent with the log
    /// ([`crate::anchor`]); `None` when unanchored or frozen.
    anchor: Option<Anchor>,
    /// Witnesses told the chain's end after each sync ([`crate::witness`]); only those that
    /// matched the log at open.
    witnesses: Vec<Arc<dyn Witness>>,
}

/// `HEAD`'s fixed width: it is rewritten in place, so every version has the same length.
const HEAD_LEN: usize = 128;

/// The `HEAD` file: where the chain ends.
pub(crate) fn head_path(dir: &Path) -> PathBuf {
    dir.join("HEAD")
}

/// Points `HEAD` at `(seq, hash)`: one fixed-width write at offset 0 (a 128-byte write within
/// one sector, so a crash leaves the old or the new record), padded with spaces that JSON
/// readers ignore.
fn write_head(dir: &Path, seq: u64, hash: &str) -> Result<(), AuditError> {
    write_fixed(
        &head_path(dir),
        json!({"seq": seq, "hash": hash}).to_string(),
        HEAD_LEN,
    )
}

/// Writes `text` padded with spaces to `width` bytes (plus a newline) at offset 0 of `path`
/// (created 0600), truncating a longer older version: one small write, so a crash leaves the
/// old or the new record. Used for `HEAD` and the anchor.
pub(crate) fn write_fixed(path: &Path, mut text: String, width: usize) -> Result<(), AuditError> {
    use std::os::unix::fs::FileExt;
    let pad = width.saturating_sub(text.len() + 1);
    text.extend(std::iter::repeat_n(' ', pad));
    text.push('\n');
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuditError::io(path, e))?;
    f.write_all_at(text.as_bytes(), 0)
        .map_err(|e| AuditError::io(path, e))?;
    // A longer record from an older version would leave a stale tail.
    if f.metadata().map_err(|e| AuditError::io(path, e))?.len() > text.len() as u64 {
        f.set_len(text.len() as u64)
            .map_err(|e| AuditError::io(path, e))?;
    }
    Ok(())
}

pub(crate) fn read_head(dir: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let path = head_path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(&path, e)),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| AuditError::Tampered {
        path: path.clone(),
        line: 0,
        reason: format!("HEAD is not JSON: {e}"),
    })?;
    match (
        v.get("seq").and_then(Value::as_u64),
        v.get("hash").and_then(Value::as_str),
    ) {
        (Some(seq), Some(hash)) => Ok(Some((seq, hash.to_owned()))),
        _ => Err(AuditError::Tampered {
            path,
            line: 0,
            reason: "HEAD lacks seq or hash".into(),
        }),
    }
}

/// Day files, oldest first.
pub(crate) fn day_files(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(AuditError::io(dir, e)),
    };
    files.sort();
    Ok(files)
}

/// The hash of line `seq`, searching day files newest first; `None` when no line has it.
pub(crate) fn hash_at(dir: &Path, seq: u64) -> Result<Option<String>, AuditError> {
    for path in day_files(dir)?.iter().rev() {
        let f = File::open(path).map_err(|e| AuditError::io(path, e))?;
        let mut first = None;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| AuditError::io(path, e))?;
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let s = v.get("seq").and_then(Value::as_u64);
            first = first.or(s);
            if s == Some(seq) {
                return Ok(v.get("hash").and_then(Value::as_str).map(str::to_owned));
            }
        }
        if first.is_some_and(|f| f < seq) {
            return Ok(None);
        }
    }
    crate::archive::hash_at(dir, seq)
}

fn last_line_state(dir: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let Some(last) = day_files(dir)?.pop() else {
        return Ok(None);
    };
    let f = File::open(&last).map_err(|e| AuditError::io(&last, e))?;
    let mut found = None;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| AuditError::io(&last, e))?;
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let (Some(seq), Some(hash)) = (
                v.get("seq").and_then(Value::as_u64),
                v.get("hash").and_then(Value::as_str),
            )
        {
            found = Some((seq, hash.to_owned()));
        }
    }
    Ok(found)
}

impl FileLog {
    /// Opens (creating, mode 0700) the log in `dir`, continuing the chain from `HEAD` or, without
    /// one, from the last line on disk.
    ///
    /// # Errors
    /// [`AuditError`] when the directory or `HEAD` cannot be read.
    pub(crate) fn open(dir: &Path) -> Result<Self, AuditError> {
        if !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| AuditError::io(dir, e))?;
        }
        let (seq, hash) = match read_head(dir)? {
            Some(h) => h,
            None => last_line_state(dir)?.unwrap_or((0, GENESIS.to_owned())),
        };
        let lock_file = open_lock_file(dir)?;
        // A new log gets its HEAD at once, so lines written lazily before the first sync are
        // "after HEAD" for `verify`, not a log without one.
        if read_head(dir)?.is_none() {
            write_head(dir, seq, &hash)?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                seq,
                hash,
                file: None,
                end: None,
            }),
            durable: Mutex::new(Durable {
                synced: seq,
                syncing: false,
            }),
            synced_cv: Condvar::new(),
            lock_file: Mutex::new(lock_file),
            anchor: None,
            witnesses: Vec::new(),
        })
    }

    /// Opens the log like [`FileLog::open`] and moves a keyed anchor with `HEAD` from now on.
    ///
    /// `fresh_key` says the key was just created: the current end of the log is then trusted and
    /// anchored, and an `audit.anchored` line records it. Otherwise the anchor found must match
    /// the log; when it is missing, forged or does not match, it is left frozen as it is (never
    /// rewritten over a tampered log) and `verify_anchored` keeps reporting the problem.
    ///
    /// # Errors
    /// As [`FileLog::open`], and when the anchor cannot be written.
    pub(crate) fn open_anchored(
        dir: &Path,
        anchor: Anchor,
        fresh_key: bool,
    ) -> Result<Self, AuditError> {
        let mut log = Self::open(dir)?;
        let (seq, hash) = {
            let st = log.state.lock().unwrap_or_else(PoisonError::into_inner);
            (st.seq, st.hash.clone())
        };
        if fresh_key {
            anchor.write(seq, &hash)?;
            let key = anchor.key.id();
            log.anchor = Some(anchor);
            log.write_line(pending(
                "audit.anchored",
                json!({"key": key, "lines_before": seq}),
                None,
            ))?;
            return Ok(log);
        }
        let consistent = match anchor.read() {
            Ok(Some(cp)) if cp.seq == seq => cp.hash == hash,
            Ok(Some(cp)) if cp.seq < seq => hash_at(dir, cp.seq)?.as_deref() == Some(&cp.hash),
            Ok(None) => seq == 0,
            Ok(Some(_)) | Err(_) => false,
        };
        if consistent {
            log.anchor = Some(anchor);
        } else {
            tracing::error!(
                "audit log {}: the anchor {} does not match the log; it is left as it is — run `pincer audit verify`",
                dir.display(),
                anchor.path.display()
            );
        }
        Ok(log)
    }

    /// Adds witnesses ([`crate::witness`]): each whose latest record matches the log (or that
    /// has none) is told the chain's end after every sync from now on; one that does not match
    /// — or cannot be read — is left frozen as it is and reported, never overwritten.
    pub(crate) fn add_witnesses(&mut self, witnesses: Vec<Arc<dyn Witness>>) {
        let (seq, hash) = {
            let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            (st.seq, st.hash.clone())
        };
        for w in witnesses {
            let consistent = match w.latest() {
                Ok(None) => Ok(true),
                Ok(Some(cp)) if cp.seq == seq => Ok(cp.hash == hash),
                Ok(Some(cp)) if cp.seq < seq => hash_at(&self.dir, cp.seq)
                    .map(|h| h.as_deref() == Some(cp.hash.as_str()))
                    .inspect(|ok| {
                        if *ok {
                            w.resume(&cp);
                        }
                    }),
                Ok(Some(_)) => Ok(false),
                Err(e) => Err(e),
            };
            match consistent {
                Ok(true) => self.witnesses.push(w),
                Ok(false) => tracing::error!(
                    "audit log {}: {} does not match the log; it is left as it is — run `pincer audit verify`",
                    self.dir.display(),
                    w.name()
                ),
                Err(e) => tracing::error!(
                    "audit log {}: {} cannot be checked ({e}); it is left as it is",
                    self.dir.display(),
                    w.name()
                ),
            }
        }
    }

    /// Whether a keyed anchor moves with `HEAD` (false when unanchored or frozen).
    pub(crate) fn is_anchored(&self) -> bool {
        self.anchor.is_some()
    }

    /// Appends one event and returns its sequence number once it is on disk.
    pub(crate) fn append(&self, p: Pending) -> Result<u64, AuditError> {
        let seq = self.write_line(p)?;
        self.make_durable(seq)?;
        Ok(seq)
    }

    /// Makes every line this log has written durable (a no-op when they already are).
    pub(crate) fn sync(&self) -> Result<(), AuditError> {
        let seq = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seq;
        self.make_durable(seq)
    }

    /// Whether every line this log has written is durable (nothing for [`Self::sync`] to do).
    pub(crate) fn is_synced(&self) -> bool {
        let seq = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seq;
        self.durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .synced
            >= seq
    }

    /// Chains and writes one line (not yet synced); returns its sequence number.
    pub(crate) fn write_line(&self, p: Pending) -> Result<u64, AuditError> {
        let Pending { ts, event } = p;
        let day = ts.get(..10).unwrap_or("unknown").to_owned();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let lock = DirLock::acquire(&self.lock_file, &self.dir)?;
        let path = self.dir.join(format!("{day}.jsonl"));
        // Reopen on a new day, or when the day file was unlinked or replaced under us (appending
        // to an unlinked inode would silently lose lines).
        let stale = st.file.as_ref().is_none_or(|(d, f)| {
            use std::os::unix::fs::MetadataExt;
            *d != day
                || match (f.metadata(), fs::metadata(&path)) {
                    (Ok(open), Ok(on_disk)) => {
                        open.nlink() == 0
                            || open.ino() != on_disk.ino()
                            || open.dev() != on_disk.dev()
                    }
                    _ => true,
                }
        });
        if stale {
            // Lines already written to the file being left behind must be durable before a
            // later sync (of the new file) can declare them so.
            if let Some((_, old)) = st.file.as_ref() {
                old.sync_data().map_err(|e| AuditError::io(&path, e))?;
            }
            let f = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| AuditError::io(&path, e))?;
            st.file = Some((day, Arc::new(f)));
            st.end = None;
        }
        // Another writer appended since our last line: continue its chain.
        let file = st.file.as_ref().map(|(_, f)| f.clone());
        if let Some(f) = &file {
            let len = f.metadata().map_err(|e| AuditError::io(&path, e))?.len();
            if st.end != Some(len)
                && let Some((seq, hash)) = last_line_of(f)
                && seq > st.seq
            {
                st.seq = seq;
                st.hash = hash;
            }
        }
        let seq = st.seq + 1;
        let hash = line_hash(seq, &ts, &st.hash, &event);
        let mut line =
            json!({"seq": seq, "ts": ts, "prev_hash": st.hash, "hash": hash, "event": event})
                .to_string();
        line.push('\n');
        if let Some(f) = &file {
            (&**f)
                .write_all(line.as_bytes())
                .map_err(|e| AuditError::io(&path, e))?;
            st.end = f.metadata().ok().map(|m| m.len());
        }
        st.seq = seq;
        st.hash = hash;
        drop(lock);
        drop(st);
        Ok(seq)
    }

    /// Returns once line `seq` is on disk: the first waiter syncs everything written so far
    /// (and moves `HEAD`), the others wait for that sync to cover them.
    fn make_durable(&self, seq: u64) -> Result<(), AuditError> {
        let lock = || self.durable.lock().unwrap_or_else(PoisonError::into_inner);
        let mut d = lock();
        loop {
            if d.synced >= seq {
                return Ok(());
            }
            if d.syncing {
                d = self
                    .synced_cv
                    .wait(d)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            d.syncing = true;
            drop(d);
            let result = self.sync_written();
            d = lock();
            d.syncing = false;
            if let Ok(target) = &result {
                d.synced = d.synced.max(*target);
            }
            self.synced_cv.notify_all();
            result?;
        }
    }

    /// Syncs every line written so far and points `HEAD` at the last one; returns its seq.
    fn sync_written(&self) -> Result<u64, AuditError> {
        let (target, hash, file) = {
            let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            (
                st.seq,
                st.hash.clone(),
                st.file.as_ref().map(|(_, f)| f.clone()),
            )
        };
        if let Some(f) = file {
            f.sync_data().map_err(|e| AuditError::io(&self.dir, e))?;
        }
        // HEAD only moves forward: another writer may already have pointed it further.
        let _lock = DirLock::acquire(&self.lock_file, &self.dir)?;
        if read_head(&self.dir)
            .ok()
            .flatten()
            .is_some_and(|(s, _)| s >= target)
        {
            return Ok(target);
        }
        write_head(&self.dir, target, &hash)?;
        if let Some(a) = &self.anchor {
            a.write(target, &hash)?;
        }
        // A witness that cannot be written falls behind (which `verify` accepts); the line is
        // durable and the caller is not failed for it.
        for w in &self.witnesses {
            if let Err(e) = w.record(target, &hash) {
                tracing::error!("audit log: {} not updated: {e}", w.name());
            }
        }
        Ok(target)
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// An event of type `kind` with `fields` (an object), redacted, stamped now.
pub(crate) fn pending(kind: &str, fields: Value, redactor: Option<&Redactor>) -> Pending {
    let mut event = serde_json::Map::new();
    event.insert("type".into(), Value::from(kind));
    if let Value::Object(map) = fields {
        event.extend(map);
    }
    let event = Value::Object(event);
    Pending {
        ts: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        event: match redactor {
            Some(r) => r.redact(event),
            None => event,
        },
    }
}

impl Drop for FileLog {
    /// Lines written lazily become durable when the log closes.
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!("audit log: final sync failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditLog;

    #[test]
    fn two_writers_on_one_directory_extend_one_chain() {
        let t = tempfile::tempdir().unwrap();
        let open =
            || Arc::new(AuditLog::open(t.path(), Redactor::new(vec![], &[]).unwrap()).unwrap());
        let (a, b) = (open(), open());
        let threads: Vec<_> = [a, b]
            .into_iter()
            .enumerate()
            .flat_map(|(w, log)| {
                (0..3).map(move |k| {
                    let log = log.clone();
                    std::thread::spawn(move || {
                        for n in 0..30 {
                            log.append("w", json!({"writer": w, "thread": k, "n": n}))
                                .unwrap();
                        }
                    })
                })
            })
            .collect();
        for h in threads {
            h.join().unwrap();
        }
        let report = crate::verify(t.path()).unwrap();
        assert_eq!(report.lines, 180);
    }

    #[test]
    fn concurrent_appends_share_syncs_and_keep_one_intact_chain() {
        let t = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(t.path(), Redactor::new(vec![], &[]).unwrap()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let log = log.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|j| log.append("t", json!({"thread": i, "n": j})).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=400).collect::<Vec<u64>>());
        let report = crate::verify(t.path()).unwrap();
        assert_eq!(report.lines, 400);
        // HEAD names the last line.
        assert_eq!(read_head(t.path()).unwrap().unwrap().0, 400);
        // A reopened log continues the chain.
        drop(log);
        let log = AuditLog::open(t.path(), Redactor::new(vec![], &[]).unwrap()).unwrap();
        assert_eq!(log.append("after", json!({})).unwrap(), 401);
        crate::verify(t.path()).unwrap();
    }

    #[test]
    fn lazy_lines_are_synced_by_the_next_append_by_sync_and_on_drop() {
        let t = tempfile::tempdir().unwrap();
        let log = AuditLog::open(t.path(), Redactor::new(vec![], &[]).unwrap()).unwrap();
        let head = || read_head(t.path()).unwrap().unwrap().0;
        assert_eq!(head(), 0);
        log.append_lazy("run.start", json!({})).unwrap();
        log.append_lazy("x", json!({})).unwrap();
        // Written and chained, not yet synced: HEAD has not moved; verify accepts the two
        // lines after it and says so.
        assert_eq!(head(), 0);
        assert!(!log.is_synced());
        let r = crate::verify(t.path()).unwrap();
        assert_eq!((r.lines, r.after_head), (2, 2));
        // A durable append covers the lazy lines before it.
        assert_eq!(log.append("run.end", json!({})).unwrap(), 3);
        assert_eq!(head(), 3);
        log.append_lazy("task.end", json!({})).unwrap();
        log.sync().unwrap();
        assert!(log.is_synced());
        assert_eq!(head(), 4);
        log.append_lazy("last", json!({})).unwrap();
        drop(log);
        assert_eq!(head(), 5);
        let r = crate::verify(t.path()).unwrap();
        assert_eq!((r.lines, r.after_head), (5, 0));
    }

    #[test]
    fn head_is_rewritten_in_place_at_a_fixed_width() {
        let t = tempfile::tempdir().unwrap();
        // An older, shorter and longer HEAD (written by rename) is replaced cleanly.
        let log = AuditLog::open(t.path(), Redactor::new(vec![], &[]).unwrap()).unwrap();
        log.append("a", json!({})).unwrap();
        let path = head_path(t.path());
        let old = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{}{}", old.trim_end(), " ".repeat(300))).unwrap();
        log.append("b", json!({})).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), HEAD_LEN, "{text:?}");
        assert_eq!(read_head(t.path()).unwrap().unwrap().0, 2);
        crate::verify(t.path()).unwrap();
    }

    #[test]
    fn a_day_file_removed_under_the_log_is_recreated_not_lost() {
        let t = tempfile::tempdir().unwrap();
        let log = AuditLog::open(t.path(), Redactor::new(vec![], &[]).unwrap()).unwrap();
        log.append("a", json!({})).unwrap();
        let file = day_files(t.path()).unwrap().pop().unwrap();
        fs::remove_file(&file).unwrap();
        let seq = log.append("b", json!({})).unwrap();
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.contains("\"seq\":2"), "{text}");
        assert_eq!(seq, 2);
    }
}
