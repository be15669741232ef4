//! Retention on Postgres: the same deletes as SQLite's, in one transaction.

use async_trait::async_trait;

use super::{PgStore, db};
use crate::StoreError;
use crate::retention::{ENDED, PrunePlan, Pruned, RetentionStore};

#[async_trait]
impl RetentionStore for PgStore {
    async fn prune(&self, plan: PrunePlan, dry_run: bool) -> Result<Pruned, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let mut out = Pruned::default();
        if let Some(before) = plan.tasks_ended_before {
            let old = format!(
                "SELECT id FROM tasks WHERE status IN {ENDED} AND ended_at IS NOT NULL
                   AND ended_at < $1
                   AND NOT EXISTS (SELECT 1 FROM approvals a
                                   WHERE a.task_id = tasks.id AND a.status = 'PENDING')"
            );
            out.approvals = tx
                .execute(
                    &format!(
                        "DELETE FROM approvals WHERE status <> 'PENDING' AND task_id IN ({old})"
                    ),
                    &[&before],
                )
                .await
                .map_err(|e| db(&e))?;
            tx.execute(
                &format!("DELETE FROM channel_tasks WHERE task_id IN ({old})"),
                &[&before],
            )
            .await
            .map_err(|e| db(&e))?;
            out.tasks = tx
                .execute(
                    &format!("DELETE FROM tasks WHERE id IN ({old})"),
                    &[&before],
                )
                .await
                .map_err(|e| db(&e))?;
        }
        if let Some(before) = plan.sessions_idle_before {
            let idle = "SELECT s.id FROM sessions s
                 WHERE COALESCE((SELECT MAX(m.created_at) FROM messages m WHERE m.session_id = s.id),
                                s.created_at) < $1";
            let n: i64 = tx
                .query_one(
                    &format!("SELECT COUNT(*) FROM messages WHERE session_id IN ({idle})"),
                    &[&before],
                )
                .await
                .map_err(|e| db(&e))?
                .get(0);
            out.messages = u64::try_from(n).unwrap_or(0);
            // Messages and compaction views go with their session (ON DELETE CASCADE).
            out.sessions = tx
                .execute(
                    &format!("DELETE FROM sessions WHERE id IN ({idle})"),
                    &[&before],
                )
                .await
                .map_err(|e| db(&e))?;
        }
        if let Some(before) = plan.outbox_done_before {
            out.outbox = tx
                .execute(
                    "DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < $1",
                    &[&before],
                )
                .await
                .map_err(|e| db(&e))?;
        }
        if dry_run {
            tx.rollback().await.map_err(|e| db(&e))?;
        } else {
            tx.commit().await.map_err(|e| db(&e))?;
        }
        Ok(out)
    }
}
