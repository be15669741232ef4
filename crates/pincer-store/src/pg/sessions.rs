//! [`Store`] (sessions, messages, run index) on Postgres. At most one current session per key,
//! across nodes, is the partial unique index `sessions_current`; appends to a session lock its
//! row so two nodes never number two messages alike.

use async_trait::async_trait;
use chrono::Utc;
use deadpool_postgres::GenericClient;
use pincer_types::{AgentId, RunId, SessionId, SessionKey, TokenUsage};

use super::{PgStore, db};
use crate::StoreError;
use crate::store::{
    ModelPin, RunRecord, RunStart, SessionInfo, SessionSummary, SessionView, Store,
};
use crate::values::parse;
use crate::values::{status_parse, status_str};

async fn current(
    c: &impl GenericClient,
    key: &SessionKey,
) -> Result<Option<SessionInfo>, StoreError> {
    let row = c
        .query_opt(
            "SELECT s.id, s.agent, s.created_at, p.alias, p.strict FROM sessions s
             LEFT JOIN model_pins p ON p.session_key = s.key
             WHERE s.key = $1 AND s.archived_at IS NULL",
            &[&key.as_str()],
        )
        .await
        .map_err(|e| db(&e))?;
    row.map(|r| {
        Ok(SessionInfo {
            id: parse(r.get::<_, &str>(0), "session id")?,
            key: key.clone(),
            agent: parse(r.get::<_, &str>(1), "agent id")?,
            created_at: r.get(2),
            pin: r.get::<_, Option<String>>(3).map(|alias| ModelPin {
                alias,
                strict: r.get::<_, Option<bool>>(4).unwrap_or(false),
            }),
        })
    })
    .transpose()
}

async fn view_in(
    c: &impl GenericClient,
    session: SessionId,
) -> Result<Option<SessionView>, StoreError> {
    let row = c
        .query_opt(
            "SELECT covers, sent FROM session_views WHERE session_id = $1",
            &[&session.to_string()],
        )
        .await
        .map_err(|e| db(&e))?;
    row.map(|r| {
        Ok(SessionView {
            covers: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            sent: serde_json::from_str(r.get::<_, &str>(1))
                .map_err(|e| StoreError::Corrupt(format!("session view: {e}")))?,
        })
    })
    .transpose()
}

/// Inserts a current session for `key` unless one exists; returns the current one either way.
async fn ensure_current(
    c: &impl GenericClient,
    key: &SessionKey,
    agent: &AgentId,
) -> Result<SessionInfo, StoreError> {
    c.execute(
        "INSERT INTO sessions (id, key, agent, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) WHERE archived_at IS NULL DO NOTHING",
        &[
            &SessionId::new().to_string(),
            &key.as_str(),
            &agent.as_str(),
            &Utc::now(),
        ],
    )
    .await
    .map_err(|e| db(&e))?;
    current(c, key)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("session `{key}` vanished")))
}

async fn append_in(
    c: &impl GenericClient,
    session: SessionId,
    messages: &[serde_json::Value],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let sid = session.to_string();
    // Serialises appends to one session across connections and nodes.
    c.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", &[&sid])
        .await
        .map_err(|e| db(&e))?;
    let next: i64 = c
        .query_one(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = $1",
            &[&sid],
        )
        .await
        .map_err(|e| db(&e))?
        .get(0);
    let now = Utc::now();
    for (i, m) in (1_i64..).zip(messages) {
        c.execute(
            "INSERT INTO messages (session_id, seq, body, created_at) VALUES ($1, $2, $3, $4)",
            &[&sid, &(next + i), &m.to_string(), &now],
        )
        .await
        .map_err(|e| db(&e))?;
    }
    Ok(())
}

async fn messages_in(
    c: &impl GenericClient,
    session: SessionId,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let rows = c
        .query(
            "SELECT body FROM messages WHERE session_id = $1 ORDER BY seq",
            &[&session.to_string()],
        )
        .await
        .map_err(|e| db(&e))?;
    rows.iter()
        .map(|r| {
            serde_json::from_str(r.get::<_, &str>(0))
                .map_err(|e| StoreError::Corrupt(format!("message: {e}")))
        })
        .collect()
}

async fn upsert_run_in(c: &impl GenericClient, run: &RunRecord) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO runs (id, agent, session_id, status, model, prompt_sha256, input_tokens,
                           output_tokens, started_at, ended_at, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status,
            input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
            ended_at = excluded.ended_at, error = excluded.error",
        &[
            &run.id.to_string(),
            &run.agent.as_str(),
            &run.session.to_string(),
            &status_str(run.status),
            &run.model,
            &run.prompt_sha256,
            &i64::try_from(run.usage.input_tokens).unwrap_or(i64::MAX),
            &i64::try_from(run.usage.output_tokens).unwrap_or(i64::MAX),
            &run.started_at,
            &run.ended_at,
            &run.error,
        ],
    )
    .await
    .map_err(|e| db(&e))?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(|e| db(&e))?;
        Ok(())
    }

    async fn current_session(
        &self,
        key: &SessionKey,
        agent: &AgentId,
    ) -> Result<SessionInfo, StoreError> {
        let client = self.client().await?;
        if let Some(s) = current(&client, key).await? {
            return Ok(s);
        }
        ensure_current(&client, key, agent).await
    }

    async fn new_session(
        &self,
        key: &SessionKey,
        agent: &AgentId,
    ) -> Result<SessionInfo, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        tx.execute(
            "UPDATE sessions SET archived_at = $2 WHERE key = $1 AND archived_at IS NULL",
            &[&key.as_str(), &Utc::now()],
        )
        .await
        .map_err(|e| db(&e))?;
        let s = ensure_current(&tx, key, agent).await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(s)
    }

    async fn set_model_pin(
        &self,
        key: &SessionKey,
        pin: Option<&ModelPin>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        match pin {
            Some(p) => client
                .execute(
                    "INSERT INTO model_pins (session_key, alias, strict, set_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (session_key) DO UPDATE SET alias = excluded.alias,
                        strict = excluded.strict, set_at = excluded.set_at",
                    &[&key.as_str(), &p.alias, &p.strict, &Utc::now()],
                )
                .await,
            None => client
                .execute(
                    "DELETE FROM model_pins WHERE session_key = $1",
                    &[&key.as_str()],
                )
                .await,
        }
        .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn session_view(&self, session: SessionId) -> Result<Option<SessionView>, StoreError> {
        let client = self.client().await?;
        view_in(&client, session).await
    }

    async fn agent_sessions(&self, agent: &AgentId) -> Result<Vec<SessionSummary>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.id, s.key, s.created_at,
                        (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)
                 FROM sessions s WHERE s.agent = $1 ORDER BY s.created_at, s.id",
                &[&agent.as_str()],
            )
            .await
            .map_err(|e| db(&e))?;
        rows.iter()
            .map(|r| {
                Ok(SessionSummary {
                    id: parse(r.get::<_, &str>(0), "session id")?,
                    key: parse(r.get::<_, &str>(1), "session key")?,
                    created_at: r.get(2),
                    messages: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn set_session_view(
        &self,
        session: SessionId,
        view: &SessionView,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sent = serde_json::Value::from(view.sent.clone()).to_string();
        let covers = i64::try_from(view.covers).unwrap_or(i64::MAX);
        client
            .execute(
                "INSERT INTO session_views (session_id, covers, sent, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (session_id) DO UPDATE SET covers = excluded.covers, sent = excluded.sent,
                    updated_at = excluded.updated_at",
                &[&session.to_string(), &covers, &sent, &Utc::now()],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn clear_messages(&self, session: SessionId) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        for sql in [
            "DELETE FROM messages WHERE session_id = $1",
            "DELETE FROM session_views WHERE session_id = $1",
        ] {
            tx.execute(sql, &[&session.to_string()])
                .await
                .map_err(|e| db(&e))?;
        }
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(())
    }

    async fn append_messages(
        &self,
        session: SessionId,
        messages: Vec<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        append_in(&tx, session, &messages).await?;
        tx.commit().await.map_err(|e| db(&e))
    }

    async fn messages(&self, session: SessionId) -> Result<Vec<serde_json::Value>, StoreError> {
        let client = self.client().await?;
        messages_in(&client, session).await
    }

    async fn upsert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        upsert_run_in(&client, run).await
    }

    async fn runs(&self, session: SessionId) -> Result<Vec<RunRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, agent, status, model, prompt_sha256, input_tokens, output_tokens,
                        started_at, ended_at, error
                 FROM runs WHERE session_id = $1 ORDER BY started_at, id",
                &[&session.to_string()],
            )
            .await
            .map_err(|e| db(&e))?;
        rows.iter()
            .map(|r| {
                Ok(RunRecord {
                    id: parse::<RunId>(r.get::<_, &str>(0), "run id")?,
                    agent: parse(r.get::<_, &str>(1), "agent id")?,
                    session,
                    status: status_parse(r.get(2))?,
                    model: r.get(3),
                    prompt_sha256: r.get(4),
                    usage: TokenUsage {
                        input_tokens: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
                        output_tokens: u64::try_from(r.get::<_, i64>(6)).unwrap_or(0),
                    },
                    started_at: r.get(7),
                    ended_at: r.get(8),
                    error: r.get(9),
                })
            })
            .collect()
    }

    async fn begin_run(&self, run: &RunRecord) -> Result<RunStart, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        upsert_run_in(&tx, run).await?;
        let history = messages_in(&tx, run.session).await?;
        let view = if history.is_empty() {
            None
        } else {
            view_in(&tx, run.session).await?
        };
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(RunStart { history, view })
    }

    async fn end_run(
        &self,
        run: &RunRecord,
        messages: Vec<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        upsert_run_in(&tx, run).await?;
        append_in(&tx, run.session, &messages).await?;
        tx.commit().await.map_err(|e| db(&e))
    }
}
