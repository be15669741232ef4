//! Instruction files read once and kept while they are unchanged (issue 24): every turn
//! assembles the prompt from the same six files, so a turn asks the kernel for one `stat` per
//! file instead of open, stat, two reads and a close.
//!
//! A cached copy is used only while the file's device, inode, size, modification time and
//! change time are all what they were when it was read. The change time moves on every write,
//! rename over, `chmod` or `touch` and cannot be set by a user, so an edit is always seen — with
//! one gap that git calls "racy clean": timestamps are coarse (a kernel tick, up to 2 s on some
//! filesystems), so a file written twice within one tick with the same size looks unchanged. A
//! copy is therefore only kept for a file whose times are at least [`SETTLED`] older than the
//! moment it was read; a file edited within the last two seconds is read every time.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

/// How much older than "now" a file's times must be for a copy to be kept.
const SETTLED: Duration = Duration::from_secs(2);
/// Files larger than this are read every time (the prompt caps them anyway).
const MAX_FILE: u64 = 256 * 1024;
/// Most files kept (one entry per agent file; cleared when exceeded).
const MAX_ENTRIES: usize = 512;

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether both times are at least [`SETTLED`] before `read_at`.
    fn settled(&self, read_at: SystemTime) -> bool {
        let Ok(now) = read_at.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let limit = i64::try_from(now.saturating_sub(SETTLED).as_secs()).unwrap_or(i64::MAX);
        // Whole seconds, rounded in the safe direction: a time in the limit's second is not
        // settled.
        self.mtime.0 < limit && self.ctime.0 < limit
    }
}

/// A file's content as read, and the stamp it had.
type Entry = (Stamp, Arc<[u8]>);

/// A cache of small files by path.
#[derive(Debug, Default)]
pub(crate) struct FileCache {
    entries: Mutex<HashMap<PathBuf, Entry>>,
    /// Reads answered from the cache (the tests' view of it).
    #[cfg(test)]
    hits: std::sync::atomic::AtomicU64,
}

impl FileCache {
    /// The process's cache of instruction files.
    pub(crate) fn instructions() -> &'static Self {
        static CACHE: OnceLock<FileCache> = OnceLock::new();
        CACHE.get_or_init(Self::default)
    }

    /// The file's content (following links, like [`fs::read`]), from the cache when the file is
    /// unchanged.
    ///
    /// # Errors
    /// As [`fs::read`].
    pub(crate) fn read(&self, path: &Path) -> std::io::Result<Arc<[u8]>> {
        let now = Stamp::of(&fs::metadata(path)?);
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((stamp, bytes)) = entries.get(path)
                && *stamp == now
            {
                #[cfg(test)]
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(bytes.clone());
            }
        }
        let read_at = SystemTime::now();
        let mut f = File::open(path)?;
        // The stamp of what is read: taken from the open file before reading it, so a write
        // racing with the read leaves a stamp that no longer matches (read again next time).
        let stamp = Stamp::of(&f.metadata()?);
        let mut bytes = Vec::with_capacity(usize::try_from(stamp.size).unwrap_or(0));
        f.read_to_end(&mut bytes)?;
        let bytes: Arc<[u8]> = bytes.into();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if stamp.size <= MAX_FILE && stamp.settled(read_at) {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(path.to_owned(), (stamp, bytes.clone()));
        } else {
            entries.remove(path);
        }
        Ok(bytes)
    }

    /// Reads answered from the cache so far.
    #[cfg(test)]
    fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn a_file_changed_in_the_last_seconds_is_read_every_time() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("SOUL.md");
        fs::write(&p, "first").unwrap();
        age(&p, 3600);
        let c = FileCache::default();
        // The change time is still recent (set_modified moves it): read each time.
        assert_eq!(&*c.read(&p).unwrap(), b"first");
        assert_eq!(&*c.read(&p).unwrap(), b"first");
        assert_eq!(
            c.hits(),
            0,
            "a file changed in the last seconds is never cached"
        );
    }

    #[test]
    fn same_size_rewrite_with_the_old_mtime_is_seen() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("RULES.md");
        fs::write(&p, "aaaa").unwrap();
        let c = FileCache::default();
        // Pretend the cached copy was settled (the test cannot wait for the change time to
        // age): insert it as read long ago with the file's current stamp.
        let stamp = Stamp::of(&fs::metadata(&p).unwrap());
        c.entries
            .lock()
            .unwrap()
            .insert(p.clone(), (stamp, Arc::from(&b"aaaa"[..])));
        assert_eq!(&*c.read(&p).unwrap(), b"aaaa");
        assert_eq!(c.hits(), 1, "an unchanged file comes from the cache");
        // Rewritten in place with the same size and its modification time put back: the
        // change time still moved.
        let before = fs::metadata(&p).unwrap().modified().unwrap();
        fs::write(&p, "bbbb").unwrap();
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert_eq!(&*c.read(&p).unwrap(), b"bbbb");
        // Replaced by rename (a new inode), and removed.
        let tmp = t.path().join("tmp");
        fs::write(&tmp, "cccc").unwrap();
        fs::rename(&tmp, &p).unwrap();
        assert_eq!(&*c.read(&p).unwrap(), b"cccc");
        fs::remove_file(&p).unwrap();
        assert_eq!(c.read(&p).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        assert_eq!(c.hits(), 1);
    }

    #[test]
    fn settled_means_both_times_are_old() {
        let now = SystemTime::now();
        let secs = |d: u64| {
            i64::try_from(
                (now - Duration::from_secs(d))
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            )
            .unwrap()
        };
        let s = |m: u64, c: u64| Stamp {
            dev: 1,
            ino: 1,
            size: 1,
            mtime: (secs(m), 0),
            ctime: (secs(c), 0),
        };
        assert!(s(10, 10).settled(now));
        assert!(!s(10, 1).settled(now));
        assert!(!s(1, 10).settled(now));
        assert!(!s(0, 0).settled(now));
    }
}
