//! Reading the log back: every entry in order, and following the tail as it grows.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::AuditError;
use crate::log::day_files;

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp (RFC 3339, UTC).
    pub ts: String,
    /// The event (`type` plus fields).
    pub event: Value,
    /// The line as stored.
    pub raw: String,
}

impl Entry {
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(raw).ok()?;
        Some(Self {
            seq: v.get("seq")?.as_u64()?,
            ts: v.get("ts")?.as_str()?.to_owned(),
            event: v.get("event")?.clone(),
            raw: raw.to_owned(),
        })
    }

    /// The event type (`tool.call`, …).
    pub fn kind(&self) -> &str {
        self.event.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// A string field of the event.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.event.get(name).and_then(Value::as_str)
    }
}

/// Every readable entry, oldest first. Lines that do not parse are skipped (`verify` reports
/// them).
///
/// # Errors
/// [`AuditError::Io`] when a file cannot be read.
pub fn entries(dir: &Path) -> Result<Vec<Entry>, AuditError> {
    let mut out = Vec::new();
    for path in day_files(dir)? {
        let f = File::open(&path).map_err(|e| AuditError::io(&path, e))?;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| AuditError::io(&path, e))?;
            if let Some(e) = Entry::parse(&line) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Follows the log from its current end: each [`Follower::poll`] returns the complete lines
/// appended since, across day-file changes.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    file: Option<PathBuf>,
    offset: u64,
}

impl Follower {
    /// Starts at the current end of the log.
    ///
    /// # Errors
    /// [`AuditError::Io`] when the directory cannot be read.
    pub fn at_end(dir: &Path) -> Result<Self, AuditError> {
        let file = day_files(dir)?.pop();
        let offset = match &file {
            Some(p) => std::fs::metadata(p)
                .map_err(|e| AuditError::io(p, e))?
                .len(),
            None => 0,
        };
        Ok(Self {
            dir: dir.to_owned(),
            file,
            offset,
        })
    }

    /// New complete entries since the last poll.
    ///
    /// # Errors
    /// [`AuditError::Io`] when a file cannot be read.
    pub fn poll(&mut self) -> Result<Vec<Entry>, AuditError> {
        let mut out = Vec::new();
        loop {
            if let Some(path) = self.file.clone() {
                let mut f = File::open(&path).map_err(|e| AuditError::io(&path, e))?;
                f.seek(SeekFrom::Start(self.offset))
                    .map_err(|e| AuditError::io(&path, e))?;
                let mut reader = BufReader::new(f);
                let mut line = String::new();
                loop {
                    line.clear();
                    let n = reader
                        .read_line(&mut line)
                        .map_err(|e| AuditError::io(&path, e))?;
                    // Stop at end of file or at a line still being written.
                    if n == 0 || !line.ends_with('\n') {
                        break;
                    }
                    self.offset += n as u64;
                    if let Some(e) = Entry::parse(line.trim_end()) {
                        out.push(e);
                    }
                }
            }
            // Move on to a newer day file, if one appeared.
            let newer = day_files(&self.dir)?
                .into_iter()
                .find(|p| self.file.as_ref().is_none_or(|cur| p > cur));
            match newer {
                Some(p) => {
                    self.file = Some(p);
                    self.offset = 0;
                }
                None => return Ok(out),
            }
        }
    }
}
