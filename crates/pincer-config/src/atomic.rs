//! Atomic file replacement: write a temp file in the same directory, fsync it, rename it over the
//! target, fsync the directory. A crash at any point leaves either the old or the new file whole.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::ConfigError;

/// Atomically replaces `path` with `bytes` (mode 0600).
///
/// # Errors
/// [`ConfigError::Io`] when any step fails; the target is then unchanged.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    atomic_write_with_hook(path, bytes, || Ok(()))
}

/// Like [`atomic_write`], but calls `before_rename` after the temp file is durable and before it
/// replaces the target. An error from the hook aborts the write (the temp file is removed). Tests
/// use it to simulate a crash at the most delicate moment.
///
/// # Errors
/// [`ConfigError::Io`] when any step or the hook fails; the target is then unchanged.
pub fn atomic_write_with_hook(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce() -> std::io::Result<()>,
) -> Result<(), ConfigError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| ConfigError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| ConfigError::io(&tmp, e))?;
        f.sync_all().map_err(|e| ConfigError::io(&tmp, e))?;
        drop(f);
        before_rename().map_err(|e| ConfigError::io(path, e))?;
        fs::rename(&tmp, path).map_err(|e| ConfigError::io(path, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ConfigError::io(dir, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f.toml");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "no temp file left behind"
        );
    }

    #[test]
    fn interrupted_before_rename_keeps_old_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f.toml");
        atomic_write(&p, b"old").unwrap();
        let err = atomic_write_with_hook(&p, b"new", || Err(std::io::Error::other("power cut")));
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
