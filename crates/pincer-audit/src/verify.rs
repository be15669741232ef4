//! Verification: recompute the chain from the first line and compare with `HEAD`.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::Path;

use serde_json::Value;

use crate::AuditError;
use crate::anchor::{Anchor, AnchorKey};
use crate::archive::Source;
use crate::log::{GENESIS, head_path, line_hash, read_head};
use crate::witness::{Witness, WitnessReport};

/// What a sound log contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines checked.
    pub lines: u64,
    /// Files checked.
    pub files: usize,
    /// Hash of the last line.
    pub last_hash: String,
    /// Lines after the one `HEAD` names: written, not yet synced (a running writer moves
    /// `HEAD` at its next sync — at most about a second later in `pincer serve`).
    pub after_head: u64,
    /// The line the keyed anchor vouches for ([`verify_anchored`]); `None` when unanchored.
    pub anchored: Option<u64>,
    /// How each witness compares ([`verify_witnessed`]): every one listed agrees.
    pub witnesses: Vec<WitnessReport>,
    /// Lines read from archives (`audit/archive/*.jsonl.gz`).
    pub archived: u64,
    /// Lines in archives moved elsewhere, vouched for by their authenticated checkpoints.
    pub archived_elsewhere: u64,
}

/// Verifies every line in `dir`.
///
/// `HEAD` names the last line known to be on disk; lines after it are ones a running writer
/// has written but not yet synced, which is normal while Pincer runs. Removing lines up to
/// `HEAD` is detected; lines after it are counted in [`VerifyReport::after_head`].
///
/// # Errors
/// [`AuditError::Tampered`] naming the first bad line (edited, deleted, reordered, torn) or the
/// `HEAD` file (tail truncated); [`AuditError::Io`] when a file cannot be read.
pub fn verify(dir: &Path) -> Result<VerifyReport, AuditError> {
    verify_probing(dir, None, &[]).map(|(r, _)| r)
}

/// Verifies the log like [`verify`] and checks it against its keyed anchor
/// ([`crate::anchor`]): the anchored line must exist and carry the anchored hash, so a wiped,
/// truncated-and-re-headed or recomputed log is detected. Without a key (a home from before
/// anchoring) the log is verified unanchored and [`VerifyReport::anchored`] is `None`.
///
/// # Errors
/// As [`verify`], and [`AuditError::Tampered`] when the anchor is missing while its key exists,
/// forged, or does not match the log.
pub fn verify_anchored(
    dir: &Path,
    key_path: &Path,
    anchor_path: &Path,
) -> Result<VerifyReport, AuditError> {
    anchored_probing(dir, key_path, anchor_path, &[]).map(|(r, _)| r)
}

/// [`verify_anchored`], also returning the hashes of lines `probes` (those the log holds).
fn anchored_probing(
    dir: &Path,
    key_path: &Path,
    anchor_path: &Path,
    probes: &[u64],
) -> Result<(VerifyReport, BTreeMap<u64, String>), AuditError> {
    let Some(key) = AnchorKey::load(key_path)? else {
        if anchor_path.exists() {
            return Err(AuditError::Tampered {
                path: key_path.to_owned(),
                line: 0,
                reason: "the audit anchor key is missing while an anchor exists".into(),
            });
        }
        return verify_probing(dir, None, probes);
    };
    let anchor = Anchor {
        path: anchor_path.to_owned(),
        key,
    };
    let bad = |reason: String| AuditError::Tampered {
        path: anchor_path.to_owned(),
        line: 0,
        reason,
    };
    let cp = anchor.read()?.ok_or_else(|| {
        bad("the anchor is missing while its key exists (deleted with the log?)".into())
    })?;
    let mut all: Vec<u64> = probes.to_vec();
    all.push(cp.seq);
    let (mut report, at) = verify_probing(dir, Some(&anchor.key), &all)?;
    if cp.seq > report.lines {
        return Err(bad(format!(
            "the anchor records {} lines but the log holds {}: lines were removed or the log was replaced",
            cp.seq, report.lines
        )));
    }
    if at.get(&cp.seq).map(String::as_str) != Some(cp.hash.as_str()) {
        return Err(bad(format!(
            "line {} does not carry the anchored hash: the log was rewritten and its chain recomputed",
            cp.seq
        )));
    }
    report.anchored = Some(cp.seq);
    Ok((report, at))
}

/// Verifies the log like [`verify_anchored`] and then against each witness
/// ([`crate::witness`]): the line a witness vouches for must exist and carry its hash. So a log
/// wiped together with its anchor and key — or rebuilt by someone holding the key — is still
/// caught by a witness kept elsewhere.
///
/// # Errors
/// As [`verify_anchored`], and [`AuditError::Tampered`] naming the first witness that is
/// forged, ahead of the log, or disagrees with it.
pub fn verify_witnessed(
    dir: &Path,
    key_path: &Path,
    anchor_path: &Path,
    witnesses: &[std::sync::Arc<dyn Witness>],
) -> Result<VerifyReport, AuditError> {
    let mut latest = Vec::with_capacity(witnesses.len());
    for w in witnesses {
        latest.push((w, w.latest()?));
    }
    let probes: Vec<u64> = latest
        .iter()
        .filter_map(|(_, cp)| cp.as_ref().map(|c| c.seq))
        .collect();
    let (mut report, at) = anchored_probing(dir, key_path, anchor_path, &probes)?;
    for (w, cp) in latest {
        let bad = |reason: String| AuditError::Tampered {
            path: std::path::PathBuf::from(w.name()),
            line: 0,
            reason,
        };
        let Some(cp) = cp else {
            report.witnesses.push(WitnessReport {
                name: w.name(),
                agrees_at: None,
            });
            continue;
        };
        if cp.seq > report.lines {
            return Err(bad(format!(
                "it records {} lines but the log holds {}: lines were removed or the log was replaced",
                cp.seq, report.lines
            )));
        }
        if at.get(&cp.seq).map(String::as_str) != Some(cp.hash.as_str()) {
            return Err(bad(format!(
                "line {} does not carry the witnessed hash: the log was rewritten and its chain recomputed",
                cp.seq
            )));
        }
        report.witnesses.push(WitnessReport {
            name: w.name(),
            agrees_at: Some(cp.seq),
        });
    }
    Ok(report)
}

/// Verifies the whole log — archives (checked against their authenticated index, `key`), then
/// day files — and returns the hashes of lines `probes` that it holds.
fn verify_probing(
    dir: &Path,
    key: Option<&AnchorKey>,
    probes: &[u64],
) -> Result<(VerifyReport, BTreeMap<u64, String>), AuditError> {
    let head = read_head(dir)?;
    let mut probed = BTreeMap::new();
    if probes.contains(&0) {
        probed.insert(0, GENESIS.to_owned());
    }
    let index = crate::archive::read_index(dir, key)?;
    let sources = crate::archive::sources(dir, key)?;
    let mut expected_seq = 1u64;
    let mut prev = GENESIS.to_owned();
    let mut at_head = (head.as_ref().map(|h| h.0) == Some(0)).then(|| GENESIS.to_owned());
    let mut files = 0usize;
    let mut archived = 0u64;
    let mut elsewhere = 0u64;
    for source in &sources {
        let (path, sha) = match source {
            Source::Elsewhere(e) => {
                if e.first_seq != expected_seq {
                    return Err(AuditError::Tampered {
                        path: e.gz_path(dir),
                        line: 0,
                        reason: format!(
                            "archived lines {}..={} do not follow line {}",
                            e.first_seq,
                            e.last_seq,
                            expected_seq - 1
                        ),
                    });
                }
                if let Some(p) = probes
                    .iter()
                    .find(|p| (e.first_seq..e.last_seq).contains(p))
                {
                    return Err(AuditError::Tampered {
                        path: e.gz_path(dir),
                        line: 0,
                        reason: format!(
                            "line {p} is in an archive that is not here; bring it back to check it"
                        ),
                    });
                }
                elsewhere += e.last_seq + 1 - e.first_seq;
                expected_seq = e.last_seq + 1;
                prev = e.last_hash.clone();
                if probes.contains(&e.last_seq) {
                    probed.insert(e.last_seq, prev.clone());
                }
                if head.as_ref().is_some_and(|h| h.0 == e.last_seq) {
                    at_head = Some(prev.clone());
                }
                continue;
            }
            Source::Gz(p) => (p, crate::archive::indexed_sha(dir, &index, p)),
            Source::Plain(p) => (p, None),
        };
        files += 1;
        let first = expected_seq;
        // Lines split on `\n` only: a `\r` before it is a changed byte, not a line ending.
        let mut reader = crate::archive::open_lines(path, sha.as_deref())?;
        let mut buf = String::new();
        for i in 0.. {
            buf.clear();
            if reader
                .read_line(&mut buf)
                .map_err(|e| AuditError::io(path, e))?
                == 0
            {
                break;
            }
            let line = buf.strip_suffix('\n').unwrap_or(&buf);
            prev = check_line(path, i + 1, line, expected_seq, &prev)?;
            if head.as_ref().is_some_and(|h| h.0 == expected_seq) {
                at_head = Some(prev.clone());
            }
            if probes.contains(&expected_seq) {
                probed.insert(expected_seq, prev.clone());
            }
            expected_seq += 1;
        }
        if sha.is_some() {
            archived += expected_seq - first;
            // The archive must end where its checkpoint says.
            if let Some(e) = index.iter().find(|e| e.gz_path(dir) == *path)
                && (e.last_seq != expected_seq - 1 || e.last_hash != prev)
            {
                return Err(AuditError::Tampered {
                    path: path.clone(),
                    line: 0,
                    reason: "the archive does not end where its checkpoint says".into(),
                });
            }
        }
    }
    let lines = expected_seq - 1;
    let head_seq = head.as_ref().map_or(lines, |h| h.0);
    match head {
        Some((seq, _)) if seq > lines => {
            return Err(AuditError::Tampered {
                path: head_path(dir),
                line: 0,
                reason: format!(
                    "HEAD records {seq} lines but the log holds {lines}: lines were removed from the end"
                ),
            });
        }
        Some((seq, hash)) if at_head.as_deref() != Some(hash.as_str()) => {
            return Err(AuditError::Tampered {
                path: head_path(dir),
                line: 0,
                reason: format!("HEAD hash does not match line {seq}"),
            });
        }
        None if lines > 0 => {
            return Err(AuditError::Tampered {
                path: head_path(dir),
                line: 0,
                reason: "HEAD is missing".into(),
            });
        }
        _ => {}
    }
    Ok((
        VerifyReport {
            lines,
            files,
            last_hash: prev,
            after_head: lines.saturating_sub(head_seq),
            anchored: None,
            witnesses: Vec::new(),
            archived,
            archived_elsewhere: elsewhere,
        },
        probed,
    ))
}

pub(crate) fn check_line(
    path: &Path,
    n: usize,
    line: &str,
    seq: u64,
    prev: &str,
) -> Result<String, AuditError> {
    let bad = |reason: String| AuditError::Tampered {
        path: path.to_owned(),
        line: n,
        reason,
    };
    let v: Value = serde_json::from_str(line)
        .map_err(|e| bad(format!("not JSON (torn or edited line): {e}")))?;
    // Lines are written in one canonical form (compact, keys sorted): any other bytes — even
    // whitespace that leaves the meaning alone — were not written by Pincer.
    if serde_json::to_string(&v).ok().as_deref() != Some(line) {
        return Err(bad("not in the form Pincer writes (bytes changed)".into()));
    }
    let got_seq = v
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no seq".into()))?;
    if got_seq != seq {
        return Err(bad(format!(
            "seq {got_seq} where {seq} was expected (line deleted or reordered)"
        )));
    }
    let ts = v
        .get("ts")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no ts".into()))?;
    let prev_hash = v
        .get("prev_hash")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no prev_hash".into()))?;
    if prev_hash != prev {
        return Err(bad("prev_hash does not match the previous line".into()));
    }
    let event = v.get("event").ok_or_else(|| bad("no event".into()))?;
    let hash = v
        .get("hash")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no hash".into()))?;
    if line_hash(seq, ts, prev_hash, event) != hash {
        return Err(bad("hash does not match the content (line edited)".into()));
    }
    Ok(hash.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::day_files;
    use crate::{AuditLog, Redactor};
    use serde_json::json;
    use std::fs;
    use std::path::PathBuf;

    fn log_with(n: u64) -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("audit");
        let log = AuditLog::open(&dir, Redactor::new(vec![], &[]).unwrap()).unwrap();
        for i in 0..n {
            assert_eq!(log.append("tool.call", json!({"i": i})).unwrap(), i + 1);
        }
        (t, dir)
    }

    fn day_file(dir: &Path) -> PathBuf {
        day_files(dir).unwrap().pop().unwrap()
    }

    fn rewrite(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
        let p = day_file(dir);
        let mut lines: Vec<String> = fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        f(&mut lines);
        fs::write(
            &p,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
    }

    fn bad_line(dir: &Path) -> usize {
        match verify(dir) {
            Err(AuditError::Tampered { line, .. }) => line,
            other => panic!("expected tampering, got {other:?}"),
        }
    }

    #[test]
    fn fresh_log_verifies_and_chain_survives_reopen() {
        let (_t, dir) = log_with(3);
        assert_eq!(verify(&dir).unwrap().lines, 3);
        let log = AuditLog::open(&dir, Redactor::new(vec![], &[]).unwrap()).unwrap();
        assert_eq!(log.append("run.start", json!({})).unwrap(), 4);
        assert_eq!(verify(&dir).unwrap().lines, 4);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(verify(empty.path()).unwrap().lines, 0);
    }

    #[test]
    fn edit_is_detected_at_its_line() {
        let (_t, dir) = log_with(4);
        rewrite(&dir, |l| l[2] = l[2].replace("\"i\":2", "\"i\":7"));
        assert_eq!(bad_line(&dir), 3);
    }

    #[test]
    fn deletion_is_detected() {
        let (_t, dir) = log_with(4);
        rewrite(&dir, |l| {
            l.remove(1);
        });
        assert_eq!(bad_line(&dir), 2);
    }

    #[test]
    fn reorder_is_detected() {
        let (_t, dir) = log_with(4);
        rewrite(&dir, |l| l.swap(1, 2));
        assert_eq!(bad_line(&dir), 2);
    }

    #[test]
    fn tail_truncation_is_detected_via_head() {
        let (_t, dir) = log_with(4);
        rewrite(&dir, |l| {
            l.pop();
        });
        assert_eq!(bad_line(&dir), 0);
    }

    #[test]
    fn a_head_that_names_a_different_line_is_detected() {
        let (_t, dir) = log_with(4);
        // HEAD claims line 2 with line 3's hash.
        let text = fs::read_to_string(day_file(&dir)).unwrap();
        let third: Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        fs::write(
            dir.join("HEAD"),
            json!({"seq": 2, "hash": third["hash"]}).to_string(),
        )
        .unwrap();
        match verify(&dir) {
            Err(AuditError::Tampered { reason, .. }) => assert!(reason.contains("line 2")),
            other => panic!("expected tampering, got {other:?}"),
        }
    }

    #[test]
    fn torn_last_line_is_detected() {
        let (_t, dir) = log_with(2);
        let p = day_file(&dir);
        let text = fs::read_to_string(&p).unwrap();
        fs::write(&p, &text[..text.len() - 10]).unwrap();
        assert_eq!(bad_line(&dir), 2);
    }

    #[test]
    fn secrets_are_redacted_before_hashing() {
        let t = tempfile::tempdir().unwrap();
        let log = AuditLog::open(
            t.path(),
            Redactor::new(vec!["my-held-secret-value".into()], &[]).unwrap(),
        )
        .unwrap();
        log.append(
            "tool.call",
            json!({"args": "token my-held-secret-value and sk-abcdefghijklmnopqrstuv"}),
        )
        .unwrap();
        let text = fs::read_to_string(day_file(t.path())).unwrap();
        assert!(
            !text.contains("my-held-secret-value") && !text.contains("sk-abcdef"),
            "{text}"
        );
        assert!(text.contains("[REDACTED:secret]"));
        assert_eq!(verify(t.path()).unwrap().lines, 1);
    }
}
