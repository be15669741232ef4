//! [`TaskQueue`] on Postgres: the queue several `pincer serve` processes share.
//!
//! - `submit` inserts with `ON CONFLICT (idempotency_key) DO NOTHING`: a key submitted twice, by
//!   any process, is one task.
//! - `claim` picks the oldest queued task whose session has no active task *and no older queued
//!   task* (per-session order), with `FOR UPDATE SKIP LOCKED` so claimers never wait on each
//!   other; the partial unique index `tasks_one_active_per_session` makes two active tasks in a
//!   session impossible even when two processes race — the loser's update fails and it looks
//!   again.
//! - every transition locks the row (`FOR UPDATE`) and checks the lifecycle table and the lease
//!   like the SQLite backend.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use pincer_types::{TaskId, TaskStatus, TokenUsage};
use tokio_postgres::Row;

use super::{PgStore, db};
use crate::StoreError;
use crate::tasks::{NewTask, TaskError, TaskKind, TaskQueue, TaskRecord};
use crate::values::{parse, until};

pub(crate) const COLUMNS: &str = "id, agent, session_key, input, status, idempotency_key, lease_owner, \
                       lease_until, created_at, updated_at, started_at, ended_at, deadline, output, error, run_dir, \
                       kind, input_tokens, output_tokens, owner";

/// How many times a claim looks again after losing a race for a session.
const CLAIM_ATTEMPTS: usize = 8;

pub(crate) fn row(r: &Row) -> Result<TaskRecord, StoreError> {
    let status: String = r.get(4);
    let tokens = |i: usize| {
        r.get::<_, Option<i64>>(i)
            .map(|v| u64::try_from(v).unwrap_or(0))
    };
    Ok(TaskRecord {
        id: parse(r.get::<_, &str>(0), "task id")?,
        agent: parse(r.get::<_, &str>(1), "agent id")?,
        session_key: parse(r.get::<_, &str>(2), "session key")?,
        input: r.get(3),
        status: TaskStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("task status `{status}`")))?,
        idempotency_key: r.get(5),
        lease_owner: r.get(6),
        lease_until: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
        started_at: r.get(10),
        ended_at: r.get(11),
        deadline: r.get(12),
        output: r.get(13),
        error: r.get(14),
        run_dir: r.get(15),
        kind: match r.get::<_, &str>(16) {
            "heartbeat" => TaskKind::Heartbeat,
            _ => TaskKind::Message,
        },
        usage: match (tokens(17), tokens(18)) {
            (Some(input_tokens), Some(output_tokens)) => Some(TokenUsage {
                input_tokens,
                output_tokens,
            }),
            _ => None,
        },
        owner: r.get(19),
    })
}

async fn get(
    c: &impl GenericClient,
    id: TaskId,
    lock: bool,
) -> Result<Option<TaskRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&id.to_string()])
        .await
        .map_err(|e| db(&e))?
        .as_ref()
        .map(row)
        .transpose()
}

/// A checked transition on a locked row, inside `c`'s transaction.
async fn apply(
    c: &impl GenericClient,
    id: TaskId,
    worker: Option<&str>,
    to: TaskStatus,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> Result<TaskRecord, TaskError> {
    let t = get(c, id, true).await?.ok_or(TaskError::NotFound(id))?;
    if !t.status.can_move_to(to) {
        return Err(TaskError::Transition {
            id,
            from: t.status.as_str(),
            to: to.as_str(),
        });
    }
    if let Some(w) = worker {
        let holds = t.lease_owner.as_deref() == Some(w) && t.lease_until.is_some_and(|u| u > now);
        if !holds {
            return Err(TaskError::LeaseLost(id));
        }
    }
    let sid = id.to_string();
    if to.is_terminal() {
        let (output, error) = match to {
            TaskStatus::Succeeded => (detail, None),
            _ => (None, detail),
        };
        c.execute(
            "UPDATE tasks SET status = $2, lease_owner = NULL, lease_until = NULL, updated_at = $3,
                    ended_at = $3, output = $4, error = $5 WHERE id = $1",
            &[&sid, &to.as_str(), &now, &output, &error],
        )
        .await
        .map_err(|e| db(&e))?;
    } else {
        c.execute(
            "UPDATE tasks SET status = $2, updated_at = $3 WHERE id = $1",
            &[&sid, &to.as_str(), &now],
        )
        .await
        .map_err(|e| db(&e))?;
    }
    get(c, id, false).await?.ok_or(TaskError::NotFound(id))
}

async fn run_info_in(
    c: &impl GenericClient,
    id: TaskId,
    dir: &str,
    usage: TokenUsage,
) -> Result<(), TaskError> {
    let n = c
        .execute(
            "UPDATE tasks SET run_dir = $2, input_tokens = $3, output_tokens = $4 WHERE id = $1",
            &[
                &id.to_string(),
                &dir,
                &i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
                &i64::try_from(usage.output_tokens).unwrap_or(i64::MAX),
            ],
        )
        .await
        .map_err(|e| db(&e))?;
    if n == 0 {
        Err(TaskError::NotFound(id))
    } else {
        Ok(())
    }
}

/// Whether `e` is the one-active-task-per-session index refusing a second active task.
fn lost_session_race(e: &TaskError) -> bool {
    matches!(e, TaskError::Store(StoreError::Conflict(c)) if c == "tasks_one_active_per_session")
}

impl PgStore {
    /// One claim attempt: `Ok(None)` when nothing is claimable.
    async fn claim_once(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, TaskError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let picked = tx
            .query_opt(
                "SELECT id FROM tasks q WHERE q.status = 'QUEUED'
                   AND NOT EXISTS (SELECT 1 FROM tasks a WHERE a.session_key = q.session_key
                                     AND a.status IN ('RUNNING', 'WAITING_APPROVAL'))
                   AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.session_key = q.session_key
                                     AND o.status = 'QUEUED' AND o.seq < q.seq)
                 ORDER BY q.seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        let Some(picked) = picked else {
            return Ok(None);
        };
        let id: TaskId = parse(picked.get::<_, &str>(0), "task id")?;
        apply(&tx, id, None, TaskStatus::Running, None, now).await?;
        tx.execute(
            "UPDATE tasks SET lease_owner = $2, lease_until = $3,
                    started_at = COALESCE(started_at, $4) WHERE id = $1",
            &[&id.to_string(), &worker, &until(now, lease), &now],
        )
        .await
        .map_err(|e| db(&e))?;
        let t = get(&tx, id, false).await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(t)
    }
}

#[async_trait]
impl TaskQueue for PgStore {
    async fn submit(
        &self,
        t: NewTask,
        now: DateTime<Utc>,
    ) -> Result<(TaskRecord, bool), TaskError> {
        let client = self.client().await?;
        let id = TaskId::new();
        let inserted = client
            .query_opt(
                &format!(
                    "INSERT INTO tasks (id, agent, session_key, input, status, idempotency_key,
                                        created_at, updated_at, deadline, kind, owner)
                     VALUES ($1, $2, $3, $4, 'QUEUED', $5, $6, $6, $7, $8, $9)
                     ON CONFLICT (idempotency_key) DO NOTHING
                     RETURNING {COLUMNS}"
                ),
                &[
                    &id.to_string(),
                    &t.agent.to_string(),
                    &t.session_key.to_string(),
                    &t.input,
                    &t.idempotency_key,
                    &now,
                    &t.deadline,
                    &t.kind.as_str(),
                    &t.owner,
                ],
            )
            .await
            .map_err(|e| db(&e))?;
        if let Some(r) = inserted {
            return Ok((row(&r)?, true));
        }
        let existing = client
            .query_one(
                &format!("SELECT {COLUMNS} FROM tasks WHERE idempotency_key = $1"),
                &[&t.idempotency_key],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok((row(&existing)?, false))
    }

    async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, TaskError> {
        let client = self.client().await?;
        Ok(get(&client, id, false).await?)
    }

    async fn task_counts(&self) -> Result<Vec<(TaskStatus, u64)>, TaskError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT status, COUNT(*)::BIGINT FROM tasks GROUP BY status ORDER BY status",
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        crate::tasks::counts(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn list(
        &self,
        status: Option<TaskStatus>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, TaskError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM tasks WHERE ($1::TEXT IS NULL OR status = $1)
                     ORDER BY seq DESC LIMIT $2"
                ),
                &[&status.map(TaskStatus::as_str), &limit],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn claim(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, TaskError> {
        for _ in 0..CLAIM_ATTEMPTS {
            match self.claim_once(worker, now, lease).await {
                Err(e) if lost_session_race(&e) => continue,
                other => return other,
            }
        }
        Ok(None)
    }

    async fn heartbeat(
        &self,
        id: TaskId,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<(), TaskError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE tasks SET lease_until = $3, updated_at = $4
                 WHERE id = $1 AND lease_owner = $2 AND lease_until > $4
                   AND status IN ('RUNNING', 'WAITING_APPROVAL')",
                &[&id.to_string(), &worker, &until(now, lease), &now],
            )
            .await
            .map_err(|e| db(&e))?;
        if n == 1 {
            Ok(())
        } else {
            Err(TaskError::LeaseLost(id))
        }
    }

    async fn transition(
        &self,
        id: TaskId,
        worker: Option<&str>,
        to: TaskStatus,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TaskRecord, TaskError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let t = apply(&tx, id, worker, to, detail, now).await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(t)
    }

    async fn end_with_run(
        &self,
        id: TaskId,
        worker: &str,
        to: TaskStatus,
        detail: Option<String>,
        now: DateTime<Utc>,
        run: Option<(String, TokenUsage)>,
    ) -> Result<TaskRecord, TaskError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        if let Some((dir, usage)) = &run {
            run_info_in(&tx, id, dir, *usage).await?;
        }
        let t = apply(&tx, id, Some(worker), to, detail, now).await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(t)
    }

    async fn set_run_info(
        &self,
        id: TaskId,
        dir: &str,
        usage: TokenUsage,
    ) -> Result<(), TaskError> {
        let client = self.client().await?;
        run_info_in(&client, id, dir, usage).await
    }

    async fn recover_expired(&self, now: DateTime<Utc>) -> Result<Vec<TaskId>, TaskError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let mut touched = Vec::new();
        let ids = |rows: Vec<Row>| -> Result<Vec<TaskId>, StoreError> {
            rows.iter()
                .map(|r| parse(r.get::<_, &str>(0), "task id"))
                .collect()
        };
        let late = tx
            .query(
                "SELECT id FROM tasks WHERE deadline IS NOT NULL AND deadline <= $1
                   AND status IN ('QUEUED', 'RUNNING', 'WAITING_APPROVAL')
                 ORDER BY seq FOR UPDATE SKIP LOCKED",
                &[&now],
            )
            .await
            .map_err(|e| db(&e))?;
        for id in ids(late)? {
            apply(
                &tx,
                id,
                None,
                TaskStatus::TimedOut,
                Some("deadline passed".into()),
                now,
            )
            .await?;
            touched.push(id);
        }
        let expired = tx
            .query(
                "SELECT id FROM tasks WHERE lease_until IS NOT NULL AND lease_until <= $1
                   AND status IN ('RUNNING', 'WAITING_APPROVAL')
                 ORDER BY seq FOR UPDATE SKIP LOCKED",
                &[&now],
            )
            .await
            .map_err(|e| db(&e))?;
        for id in ids(expired)? {
            apply(
                &tx,
                id,
                None,
                TaskStatus::Failed,
                Some(
                    "interrupted: its worker stopped (crash or kill) while it ran; not \
                     retried, since a partial run may already have had effects"
                        .into(),
                ),
                now,
            )
            .await?;
            touched.push(id);
        }
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(touched)
    }
}
