//! Retention (H6): what `pincer gc` and the daily pass of `pincer serve` delete from the state
//! database — ended tasks (with their decided approvals and chat links), conversations idle
//! past a cutoff (their messages and compaction views go with them), and delivered outbox
//! entries. One transaction; a dry run does the same work and rolls it back, so its counts are
//! exactly what a real run would delete. Usage, cost, audit and memory are never touched here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use crate::sqlite::stamp;
use crate::{SqliteStore, StoreError};

/// Cutoffs; `None` keeps that kind of row forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Tasks that ended (succeeded, failed, canceled, timed out) before this.
    pub tasks_ended_before: Option<DateTime<Utc>>,
    /// Conversations whose last message (or creation, without one) is before this.
    pub sessions_idle_before: Option<DateTime<Utc>>,
    /// Outbox entries delivered (or given up on) before this.
    pub outbox_done_before: Option<DateTime<Utc>>,
}

/// What a prune deleted (or, dry, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Task rows.
    pub tasks: u64,
    /// Decided approvals of those tasks.
    pub approvals: u64,
    /// Conversations.
    pub sessions: u64,
    /// Their messages.
    pub messages: u64,
    /// Outbox entries.
    pub outbox: u64,
}

/// The retention seam.
#[async_trait]
pub trait RetentionStore: Send + Sync + std::fmt::Debug {
    /// Deletes what `plan` names, in one transaction; with `dry_run` nothing is deleted and
    /// the counts say what would be.
    async fn prune(&self, plan: PrunePlan, dry_run: bool) -> Result<Pruned, StoreError>;
}

/// The task states that are over (kept in step with `TaskStatus::is_terminal`).
pub(crate) const ENDED: &str = "('SUCCEEDED', 'FAILED', 'CANCELED', 'TIMED_OUT')";

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prune(&self, plan: PrunePlan, dry_run: bool) -> Result<Pruned, StoreError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Pruned::default();
            if let Some(before) = plan.tasks_ended_before {
                let old = format!(
                    "SELECT id FROM tasks WHERE status IN {ENDED} AND ended_at IS NOT NULL
                       AND ended_at < ?1
                       AND NOT EXISTS (SELECT 1 FROM approvals a
                                       WHERE a.task_id = tasks.id AND a.status = 'PENDING')"
                );
                let b = stamp(before);
                out.approvals = count(tx.execute(
                    &format!("DELETE FROM approvals WHERE status != 'PENDING' AND task_id IN ({old})"),
                    params![b],
                )?);
                tx.execute(
                    &format!("DELETE FROM channel_tasks WHERE task_id IN ({old})"),
                    params![b],
                )?;
                out.tasks = count(tx.execute(&format!("DELETE FROM tasks WHERE id IN ({old})"), params![b])?);
            }
            if let Some(before) = plan.sessions_idle_before {
                let idle = "SELECT s.id FROM sessions s
                     WHERE COALESCE((SELECT MAX(m.created_at) FROM messages m WHERE m.session_id = s.id),
                                    s.created_at) < ?1";
                let b = stamp(before);
                out.messages = tx
                    .query_row(
                        &format!("SELECT COUNT(*) FROM messages WHERE session_id IN ({idle})"),
                        params![b],
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|n| u64::try_from(n).unwrap_or(0))?;
                // Messages and compaction views go with their session (ON DELETE CASCADE).
                out.sessions = count(tx.execute(&format!("DELETE FROM sessions WHERE id IN ({idle})"), params![b])?);
            }
            if let Some(before) = plan.outbox_done_before {
                out.outbox = count(tx.execute(
                    "DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < ?1",
                    params![stamp(before)],
                )?);
            }
            if dry_run {
                tx.rollback()?;
            } else {
                tx.commit()?;
            }
            Ok(out)
        })
        .await
    }
}
