//! `[retention]` (H6): how long Pincer keeps what it writes. `pincer gc` and a daily pass in
//! `pincer serve` apply it. 0 keeps that kind of data forever. Usage and cost records, memory
//! notes and the audit log's lines are never deleted (the audit log is archived instead).
//!
//! ```toml
//! [retention]
//! runs_days = 30             # run bundles (agents/*/runs/*) older than this…
//! runs_max_mb = 2048         # …and the oldest beyond this total
//! tasks_days = 90            # ended task rows (and their decided approvals)
//! sessions_days = 0          # conversations idle this long (0: kept)
//! outbox_days = 7            # delivered chat messages
//! audit_archive_days = 30    # audit day files compressed into audit/archive/
//! ```

use serde::{Deserialize, Serialize};

/// `[retention]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Run bundles older than this many days are deleted (0: kept).
    #[serde(default = "d30")]
    pub runs_days: u64,
    /// The oldest run bundles are deleted while all of them take more than this many MiB (0: no
    /// cap).
    #[serde(default = "d2048")]
    pub runs_max_mb: u64,
    /// Task rows that ended this many days ago are deleted (0: kept).
    #[serde(default = "d90")]
    pub tasks_days: u64,
    /// Conversations with no message for this many days are deleted with their messages (0:
    /// kept).
    #[serde(default)]
    pub sessions_days: u64,
    /// Delivered outbox entries older than this many days are deleted (0: kept).
    #[serde(default = "d7")]
    pub outbox_days: u64,
    /// Audit day files older than this many days are compressed into `audit/archive/` (0: not
    /// archived). Never less than 2: today's and yesterday's files stay as they are.
    #[serde(default = "d30")]
    pub audit_archive_days: u64,
}

fn d30() -> u64 {
    30
}
fn d2048() -> u64 {
    2048
}
fn d90() -> u64 {
    90
}
fn d7() -> u64 {
    7
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            runs_days: d30(),
            runs_max_mb: d2048(),
            tasks_days: d90(),
            sessions_days: 0,
            outbox_days: d7(),
            audit_archive_days: d30(),
        }
    }
}

impl RetentionConfig {
    /// Whether nothing is set.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        for (key, v) in [
            ("runs_days", self.runs_days),
            ("tasks_days", self.tasks_days),
            ("sessions_days", self.sessions_days),
            ("outbox_days", self.outbox_days),
            ("audit_archive_days", self.audit_archive_days),
        ] {
            if v > 36_500 {
                errs.push((
                    format!("retention.{key}"),
                    "must be at most 36500 (0 keeps forever)".into(),
                ));
            }
        }
        if self.audit_archive_days == 1 {
            errs.push((
                "retention.audit_archive_days".into(),
                "must be 0 (never) or at least 2: yesterday's file may still be written".into(),
            ));
        }
        if self.runs_max_mb > 1024 * 1024 {
            errs.push((
                "retention.runs_max_mb".into(),
                "must be at most 1048576 (1 TiB)".into(),
            ));
        }
        errs
    }
}
