//! Heartbeat records (F2): one row per heartbeat, skipped or run, with its outcome and the
//! tokens it used — so what heartbeats cost is visible (`pincer heartbeat runs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{AgentId, TaskId, TokenUsage};
use rusqlite::params;
use serde::Serialize;

use crate::sqlite::{stamp, ts};
use crate::{SqliteStore, StoreError};

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatRecord {
    /// Row id.
    pub id: i64,
    /// The agent.
    pub agent: AgentId,
    /// When it was due.
    pub at: DateTime<Utc>,
    /// `skipped` (no model call), `queued`, `ok` (HEARTBEAT_OK: nothing delivered),
    /// `delivered`, `undelivered` (a reply with nowhere to go, or a failed delivery) or
    /// `failed`.
    pub status: String,
    /// Why it was skipped, what was delivered, or the error.
    pub detail: Option<String>,
    /// Its task, when it ran.
    pub task: Option<TaskId>,
    /// Tokens used.
    pub usage: Option<TokenUsage>,
}

/// The heartbeat seam.
#[async_trait]
pub trait HeartbeatStore: Send + Sync + std::fmt::Debug {
    /// Records a heartbeat; returns its id.
    async fn record_heartbeat(
        &self,
        agent: &AgentId,
        at: DateTime<Utc>,
        status: &str,
        detail: Option<String>,
        task: Option<TaskId>,
    ) -> Result<i64, StoreError>;
    /// When the agent's last heartbeat was due.
    async fn last_heartbeat(&self, agent: &AgentId) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Queued heartbeats whose task ended.
    async fn ended_heartbeats(&self) -> Result<Vec<HeartbeatRecord>, StoreError>;
    /// Records a queued heartbeat's outcome.
    async fn finish_heartbeat(
        &self,
        id: i64,
        status: &str,
        detail: Option<String>,
        usage: Option<TokenUsage>,
    ) -> Result<(), StoreError>;
    /// The newest heartbeats, of one agent or all.
    async fn heartbeats(
        &self,
        agent: Option<&AgentId>,
        limit: usize,
    ) -> Result<Vec<HeartbeatRecord>, StoreError>;
}

const COLUMNS: &str = "h.id, h.agent, h.at, h.status, h.detail, h.task_id, h.input_tokens, \
                       h.output_tokens";

fn row(r: &rusqlite::Row<'_>) -> Result<HeartbeatRecord, StoreError> {
    Ok(HeartbeatRecord {
        id: r.get(0)?,
        agent: crate::sqlite::parse(&r.get::<_, String>(1)?, "agent id")?,
        at: ts(&r.get::<_, String>(2)?)?,
        status: r.get(3)?,
        detail: r.get(4)?,
        task: r
            .get::<_, Option<String>>(5)?
            .map(|s| crate::sqlite::parse(&s, "task id"))
            .transpose()?,
        usage: match (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?) {
            (Some(i), Some(o)) => Some(TokenUsage {
                input_tokens: u64::try_from(i).unwrap_or(0),
                output_tokens: u64::try_from(o).unwrap_or(0),
            }),
            _ => None,
        },
    })
}

fn collect(
    st: &mut rusqlite::CachedStatement<'_>,
    p: impl rusqlite::Params,
) -> Result<Vec<HeartbeatRecord>, StoreError> {
    let mut rows = st.query(p)?;
    let mut v = Vec::new();
    while let Some(r) = rows.next()? {
        v.push(row(r)?);
    }
    Ok(v)
}

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl HeartbeatStore for SqliteStore {
    async fn record_heartbeat(
        &self,
        agent: &AgentId,
        at: DateTime<Utc>,
        status: &str,
        detail: Option<String>,
        task: Option<TaskId>,
    ) -> Result<i64, StoreError> {
        let (agent, status) = (agent.to_string(), status.to_owned());
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO heartbeats (agent, at, status, detail, task_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    agent,
                    stamp(at),
                    status,
                    detail,
                    task.map(|t| t.to_string())
                ])
            })?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn last_heartbeat(&self, agent: &AgentId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let agent = agent.to_string();
        self.with(move |c| {
            let mut st = c.prepare_cached("SELECT MAX(at) FROM heartbeats WHERE agent = ?1")?;
            let at: Option<String> = st.query_row(params![agent], |r| r.get(0))?;
            at.map(|s| ts(&s)).transpose()
        })
        .await
    }

    async fn ended_heartbeats(&self) -> Result<Vec<HeartbeatRecord>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM heartbeats h JOIN tasks t ON t.id = h.task_id
                 WHERE h.status = 'queued'
                   AND t.status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED')
                 ORDER BY h.id"
            ))?;
            collect(&mut st, [])
        })
        .await
    }

    async fn finish_heartbeat(
        &self,
        id: i64,
        status: &str,
        detail: Option<String>,
        usage: Option<TokenUsage>,
    ) -> Result<(), StoreError> {
        let status = status.to_owned();
        self.with(move |c| {
            c.prepare_cached(
                "UPDATE heartbeats SET status = ?2, detail = ?3, input_tokens = ?4,
                        output_tokens = ?5 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    status,
                    detail,
                    usage.map(|u| tokens(u.input_tokens)),
                    usage.map(|u| tokens(u.output_tokens)),
                ])
            })?;
            Ok(())
        })
        .await
    }

    async fn heartbeats(
        &self,
        agent: Option<&AgentId>,
        limit: usize,
    ) -> Result<Vec<HeartbeatRecord>, StoreError> {
        let agent = agent.map(ToString::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM heartbeats h WHERE (?1 IS NULL OR h.agent = ?1)
                 ORDER BY h.id DESC LIMIT ?2"
            ))?;
            collect(&mut st, params![agent, limit])
        })
        .await
    }
}
