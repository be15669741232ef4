//! Archiving old day files (H6): compressed, never silently deleted, and the chain stays
//! verifiable across archives.
//!
//! `archive` moves each day file older than a cutoff to `audit/archive/<day>.jsonl.gz` and
//! appends a checkpoint to `audit/archive/INDEX`: `{day, first_seq, last_seq, last_hash,
//! sha256, mac}` — `sha256` of the compressed file, `mac` an HMAC under the audit key over all
//! of it. `verify` reads the index in order: an archive that is present must have its recorded
//! sha256 and is chained through line by line like a day file; one that was moved elsewhere
//! (off the machine, to cold storage) is skipped on the strength of its authenticated
//! checkpoint, and the next line must continue from its `last_hash`. Only a log that verifies
//! is archived, and a day file is removed only after its archive was written, synced, read back
//! byte-identical and indexed.
//!
//! Crash safety: a `.gz` not (yet) in the index is ignored (and redone) while its day file
//! exists; a day file whose archive is already indexed is skipped by `verify` and removed by
//! the next `archive`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AuditError;
use crate::anchor::AnchorKey;
use crate::log::day_files;

/// `audit/archive/`.
pub(crate) fn archive_dir(dir: &Path) -> PathBuf {
    dir.join("archive")
}

fn index_path(dir: &Path) -> PathBuf {
    archive_dir(dir).join("INDEX")
}

/// One archived day, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub day: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_hash: String,
    pub sha256: String,
}

impl IndexEntry {
    fn signed_text(&self) -> String {
        format!(
            "pincer-audit-archive|{}|{}|{}|{}|{}",
            self.day, self.first_seq, self.last_seq, self.last_hash, self.sha256
        )
    }

    pub(crate) fn gz_path(&self, dir: &Path) -> PathBuf {
        archive_dir(dir).join(format!("{}.jsonl.gz", self.day))
    }
}

/// Where `verify` reads lines from, in chain order.
#[derive(Debug)]
pub(crate) enum Source {
    /// An archive that is here (its sha256 checked).
    Gz(PathBuf),
    /// An archive moved elsewhere: its lines are vouched for by the checkpoint.
    Elsewhere(IndexEntry),
    /// A day file.
    Plain(PathBuf),
}

/// The index, every entry authenticated with `key`.
///
/// # Errors
/// [`AuditError::Tampered`] when an entry is malformed, not in order or its MAC does not
/// match (or there is an index but no key to check it).
pub(crate) fn read_index(
    dir: &Path,
    key: Option<&AnchorKey>,
) -> Result<Vec<IndexEntry>, AuditError> {
    let path = index_path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io(&path, e)),
    };
    let mut out: Vec<IndexEntry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: &str| AuditError::Tampered {
            path: path.clone(),
            line: i + 1,
            reason: reason.to_owned(),
        };
        let v: Value = serde_json::from_str(line).map_err(|_| bad("not JSON"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        let (Some(day), Some(first_seq), Some(last_seq), Some(last_hash), Some(sha256), Some(mac)) = (
            s("day"),
            n("first_seq"),
            n("last_seq"),
            s("last_hash"),
            s("sha256"),
            s("mac"),
        ) else {
            return Err(bad("an entry lacks a field"));
        };
        let e = IndexEntry {
            day,
            first_seq,
            last_seq,
            last_hash,
            sha256,
        };
        let Some(key) = key else {
            return Err(bad("archived audit days need the audit key to be checked"));
        };
        if !key.check_text(&e.signed_text(), &mac) {
            return Err(bad(
                "an archive checkpoint's MAC does not match (forged or edited)",
            ));
        }
        let expected = out.last().map_or(1, |p| p.last_seq + 1);
        if e.first_seq != expected || e.last_seq < e.first_seq {
            return Err(bad("archive checkpoints are not contiguous"));
        }
        out.push(e);
    }
    Ok(out)
}

/// The sources of the whole log, oldest first.
///
/// # Errors
/// As [`read_index`]; [`AuditError::Tampered`] for an unindexed archive whose day file is gone.
pub(crate) fn sources(dir: &Path, key: Option<&AnchorKey>) -> Result<Vec<Source>, AuditError> {
    let index = read_index(dir, key)?;
    let mut out = Vec::new();
    for e in &index {
        let gz = e.gz_path(dir);
        if gz.exists() {
            out.push(Source::Gz(gz));
        } else {
            out.push(Source::Elsewhere(e.clone()));
        }
    }
    let plain = day_files(dir)?;
    let day_of = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .map(str::to_owned)
    };
    // An archive written but not indexed (a crash mid-archive) counts only while its day file
    // is still here; without it, lines would be missing unnoticed.
    if let Ok(rd) = fs::read_dir(archive_dir(dir)) {
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(day) = name.strip_suffix(".jsonl.gz")
                && !index.iter().any(|e| e.day == day)
                && !plain.iter().any(|p| day_of(p).as_deref() == Some(day))
            {
                return Err(AuditError::Tampered {
                    path: entry.path(),
                    line: 0,
                    reason: "an archive that is not in the index (and its day file is gone)".into(),
                });
            }
        }
    }
    for p in plain {
        // Already archived and indexed (the day file's removal was interrupted).
        if day_of(&p).is_some_and(|d| index.iter().any(|e| e.day == d)) {
            continue;
        }
        out.push(Source::Plain(p));
    }
    Ok(out)
}

/// A reader over one source's lines. An archive's sha256 is checked against the index before
/// it is decompressed.
pub(crate) fn open_lines(
    path: &Path,
    gz_sha256: Option<&str>,
) -> Result<Box<dyn BufRead>, AuditError> {
    let f = File::open(path).map_err(|e| AuditError::io(path, e))?;
    match gz_sha256 {
        None => Ok(Box::new(BufReader::new(f))),
        Some(want) => {
            let got = sha256_file(path)?;
            if got != want {
                return Err(AuditError::Tampered {
                    path: path.to_owned(),
                    line: 0,
                    reason: "the archive is not the one indexed (sha256 differs)".into(),
                });
            }
            Ok(Box::new(BufReader::new(GzDecoder::new(f))))
        }
    }
}

fn sha256_file(path: &Path) -> Result<String, AuditError> {
    let mut f = File::open(path).map_err(|e| AuditError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| AuditError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The sha256 an indexed archive must have, by its path.
pub(crate) fn indexed_sha(dir: &Path, index: &[IndexEntry], gz: &Path) -> Option<String> {
    index
        .iter()
        .find(|e| e.gz_path(dir) == gz)
        .map(|e| e.sha256.clone())
}

/// What [`archive`] did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Archived {
    /// Days archived.
    pub days: Vec<String>,
    /// Lines in them.
    pub lines: u64,
    /// Their size as day files.
    pub bytes: u64,
    /// Their size compressed (0 on a dry run).
    pub compressed: u64,
}

fn first_last(path: &Path) -> Result<(u64, u64, String, u64), AuditError> {
    let f = File::open(path).map_err(|e| AuditError::io(path, e))?;
    let mut first = None;
    let mut last = None;
    let mut n = 0u64;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| AuditError::io(path, e))?;
        let v: Value = serde_json::from_str(&line).map_err(|_| AuditError::Tampered {
            path: path.to_owned(),
            line: 0,
            reason: "not JSON".into(),
        })?;
        let seq = v.get("seq").and_then(Value::as_u64);
        let hash = v.get("hash").and_then(Value::as_str).map(str::to_owned);
        first = first.or(seq);
        if let (Some(s), Some(h)) = (seq, hash) {
            last = Some((s, h));
        }
        n += 1;
    }
    match (first, last) {
        (Some(f), Some((l, h))) => Ok((f, l, h, n)),
        _ => Err(AuditError::Tampered {
            path: path.to_owned(),
            line: 0,
            reason: "an empty day file".into(),
        }),
    }
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

/// Archives every day file of a day before `before` (`YYYY-MM-DD`; never today's or
/// yesterday's, which a writer may still be finishing). The whole log must verify first (with
/// `key`); nothing is archived from a log that does not.
///
/// # Errors
/// [`AuditError::Tampered`] when the log does not verify; I/O errors (what was archived before
/// the error stays archived and indexed, the rest stays as it was).
pub fn archive(
    dir: &Path,
    key_path: &Path,
    anchor_path: &Path,
    before: &str,
    dry_run: bool,
) -> Result<Archived, AuditError> {
    let key = &AnchorKey::load(key_path)?.ok_or_else(|| AuditError::Tampered {
        path: key_path.to_owned(),
        line: 0,
        reason: "no audit key: an unanchored log is not archived".into(),
    })?;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let before = before.min(yesterday.as_str()).to_owned();
    crate::verify::verify_anchored(dir, key_path, anchor_path)?;
    let mut done = Archived::default();
    let mut index = read_index(dir, Some(key))?;
    for path in day_files(dir)? {
        let Some(day) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .map(str::to_owned)
        else {
            continue;
        };
        if day.as_str() >= before.as_str() {
            continue;
        }
        if index.iter().any(|e| e.day == day) {
            // Archived before; only the removal was interrupted.
            if !dry_run {
                fs::remove_file(&path).map_err(|e| AuditError::io(&path, e))?;
            }
            continue;
        }
        let bytes = fs::metadata(&path)
            .map_err(|e| AuditError::io(&path, e))?
            .len();
        let (first_seq, last_seq, last_hash, lines) = first_last(&path)?;
        done.days.push(day.clone());
        done.lines += lines;
        done.bytes += bytes;
        if dry_run {
            continue;
        }
        let adir = archive_dir(dir);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&adir)
            .map_err(|e| AuditError::io(&adir, e))?;
        let gz = adir.join(format!("{day}.jsonl.gz"));
        let tmp = adir.join(format!("{day}.jsonl.gz.tmp"));
        let original = fs::read(&path).map_err(|e| AuditError::io(&path, e))?;
        {
            let out = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| AuditError::io(&tmp, e))?;
            let mut enc = GzEncoder::new(out, Compression::default());
            enc.write_all(&original)
                .map_err(|e| AuditError::io(&tmp, e))?;
            let out = enc.finish().map_err(|e| AuditError::io(&tmp, e))?;
            out.sync_all().map_err(|e| AuditError::io(&tmp, e))?;
        }
        fs::rename(&tmp, &gz).map_err(|e| AuditError::io(&gz, e))?;
        sync_dir(&adir)?;
        // Read back: the archive must decompress to exactly the day file.
        let mut back = Vec::with_capacity(original.len());
        GzDecoder::new(File::open(&gz).map_err(|e| AuditError::io(&gz, e))?)
            .read_to_end(&mut back)
            .map_err(|e| AuditError::io(&gz, e))?;
        if back != original {
            return Err(AuditError::Tampered {
                path: gz,
                line: 0,
                reason: "the archive does not read back as the day file; nothing removed".into(),
            });
        }
        let entry = IndexEntry {
            day: day.clone(),
            first_seq,
            last_seq,
            last_hash,
            sha256: sha256_file(&gz)?,
        };
        let mut line = json!({
            "day": entry.day, "first_seq": entry.first_seq, "last_seq": entry.last_seq,
            "last_hash": entry.last_hash, "sha256": entry.sha256,
            "mac": key.sign_text(&entry.signed_text()),
        })
        .to_string();
        line.push('\n');
        let ip = index_path(dir);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&ip)
            .map_err(|e| AuditError::io(&ip, e))?;
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| AuditError::io(&ip, e))?;
        sync_dir(&adir)?;
        done.compressed += fs::metadata(&gz).map_err(|e| AuditError::io(&gz, e))?.len();
        index.push(entry);
        fs::remove_file(&path).map_err(|e| AuditError::io(&path, e))?;
        sync_dir(dir)?;
    }
    Ok(done)
}

/// The hash of line `seq` when it is in an archive (checked against the index first); `None`
/// when no archive here holds it.
pub(crate) fn hash_at(dir: &Path, seq: u64) -> Result<Option<String>, AuditError> {
    // The index's own MACs were checked when the log was verified or opened; here only its
    // entries' ranges are used to find the file, and the line itself is read from the archive.
    let Ok(text) = fs::read_to_string(index_path(dir)) else {
        return Ok(None);
    };
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(day), Some(first), Some(last)) = (
            v.get("day").and_then(Value::as_str),
            v.get("first_seq").and_then(Value::as_u64),
            v.get("last_seq").and_then(Value::as_u64),
        ) else {
            continue;
        };
        if !(first..=last).contains(&seq) {
            continue;
        }
        if seq == last {
            return Ok(v
                .get("last_hash")
                .and_then(Value::as_str)
                .map(str::to_owned));
        }
        let gz = archive_dir(dir).join(format!("{day}.jsonl.gz"));
        let Ok(f) = File::open(&gz) else {
            return Ok(None);
        };
        for l in BufReader::new(GzDecoder::new(f)).lines() {
            let l = l.map_err(|e| AuditError::io(&gz, e))?;
            if let Ok(v) = serde_json::from_str::<Value>(&l)
                && v.get("seq").and_then(Value::as_u64) == Some(seq)
            {
                return Ok(v.get("hash").and_then(Value::as_str).map(str::to_owned));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::anchor::Anchor;
    use crate::chain::Pending;
    use crate::log::FileLog;
    use crate::verify::verify_anchored;

    struct Home {
        _t: tempfile::TempDir,
        dir: PathBuf,
        key: PathBuf,
        anchor: PathBuf,
    }

    impl Home {
        fn verify(&self) -> Result<crate::VerifyReport, AuditError> {
            verify_anchored(&self.dir, &self.key, &self.anchor)
        }
        fn archive(&self, dry: bool) -> Result<Archived, AuditError> {
            let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
            archive(&self.dir, &self.key, &self.anchor, &today, dry)
        }
    }

    /// 3 lines on 2026-11-01, 2 on 2026-11-02 and 2 today, anchored.
    fn home() -> Home {
        let t = tempfile::tempdir().unwrap();
        let h = Home {
            dir: t.path().join("audit"),
            key: t.path().join("secrets/audit.key"),
            anchor: t.path().join("secrets/audit.anchor"),
            _t: t,
        };
        // The past days first (unanchored), then the key is made and today's lines follow.
        let log = FileLog::open(&h.dir).unwrap();
        for (i, ts) in [
            "2026-11-01T10:00:00.000000Z",
            "2026-11-01T11:00:00.000000Z",
            "2026-11-01T12:00:00.000000Z",
            "2026-11-02T10:00:00.000000Z",
            "2026-11-02T11:00:00.000000Z",
        ]
        .into_iter()
        .enumerate()
        {
            log.append(Pending {
                ts: ts.to_owned(),
                event: json!({"type": "test", "i": i}),
            })
            .unwrap();
        }
        drop(log);
        let (key, fresh) = AnchorKey::load_or_create(&h.key).unwrap();
        let log = FileLog::open_anchored(
            &h.dir,
            Anchor {
                path: h.anchor.clone(),
                key,
            },
            fresh,
        )
        .unwrap();
        log.append(crate::log::pending("test", json!({"i": 5}), None))
            .unwrap();
        log.sync().unwrap();
        h
    }

    #[test]
    fn old_days_are_compressed_indexed_and_still_verify() {
        let h = home();
        let before = h.verify().unwrap();
        let dry = h.archive(true).unwrap();
        assert_eq!(dry.days, ["2026-11-01", "2026-11-02"]);
        assert_eq!(dry.lines, 5);
        assert!(
            h.dir.join("2026-11-01.jsonl").exists(),
            "a dry run changes nothing"
        );
        let done = h.archive(false).unwrap();
        assert_eq!(done.days, dry.days);
        assert!(done.compressed > 0);
        assert!(!h.dir.join("2026-11-01.jsonl").exists());
        assert!(archive_dir(&h.dir).join("2026-11-01.jsonl.gz").exists());
        let after = h.verify().unwrap();
        assert_eq!(after.lines, before.lines);
        assert_eq!(after.last_hash, before.last_hash);
        assert_eq!(after.archived, 5);
        // Nothing more to do; a second run is a no-op.
        assert!(h.archive(false).unwrap().days.is_empty());
        // The witness lookup finds a line inside an archive.
        assert!(crate::log::hash_at(&h.dir, 2).unwrap().is_some());
    }

    #[test]
    fn archives_moved_elsewhere_are_vouched_for_by_their_checkpoints() {
        let h = home();
        h.archive(false).unwrap();
        let gz = archive_dir(&h.dir).join("2026-11-01.jsonl.gz");
        let away = h.dir.parent().unwrap().join("cold.gz");
        fs::rename(&gz, &away).unwrap();
        let r = h.verify().unwrap();
        assert_eq!((r.archived, r.archived_elsewhere), (2, 3));
        assert_eq!(r.lines, 7);
        fs::rename(&away, &gz).unwrap();
        assert_eq!(h.verify().unwrap().archived, 5);
    }

    #[test]
    fn a_changed_archive_a_forged_index_and_a_dropped_archive_are_tampering() {
        let h = home();
        h.archive(false).unwrap();
        let gz = archive_dir(&h.dir).join("2026-11-02.jsonl.gz");
        let good = fs::read(&gz).unwrap();
        let mut bad = good.clone();
        let n = bad.len() / 2;
        bad[n] ^= 1;
        fs::write(&gz, &bad).unwrap();
        let err = h.verify().unwrap_err();
        assert!(err.to_string().contains("sha256"), "{err}");
        fs::write(&gz, &good).unwrap();

        let index = index_path(&h.dir);
        let text = fs::read_to_string(&index).unwrap();
        // An attacker drops the first day and rewrites its checkpoint to start the chain later.
        let forged = text.replacen("\"first_seq\":1", "\"first_seq\":2", 1);
        fs::write(&index, &forged).unwrap();
        let err = h.verify().unwrap_err();
        assert!(err.to_string().contains("MAC"), "{err}");
        // Removing the index (and so the checkpoints) leaves archives nobody vouches for.
        fs::remove_file(&index).unwrap();
        let err = h.verify().unwrap_err();
        assert!(err.to_string().contains("not in the index"), "{err}");
        fs::write(&index, &text).unwrap();
        h.verify().unwrap();
    }

    #[test]
    fn an_interrupted_archive_is_finished_by_the_next() {
        let h = home();
        let day = h.dir.join("2026-11-01.jsonl");
        let copy = fs::read(&day).unwrap();
        h.archive(false).unwrap();
        // The crash: archived and indexed, but the day file was not yet removed.
        fs::write(&day, &copy).unwrap();
        h.verify().unwrap();
        h.archive(false).unwrap();
        assert!(!day.exists());
        h.verify().unwrap();
    }

    #[test]
    fn a_log_that_does_not_verify_is_not_archived() {
        let h = home();
        let day = h.dir.join("2026-11-01.jsonl");
        let text = fs::read_to_string(&day)
            .unwrap()
            .replace("\"i\":1", "\"i\":9");
        fs::write(&day, text).unwrap();
        assert!(h.archive(false).is_err());
        assert!(!archive_dir(&h.dir).exists());
    }
}
