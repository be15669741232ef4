//! [`HeartbeatStore`] on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use pincer_types::{AgentId, TaskId, TokenUsage};
use tokio_postgres::Row;

use super::{PgStore, db};
use crate::StoreError;
use crate::heartbeats::{HeartbeatRecord, HeartbeatStore};
use crate::values::parse;

const COLUMNS: &str = "h.id, h.agent, h.at, h.status, h.detail, h.task_id, h.input_tokens, \
                       h.output_tokens";

fn row(r: &Row) -> Result<HeartbeatRecord, StoreError> {
    Ok(HeartbeatRecord {
        id: r.get(0),
        agent: parse(r.get(1), "agent id")?,
        at: r.get(2),
        status: r.get(3),
        detail: r.get(4),
        task: r
            .get::<_, Option<&str>>(5)
            .map(|s| parse(s, "task id"))
            .transpose()?,
        usage: match (r.get::<_, Option<i64>>(6), r.get::<_, Option<i64>>(7)) {
            (Some(i), Some(o)) => Some(TokenUsage {
                input_tokens: u64::try_from(i).unwrap_or(0),
                output_tokens: u64::try_from(o).unwrap_or(0),
            }),
            _ => None,
        },
    })
}

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<HeartbeatRecord>, StoreError> {
    let rows = c.query(sql, params).await.map_err(|e| db(&e))?;
    rows.iter().map(row).collect()
}

#[async_trait]
impl HeartbeatStore for PgStore {
    async fn record_heartbeat(
        &self,
        agent: &AgentId,
        at: DateTime<Utc>,
        status: &str,
        detail: Option<String>,
        task: Option<TaskId>,
    ) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "INSERT INTO heartbeats (agent, at, status, detail, task_id)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &agent.as_str(),
                    &at,
                    &status,
                    &detail,
                    &task.map(|t| t.to_string()),
                ],
            )
            .await
            .map_err(|e| db(&e))?
            .get(0))
    }

    async fn last_heartbeat(&self, agent: &AgentId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT MAX(at) FROM heartbeats WHERE agent = $1",
                &[&agent.as_str()],
            )
            .await
            .map_err(|e| db(&e))?
            .get(0))
    }

    async fn ended_heartbeats(&self) -> Result<Vec<HeartbeatRecord>, StoreError> {
        let client = self.client().await?;
        query(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM heartbeats h JOIN tasks t ON t.id = h.task_id
                 WHERE h.status = 'queued'
                   AND t.status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED')
                 ORDER BY h.id"
            ),
            &[],
        )
        .await
    }

    async fn finish_heartbeat(
        &self,
        id: i64,
        status: &str,
        detail: Option<String>,
        usage: Option<TokenUsage>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE heartbeats SET status = $2, detail = $3, input_tokens = $4,
                        output_tokens = $5 WHERE id = $1",
                &[
                    &id,
                    &status,
                    &detail,
                    &usage.map(|u| tokens(u.input_tokens)),
                    &usage.map(|u| tokens(u.output_tokens)),
                ],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn heartbeats(
        &self,
        agent: Option<&AgentId>,
        limit: usize,
    ) -> Result<Vec<HeartbeatRecord>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        query(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM heartbeats h WHERE ($1::TEXT IS NULL OR h.agent = $1)
                 ORDER BY h.id DESC LIMIT $2"
            ),
            &[&agent.map(AgentId::as_str), &limit],
        )
        .await
    }
}
