//! The durable task queue (E7, E8): submission with idempotency keys, claiming under a lease,
//! heartbeats, transitions checked against [`TaskStatus::can_move_to`], and crash recovery.
//!
//! Recovery contract: a task is claimed by one worker at a time (`lease_owner`, `lease_until`).
//! A worker renews the lease while it runs; if it stops (crash, `kill -9`), the lease expires and
//! [`TaskQueue::recover_expired`] ends the task as `FAILED` with an "interrupted" error — it is
//! **not** run again, because a half-finished run may already have had effects (files written,
//! commands run, messages sent). Queued tasks are untouched by a crash and run exactly once.
//! Within a session only one task is active (`RUNNING` or `WAITING_APPROVAL`) at a time; the
//! others wait in submission order.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{AgentId, SessionKey, TaskId, TaskStatus, TokenUsage};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::{SqliteStore, StoreError};

/// What a task is for; a heartbeat runs with a light context (see `pincer serve`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A message to the agent (default).
    #[default]
    Message,
    /// A heartbeat check-in.
    Heartbeat,
}

impl TaskKind {
    /// `message` or `heartbeat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// A task to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// What it is for.
    pub kind: TaskKind,
    /// The agent that runs it.
    pub agent: AgentId,
    /// The session it belongs to.
    pub session_key: SessionKey,
    /// The message.
    pub input: String,
    /// Same key → same task.
    pub idempotency_key: Option<String>,
    /// Latest end time; past it the task is `TIMED_OUT`.
    pub deadline: Option<DateTime<Utc>>,
    /// The principal it belongs to (a user's name, or `telegram:<id>` for an unlinked chat
    /// account); `None` for system work (schedules, heartbeats, webhooks).
    pub owner: Option<String>,
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Id.
    pub id: TaskId,
    /// Agent.
    pub agent: AgentId,
    /// Session key.
    pub session_key: SessionKey,
    /// The message.
    pub input: String,
    /// Current state.
    pub status: TaskStatus,
    /// The idempotency key it was submitted with.
    pub idempotency_key: Option<String>,
    /// The worker holding it.
    pub lease_owner: Option<String>,
    /// Until when the worker's lease holds.
    pub lease_until: Option<DateTime<Utc>>,
    /// Submitted.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// The answer, once succeeded.
    pub output: Option<String>,
    /// Why it failed, timed out or was canceled.
    pub error: Option<String>,
    /// Where its run's artifacts are (the run bundle directory), once it ran.
    pub run_dir: Option<String>,
    /// What it is for.
    pub kind: TaskKind,
    /// Tokens its run used, once it ran.
    pub usage: Option<TokenUsage>,
    /// The principal it belongs to; `None` for system work.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Why a queue operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No such task.
    #[error("no task {0}")]
    NotFound(TaskId),
    /// The transition is not in the lifecycle table.
    #[error("task {id} cannot go from {from} to {to}")]
    Transition {
        /// Task.
        id: TaskId,
        /// Current state.
        from: &'static str,
        /// Requested state.
        to: &'static str,
    },
    /// The caller does not hold the task's lease (it expired or another worker has it).
    #[error("task {0}: lease lost")]
    LeaseLost(TaskId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The task queue seam.
/// `(status, count)` rows as read from either backend.
pub(crate) fn counts(rows: Vec<(String, i64)>) -> Result<Vec<(TaskStatus, u64)>, TaskError> {
    rows.into_iter()
        .map(|(s, n)| {
            TaskStatus::parse(&s)
                .map(|st| (st, u64::try_from(n).unwrap_or(0)))
                .ok_or_else(|| TaskError::from(StoreError::Corrupt(format!("task status `{s}`"))))
        })
        .collect()
}

#[async_trait]
pub trait TaskQueue: Send + Sync + std::fmt::Debug {
    /// Submits a task; with an idempotency key already used, returns the existing task and
    /// `false`.
    async fn submit(&self, t: NewTask, now: DateTime<Utc>)
    -> Result<(TaskRecord, bool), TaskError>;
    /// One task.
    async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, TaskError>;
    /// How many tasks are in each state (states with none are left out).
    async fn task_counts(&self) -> Result<Vec<(TaskStatus, u64)>, TaskError>;
    /// Tasks, newest first, optionally in one state.
    async fn list(
        &self,
        status: Option<TaskStatus>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, TaskError>;
    /// Claims the oldest queued task whose session has no active task, for `worker`, leased
    /// until `now + lease`.
    async fn claim(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, TaskError>;
    /// Renews `worker`'s lease on `id`.
    async fn heartbeat(
        &self,
        id: TaskId,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<(), TaskError>;
    /// Moves `id` to `to`. With `worker`, the caller must hold the lease. Ending states clear
    /// the lease and record `detail` as the output (`SUCCEEDED`) or error.
    async fn transition(
        &self,
        id: TaskId,
        worker: Option<&str>,
        to: TaskStatus,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TaskRecord, TaskError>;
    /// Ends every active task whose lease expired before `now` as `FAILED` (interrupted), and
    /// every non-ended task past its deadline as `TIMED_OUT`. Returns the ids touched.
    async fn recover_expired(&self, now: DateTime<Utc>) -> Result<Vec<TaskId>, TaskError>;
    /// Records where the task's run left its artifacts and the tokens it used.
    async fn set_run_info(&self, id: TaskId, dir: &str, usage: TokenUsage)
    -> Result<(), TaskError>;
    /// Ends `id` as [`Self::transition`] does for `worker` and, with `run`, records its run
    /// (artifacts directory, tokens) in the same transaction.
    async fn end_with_run(
        &self,
        id: TaskId,
        worker: &str,
        to: TaskStatus,
        detail: Option<String>,
        now: DateTime<Utc>,
        run: Option<(String, TokenUsage)>,
    ) -> Result<TaskRecord, TaskError>;
}

pub(crate) const COLUMNS: &str = "id, agent, session_key, input, status, idempotency_key, lease_owner, \
                       lease_until, created_at, updated_at, started_at, ended_at, deadline, output, error, run_dir, \
                       kind, input_tokens, output_tokens, owner";

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| crate::sqlite::ts(&s)).transpose()
}

pub(crate) fn row(r: &Row<'_>) -> Result<TaskRecord, StoreError> {
    let status: String = r.get(4)?;
    Ok(TaskRecord {
        id: crate::sqlite::parse(&r.get::<_, String>(0)?, "task id")?,
        agent: crate::sqlite::parse(&r.get::<_, String>(1)?, "agent id")?,
        session_key: crate::sqlite::parse(&r.get::<_, String>(2)?, "session key")?,
        input: r.get(3)?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("task status `{status}`")))?,
        idempotency_key: r.get(5)?,
        lease_owner: r.get(6)?,
        lease_until: opt_ts(r.get(7)?)?,
        created_at: crate::sqlite::ts(&r.get::<_, String>(8)?)?,
        updated_at: crate::sqlite::ts(&r.get::<_, String>(9)?)?,
        started_at: opt_ts(r.get(10)?)?,
        ended_at: opt_ts(r.get(11)?)?,
        deadline: opt_ts(r.get(12)?)?,
        output: r.get(13)?,
        error: r.get(14)?,
        run_dir: r.get(15)?,
        kind: match r.get::<_, String>(16)?.as_str() {
            "heartbeat" => TaskKind::Heartbeat,
            _ => TaskKind::Message,
        },
        usage: match (r.get::<_, Option<i64>>(17)?, r.get::<_, Option<i64>>(18)?) {
            (Some(i), Some(o)) => Some(TokenUsage {
                input_tokens: u64::try_from(i).unwrap_or(0),
                output_tokens: u64::try_from(o).unwrap_or(0),
            }),
            _ => None,
        },
        owner: r.get(19)?,
    })
}

fn get(c: &rusqlite::Connection, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"))?;
    let mut rows = st.query(params![id.to_string()])?;
    rows.next()?.map(row).transpose()
}

use crate::sqlite::stamp;

fn lease_end(now: DateTime<Utc>, lease: Duration) -> String {
    stamp(crate::values::until(now, lease))
}

/// Applies a checked transition inside a transaction.
fn apply(
    c: &rusqlite::Connection,
    id: TaskId,
    worker: Option<&str>,
    to: TaskStatus,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> Result<TaskRecord, TaskError> {
    let t = get(c, id)?.ok_or(TaskError::NotFound(id))?;
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
    let now_s = stamp(now);
    if to.is_terminal() {
        let (output, error) = match to {
            TaskStatus::Succeeded => (detail, None),
            _ => (None, detail),
        };
        c.prepare_cached(
            "UPDATE tasks SET status = ?2, lease_owner = NULL, lease_until = NULL, updated_at = ?3,
                    ended_at = ?3, output = ?4, error = ?5 WHERE id = ?1",
        )
        .and_then(|mut st| st.execute(params![id.to_string(), to.as_str(), now_s, output, error]))
        .map_err(StoreError::from)?;
    } else {
        c.prepare_cached("UPDATE tasks SET status = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id.to_string(), to.as_str(), now_s]))
            .map_err(StoreError::from)?;
    }
    get(c, id)?.ok_or(TaskError::NotFound(id))
}

/// Runs `f` in a transaction, keeping the typed error.
async fn in_tx<T: Send + 'static>(
    s: &SqliteStore,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, TaskError> + Send + 'static,
) -> Result<T, TaskError> {
    s.transact(f).await
}

fn run_info_in(
    c: &rusqlite::Connection,
    id: TaskId,
    dir: &str,
    usage: TokenUsage,
) -> Result<(), TaskError> {
    let n = c
        .prepare_cached(
            "UPDATE tasks SET run_dir = ?2, input_tokens = ?3, output_tokens = ?4 WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                id.to_string(),
                dir,
                i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
                i64::try_from(usage.output_tokens).unwrap_or(i64::MAX)
            ])
        })
        .map_err(StoreError::from)?;
    if n == 0 {
        Err(TaskError::NotFound(id))
    } else {
        Ok(())
    }
}

#[async_trait]
impl TaskQueue for SqliteStore {
    async fn submit(
        &self,
        t: NewTask,
        now: DateTime<Utc>,
    ) -> Result<(TaskRecord, bool), TaskError> {
        in_tx(self, move |c| {
            if let Some(key) = &t.idempotency_key {
                let mut st =
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM tasks WHERE idempotency_key = ?1"))
                        .map_err(StoreError::from)?;
                let mut rows = st.query(params![key]).map_err(StoreError::from)?;
                if let Some(r) = rows.next().map_err(StoreError::from)? {
                    return Ok((row(r)?, false));
                }
            }
            let id = TaskId::new();
            let now_s = stamp(now);
            c.prepare_cached("INSERT INTO tasks (id, seq, agent, session_key, input, status, idempotency_key,
                                    created_at, updated_at, deadline, kind, owner)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks), ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)").and_then(|mut st| st.execute(params![
                    id.to_string(),
                    t.agent.to_string(),
                    t.session_key.to_string(),
                    t.input,
                    TaskStatus::Queued.as_str(),
                    t.idempotency_key,
                    now_s,
                    t.deadline.map(stamp),
                    t.kind.as_str(),
                    t.owner,
                ]))
            .map_err(StoreError::from)?;
            Ok((get(c, id)?.ok_or(TaskError::NotFound(id))?, true))
        })
        .await
    }

    async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, TaskError> {
        Ok(self.read(move |c| get(c, id)).await?)
    }

    async fn task_counts(&self) -> Result<Vec<(TaskStatus, u64)>, TaskError> {
        let rows = self
            .with(|c| {
                let mut st = c.prepare_cached(
                    "SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status",
                )?;
                let rows = st
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        counts(rows)
    }

    async fn list(
        &self,
        status: Option<TaskStatus>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, TaskError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM tasks WHERE (?1 IS NULL OR status = ?1)
                     ORDER BY seq DESC LIMIT ?2"
                ))?;
                let mut rows = st.query(params![status.map(TaskStatus::as_str), limit])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(row(r)?);
                }
                Ok(out)
            })
            .await?)
    }

    async fn claim(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, TaskError> {
        let worker = worker.to_owned();
        // A worker asks after every task and at every wake-up; most find nothing. Looking first
        // is a read (no write lock); the claim itself looks again inside its transaction.
        let nothing_queued =
            |c: &rusqlite::Connection| -> Result<Option<Option<TaskRecord>>, TaskError> {
                let queued = c
                    .prepare_cached("SELECT 1 FROM tasks WHERE status = 'QUEUED' LIMIT 1")
                    .and_then(|mut st| st.exists([]))
                    .map_err(StoreError::from)?;
                Ok((!queued).then_some(None))
            };
        self.look_or_transact(nothing_queued, move |c| {
            let id: Option<String> = c
                .prepare_cached(
                    "SELECT id FROM tasks q WHERE q.status = 'QUEUED' AND NOT EXISTS (
                         SELECT 1 FROM tasks a WHERE a.session_key = q.session_key
                           AND a.status IN ('RUNNING', 'WAITING_APPROVAL'))
                     ORDER BY q.seq LIMIT 1",
                )
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .optional()
                .map_err(StoreError::from)?;
            let Some(id) = id else { return Ok(None) };
            let id: TaskId = crate::sqlite::parse(&id, "task id")?;
            let t = apply(c, id, None, TaskStatus::Running, None, now)?;
            c.prepare_cached(
                "UPDATE tasks SET lease_owner = ?2, lease_until = ?3,
                        started_at = COALESCE(started_at, ?4) WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    t.id.to_string(),
                    worker,
                    lease_end(now, lease),
                    stamp(now)
                ])
            })
            .map_err(StoreError::from)?;
            Ok(get(c, id)?)
        })
        .await
    }

    async fn heartbeat(
        &self,
        id: TaskId,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<(), TaskError> {
        let worker = worker.to_owned();
        in_tx(self, move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE tasks SET lease_until = ?3, updated_at = ?4
                     WHERE id = ?1 AND lease_owner = ?2 AND lease_until > ?4
                       AND status IN ('RUNNING', 'WAITING_APPROVAL')",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        id.to_string(),
                        worker,
                        lease_end(now, lease),
                        stamp(now)
                    ])
                })
                .map_err(StoreError::from)?;
            if n == 1 {
                Ok(())
            } else {
                Err(TaskError::LeaseLost(id))
            }
        })
        .await
    }

    async fn transition(
        &self,
        id: TaskId,
        worker: Option<&str>,
        to: TaskStatus,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TaskRecord, TaskError> {
        let worker = worker.map(str::to_owned);
        in_tx(self, move |c| {
            apply(c, id, worker.as_deref(), to, detail, now)
        })
        .await
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
        let worker = worker.to_owned();
        in_tx(self, move |c| {
            if let Some((dir, usage)) = &run {
                run_info_in(c, id, dir, *usage)?;
            }
            apply(c, id, Some(&worker), to, detail, now)
        })
        .await
    }

    async fn set_run_info(
        &self,
        id: TaskId,
        dir: &str,
        usage: TokenUsage,
    ) -> Result<(), TaskError> {
        let dir = dir.to_owned();
        in_tx(self, move |c| run_info_in(c, id, &dir, usage)).await
    }

    async fn recover_expired(&self, now: DateTime<Utc>) -> Result<Vec<TaskId>, TaskError> {
        in_tx(self, move |c| {
            let now_s = stamp(now);
            let mut touched = Vec::new();
            let ids = |sql: &str| -> Result<Vec<TaskId>, TaskError> {
                let mut st = c.prepare_cached(sql).map_err(StoreError::from)?;
                let rows = st
                    .query_map(params![now_s], |r| r.get::<_, String>(0))
                    .map_err(StoreError::from)?;
                let mut v = Vec::new();
                for r in rows {
                    v.push(crate::sqlite::parse(
                        &r.map_err(StoreError::from)?,
                        "task id",
                    )?);
                }
                Ok(v)
            };
            for id in ids(
                "SELECT id FROM tasks WHERE deadline IS NOT NULL AND deadline <= ?1
                   AND status IN ('QUEUED', 'RUNNING', 'WAITING_APPROVAL')",
            )? {
                apply(
                    c,
                    id,
                    None,
                    TaskStatus::TimedOut,
                    Some("deadline passed".into()),
                    now,
                )?;
                touched.push(id);
            }
            for id in ids(
                "SELECT id FROM tasks WHERE lease_until IS NOT NULL AND lease_until <= ?1
                   AND status IN ('RUNNING', 'WAITING_APPROVAL')",
            )? {
                apply(
                    c,
                    id,
                    None,
                    TaskStatus::Failed,
                    Some(
                        "interrupted: its worker stopped (crash or kill) while it ran; not \
                         retried, since a partial run may already have had effects"
                            .into(),
                    ),
                    now,
                )?;
                touched.push(id);
            }
            Ok(touched)
        })
        .await
    }
}
