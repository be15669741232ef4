//! Retention (H6): `pincer gc` and the daily pass of `pincer serve` apply `[retention]` —
//! run bundles by age and total size, state-database rows through
//! [`pincer_store::RetentionStore`], and audit day files archived (never deleted) through
//! [`pincer_audit::archive`]. A dry run counts without changing anything. Every real pass is
//! audited (`retention.gc` with its counts).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use pincer_config::{Config, PincerHome, RetentionConfig};
use pincer_store::{Backend, PrunePlan, Pruned};
use serde::Serialize;

/// A run still being written is left alone unless untouched this long (a crash's leftover).
const ABANDONED: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one pass did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Run bundles.
    pub runs: RunsPruned,
    /// State-database rows.
    pub store: Pruned,
    /// Audit day files archived; `None` when the audit log is in Postgres (rows, not files),
    /// archiving is off, there is no log yet, or it failed.
    pub audit: Option<pincer_audit::Archived>,
    /// Why the audit log was not archived (it does not verify, or could not be written).
    pub audit_error: Option<String>,
}

/// Run bundles removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunsPruned {
    /// Bundles removed.
    pub removed: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bundles kept.
    pub kept: u64,
    /// Their bytes.
    pub kept_bytes: u64,
}

#[derive(Debug)]
struct RunDir {
    path: PathBuf,
    modified: SystemTime,
    bytes: u64,
    running: bool,
}

/// Bytes under `dir`, not following links.
fn size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn runs(home: &PincerHome, now: SystemTime) -> Vec<RunDir> {
    let mut out = Vec::new();
    let Ok(agents) = fs::read_dir(home.agents_dir()) else {
        return out;
    };
    for agent in agents.flatten() {
        let Ok(rd) = fs::read_dir(agent.path().join("runs")) else {
            continue;
        };
        for run in rd.flatten() {
            // Directories only, never through a link.
            if !run.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = run.path();
            let modified = run
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let running = in_progress(&path, modified, now);
            out.push(RunDir {
                bytes: size(&path),
                path,
                modified,
                running,
            });
        }
    }
    out.sort_by_key(|r| r.modified);
    out
}

/// How long a bundle without `meta.json` counts as a run still going: longer than any run may
/// last; after that it was cut off by a crash and is pruned like any other.
const UNFINISHED_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Whether the bundle at `path` belongs to a run still going: no `meta.json` yet (it is written
/// once, when the run ends) and its transcript written to within [`UNFINISHED_GRACE`] — or a
/// `meta.json` saying `running` (bundles of versions that wrote it at the start).
fn in_progress(path: &Path, modified: SystemTime, now: SystemTime) -> bool {
    match fs::read(path.join("meta.json")) {
        Ok(b) => {
            serde_json::from_slice::<serde_json::Value>(&b).is_ok_and(|v| v["status"] == "running")
        }
        Err(_) => {
            let touched = fs::symlink_metadata(path.join("transcript.jsonl"))
                .and_then(|m| m.modified())
                .map_or(modified, |t| t.max(modified));
            // A time in the future (a clock that went back) counts as recent.
            now.duration_since(touched)
                .map_or(true, |age| age < UNFINISHED_GRACE)
        }
    }
}

/// Removes run bundles older than `runs_days`, then the oldest while the rest exceed
/// `runs_max_mb`.
fn prune_runs(
    home: &PincerHome,
    r: &RetentionConfig,
    now: SystemTime,
    dry_run: bool,
) -> RunsPruned {
    let all = runs(home, now);
    let day = Duration::from_secs(24 * 3600);
    let cutoff = (r.runs_days > 0)
        .then(|| now.checked_sub(day * u32::try_from(r.runs_days).unwrap_or(u32::MAX)))
        .flatten();
    let cap = r.runs_max_mb.saturating_mul(1024 * 1024);
    let mut total: u64 = all.iter().map(|d| d.bytes).sum();
    let mut out = RunsPruned::default();
    for d in &all {
        let busy = d.running
            && now
                .duration_since(d.modified)
                .is_ok_and(|age| age < ABANDONED);
        let old = cutoff.is_some_and(|c| d.modified < c);
        let over = r.runs_max_mb > 0 && total > cap;
        if busy || !(old || over) {
            out.kept += 1;
            out.kept_bytes += d.bytes;
            continue;
        }
        if !dry_run && let Err(e) = fs::remove_dir_all(&d.path) {
            tracing::error!("retention: could not remove {}: {e}", d.path.display());
            out.kept += 1;
            out.kept_bytes += d.bytes;
            continue;
        }
        out.removed += 1;
        out.bytes += d.bytes;
        total = total.saturating_sub(d.bytes);
    }
    out
}

fn days_before(now: DateTime<Utc>, days: u64) -> Option<DateTime<Utc>> {
    (days > 0).then(|| now - chrono::Duration::days(i64::try_from(days).unwrap_or(36_500)))
}

/// One retention pass over `home` (its run bundles, `store`, and — with day files — the audit
/// log's old days).
///
/// # Errors
/// When the store refuses. An audit log that does not verify is not archived and the pass
/// reports why in [`GcReport::audit_error`].
pub async fn gc(
    home: &PincerHome,
    config: &Config,
    store: &dyn Backend,
    dry_run: bool,
) -> anyhow::Result<GcReport> {
    let r = &config.retention;
    let now = Utc::now();
    let runs = {
        let home = home.clone();
        let r = r.clone();
        tokio::task::spawn_blocking(move || prune_runs(&home, &r, SystemTime::now(), dry_run))
            .await?
    };
    let plan = PrunePlan {
        tasks_ended_before: days_before(now, r.tasks_days),
        sessions_idle_before: days_before(now, r.sessions_days),
        outbox_done_before: days_before(now, r.outbox_days),
    };
    let pruned = store.prune(plan, dry_run).await?;
    let mut audit_error = None;
    let archiving =
        config.storage.url.is_none() && r.audit_archive_days > 0 && home.audit_key_path().exists();
    let audit = if archiving {
        let before = (now
            - chrono::Duration::days(i64::try_from(r.audit_archive_days).unwrap_or(36_500)))
        .format("%Y-%m-%d")
        .to_string();
        let (dir, key, anchor) = (
            home.audit_dir(),
            home.audit_key_path(),
            home.audit_anchor_path(),
        );
        match tokio::task::spawn_blocking(move || {
            pincer_audit::archive(&dir, &key, &anchor, &before, dry_run)
        })
        .await?
        {
            Ok(a) => Some(a),
            Err(e) => {
                audit_error = Some(format!("the audit log was not archived: {e}"));
                None
            }
        }
    } else {
        None
    };
    Ok(GcReport {
        dry_run,
        runs,
        store: pruned,
        audit,
        audit_error,
    })
}

/// The daily pass of `pincer serve`: once at start, then every 24 hours until `stop`. Each
/// pass is audited; a failing one is logged and retried the next day.
pub async fn daily(
    home: PincerHome,
    config: std::sync::Arc<Config>,
    store: std::sync::Arc<dyn Backend>,
    audit: std::sync::Arc<pincer_audit::AuditLog>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(24 * 3600));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        match gc(&home, &config, &*store, false).await {
            Ok(rep) => {
                if let Some(e) = &rep.audit_error {
                    tracing::error!("retention: {e}");
                }
                crate::runtime::record(&audit, "retention.gc", audit_fields(&rep)).await;
            }
            Err(e) => tracing::error!("retention pass failed: {e:#}"),
        }
    }
}

/// The report as audit fields.
pub fn audit_fields(rep: &GcReport) -> serde_json::Value {
    serde_json::json!({
        "dry_run": rep.dry_run,
        "runs_removed": rep.runs.removed, "runs_bytes": rep.runs.bytes,
        "tasks": rep.store.tasks, "approvals": rep.store.approvals,
        "sessions": rep.store.sessions, "messages": rep.store.messages,
        "outbox": rep.store.outbox,
        "audit_days_archived": rep.audit.as_ref().map(|a| a.days.clone()),
        "audit_error": rep.audit_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle `age_days` old (directory and transcript); `status: None` has no meta.json
    /// (a run going, or cut off).
    fn bundle(home: &PincerHome, id: &str, bytes: usize, age_days: u64, status: Option<&str>) {
        let d = home.agents_dir().join("main/runs").join(id);
        fs::create_dir_all(&d).unwrap();
        let transcript = d.join("transcript.jsonl");
        fs::write(&transcript, vec![b'x'; bytes]).unwrap();
        if let Some(status) = status {
            fs::write(d.join("meta.json"), format!(r#"{{"status": "{status}"}}"#)).unwrap();
        }
        let t = SystemTime::now() - Duration::from_secs(age_days * 24 * 3600);
        for p in [&transcript, &d] {
            fs::File::open(p).unwrap().set_modified(t).unwrap();
        }
    }

    #[test]
    fn a_bundle_without_meta_is_kept_while_recent_and_pruned_once_abandoned() {
        let t = tempfile::tempdir().unwrap();
        let home = PincerHome::at(t.path());
        // Going now (no meta.json yet, written to today), and cut off by a crash 40 days ago.
        bundle(&home, "going", 600_000, 0, None);
        bundle(&home, "crashed", 600_000, 40, None);
        bundle(&home, "done", 600_000, 2, Some("succeeded"));
        let r = RetentionConfig {
            runs_days: 30,
            runs_max_mb: 1,
            ..RetentionConfig::default()
        };
        let got = prune_runs(&home, &r, SystemTime::now(), false);
        let runs = home.agents_dir().join("main/runs");
        assert!(
            runs.join("going").is_dir(),
            "a run in progress is never pruned"
        );
        assert!(!runs.join("crashed").exists(), "an abandoned one is");
        // Over the cap with the running one counted: the finished one goes, the running stays.
        assert!(!runs.join("done").exists());
        assert_eq!(got.removed, 2);
    }

    #[test]
    fn old_and_oversized_bundles_go_oldest_first_and_running_ones_stay() {
        let t = tempfile::tempdir().unwrap();
        let home = PincerHome::at(t.path());
        bundle(&home, "r1", 1000, 40, Some("succeeded"));
        bundle(&home, "r2", 400_000, 20, Some("succeeded"));
        bundle(&home, "r3", 400_000, 10, Some("running"));
        bundle(&home, "r4", 400_000, 1, Some("succeeded"));
        bundle(&home, "r5", 10, 0, Some("succeeded"));
        let r = RetentionConfig {
            runs_days: 30,
            runs_max_mb: 1,
            ..RetentionConfig::default()
        };
        let dry = prune_runs(&home, &r, SystemTime::now(), true);
        assert_eq!((dry.removed, dry.kept), (2, 3), "{dry:?}");
        assert!(home.agents_dir().join("main/runs/r1").exists());
        let done = prune_runs(&home, &r, SystemTime::now(), false);
        assert_eq!(done, dry);
        // r1 is too old; r2 is the oldest while over 1 MiB; r3 runs; r4 + r5 fit after that.
        for (id, kept) in [
            ("r1", false),
            ("r2", false),
            ("r3", true),
            ("r4", true),
            ("r5", true),
        ] {
            assert_eq!(
                home.agents_dir().join("main/runs").join(id).exists(),
                kept,
                "{id}"
            );
        }
    }

    #[test]
    fn a_link_in_the_runs_folder_is_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let home = PincerHome::at(t.path().join("home"));
        let outside = t.path().join("precious");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("keep.txt"), "keep").unwrap();
        let runs = home.agents_dir().join("main/runs");
        fs::create_dir_all(&runs).unwrap();
        std::os::unix::fs::symlink(&outside, runs.join("old-run")).unwrap();
        let r = RetentionConfig {
            runs_days: 1,
            runs_max_mb: 1,
            ..RetentionConfig::default()
        };
        prune_runs(
            &home,
            &r,
            SystemTime::now() + Duration::from_secs(10 * 24 * 3600),
            false,
        );
        assert!(outside.join("keep.txt").exists());
    }
}
