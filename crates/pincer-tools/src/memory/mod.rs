//! Agent memory (A7): Markdown files in `agents/<id>/memory/` — `MEMORY.md` (long-term, curated,
//! by sections) and `YYYY-MM-DD.md` daily notes — and the tools that read, search, add to and
//! prune them: `memory.get`, `memory.search`, `memory.append` (L1) and `memory.forget` (L2).
//!
//! Confinement: the tools name files, never paths — only `MEMORY.md` and `YYYY-MM-DD.md` in the
//! agent's own memory directory exist for them — and open them without following symlinks, so a
//! memory file replaced by a link to anything else is refused, not read or written. Memory is
//! untrusted input: what the tools return reaches the model labelled like any tool output.
//! Invalid UTF-8 is read lossily; files larger than [`MAX_FILE`] are refused by `get` and
//! skipped by `search`.

mod search;
mod tools;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use search::{Hit, NoteSearch, SearchFuture, SearchOutcome, search};
pub use tools::{MemoryAppend, MemoryForget, MemoryGet, MemorySearch};

use crate::ToolError;

/// Largest memory file read.
pub const MAX_FILE: u64 = 1024 * 1024;

/// The long-term memory file.
pub const LONG_TERM: &str = "MEMORY.md";

/// One agent's memory directory.
#[derive(Debug, Clone)]
pub struct MemoryDir {
    dir: PathBuf,
    /// The agent's IANA time zone for daily notes (UTC without one).
    tz: Option<String>,
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits().cast_signed()
}

impl MemoryDir {
    /// The memory of the agent whose directory is `agent_dir` (`agents/<id>`).
    pub fn new(agent_dir: &Path) -> Self {
        Self {
            dir: agent_dir.join("memory"),
            tz: None,
        }
    }

    /// Daily notes follow `tz` (an IANA zone, checked by the configuration) instead of UTC.
    #[must_use]
    pub fn with_tz(mut self, tz: Option<String>) -> Self {
        self.tz = tz;
        self
    }

    /// Today's daily note file, in the agent's time zone.
    pub fn today_file(&self) -> String {
        let day = self
            .tz
            .as_deref()
            .and_then(|tz| pincer_scheduler::today_in(tz).ok())
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
        format!("{day}.md")
    }

    /// Whether `name` is a memory file name: `MEMORY.md` or `YYYY-MM-DD.md`.
    pub fn valid_name(name: &str) -> bool {
        name == LONG_TERM
            || name.strip_suffix(".md").is_some_and(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() && d.len() == 10
            })
    }

    fn path(&self, name: &str) -> Result<PathBuf, ToolError> {
        if !Self::valid_name(name) {
            return Err(ToolError::Forbidden(format!(
                "`{name}` is not a memory file (MEMORY.md or YYYY-MM-DD.md)"
            )));
        }
        // The directory itself must be a real directory, not a link elsewhere.
        match std::fs::symlink_metadata(&self.dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(ToolError::Forbidden(
                    "the memory directory is not a plain directory".into(),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.dir)
                    .map_err(|e| ToolError::Failed(format!("memory directory: {e}")))?;
            }
            Err(e) => return Err(ToolError::Failed(format!("memory directory: {e}"))),
        }
        Ok(self.dir.join(name))
    }

    fn open_read(&self, name: &str) -> Result<Option<File>, ToolError> {
        let path = self.path(name)?;
        match OpenOptions::new()
            .read(true)
            .custom_flags(nofollow())
            .open(&path)
        {
            Ok(f) => {
                let m = f
                    .metadata()
                    .map_err(|e| ToolError::Failed(format!("{name}: {e}")))?;
                if !m.is_file() {
                    return Err(ToolError::Forbidden(format!(
                        "{name} is not a regular file"
                    )));
                }
                Ok(Some(f))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                Err(ToolError::Forbidden(format!(
                    "{name} is a symbolic link; memory never follows links"
                )))
            }
            Err(e) => Err(ToolError::Failed(format!("{name}: {e}"))),
        }
    }

    /// The file's text (lossy UTF-8), `None` when it does not exist.
    ///
    /// # Errors
    /// Forbidden names, links and special files; files over [`MAX_FILE`].
    pub fn read(&self, name: &str) -> Result<Option<String>, ToolError> {
        let Some(mut f) = self.open_read(name)? else {
            return Ok(None);
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len > MAX_FILE {
            return Err(ToolError::Failed(format!(
                "{name} is {len} bytes, over the {MAX_FILE}-byte limit for memory files"
            )));
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .map_err(|e| ToolError::Failed(format!("{name}: {e}")))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Runs `f` holding an exclusive lock on the memory directory (`flock` on `memory/.lock`),
    /// so read-modify-write changes from concurrent runs — in this process or another on the
    /// same home — never lose each other's notes.
    ///
    /// # Errors
    /// When the lock file cannot be opened or locked, or what `f` returns.
    pub fn locked<T>(&self, f: impl FnOnce() -> Result<T, ToolError>) -> Result<T, ToolError> {
        self.path(LONG_TERM)?; // the directory exists and is a real directory
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nofollow())
            .open(self.dir.join(".lock"))
            .map_err(|e| ToolError::Failed(format!("memory lock: {e}")))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| ToolError::Failed(format!("memory lock: {e}")))?;
        let out = f();
        let _ = rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock);
        out
    }

    /// Replaces the file's text (temp file in the same directory, then rename; never through a
    /// link).
    ///
    /// # Errors
    /// As [`Self::read`], and write failures.
    pub fn write(&self, name: &str, text: &str) -> Result<(), ToolError> {
        let path = self.path(name)?;
        // Refuse to replace a link (rename would replace the link itself, but say so instead).
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.file_type().is_file()) {
            return Err(ToolError::Forbidden(format!(
                "{name} is not a regular file; memory never writes through links"
            )));
        }
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nofollow())
            .open(&tmp)
            .map_err(|e| ToolError::Failed(format!("{name}: {e}")))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| ToolError::Failed(format!("{name}: {e}")))?;
        std::fs::rename(&tmp, &path).map_err(|e| ToolError::Failed(format!("{name}: {e}")))
    }

    /// Up to `cap` bytes of `name` and its size, without creating anything or following a link;
    /// `None` when it is missing, a link or unreadable (the prompt's view of `MEMORY.md`).
    pub fn read_prefix(&self, name: &str, cap: usize) -> Option<(Vec<u8>, u64)> {
        if !Self::valid_name(name) {
            return None;
        }
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(nofollow())
            .open(self.dir.join(name))
            .ok()?;
        let meta = f.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        f.take(u64::try_from(cap).unwrap_or(u64::MAX))
            .read_to_end(&mut bytes)
            .ok()?;
        Some((bytes, meta.len()))
    }

    /// The modification time and size of `name` without opening it (a link is not followed
    /// and reads as `None`, like a missing file; `read_bytes` then says why).
    pub fn stat(&self, name: &str) -> Option<(std::time::SystemTime, u64)> {
        if !Self::valid_name(name) {
            return None;
        }
        let m = std::fs::symlink_metadata(self.dir.join(name)).ok()?;
        m.file_type()
            .is_file()
            .then(|| m.modified().ok().map(|t| (t, m.len())))
            .flatten()
    }

    /// The bytes, modification time and size of `name`, never through a link; `None` when it
    /// is missing.
    ///
    /// # Errors
    /// Forbidden names, links and special files; files over [`MAX_FILE`].
    pub fn read_bytes(
        &self,
        name: &str,
    ) -> Result<Option<(Vec<u8>, std::time::SystemTime, u64)>, ToolError> {
        let Some(mut f) = self.open_read(name)? else {
            return Ok(None);
        };
        let meta = f
            .metadata()
            .map_err(|e| ToolError::Failed(format!("{name}: {e}")))?;
        if meta.len() > MAX_FILE {
            return Err(ToolError::Failed(format!(
                "{name} is {} bytes, over the {MAX_FILE}-byte limit for memory files",
                meta.len()
            )));
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .map_err(|e| ToolError::Failed(format!("{name}: {e}")))?;
        let mtime = meta
            .modified()
            .map_err(|e| ToolError::Failed(format!("{name}: {e}")))?;
        Ok(Some((bytes, mtime, meta.len())))
    }

    /// Every memory file name present, long-term first, then daily notes newest first.
    pub fn files(&self) -> Vec<String> {
        let mut days: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| Self::valid_name(n) && n != LONG_TERM)
                    .collect()
            })
            .unwrap_or_default();
        days.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        if self.dir.join(LONG_TERM).exists() {
            out.push(LONG_TERM.to_owned());
        }
        out.extend(days);
        out
    }
}
