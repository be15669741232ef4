//! The append side of the audit log.
//!
//! fsync policy: each appended line is written with one `write` and the day file is
//! `fdatasync`ed before `append` returns; `HEAD` is then replaced atomically (temp → rename). A
//! crash can lose at most the line being written, and `verify` reports a torn last line.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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
    file: Option<(String, File)>,
}

/// An open audit log directory.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    redactor: Redactor,
    state: Mutex<State>,
}

/// The `HEAD` file: where the chain ends.
pub(crate) fn head_path(dir: &Path) -> PathBuf {
    dir.join("HEAD")
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

impl AuditLog {
    /// Opens (creating, mode 0700) the log in `dir`, continuing the chain from `HEAD` or, without
    /// one, from the last line on disk.
    ///
    /// # Errors
    /// [`AuditError`] when the directory or `HEAD` cannot be read.
    pub fn open(dir: &Path, redactor: Redactor) -> Result<Self, AuditError> {
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
        Ok(Self {
            dir: dir.to_owned(),
            redactor,
            state: Mutex::new(State {
                seq,
                hash,
                file: None,
            }),
        })
    }

    /// Appends one event of type `kind` with `fields` (an object), redacted before hashing.
    /// Returns its sequence number.
    ///
    /// # Errors
    /// [`AuditError::Io`] when the line cannot be written durably.
    pub fn append(&self, kind: &str, fields: Value) -> Result<u64, AuditError> {
        let mut event = serde_json::Map::new();
        event.insert("type".into(), Value::from(kind));
        if let Value::Object(map) = fields {
            event.extend(map);
        }
        let event = self.redactor.value(&Value::Object(event));
        let now = Utc::now();
        let ts = now.to_rfc3339_opts(SecondsFormat::Micros, true);
        let day = now.format("%Y-%m-%d").to_string();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = st.seq + 1;
        let hash = line_hash(seq, &ts, &st.hash, &event);
        let mut line =
            json!({"seq": seq, "ts": ts, "prev_hash": st.hash, "hash": hash, "event": event})
                .to_string();
        line.push('\n');
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
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| AuditError::io(&path, e))?;
            st.file = Some((day, f));
        }
        if let Some((_, f)) = st.file.as_mut() {
            f.write_all(line.as_bytes())
                .map_err(|e| AuditError::io(&path, e))?;
            f.sync_data().map_err(|e| AuditError::io(&path, e))?;
        }
        let head = head_path(&self.dir);
        let tmp = self.dir.join(".HEAD.tmp");
        fs::write(&tmp, json!({"seq": seq, "hash": hash}).to_string())
            .map_err(|e| AuditError::io(&tmp, e))?;
        fs::rename(&tmp, &head).map_err(|e| AuditError::io(&head, e))?;
        st.seq = seq;
        st.hash = hash;
        Ok(seq)
    }

    /// The redactor applied to every event (also used for run artifacts).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
